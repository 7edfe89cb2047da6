#include "llmgw/sim/generation.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <random>

namespace llmgw::sim {

namespace {

std::chrono::nanoseconds scaled_seconds(double seconds) {
  if (!(seconds > 0.0)) {
    return std::chrono::nanoseconds{0};
  }
  return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(seconds * 1e9))};
}

// A generator seeded from every input through std::seed_seq, whose mixing is fully specified by
// the standard, so the same inputs give the same stream on every platform.
std::mt19937_64 seeded_generator(std::uint64_t seed, std::string_view model, const Tokens& text) {
  std::vector<std::uint32_t> material;
  material.reserve(text.size() + 4);
  material.push_back(static_cast<std::uint32_t>(seed));
  material.push_back(static_cast<std::uint32_t>(seed >> 32));
  for (const TokenId id : tokenize(model)) {
    material.push_back(id);
  }
  material.insert(material.end(), text.begin(), text.end());
  std::seed_seq sequence(material.begin(), material.end());
  return std::mt19937_64{sequence};
}

constexpr std::array<std::string_view, 32> kVocabulary{
    "the",     "model",  "answer", "is",    "simulated", "cache",  "token",   "prefix",
    "gateway", "node",   "ring",   "of",    "a",         "and",    "to",      "in",
    "latency", "stream", "reply",  "which", "session",   "warm",   "slot",    "request",
    "fast",    "it",     "we",     "that",  "batch",     "decode", "prefill", "queue"};

}  // namespace

std::chrono::nanoseconds LatencyModel::prefill(std::size_t uncached_tokens,
                                               double slow_factor) const {
  if (!(prefill_tokens_per_s > 0.0)) {
    return std::chrono::nanoseconds{0};
  }
  return scaled_seconds(static_cast<double>(uncached_tokens) / prefill_tokens_per_s * time_scale *
                        slow_factor);
}

std::chrono::nanoseconds LatencyModel::decode(std::size_t output_tokens, double slow_factor) const {
  if (!(decode_tokens_per_s > 0.0)) {
    return std::chrono::nanoseconds{0};
  }
  return scaled_seconds(static_cast<double>(output_tokens) / decode_tokens_per_s * time_scale *
                        slow_factor);
}

std::string Completion::text() const {
  std::string out;
  for (const auto& piece : pieces) {
    out += piece;
  }
  return out;
}

Completion plan_completion(std::uint64_t seed, std::string_view model, const Tokens& prompt,
                           OutputLength length, std::optional<std::size_t> limit) {
  auto generator = seeded_generator(seed, model, prompt);
  const std::size_t low = std::min(length.min_tokens, length.max_tokens);
  const std::size_t high = std::max(length.min_tokens, length.max_tokens);
  const std::size_t natural = low + static_cast<std::size_t>(generator() % (high - low + 1));
  Completion completion;
  std::size_t count = natural;
  if (limit && (*limit < natural || length.ignore_eos)) {
    count = *limit;
    completion.hit_limit = true;
  }
  completion.pieces.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    std::string piece{kVocabulary[generator() % kVocabulary.size()]};
    if (i == 0) {
      piece[0] = static_cast<char>(piece[0] - 'a' + 'A');
    } else {
      piece.insert(piece.begin(), ' ');
    }
    if (i + 1 == count) {
      piece += '.';
    }
    completion.pieces.push_back(std::move(piece));
  }
  return completion;
}

std::vector<float> embed_text(std::string_view model, std::string_view text,
                              std::size_t dimensions) {
  auto generator = seeded_generator(0, model, tokenize(text));
  std::vector<float> vector(dimensions);
  double norm_squared = 0.0;
  for (auto& component : vector) {
    // Uniform in [-1, 1) from the top 24 bits: exact in a float and platform-independent.
    const auto bits = static_cast<double>(generator() >> 40);
    component = static_cast<float>(bits / static_cast<double>(1 << 23) - 1.0);
    norm_squared += static_cast<double>(component) * component;
  }
  const double norm = std::sqrt(norm_squared);
  if (norm > 0.0) {
    for (auto& component : vector) {
      component = static_cast<float>(component / norm);
    }
  }
  return vector;
}

}  // namespace llmgw::sim
