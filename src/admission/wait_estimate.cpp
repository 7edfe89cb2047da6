#include "llmgw/admission/wait_estimate.hpp"

#include <algorithm>
#include <cmath>

namespace llmgw::admission {

void NodeTimings::observe_service(std::chrono::duration<double> held) noexcept {
  const double seconds = std::max(0.0, held.count());
  service_seconds_ = service_seconds_
                         ? (1.0 - kServiceWeight) * *service_seconds_ + kServiceWeight * seconds
                         : seconds;
}

void NodeTimings::observe_prefill(std::uint64_t prompt_tokens, double prompt_eval_seconds,
                                  bool affinity) noexcept {
  if (prompt_tokens < kMinPrefillTokens || !(prompt_eval_seconds >= 0.0) ||
      !std::isfinite(prompt_eval_seconds)) {
    return;
  }
  // Against the cold rate before this record: a cold prompt then reads as cold, and the first
  // record of a node (no rate yet) says nothing about reuse.
  if (const auto cold = prefill_seconds_per_token(); affinity && cold) {
    const auto tokens = static_cast<double>(prompt_tokens);
    const double cached = std::clamp(1.0 - prompt_eval_seconds / (tokens * *cold), 0.0, 1.0);
    reuse_cached_tokens_ = kReuseDecay * reuse_cached_tokens_ + cached * tokens;
    reuse_tokens_ = kReuseDecay * reuse_tokens_ + tokens;
  }
  if (prompt_eval_seconds == 0.0) {
    return;  // all cached: says nothing about the cold rate
  }
  prefill_[prefill_next_] = prompt_eval_seconds / static_cast<double>(prompt_tokens);
  prefill_next_ = (prefill_next_ + 1) % kPrefillSamples;
  prefill_count_ = std::min(prefill_count_ + 1, kPrefillSamples);
}

std::optional<double> NodeTimings::prefill_seconds_per_token() const noexcept {
  if (prefill_count_ == 0) {
    return std::nullopt;
  }
  return *std::max_element(prefill_.begin(),
                           prefill_.begin() + static_cast<std::ptrdiff_t>(prefill_count_));
}

std::optional<double> NodeTimings::cache_reuse() const noexcept {
  if (!(reuse_tokens_ > 0.0)) {
    return std::nullopt;
  }
  return reuse_cached_tokens_ / reuse_tokens_;
}

std::uint64_t estimate_tokens(std::size_t body_bytes) noexcept {
  return body_bytes / 4;
}

double expected_wait_seconds(std::size_t ahead, std::size_t cap, double service_seconds) noexcept {
  return static_cast<double>(ahead + 1) * service_seconds /
         static_cast<double>(std::max<std::size_t>(cap, 1));
}

WarmWaitDecision decide_warm_wait(const WarmWaitInputs& inputs) noexcept {
  WarmWaitDecision decision;
  if (!inputs.service_seconds || !inputs.prefill_seconds_per_token) {
    return decision;  // spill at once, as without the estimate
  }
  decision.estimated = true;
  decision.expected_wait_seconds =
      expected_wait_seconds(inputs.ahead, inputs.cap, *inputs.service_seconds);
  decision.cold_prefill_seconds =
      static_cast<double>(inputs.history_tokens) * *inputs.prefill_seconds_per_token;
  decision.saved_seconds = decision.cold_prefill_seconds * inputs.cache_reuse.value_or(1.0);
  decision.wait = decision.expected_wait_seconds <= decision.saved_seconds;
  return decision;
}

std::uint64_t retry_after_seconds(std::size_t ahead, std::size_t cap,
                                  std::optional<double> service_seconds,
                                  std::uint64_t max_seconds) noexcept {
  if (!service_seconds) {
    return 1;
  }
  const double seconds = std::ceil(expected_wait_seconds(ahead, cap, *service_seconds));
  if (!(seconds >= 1.0)) {
    return 1;
  }
  return std::min<std::uint64_t>(static_cast<std::uint64_t>(std::min(seconds, 1e9)), max_seconds);
}

}  // namespace llmgw::admission
