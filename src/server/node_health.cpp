#include "llmgw/server/node_health.hpp"

#include <algorithm>

namespace llmgw::server {

unsigned NodeHealth::consecutive_failures() const noexcept {
  return std::max(check_failures_.load(std::memory_order_relaxed),
                  traffic_failures_.load(std::memory_order_relaxed));
}

HealthTransition NodeHealth::record_failure(Source source, const OutlierPolicy& policy,
                                            Clock::time_point now) {
  std::lock_guard lock(mutex_);
  consecutive_successes_ = 0;
  const unsigned failures = failures_of(source).fetch_add(1, std::memory_order_relaxed) + 1;
  if (!healthy_.load(std::memory_order_relaxed) || failures < policy.unhealthy_threshold) {
    return {};
  }
  // A node that stayed healthy for the longest ejection has earned a fresh start.
  if (ejections_ > 0 && now - readmitted_at_ >= policy.max_ejection) {
    ejections_ = 0;
  }
  ++ejections_;
  auto ejected_for = policy.base_ejection;
  for (unsigned i = 1; i < ejections_ && ejected_for < policy.max_ejection; ++i) {
    ejected_for *= 2;
  }
  ejected_for = std::min(ejected_for, std::max(policy.base_ejection, policy.max_ejection));
  ejected_until_ = now + ejected_for;
  healthy_.store(false, std::memory_order_relaxed);
  return {HealthTransition::Kind::ejected, ejected_for, ejections_};
}

HealthTransition NodeHealth::record_success(Source source, const OutlierPolicy& policy,
                                            Clock::time_point now) {
  auto& failures = failures_of(source);
  if (healthy_.load(std::memory_order_relaxed)) {
    // The hot path: a healthy node with no failure run costs one load.
    if (failures.load(std::memory_order_relaxed) != 0) {
      failures.store(0, std::memory_order_relaxed);
    }
    return {};
  }
  std::lock_guard lock(mutex_);
  if (healthy_.load(std::memory_order_relaxed) || now < ejected_until_) {
    return {};  // still serving its ejection time: a passing probe proves little
  }
  if (++consecutive_successes_ < policy.healthy_threshold) {
    return {};
  }
  consecutive_successes_ = 0;
  check_failures_.store(0, std::memory_order_relaxed);
  traffic_failures_.store(0, std::memory_order_relaxed);
  readmitted_at_ = now;
  healthy_.store(true, std::memory_order_relaxed);
  return {HealthTransition::Kind::readmitted, {}, ejections_};
}

NodeHealth::Clock::time_point NodeHealth::ejected_until() const {
  std::lock_guard lock(mutex_);
  return ejected_until_;
}

unsigned NodeHealth::ejections() const {
  std::lock_guard lock(mutex_);
  return ejections_;
}

}  // namespace llmgw::server
