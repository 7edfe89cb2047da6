#include "llmgw/routing/session_table.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace llmgw::routing {
namespace {

using std::chrono::milliseconds;
using Clock = SessionTable::Clock;

std::vector<std::shared_ptr<NodeState>> make_nodes(int n) {
  std::vector<std::shared_ptr<NodeState>> nodes;
  for (int i = 0; i < n; ++i) {
    nodes.push_back(std::make_shared<NodeState>("node-" + std::to_string(i)));
  }
  return nodes;
}

// The first `count` keys "<prefix>-<i>" whose ring owner is `owner`.
std::vector<std::string> keys_owned_by(const RoutingTable& table, std::size_t owner,
                                       std::size_t count, const std::string& prefix = "s") {
  std::vector<std::string> keys;
  for (int i = 0; keys.size() < count; ++i) {
    std::string key = prefix + "-" + std::to_string(i);
    if (*table.ring().owner(ring_position(key)) == owner) {
      keys.push_back(std::move(key));
    }
  }
  return keys;
}

class SessionTableTest : public ::testing::Test {
 protected:
  SessionTableTest() : table_(make_nodes(3), 150) {}

  RoutePlan route(const std::string& key, std::int64_t in_flight = 0) {
    return sessions_.plan(table_, ring_position(key), in_flight, policy_, now_);
  }
  std::size_t owner_of(const std::string& key) const {
    return *table_.ring().owner(ring_position(key));
  }
  std::int64_t sessions_on(std::size_t node) const { return table_.node(node).sessions.load(); }

