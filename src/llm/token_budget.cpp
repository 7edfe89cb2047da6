#include "llmgw/llm/token_budget.hpp"

#include <algorithm>

namespace llmgw::llm {

std::int64_t estimate_tokens(std::string_view text) noexcept {
  const auto bytes = static_cast<std::int64_t>(text.size());
  return (bytes + kBytesPerTokenEstimate - 1) / kBytesPerTokenEstimate + 1;
}

std::int64_t input_budget(std::int64_t context_tokens, std::int64_t reserved_output_tokens,
                          std::int64_t fixed_prompt_tokens) noexcept {
  return std::max<std::int64_t>(0, context_tokens - reserved_output_tokens - fixed_prompt_tokens);
}

BudgetFit fit_to_budget(const std::vector<std::int64_t>& item_tokens, std::int64_t budget_tokens) {
  BudgetFit fit;
  for (std::size_t i = 0; i < item_tokens.size(); ++i) {
    if (fit.used_tokens + item_tokens[i] <= budget_tokens) {
      fit.used_tokens += item_tokens[i];
      fit.included.push_back(i);
    } else {
      fit.left_out.push_back(i);
    }
  }
  return fit;
}

std::string truncate_to_tokens(std::string_view text, std::int64_t max_tokens,
                               std::string_view marker) {
  if (estimate_tokens(text) <= max_tokens) {
    return std::string{text};
  }
  // estimate_tokens(s) = ceil(|s| / 3) + 1, so s fits in t tokens when |s| <= 3 * (t - 1). The
  // marker is added to the kept part, so both are counted together.
  const std::int64_t max_bytes = kBytesPerTokenEstimate * (max_tokens - 1);
  const auto marker_bytes = static_cast<std::int64_t>(marker.size());
  if (max_bytes <= marker_bytes) {
    return {};
  }
  auto keep = static_cast<std::size_t>(max_bytes - marker_bytes);
  // Prefer to cut after a whole line when one ends in the last quarter of what we keep.
  const auto newline = text.rfind('\n', keep - 1);
  if (newline != std::string_view::npos && newline + 1 >= keep - keep / 4) {
    keep = newline + 1;
  }
  // Never split a UTF-8 sequence: JSON serialisation of the prompt would reject it.
  while (keep > 0 && (static_cast<unsigned char>(text[keep]) & 0xC0U) == 0x80U) {
    --keep;
  }
  std::string out{text.substr(0, keep)};
  out += marker;
  return out;
}

}  // namespace llmgw::llm
