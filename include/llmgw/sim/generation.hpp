#pragma once

// What the emulator "computes": how long prefill and decode take, and which text it generates.
// Everything is a pure function of its inputs (and the seed), so runs are repeatable.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/sim/tokenizer.hpp"

namespace llmgw::sim {

// Prefill costs uncached_tokens / prefill_tokens_per_s, decoding 1 / decode_tokens_per_s per output
// token; both are multiplied by time_scale (0.01 makes a benchmark 100x faster) and by a fault's
// slow factor.
struct LatencyModel {
  double prefill_tokens_per_s = 2000.0;
  double decode_tokens_per_s = 60.0;
  double time_scale = 1.0;

  std::chrono::nanoseconds prefill(std::size_t uncached_tokens, double slow_factor = 1.0) const;
  std::chrono::nanoseconds decode(std::size_t output_tokens, double slow_factor = 1.0) const;
};

// The generated reply: one piece per output token ("Lorem", " ipsum", ...).
struct Completion {
  std::vector<std::string> pieces;
  bool hit_limit = false;  // stopped by num_predict / max_tokens: done_reason "length"

  std::string text() const;
};

struct OutputLength {
  std::size_t min_tokens = 16;
  std::size_t max_tokens = 64;
  // llama.cpp's ignore_eos: the model never ends a reply on its own, so a reply with a `limit`
  // runs to exactly that many tokens (min/max_tokens are not used).
  bool ignore_eos = false;
};

// The reply to `prompt`: its natural length is drawn from [min_tokens, max_tokens] by an RNG seeded
// from (seed, model, prompt); a smaller `limit` (num_predict, max_tokens) cuts it and sets
// hit_limit. With ignore_eos and a limit, the reply is `limit` tokens long (hit_limit set). The
// same inputs always give the same reply.
Completion plan_completion(std::uint64_t seed, std::string_view model, const Tokens& prompt,
                           OutputLength length, std::optional<std::size_t> limit);

// A deterministic unit-length embedding of `text` with `dimensions` components.
std::vector<float> embed_text(std::string_view model, std::string_view text,
                              std::size_t dimensions);

}  // namespace llmgw::sim