  RoutingTable table_;
  RoutingPolicy policy_{1.25, 3};
  Clock::time_point now_ = Clock::now();
  SessionTable sessions_{{.idle_timeout = milliseconds{60'000}, .max_sessions = 1'000}};
};

TEST_F(SessionTableTest, ASessionWhoseOwnerHasRoomGoesToItsOwnerEveryTurn) {
  for (int turn = 0; turn < 4; ++turn) {
    const auto plan = route("alice");
    ASSERT_FALSE(plan.empty());
    EXPECT_EQ(plan.kind, RouteKind::affinity);
    EXPECT_EQ(plan.first(), owner_of("alice"));
  }
  EXPECT_EQ(sessions_.live_sessions(now_), 1U);
  EXPECT_EQ(sessions_on(owner_of("alice")), 1);
  EXPECT_EQ(sessions_.home_of(ring_position("alice"), now_), table_.node(owner_of("alice")).id);
}

TEST_F(SessionTableTest, SessionsAreSpreadToTheFairShareAndStayWhereTheyWerePlaced) {
  // Nine sessions that all hash to node 0: 3 stay, 3 move to each other node.
  const auto keys = keys_owned_by(table_, 0, 9);
  std::map<std::string, std::size_t> home;
  for (const auto& key : keys) {
    const auto plan = route(key);
    home[key] = plan.first();
    EXPECT_EQ(plan.kind, plan.first() == 0 ? RouteKind::affinity : RouteKind::spill) << key;
  }
  for (std::size_t node = 0; node < 3; ++node) {
    EXPECT_EQ(sessions_on(node), 3) << "node " << node;
  }
  // Later turns go home, even though the owner is idle (no request in flight anywhere).
  for (int turn = 1; turn < 4; ++turn) {
    for (const auto& key : keys) {
      EXPECT_EQ(route(key).first(), home[key]) << key << " moved at turn " << turn;
    }
  }
}

TEST_F(SessionTableTest, TheSessionCapIsTheFairShareRoundedUp) {
  // Four sessions owned by node 0 with nothing else live: cap ceil((S + 1) / 3) = 1, 1, 1, 2.
  const auto keys = keys_owned_by(table_, 0, 4);
  EXPECT_EQ(route(keys[0]).first(), 0U);
  EXPECT_NE(route(keys[1]).first(), 0U);
  EXPECT_NE(route(keys[2]).first(), 0U);
  EXPECT_EQ(route(keys[3]).first(), 0U);  // S = 3: cap 2, node 0 holds 1
  EXPECT_EQ(sessions_on(0), 2);
}

TEST_F(SessionTableTest, ChatSessionsAreSpreadByTheirOwnCountWhateverBatchSessionsAreLive) {
  // A chat owned by node 0 goes there; then two batch sessions (one-shot summaries keyed by their
  // prefix) fill nodes 1 and 2. Counted with them, a second chat owned by node 0 would find node
  // 0 below the fair share (1 of ceil(4 / 3) = 2) and share it with the first chat; counted among
  // chats alone, node 0 is at its share (1 of ceil(2 / 3) = 1) and the chat goes elsewhere.
  const auto chats = keys_owned_by(table_, 0, 2, "chat");
  ASSERT_EQ(route(chats[0]).first(), 0U);
  for (const std::size_t node : {1U, 2U}) {
    const auto summary = keys_owned_by(table_, node, 1, "summary").front();
    ASSERT_EQ(sessions_.plan(table_, ring_position(summary), 0, policy_, now_, {}, false).first(),
              node);
  }
  EXPECT_EQ(table_.node(1).interactive_sessions.load(), 0) << "a batch session is not a chat";
  const auto second = route(chats[1]);
  EXPECT_NE(second.first(), 0U) << "two chats share node 0";
  EXPECT_EQ(second.kind, RouteKind::spill);
  EXPECT_EQ(table_.node(second.first()).interactive_sessions.load(), 1);
  EXPECT_EQ(sessions_on(second.first()), 2);
  // Batch sessions still count every session: one more owned by node 0 (S = 4, share 2) joins
  // the chat there.
  const auto more = keys_owned_by(table_, 0, 1, "summary").front();
  EXPECT_EQ(sessions_.plan(table_, ring_position(more), 0, policy_, now_, {}, false).first(), 0U);
  // Expiry gives the chats' count back.
  now_ += milliseconds{60'000};
  EXPECT_EQ(sessions_.live_sessions(now_), 0U);
  EXPECT_EQ(table_.node(0).interactive_sessions.load(), 0);
}

TEST(SessionTablePlacement, WithTheCatalogOnEveryHolderIsTriedNotOnlyTheFirstCandidates) {
  // The catalog gives explicit masks (holders and preferred: every node), never all(). Four
  // sessions on four nodes must land one per node whatever their owners, as without a catalog;
  // trying only the plan's max_attempts (3) candidates left the fourth node out, and 57 of 200
  // key sets put two sessions on one node.
  for (int set = 1; set <= 50; ++set) {
    RoutingTable table(make_nodes(4), 150);
    SessionTable sessions({});
    NodeMask holders(4);
    NodeMask preferred(4);
    for (std::size_t i = 0; i < 4; ++i) {
      holders.add(i);
      preferred.add(i);
    }
    const Eligibility every_node{holders, preferred};
    std::vector<int> placed(4, 0);
    for (int s = 0; s < 4; ++s) {
      const auto key = "set-" + std::to_string(set) + "-session-" + std::to_string(s);
      const auto plan =
          sessions.plan(table, ring_position(key), s, {1.25, 3}, Clock::now(), every_node);
      ASSERT_FALSE(plan.empty());
      ++table.node(plan.first()).in_flight;  // its first turn runs
      ++placed[plan.first()];
    }
    EXPECT_EQ(placed, (std::vector<int>{1, 1, 1, 1})) << "key set " << set;
  }
}

TEST_F(SessionTableTest, APlacementEndsAfterTheIdleTimeoutAndTheSessionReturnsToItsOwner) {
  const auto keys = keys_owned_by(table_, 0, 2);
  ASSERT_EQ(route(keys[0]).first(), 0U);
  const auto spilled = route(keys[1]);
  ASSERT_NE(spilled.first(), 0U);
  ASSERT_EQ(spilled.kind, RouteKind::spill);

  now_ += milliseconds{30'000};
  EXPECT_EQ(route(keys[1]).first(), spilled.first()) << "still live: stays";
  now_ += milliseconds{59'000};  // keys[0] idle for 89 s, keys[1] for 59 s
  EXPECT_EQ(sessions_.live_sessions(now_), 1U);
  EXPECT_EQ(sessions_on(0), 0) << "the expired placement gave its count back";
  now_ += milliseconds{1'000};
  const auto placed_again = route(keys[1]);
  EXPECT_EQ(placed_again.first(), 0U);
  EXPECT_EQ(placed_again.kind, RouteKind::affinity);
}

TEST_F(SessionTableTest, AHomeAtTheRequestCapSpillsThatRequestOnly) {
  const auto key = keys_owned_by(table_, 1, 1).front();
  ASSERT_EQ(route(key).first(), 1U);
  // T = 8 in flight, cap ceil(1.25 × 9 / 3) = 4: the home has 4.
  table_.node(1).in_flight = 4;
  table_.node(2).in_flight = 2;
  table_.node(0).in_flight = 2;
  const auto busy = route(key, 8);
  EXPECT_EQ(busy.kind, RouteKind::spill);
  EXPECT_NE(busy.first(), 1U);
  table_.node(1).in_flight = 0;
  const auto next = route(key, 4);
  EXPECT_EQ(next.first(), 1U) << "the home did not change";
  EXPECT_EQ(next.kind, RouteKind::affinity);
  EXPECT_EQ(sessions_on(1), 1);
}

TEST_F(SessionTableTest, AHomeMayAlwaysServeOneRequestPerSessionPlacedOnIt) {
  // Three sessions placed on node 0 (with three on each other node to make room for them).
  const auto keys = keys_owned_by(table_, 0, 9);
  std::vector<std::string> on_zero;
  for (const auto& key : keys) {
    if (route(key).first() == 0U) {
      on_zero.push_back(key);
    }
  }
  ASSERT_EQ(on_zero.size(), 3U);
  // Two of them in flight and nothing else: T = 2, request cap ceil(1.25 × 3 / 3) = 2, so node 0
  // is "full" by the request rule, but it holds three sessions: the third still goes home.
  table_.node(0).in_flight = 2;
  const auto third = route(on_zero[2], 2);
  EXPECT_EQ(third.first(), 0U);
  EXPECT_EQ(third.kind, RouteKind::affinity);
  // A fourth concurrent request from the same sessions is beyond both: it spills.
  table_.node(0).in_flight = 3;
  EXPECT_NE(route(on_zero[0], 3).first(), 0U);
}

TEST_F(SessionTableTest, AnUnhealthyHomeMovesTheSessionAndFailoverReturnsToTheRecoveredOwner) {
  const auto key = keys_owned_by(table_, 2, 1).front();
  ASSERT_EQ(route(key).first(), 2U);
  table_.node(2).healthy = false;
  const auto moved = route(key);
  EXPECT_EQ(moved.kind, RouteKind::failover);
  EXPECT_NE(moved.first(), 2U);
  EXPECT_EQ(route(key).first(), moved.first()) << "failover is sticky";
  EXPECT_EQ(sessions_on(2), 0);
  table_.node(2).healthy = true;
  const auto back = route(key);
  EXPECT_EQ(back.first(), 2U);
  EXPECT_EQ(back.kind, RouteKind::affinity);
}

// The gateway holds a returning session on its failover node until the owner is warmed
// (server/preheat.hpp): the gate is asked with the owner, and the session returns when it agrees.
TEST_F(SessionTableTest, AFailoverSessionReturnsOnlyWhenTheReturnGateAgrees) {
  const auto key = keys_owned_by(table_, 2, 1).front();
  ASSERT_EQ(route(key).first(), 2U);
  bool warm = false;
  std::vector<std::string> asked;
  sessions_.set_return_gate([&](std::uint64_t position, const NodeState& owner) {
    EXPECT_EQ(position, ring_position(key));
    asked.push_back(owner.id);
    return warm;
  });
  table_.node(2).healthy = false;
  const auto moved = route(key);
  ASSERT_EQ(moved.kind, RouteKind::failover);
  EXPECT_TRUE(asked.empty()) << "asked while the owner was down";
  table_.node(2).healthy = true;
  const auto held = route(key);
  EXPECT_EQ(held.first(), moved.first());
  EXPECT_EQ(held.kind, RouteKind::failover);
  warm = true;
  const auto back = route(key);
  EXPECT_EQ(back.first(), 2U);
  EXPECT_EQ(back.kind, RouteKind::affinity);
  EXPECT_EQ(asked, (std::vector<std::string>{table_.node(2).id, table_.node(2).id}));
}

TEST_F(SessionTableTest, ASessionWhoseHomeLeftTheTableIsPlacedAgainOnTheNewRing) {
  const auto key = keys_owned_by(table_, 0, 1).front();
  ASSERT_EQ(route(key).first(), 0U);
  const auto removed = table_.nodes()[0];
  RoutingTable smaller({table_.nodes()[1], table_.nodes()[2]}, 150);
  const auto plan = sessions_.plan(smaller, ring_position(key), 0, policy_, now_);
  ASSERT_FALSE(plan.empty());
  EXPECT_EQ(plan.first(), *smaller.ring().owner(ring_position(key)));
  EXPECT_EQ(removed->sessions.load(), 0);
  EXPECT_EQ(sessions_.home_of(ring_position(key), now_), smaller.node(plan.first()).id);
}

TEST_F(SessionTableTest, BeyondMaxSessionsTheLeastRecentlyUsedPlacementIsForgotten) {
  SessionTable small({.idle_timeout = milliseconds{60'000}, .max_sessions = 2});
  const auto plan = [&](const std::string& key) {
    return small.plan(table_, ring_position(key), 0, policy_, now_);
  };
  plan("a");
  now_ += milliseconds{1};
  plan("b");
  now_ += milliseconds{1};
  plan("a");  // b is now the least recently used
  now_ += milliseconds{1};
  plan("c");
  EXPECT_EQ(small.live_sessions(now_), 2U);
  EXPECT_FALSE(small.home_of(ring_position("a"), now_).empty());
  EXPECT_TRUE(small.home_of(ring_position("b"), now_).empty());
  EXPECT_FALSE(small.home_of(ring_position("c"), now_).empty());
}

TEST_F(SessionTableTest, DestroyingTheTableGivesTheNodesTheirCountsBack) {
  {
    SessionTable scoped({.idle_timeout = milliseconds{60'000}, .max_sessions = 100});
    for (int i = 0; i < 6; ++i) {
      const std::string key = "k-" + std::to_string(i);
      scoped.plan(table_, ring_position(key), 0, policy_, now_);
    }
    EXPECT_EQ(sessions_on(0) + sessions_on(1) + sessions_on(2), 6);
  }
  EXPECT_EQ(sessions_on(0) + sessions_on(1) + sessions_on(2), 0);
}

TEST_F(SessionTableTest, NewOptionsKeepThePlacementsAndApplyTheirLimits) {
  const auto keys = keys_owned_by(table_, 0, 2);
  ASSERT_EQ(route(keys[0]).first(), 0U);
  const auto spilled = route(keys[1]);
  ASSERT_NE(spilled.first(), 0U);

  sessions_.set_options({.idle_timeout = milliseconds{10'000}, .max_sessions = 1'000});
  EXPECT_EQ(sessions_.home_of(ring_position(keys[1]), now_), table_.node(spilled.first()).id)
      << "a reload keeps where sessions are";
  now_ += milliseconds{10'000};
  EXPECT_EQ(sessions_.live_sessions(now_), 0U) << "the shorter idle timeout applies at once";
}

TEST_F(SessionTableTest, ClearForgetsEveryPlacementAndGivesTheCountsBack) {
  for (int i = 0; i < 6; ++i) {
    route("k-" + std::to_string(i));
  }
  ASSERT_EQ(sessions_on(0) + sessions_on(1) + sessions_on(2), 6);
  sessions_.clear();
  EXPECT_EQ(sessions_.live_sessions(now_), 0U);
  EXPECT_EQ(sessions_on(0) + sessions_on(1) + sessions_on(2), 0);
}

TEST(SessionTableWeights, AHeavierNodeTakesItsShareOfSessions) {
  std::vector<std::shared_ptr<NodeState>> nodes{std::make_shared<NodeState>("big", 2.0),
                                                std::make_shared<NodeState>("small", 1.0)};
  RoutingTable table(nodes, 150);
  SessionTable sessions({});
  const auto now = Clock::now();
  for (int i = 0; i < 30; ++i) {
    const std::string key = "w-" + std::to_string(i);
    sessions.plan(table, ring_position(key), 0, {1.25, 3}, now);
  }
  EXPECT_EQ(nodes[0]->sessions.load(), 20);
  EXPECT_EQ(nodes[1]->sessions.load(), 10);
}

// Shared placements (placement_store.hpp): the table as a replica's cache of the store.

TEST_F(SessionTableTest, APlacementRequestListsTheOwnerFirstThenEveryNodeClockwise) {
  const std::string key = "shared-session";
  const auto order = [&] {
    std::vector<std::size_t> clockwise;
    table_.ring().walk_clockwise(ring_position(key), [&](std::size_t index) {
      if (std::find(clockwise.begin(), clockwise.end(), index) == clockwise.end()) {
        clockwise.push_back(index);
      }
      return true;
    });
    return clockwise;
  }();
  table_.node(order[2]).healthy.store(false);
  const auto request = sessions_.placement_request(table_, ring_position(key), 0, policy_);
  EXPECT_EQ(request.key_position, ring_position(key));
  EXPECT_EQ(request.owner, table_.node(order[0]).id);
  EXPECT_TRUE(request.owner_healthy);
  EXPECT_DOUBLE_EQ(request.healthy_weight, 2.0);
  ASSERT_EQ(request.nodes.size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(request.nodes[i].id, table_.node(order[i]).id) << i;
  }
  EXPECT_TRUE(request.nodes[0].fits);
  EXPECT_TRUE(request.nodes[1].keep);
  EXPECT_FALSE(request.nodes[2].keep) << "unhealthy: a placement there must move";
  EXPECT_FALSE(request.nodes[2].fits);
  EXPECT_EQ(request.idle, milliseconds{60'000});
}

TEST_F(SessionTableTest, AnAdoptedPlacementLeadsTheNextTurnsFromTheCache) {
  const std::string key = keys_owned_by(table_, 0, 1)[0];
  const auto position = ring_position(key);
  EXPECT_FALSE(sessions_.cached_plan(table_, position, 0, policy_, now_)) << "nothing cached yet";
  const auto placed = sessions_.adopt(table_, position, {"node-2", false}, 0, policy_, now_);
  EXPECT_EQ(placed.first(), 2U);
  EXPECT_EQ(placed.kind, RouteKind::spill);
  EXPECT_EQ(sessions_on(2), 1);

  const auto cached = sessions_.cached_plan(table_, position, 0, policy_, now_);
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->plan.first(), 2U);
  EXPECT_EQ(cached->placement, (Placement{"node-2", false}));

  // The store holds the same placement: kept. Another one: forgotten, the store is asked again.
  sessions_.forget_unless(position, {"node-2", false});
  EXPECT_TRUE(sessions_.cached_plan(table_, position, 0, policy_, now_));
  sessions_.forget_unless(position, {"node-1", false});
  EXPECT_FALSE(sessions_.cached_plan(table_, position, 0, policy_, now_));
  EXPECT_EQ(sessions_on(2), 0);
}

TEST_F(SessionTableTest, ACachedPlacementOnANodeThatTurnedUnhealthyIsNotUsed) {
  const auto position = ring_position("cached-then-down");
  sessions_.adopt(table_, position, {"node-1", false}, 0, policy_, now_);
  table_.node(1).healthy.store(false);
  EXPECT_FALSE(sessions_.cached_plan(table_, position, 0, policy_, now_));
  EXPECT_TRUE(sessions_.placements(now_).empty());
}

TEST_F(SessionTableTest, APlacementOnANodeNotInTheTableGivesThePlainPlan) {
  const std::string key = keys_owned_by(table_, 1, 1)[0];
  const auto plan = sessions_.adopt(table_, ring_position(key), {"gone", false}, 0, policy_, now_);
  EXPECT_EQ(plan.first(), 1U);
  EXPECT_TRUE(sessions_.placements(now_).empty());
}

}  // namespace
}  // namespace llmgw::routing
