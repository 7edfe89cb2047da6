#pragma once

// Token budgeting without the model's tokenizer. Estimates err high on purpose: a prompt that is
// estimated to fit must really fit, or the provider answers 413 / truncates silently.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::llm {

// BPE tokenizers average about 4 bytes per token on English prose but nearer 3 on code full of
// punctuation and short identifiers; we count 3 so that diffs are not underestimated.
inline constexpr std::int64_t kBytesPerTokenEstimate = 3;

// Estimated tokens of `text`: ceil(bytes / 3), plus one so that even "" costs something.
std::int64_t estimate_tokens(std::string_view text) noexcept;

// Input tokens left for content once the reply and the fixed prompt are accounted for; never
// negative. Example: context 8192, reply 1024, instructions 300 -> 6868.
std::int64_t input_budget(std::int64_t context_tokens, std::int64_t reserved_output_tokens,
                          std::int64_t fixed_prompt_tokens) noexcept;

struct BudgetFit {
  std::vector<std::size_t> included;  // indexes into the input, in input order
  std::vector<std::size_t> left_out;  // indexes into the input, in input order
  std::int64_t used_tokens = 0;
};

// Keeps items in their given order while they fit in `budget_tokens`; an item that does not fit is
// left out, and later smaller items may still be taken. Callers order items by importance.
BudgetFit fit_to_budget(const std::vector<std::int64_t>& item_tokens, std::int64_t budget_tokens);

// `text` cut to at most `max_tokens` (estimated), at a line boundary when one is near, followed by
// `marker` when anything was cut. The result, marker included, fits in max_tokens.
std::string truncate_to_tokens(std::string_view text, std::int64_t max_tokens,
                               std::string_view marker = "\n[... truncated ...]\n");

}  // namespace llmgw::llm
