#include "llmgw/routing/router.hpp"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "routing_fixtures.hpp"

namespace llmgw::routing {
namespace {

using fixtures::make_table;

std::int64_t total(const RoutingTable& table) {
  std::int64_t sum = 0;
  for (const auto& node : table.nodes()) {
    sum += node->in_flight.load();
  }
  return sum;
}

TEST(Router, KeyedRequestGoesToTheRingOwner) {
  const auto table = make_table(3);
  const auto position = ring_position("session-1");
  const auto plan = plan_keyed(table, position, 0, {});
  ASSERT_FALSE(plan.empty());
  EXPECT_EQ(plan.kind, RouteKind::affinity);
  EXPECT_EQ(plan.first(), *table.ring().owner(position));
  // Retries follow the clockwise order.
  const auto order = table.ring().clockwise_members(position);
  ASSERT_EQ(plan.count, 3U);
  for (std::size_t i = 0; i < plan.count; ++i) {
    EXPECT_EQ(plan.candidates[i], order[i]);
  }
}

TEST(Router, UnhealthyOwnerFailsOverToNextClockwiseAndReturns) {
  const auto table = make_table(4);
  const auto position = ring_position("sticky");
  const auto order = table.ring().clockwise_members(position);
  table.node(order[0]).healthy = false;
  for (int turn = 0; turn < 3; ++turn) {
    const auto plan = plan_keyed(table, position, 0, {});
    EXPECT_EQ(plan.kind, RouteKind::failover);
    EXPECT_EQ(plan.first(), order[1]) << "every later turn stays on the same failover node";
  }
  table.node(order[0]).healthy = true;
  const auto plan = plan_keyed(table, position, 0, {});
  EXPECT_EQ(plan.kind, RouteKind::affinity);
  EXPECT_EQ(plan.first(), order[0]);
}

TEST(Router, BoundedCapFollowsTheFormula) {
  const auto table = make_table(4);
  // ceil(1.25 × (T + 1) / 4)
  EXPECT_EQ(bounded_load_cap(table, 0, 0, 1.25), 1);   // 0.3125 -> 1
  EXPECT_EQ(bounded_load_cap(table, 0, 7, 1.25), 3);   // 2.5 -> 3
  EXPECT_EQ(bounded_load_cap(table, 0, 15, 1.25), 5);  // exactly 5
  EXPECT_EQ(bounded_load_cap(table, 0, 15, 0.0), 0);   // off
  table.node(3).healthy = false;                       // N counts eligible nodes only
  EXPECT_EQ(bounded_load_cap(table, 0, 11, 1.25), 5);  // 1.25 × 12 / 3 = 5
}

TEST(Router, FullOwnerSpillsClockwiseAndReturnsWhenItHasRoom) {
  const auto table = make_table(3);
  const auto position = ring_position("hot-session");
  const auto order = table.ring().clockwise_members(position);
  // Worked example from the header: owner has 5, the others 2 and 1; T = 8 -> cap 4.
  table.node(order[0]).in_flight = 5;
  table.node(order[1]).in_flight = 2;
  table.node(order[2]).in_flight = 1;
  const RoutingPolicy policy{1.25, 3};
  auto plan = plan_keyed(table, position, total(table), policy);
  EXPECT_EQ(plan.kind, RouteKind::spill);
  EXPECT_EQ(plan.first(), order[1]);
  // The full owner is still a later candidate (retry), not dropped.
  EXPECT_EQ(plan.candidates[plan.count - 1], order[0]);

  // Owner down to 2: T = 5, cap = ceil(1.25 × 6 / 3) = 3, so it has room again.
  table.node(order[0]).in_flight = 2;
  plan = plan_keyed(table, position, total(table), policy);
  EXPECT_EQ(plan.kind, RouteKind::affinity);
  EXPECT_EQ(plan.first(), order[0]);
}

TEST(Router, LeadWithPutsTheChosenNodeFirstAndNamesTheKind) {
  const auto table = make_table(5);
  const auto position = ring_position("warmed");
  const auto order = table.ring().clockwise_members(position);
  // The owner and the next node hold one request each (T = 2, cap ceil(1.25 × 3 / 5) = 1): both
  // are full, so the plan spills to order[2].
  for (const std::size_t busy : {order[0], order[1]}) {
    table.node(busy).in_flight = 1;
  }
  const RoutingPolicy policy{1.25, 3};
  const auto spilled = plan_keyed(table, position, total(table), policy);
  ASSERT_EQ(spilled.count, 3U);
  ASSERT_EQ(spilled.first(), order[2]);

  // A candidate: moved to the front, the others keep their order.
  auto plan = lead_with(table, position, spilled, spilled.candidates[1], policy);
  EXPECT_EQ(plan.kind, RouteKind::spill);
  ASSERT_EQ(plan.count, 3U);
  EXPECT_EQ(plan.first(), spilled.candidates[1]);
  EXPECT_EQ(plan.candidates[1], spilled.candidates[0]);
  EXPECT_EQ(plan.candidates[2], spilled.candidates[2]);

  // Not a candidate (the full owner; the plan has max_attempts): put first, the last dropped.
  plan = lead_with(table, position, spilled, order[0], policy);
  EXPECT_EQ(plan.kind, RouteKind::affinity);
  ASSERT_EQ(plan.count, 3U);
  EXPECT_EQ(plan.first(), order[0]);
  EXPECT_EQ(plan.candidates[1], spilled.candidates[0]);
  EXPECT_EQ(plan.candidates[2], spilled.candidates[1]);

  // Room left: put first, nothing dropped. The owner down: a failover.
  table.node(order[0]).healthy = false;
  const auto one = plan_keyed(table, position, total(table), RoutingPolicy{1.25, 1});
  plan = lead_with(table, position, one, order[3], RoutingPolicy{1.25, 2});
  EXPECT_EQ(plan.kind, RouteKind::failover);
  ASSERT_EQ(plan.count, 2U);
  EXPECT_EQ(plan.first(), order[3]);
  EXPECT_EQ(plan.candidates[1], one.first());
}

TEST(Router, SpillSkipsEveryFullNodeInClockwiseOrder) {
  const auto table = make_table(4);
  const auto position = ring_position("x");
  const auto order = table.ring().clockwise_members(position);
  table.node(order[0]).in_flight = 4;
  table.node(order[1]).in_flight = 4;
  // T = 8, cap = ceil(1.25 × 9 / 4) = 3: the first two are full.
  const auto plan = plan_keyed(table, position, total(table), {1.25, 4});
  EXPECT_EQ(plan.kind, RouteKind::spill);
  EXPECT_EQ(plan.first(), order[2]);
}

TEST(Router, PlainRingIgnoresLoad) {
  const auto table = make_table(3);
  const auto position = ring_position("hot");
  const auto owner = *table.ring().owner(position);
  table.node(owner).in_flight = 100;
  const auto plan = plan_keyed(table, position, 100, {0.0, 3});
  EXPECT_EQ(plan.kind, RouteKind::affinity);
  EXPECT_EQ(plan.first(), owner);
}

TEST(Router, AtLowLoadBoundedEqualsPlainRing) {
  const auto table = make_table(5);
  // One request in flight per node at most: never full at c = 1.25 with 5 nodes (cap >= 2 at T=5).
  for (std::size_t i = 0; i < table.size(); ++i) {
    table.node(i).in_flight = 1;
  }
  for (int s = 0; s < 300; ++s) {
    const auto position = ring_position("low-" + std::to_string(s));
    const auto bounded = plan_keyed(table, position, total(table), {1.25, 3});
    const auto plain = plan_keyed(table, position, total(table), {0.0, 3});
    ASSERT_EQ(bounded.first(), plain.first());
    EXPECT_EQ(bounded.kind, RouteKind::affinity);
  }
}

TEST(Router, SimulatedLoadNeverExceedsTheCap) {
  // Sessions arrive one by one and stay in flight: with bounded loads no node passes the cap
  // that was in force when it accepted its last request.
  const auto table = make_table(4);
  const RoutingPolicy policy{1.25, 3};
  for (int s = 0; s < 64; ++s) {
    const auto position = ring_position("skewed-" + std::to_string(s % 9));  // few hot keys
    const auto t = total(table);
    const auto plan = plan_keyed(table, position, t, policy);
    const auto cap = bounded_load_cap(table, plan.first(), t, policy.balance_factor);
    EXPECT_LT(table.node(plan.first()).in_flight.load(), cap);
    table.node(plan.first()).in_flight += 1;
  }
  std::int64_t max = 0;
  for (const auto& node : table.nodes()) {
    max = std::max<std::int64_t>(max, node->in_flight.load());
  }
  EXPECT_LE(max, 20);  // ceil(1.25 × 64 / 4)
}

TEST(Router, NoHealthyNodeStillYieldsCandidates) {
  const auto table = make_table(3);
  for (std::size_t i = 0; i < table.size(); ++i) {
    table.node(i).healthy = false;
  }
  const auto plan = plan_keyed(table, ring_position("k"), 0, {});
  EXPECT_EQ(plan.count, 3U);
  EXPECT_EQ(plan.kind, RouteKind::affinity);
  const auto rr = plan_round_robin(table, 5, {});
  EXPECT_EQ(rr.count, 3U);
}

TEST(Router, RoundRobinCyclesOverHealthyNodes) {
  const auto table = make_table(3);
  std::map<std::uint32_t, int> counts;
  for (std::uint64_t ticket = 0; ticket < 30; ++ticket) {
    const auto plan = plan_round_robin(table, ticket, {});
    EXPECT_EQ(plan.kind, RouteKind::round_robin);
    ++counts[plan.first()];
  }
  EXPECT_EQ(counts.size(), 3U);
  for (const auto& [node, count] : counts) {
    EXPECT_EQ(count, 10) << "node " << node;
  }
  table.node(1).healthy = false;
  counts.clear();
  for (std::uint64_t ticket = 0; ticket < 30; ++ticket) {
    ++counts[plan_round_robin(table, ticket, {}).first()];
  }
  EXPECT_EQ(counts.count(1), 0U);
  EXPECT_EQ(counts[0], 15);
  EXPECT_EQ(counts[2], 15);
}

TEST(Router, AttemptsAreBoundedByPolicy) {
  const auto table = make_table(6);
  EXPECT_EQ(plan_keyed(table, 1, 0, {1.25, 2}).count, 2U);
  EXPECT_EQ(plan_round_robin(table, 1, {1.25, 1}).count, 1U);
}

}  // namespace
}  // namespace llmgw::routing
