#pragma once

// The numbers admission decides with (docs/DESIGN.md §2.2): how long a node takes per request,
// how fast it prefills a prompt it has not cached, and from those the expected wait in its queue,
// the cost of a cold prefill elsewhere, the warm-wait decision and the Retry-After of a 429.
// Pure values and functions; the server's gate holds one NodeTimings per node under its mutex.
//
// Warm wait. A session whose node is at its cap either waits there (its history is cached there)
// or goes at once to a node with room (which must prefill the whole history). The gateway
// compares
//   expected wait  = (requests ahead of it in the node's queue + 1) × service time / cap
//   cold prefill   = history tokens × the other node's seconds per uncached prompt token
//   saved          = cold prefill × the warm node's recent cache reuse
// and waits when the expected wait is not longer than what it saves. The cache reuse is the share
// of the prompt tokens of the node's recent affinity turns (interactive requests routed to their
// session's node) that it served from its KV cache, weighted by tokens: a node whose slots hold its
// sessions between turns reuses most of them, one that has more sessions than slots evicts each
// between its turns and reuses nearly none, and waiting for it then saves nothing (before any
// such turn: 1, the cache trusted). History tokens are estimated from the request
// body: bytes / 4 (about 4 bytes of English or code per token, as Ollama's tokenizers and the
// emulator's average). Without an observed service time on the warm node or a prefill rate on the
// other one, it spills at once (the behaviour without the estimate).
//
// Worked example: node a is at its cap of 4, 2 interactive requests wait, its recent service time
// is 2 s: expected wait = (2 + 1) × 2 s / 4 = 1.5 s. The request body is 60 KB: 15,000 tokens; node
// b prefills 2,000 uncached tokens/s (0.5 ms per token): cold prefill = 7.5 s. Node a reused 80 %
// of its affinity turns' prompts: saved = 6 s, waiting wins by 4.5 s. With a 4 KB body (1,000
// tokens, 0.5 s) it spills to b; so it does when node a reused 10 % (saved 0.75 s).

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

namespace llmgw::admission {

// What one node has shown recently. Not thread-safe (the gate's mutex guards it).
class NodeTimings {
 public:
  // Weight of the newest sample in the service-time average.
  static constexpr double kServiceWeight = 0.2;
  // Prefill samples kept; the slowest of them is the cold rate.
  static constexpr std::size_t kPrefillSamples = 32;
  // Prompts shorter than this say more about fixed overhead than about prefill.
  static constexpr std::uint64_t kMinPrefillTokens = 32;
  // Weight the cache reuse keeps of its past at each affinity turn (about the last 10 turns).
  static constexpr double kReuseDecay = 0.9;

  // A request held a slot on the node for `held` (admitted until the node's last byte).
  void observe_service(std::chrono::duration<double> held) noexcept;
  // A final record: `prompt_tokens` (Ollama's prompt_eval_count, the whole prompt) evaluated in
  // `prompt_eval_seconds` (prompt_eval_duration: only the tokens not found in the KV cache). A
  // prompt served from cache reports its whole length but times only the rest, so it looks fast;
  // the slowest per-token time of the last kPrefillSamples records is the nearest to a cold one.
  // `affinity`: the request went to its session's node; its share of the prompt served from cache
  // (1 − prompt_eval_seconds / (prompt_tokens × the cold rate)) then joins the cache reuse.
  void observe_prefill(std::uint64_t prompt_tokens, double prompt_eval_seconds,
                       bool affinity = false) noexcept;

  // Exponential average of the service times (weight kServiceWeight); nullopt before any.
  std::optional<double> service_seconds() const noexcept { return service_seconds_; }
  // Seconds per uncached prompt token; nullopt before any usable record.
  std::optional<double> prefill_seconds_per_token() const noexcept;
  // Share of the recent affinity turns' prompt tokens served from cache (token-weighted, decaying
  // by kReuseDecay per turn); nullopt before any.
  std::optional<double> cache_reuse() const noexcept;

 private:
  std::optional<double> service_seconds_;
  std::array<double, kPrefillSamples> prefill_{};
  std::size_t prefill_count_ = 0;     // samples stored so far (capped at kPrefillSamples)
  std::size_t prefill_next_ = 0;      // ring index of the next sample
  double reuse_cached_tokens_ = 0.0;  // decayed sums over affinity turns
  double reuse_tokens_ = 0.0;
};

// Tokens in a request body, estimated: bytes / 4.
std::uint64_t estimate_tokens(std::size_t body_bytes) noexcept;

// (ahead + 1) × service / cap: when a request with `ahead` others before it gets a slot.
double expected_wait_seconds(std::size_t ahead, std::size_t cap, double service_seconds) noexcept;

struct WarmWaitInputs {
  std::size_t ahead = 0;                  // requests dispatched before this one on the warm node
  std::size_t cap = 1;                    // the warm node's max_in_flight
  std::optional<double> service_seconds;  // the warm node's
  std::uint64_t history_tokens = 0;       // estimate_tokens(body)
  std::optional<double> prefill_seconds_per_token;  // the node with room
  std::optional<double> cache_reuse;                // the warm node's; nullopt: 1
};

struct WarmWaitDecision {
  bool wait = false;       // false: spill to the node with room
  bool estimated = false;  // both inputs were known
  double expected_wait_seconds = 0.0;
  double cold_prefill_seconds = 0.0;
  double saved_seconds = 0.0;  // cold prefill × the warm node's cache reuse
};

WarmWaitDecision decide_warm_wait(const WarmWaitInputs& inputs) noexcept;

// Retry-After for a request refused by a node's queue: the time for the queue ahead of it to
// drain at the node's rate (cap / service time), whole seconds rounded up, at least 1 and at most
// `max_seconds`. 1 when no service time is known yet.
std::uint64_t retry_after_seconds(std::size_t ahead, std::size_t cap,
                                  std::optional<double> service_seconds,
                                  std::uint64_t max_seconds = 3600) noexcept;

}  // namespace llmgw::admission
