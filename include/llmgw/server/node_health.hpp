#pragma once

// The health state machine of one upstream node: active checks and proxied requests feed it, and
// it decides when the node is ejected and when it is taken back (outlier detection, as Envoy's).
//
//   HEALTHY --(unhealthy_threshold consecutive failures)--> EJECTED until now + ejection time
//   EJECTED --(ejection time over, then healthy_threshold consecutive successes)--> HEALTHY
//
// The ejection time doubles with each ejection that follows a short readmission:
// base_ejection x 2^(n-1), capped at max_ejection, where n counts the ejections since the node
// last stayed healthy for max_ejection. Successes during the ejection time do not count, so a
// node that accepts connections and answers the health path but hangs on generations (its
// /api/version probe passes) does not flap back on the next probe.
//
// Worked example (thresholds 3 and 2, base 30 s, max 300 s, checks every 5 s): three proxied
// requests time out at t = 0..2 s -> ejected until t = 32 s. Probes at 5..30 s pass but do not
// count; probes at 35 and 40 s pass -> taken back at 40 s. Three more timeouts at 41..43 s ->
// ejected again, now for 60 s (until 103 s); then 120 s, 240 s, 300 s, 300 s ... Once the node
// has stayed healthy for 300 s, the next ejection lasts 30 s again.
//
// Active checks and proxied traffic keep separate failure runs (Source): a run of either ejects.
// What counts as a failure is the caller's decision (proxy.cpp: connect errors on a fresh
// connection, first-byte timeouts, 5xx answers, streams broken mid-way; never a stale pooled
// connection, a client that left, or the gateway's own lack of descriptors).
//
// Thread safety: every member may be called from any thread. A success while healthy with no
// failure run (the common case, once per proxied request) is one relaxed load.

#include <atomic>
#include <chrono>
#include <mutex>

namespace llmgw::server {

struct OutlierPolicy {
  unsigned unhealthy_threshold = 3;  // consecutive failures that eject
  unsigned healthy_threshold = 2;    // consecutive successes, after the ejection time, to return
  std::chrono::milliseconds base_ejection{30'000};
  std::chrono::milliseconds max_ejection{300'000};
};

// What one recorded outcome changed.
struct HealthTransition {
  enum class Kind { none, ejected, readmitted };
  Kind kind = Kind::none;
  std::chrono::milliseconds ejected_for{0};  // ejected: how long the node stays out
  unsigned ejections = 0;                    // ejected: the how-manieth in a row (1 = first)

  bool ejected() const noexcept { return kind == Kind::ejected; }
  bool readmitted() const noexcept { return kind == Kind::readmitted; }
};

class NodeHealth {
 public:
  using Clock = std::chrono::steady_clock;
  // Where an outcome was seen. Each source keeps its own run of failures (as Envoy keeps outlier
  // detection apart from active checks): a hung node's passing /api/version probes must not wipe
  // out the timeouts its generations ran into, nor the reverse.
  enum class Source { check, traffic };

  // `healthy` is the flag the router reads; this object is its only writer.
  explicit NodeHealth(std::atomic<bool>& healthy) noexcept : healthy_(healthy) {}
  NodeHealth(const NodeHealth&) = delete;
  NodeHealth& operator=(const NodeHealth&) = delete;

  HealthTransition record_failure(Source source, const OutlierPolicy& policy,
                                  Clock::time_point now);
  HealthTransition record_success(Source source, const OutlierPolicy& policy,
                                  Clock::time_point now);

  bool healthy() const noexcept { return healthy_.load(std::memory_order_relaxed); }
  // The longer of the two sources' current failure runs.
  unsigned consecutive_failures() const noexcept;
  // While ejected: when the ejection time ends (successes count again from then on).
  Clock::time_point ejected_until() const;
  // Ejections in the current run (reset once the node stays healthy for max_ejection).
  unsigned ejections() const;

 private:
  std::atomic<bool>& healthy_;
  std::atomic<unsigned>& failures_of(Source source) noexcept {
    return source == Source::check ? check_failures_ : traffic_failures_;
  }

  std::atomic<unsigned> check_failures_{0};
  std::atomic<unsigned> traffic_failures_{0};
  mutable std::mutex mutex_;  // the fields below; taken only on failures and while ejected
  unsigned consecutive_successes_ = 0;
  unsigned ejections_ = 0;
  Clock::time_point ejected_until_{};
  Clock::time_point readmitted_at_{};
};

}  // namespace llmgw::server
