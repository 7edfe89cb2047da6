// Routing by model (router.hpp's Eligibility): candidates are only the holders, the ring for a
// model is the global ring walked clockwise skipping non-holders, loaded holders come first.

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "llmgw/routing/router.hpp"
#include "llmgw/routing/session_table.hpp"
#include "routing_fixtures.hpp"

namespace llmgw::routing {
namespace {

using fixtures::make_table;

NodeMask mask_of(std::size_t size, std::initializer_list<std::size_t> members) {
  NodeMask mask(size);
  for (const auto member : members) {
    mask.add(member);
  }
  return mask;
}

// The first member of `order` that is in `mask`.
std::size_t first_in(const std::vector<std::size_t>& order, const NodeMask& mask) {
  for (const auto index : order) {
    if (mask.contains(index)) {
      return index;
    }
  }
  return order.size();
}

TEST(NodeMask, DefaultHoldsEveryNodeAndSizedStartsEmpty) {
  const NodeMask all;
  EXPECT_TRUE(all.all());
  EXPECT_TRUE(all.contains(0));
  EXPECT_TRUE(all.contains(1000));
  NodeMask some(200);
  EXPECT_TRUE(some.empty());
  some.add(3);
  some.add(64);
  some.add(150);
  EXPECT_FALSE(some.empty());
  EXPECT_TRUE(some.contains(3));
  EXPECT_TRUE(some.contains(64));
  EXPECT_TRUE(some.contains(150));
  EXPECT_FALSE(some.contains(4));
  EXPECT_FALSE(some.contains(65));
  EXPECT_FALSE(some.contains(199));
}

TEST(RouterByModel, KeyedPlanHoldsOnlyHoldersInClockwiseOrder) {
  const auto table = make_table(5);
  const Eligibility holders{mask_of(5, {1, 3, 4}), {}};
  for (int k = 0; k < 200; ++k) {
    const auto position = ring_position("key-" + std::to_string(k));
    const auto plan = plan_keyed(table, position, 0, {0.0, 8}, holders);
    ASSERT_EQ(plan.count, 3U);
    const auto order = table.ring().clockwise_members(position);
    std::vector<std::size_t> expected;
    for (const auto index : order) {
      if (holders.holders.contains(index)) {
        expected.push_back(index);
      }
    }
    for (std::size_t i = 0; i < plan.count; ++i) {
      EXPECT_EQ(plan.candidates[i], expected[i]);
    }
    EXPECT_EQ(plan.kind, RouteKind::affinity);
  }
}

TEST(RouterByModel, AddingAModelToANodeMovesOnlyTheKeysItNowOwns) {
  const auto table = make_table(4);
  const Eligibility before{mask_of(4, {0, 1}), {}};
  const Eligibility after{mask_of(4, {0, 1, 2}), {}};
  int moved = 0;
  for (int k = 0; k < 2000; ++k) {
    const auto position = ring_position("s" + std::to_string(k));
    const auto a = plan_keyed(table, position, 0, {0.0, 3}, before).first();
    const auto b = plan_keyed(table, position, 0, {0.0, 3}, after).first();
    if (a != b) {
      ++moved;
      EXPECT_EQ(b, 2U) << "a key moves only to the node that gained the model";
    }
  }
  EXPECT_GT(moved, 0);
}

TEST(RouterByModel, LoadedHolderComesFirstThenTheOthers) {
  // The header's worked example: m on disk on a, b, c; loaded on b only.
  const auto table = make_table(4);
  const auto position = ring_position("conversation");
  const auto order = table.ring().clockwise_members(position);
  const std::size_t a = order[0];
  const std::size_t c = order[1];
  const std::size_t b = order[2];
  const Eligibility m{mask_of(4, {a, b, c}), mask_of(4, {b})};
  const auto plan = plan_keyed(table, position, 0, {0.0, 3}, m);
  ASSERT_EQ(plan.count, 3U);
  EXPECT_EQ(plan.candidates[0], b);
  EXPECT_EQ(plan.candidates[1], a);
  EXPECT_EQ(plan.candidates[2], c);
  EXPECT_EQ(plan.kind, RouteKind::affinity);
  EXPECT_EQ(*owner_of(table, position, m), b);

  // b full under bounded loads: a (room, must load) before b (full).
  table.node(b).in_flight = 10;
  const auto spilled = plan_keyed(table, position, 10, {1.25, 3}, m);
  EXPECT_EQ(spilled.first(), a);
  EXPECT_EQ(spilled.kind, RouteKind::spill);
  table.node(b).in_flight = 0;

  // b down: the loaded tier is empty, the owner is the first holder clockwise.
  table.node(b).healthy = false;
  const auto failed = plan_keyed(table, position, 0, {0.0, 3}, m);
  EXPECT_EQ(failed.first(), a);
  EXPECT_EQ(failed.kind, RouteKind::affinity);
  table.node(b).healthy = true;

  // a loads m too: the key goes to a, its first loaded holder clockwise.
  const Eligibility both{mask_of(4, {a, b, c}), mask_of(4, {a, b})};
  EXPECT_EQ(plan_keyed(table, position, 0, {0.0, 3}, both).first(), a);
}

TEST(RouterByModel, NoHolderGivesAnEmptyPlan) {
  const auto table = make_table(3);
  const Eligibility none{NodeMask(3), {}};
  EXPECT_TRUE(plan_keyed(table, ring_position("x"), 0, {}, none).empty());
  EXPECT_TRUE(plan_round_robin(table, 7, {}, none).empty());
  EXPECT_FALSE(owner_of(table, ring_position("x"), none).has_value());
}

TEST(RouterByModel, UnhealthyHoldersAreTriedWhenNoHolderIsHealthy) {
  const auto table = make_table(4);
  const Eligibility m{mask_of(4, {1, 2}), {}};
  table.node(1).healthy = false;
  table.node(2).healthy = false;
  const auto plan = plan_keyed(table, ring_position("k"), 0, {}, m);
  ASSERT_EQ(plan.count, 2U);
  for (std::size_t i = 0; i < plan.count; ++i) {
    EXPECT_TRUE(plan.candidates[i] == 1 || plan.candidates[i] == 2);
  }
  const auto rr = plan_round_robin(table, 0, {}, m);
  ASSERT_EQ(rr.count, 2U);
}

TEST(RouterByModel, RoundRobinCyclesOverLoadedHoldersFirst) {
  const auto table = make_table(5);
  const Eligibility m{mask_of(5, {0, 2, 4}), mask_of(5, {2, 4})};
  std::map<std::uint32_t, int> firsts;
  for (std::uint64_t ticket = 0; ticket < 10; ++ticket) {
    const auto plan = plan_round_robin(table, ticket, {0.0, 3}, m);
    ASSERT_EQ(plan.count, 3U);
    ++firsts[plan.first()];
    EXPECT_EQ(plan.candidates[2], 0U) << "the holder that must load comes last";
  }
  EXPECT_EQ(firsts.size(), 2U);
  EXPECT_EQ(firsts[2], 5);
  EXPECT_EQ(firsts[4], 5);
  // Without a loaded holder: every holder in turn.
  const Eligibility cold{mask_of(5, {0, 2, 4}), NodeMask(5)};
  std::map<std::uint32_t, int> cold_firsts;
  for (std::uint64_t ticket = 0; ticket < 9; ++ticket) {
    ++cold_firsts[plan_round_robin(table, ticket, {0.0, 3}, cold).first()];
  }
  EXPECT_EQ(cold_firsts.size(), 3U);
}

TEST(RouterByModel, BoundedCapCountsOnlyTheHoldersWeight) {
  const auto table = make_table(4);
  // ceil(1.25 × 9 × 1/2) = 6 over two holders; ceil(1.25 × 9 / 4) = 3 over all four.
  EXPECT_EQ(bounded_load_cap(table, 0, 8, 1.25, mask_of(4, {0, 1})), 6);
  EXPECT_EQ(bounded_load_cap(table, 0, 8, 1.25), 3);
}

TEST(SessionTableByModel, PlacementFollowsTheModelsHolders) {
  const auto table = make_table(4);
  SessionTable sessions({});
  const auto now = SessionTable::Clock::now();
  const RoutingPolicy policy{1.25, 3};
  const auto position = ring_position("chat-1");
  const auto order = table.ring().clockwise_members(position);
  const Eligibility m{mask_of(4, {order[1], order[2]}), {}};
  const auto plan = sessions.plan(table, position, 0, policy, now, m);
  EXPECT_EQ(plan.first(), first_in(order, m.holders));
  EXPECT_EQ(sessions.home_of(position, now), table.node(order[1]).id);
  // The home loses the model: the session moves to the next holder.
  const Eligibility lost{mask_of(4, {order[2]}), {}};
  EXPECT_EQ(sessions.plan(table, position, 0, policy, now, lost).first(), order[2]);
  EXPECT_EQ(sessions.home_of(position, now), table.node(order[2]).id);
  // A request with no model filter keeps the home.
  EXPECT_EQ(sessions.plan(table, position, 0, policy, now).first(), order[2]);
}

TEST(SessionTableByModel, NewSessionsStayOnTheLoadedHoldersBeyondTheirFairShare) {
  const auto table = make_table(4);
  SessionTable sessions({});
  const auto now = SessionTable::Clock::now();
  const RoutingPolicy policy{1.25, 3};
  // The model is on disk on nodes 0 and 1, loaded (or being served) on 0 only; node 1 serves
  // another model. Six new sessions: a fair share of two holders would be three each.
  const Eligibility m{mask_of(4, {0, 1}), mask_of(4, {0})};
  for (int i = 0; i < 6; ++i) {
    const auto position = ring_position("model-session-" + std::to_string(i));
    EXPECT_EQ(sessions.plan(table, position, 0, policy, now, m).first(), 0U) << i;
    EXPECT_EQ(sessions.home_of(position, now), table.node(0).id) << i;
  }
  // Without a preferred tier (nothing loaded anywhere) the fair share spreads them again.
  SessionTable fresh({});
  const Eligibility idle{mask_of(4, {0, 1}), {}};
  std::map<std::string, int> homes;
  for (int i = 0; i < 6; ++i) {
    const auto position = ring_position("model-session-" + std::to_string(i));
    fresh.plan(table, position, 0, policy, now, idle);
    ++homes[fresh.home_of(position, now)];
  }
  EXPECT_EQ(homes.size(), 2U);
}

}  // namespace
}  // namespace llmgw::routing
