// The node health state machine (llmgw/server/node_health.hpp): thresholds, ejection time that
// grows on repeats, successes that do not count while ejected, and the reset after a long healthy
// stretch. Times are explicit, so nothing here sleeps.

#include "llmgw/server/node_health.hpp"

#include <gtest/gtest.h>

namespace llmgw::server {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = NodeHealth::Clock;

constexpr OutlierPolicy kPolicy{.unhealthy_threshold = 3,
                                .healthy_threshold = 2,
                                .base_ejection = seconds{30},
                                .max_ejection = seconds{300}};

constexpr auto kTraffic = NodeHealth::Source::traffic;
constexpr auto kCheck = NodeHealth::Source::check;

struct Node {
  std::atomic<bool> healthy{true};
  NodeHealth health{healthy};
};

// Fails the node `threshold` times at `at` and returns the last transition.
HealthTransition fail_run(Node& node, Clock::time_point at) {
  HealthTransition last;
  for (unsigned i = 0; i < kPolicy.unhealthy_threshold; ++i) {
    last = node.health.record_failure(kTraffic, kPolicy, at);
  }
  return last;
}

// Passes checks at `at`, `at`+1 ms, ... until readmitted or `limit` tries; returns the tries.
unsigned succeed_until_back(Node& node, Clock::time_point at, unsigned limit = 10) {
  for (unsigned i = 1; i <= limit; ++i) {
    if (node.health.record_success(kCheck, kPolicy, at + milliseconds{i}).readmitted()) {
      return i;
    }
  }
  return 0;
}

TEST(NodeHealth, EjectsAfterTheThresholdOfConsecutiveFailuresOnly) {
  Node node;
  const auto t0 = Clock::now();
  EXPECT_FALSE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
  EXPECT_FALSE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
  node.health.record_success(kTraffic, kPolicy, t0);  // breaks the run
  EXPECT_FALSE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
  EXPECT_FALSE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
  EXPECT_TRUE(node.healthy);
  const auto third = node.health.record_failure(kTraffic, kPolicy, t0);
  EXPECT_TRUE(third.ejected());
  EXPECT_EQ(third.ejected_for, seconds{30});
  EXPECT_EQ(third.ejections, 1U);
  EXPECT_FALSE(node.healthy);
  // Further failures while out are not new ejections.
  EXPECT_FALSE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
}

TEST(NodeHealth, PassingChecksDoNotWipeOutARunOfFailedRequests) {
  // A node that hangs on generations while its /api/version probe passes between them.
  Node node;
  const auto t0 = Clock::now();
  EXPECT_FALSE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
  node.health.record_success(kCheck, kPolicy, t0);
  EXPECT_FALSE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
  node.health.record_success(kCheck, kPolicy, t0);
  EXPECT_TRUE(node.health.record_failure(kTraffic, kPolicy, t0).ejected());
}

TEST(NodeHealth, PassingChecksDuringTheEjectionTimeDoNotBringTheNodeBack) {
  Node node;
  const auto t0 = Clock::now();
  ASSERT_TRUE(fail_run(node, t0).ejected());
  for (int s = 5; s < 30; s += 5) {
    EXPECT_FALSE(node.health.record_success(kCheck, kPolicy, t0 + seconds{s}).readmitted()) << s;
  }
  EXPECT_FALSE(node.healthy) << "a hung node whose health path answers must stay out";
  EXPECT_EQ(succeed_until_back(node, t0 + seconds{30}), 2U) << "healthy_threshold after the time";
  EXPECT_TRUE(node.healthy);
}

TEST(NodeHealth, AFlappingNodeStaysOutLongerEachTimeUpToTheCap) {
  Node node;
  auto now = Clock::now();
  std::vector<std::int64_t> ejected_for_s;
  for (int round = 0; round < 6; ++round) {
    const auto ejected = fail_run(node, now);
    ASSERT_TRUE(ejected.ejected()) << round;
    ejected_for_s.push_back(std::chrono::duration_cast<seconds>(ejected.ejected_for).count());
    now = node.health.ejected_until();
    ASSERT_GT(succeed_until_back(node, now), 0U);
    now += seconds{1};  // fails again shortly after coming back
  }
  EXPECT_EQ(ejected_for_s, (std::vector<std::int64_t>{30, 60, 120, 240, 300, 300}));
}

TEST(NodeHealth, ANodeThatStaysHealthyLongEnoughStartsAgainFromTheBaseEjection) {
  Node node;
  auto now = Clock::now();
  ASSERT_TRUE(fail_run(node, now).ejected());
  now = node.health.ejected_until();
  ASSERT_GT(succeed_until_back(node, now), 0U);
  ASSERT_EQ(fail_run(node, now + seconds{10}).ejected_for, seconds{60});
  now = node.health.ejected_until();
  ASSERT_GT(succeed_until_back(node, now), 0U);
  EXPECT_EQ(fail_run(node, now + seconds{301}).ejected_for, seconds{30});
  EXPECT_EQ(node.health.ejections(), 1U);
}

}  // namespace
}  // namespace llmgw::server
