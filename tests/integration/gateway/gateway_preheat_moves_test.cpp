// Cache preheating beyond one gateway's planned moves (docs/DESIGN.md §2.4): with placements
// shared through a real redis-server, exactly one of two replicas preheats each moved session, on
// the node the store placed it on; warm on arrival preheats an ejected node's sessions on their
// failover nodes before their next turns, when the cost model says it pays, and not otherwise;
// under balance_by: requests a moved session's preheat and its next turn go to the same node
// whatever the in-flight load at the change or at the turn.

#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/preheat_fleet.hpp"
#include "support/redis_server.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

// routing.placement_store (DESIGN §2.4): two replicas, both of which kept a session's prompt
// (its turns went through both), see the same drain. The store places each moved session once
// (the same node for both) and exactly one replica preheats it there, before its next turn.
TEST(GatewayPreheatMoves, WithSharedPlacementsOneReplicaPreheatsEachMovedSession) {
  if (!RedisServer::installed()) {
    GTEST_SKIP() << "redis-server is not installed (scripts/install-deps installs it)";
  }
  RedisServer redis;
  PreheatFleet fleet(recording_nodes(3), [&redis](config::GatewayConfig& config) {
    config.routing.placement_store = redis.url();
    config.routing.placement_store_timeout = std::chrono::milliseconds{500};
  });
  server::Gateway second(fleet.config);
  second.start();
  const std::vector<std::string> urls{fleet.url(""),
                                      "http://127.0.0.1:" + std::to_string(second.port())};
  const auto replica_metric = [&](std::size_t replica, std::string_view name,
                                  const std::vector<std::string>& labels) {
    return metric_sum(get_url(fleet.client, urls[replica] + "/metrics").body, name, labels);
  };
  const auto both = [&](std::string_view name, const std::vector<std::string>& labels) {
    return replica_metric(0, name, labels) + replica_metric(1, name, labels);
  };
  ASSERT_TRUE(wait_until([&] { return both("llmgw_placement_store_up", {}) == 2; }));
  const auto turn_through = [&](std::size_t replica, const std::string& session,
                                const std::string& text) {
    json messages = json::array({{{"role", "user"}, {"content", "hello from " + session}}});
    if (!text.empty()) {
      messages.push_back({{"role", "assistant"}, {"content", "ok"}});
      messages.push_back({{"role", "user"}, {"content", text}});
    }
    const json body{{"model", "llama3.2"}, {"messages", messages}, {"stream", false}};
    return post_json(fleet.client, urls[replica] + "/api/chat", body.dump(), session);
  };
  std::vector<std::string> moved;
  for (int i = 0; i < 18; ++i) {
    const std::string session = "shared-" + std::to_string(i);
    const auto first = turn_through(0, session, "");
    const auto second_turn = turn_through(1, session, "again");
    ASSERT_EQ(first.status, 200) << first.body;
    ASSERT_EQ(second_turn.node, first.node) << "the replicas disagree on " << session;
    if (first.node == "node-a") {
      moved.push_back(session);
    }
  }
  ASSERT_FALSE(moved.empty());

  for (const auto& url : urls) {
    net::ClientRequest drain;
    drain.method = "PATCH";
    drain.url = url + "/admin/nodes/node-a";
    drain.headers = {{"Authorization", "Bearer " + std::string{kPreheatToken}},
                     {"Content-Type", "application/json"}};
    drain.body = R"({"draining": true})";
    ASSERT_EQ(fleet.client.send(drain).status, 200);
  }
  const auto n = static_cast<double>(moved.size());
  ASSERT_TRUE(wait_until([&] {
    return both("llmgw_preheats_total", {"outcome=\"completed\""}) == n &&
           both("llmgw_preheats_skipped_total", {"reason=\"other_replica\""}) == n;
  })) << moved.size()
      << " moved; completed " << both("llmgw_preheats_total", {"outcome=\"completed\""})
      << ", other_replica " << both("llmgw_preheats_skipped_total", {"reason=\"other_replica\""});

  for (const auto& session : moved) {
    const auto next = turn_through(1, session, "after the drain");
    ASSERT_EQ(next.status, 200) << next.body;
    EXPECT_NE(next.node, "node-a");
    EXPECT_EQ(turn_through(0, session, "once more").node, next.node) << session;
    std::vector<std::string> order;  // every request of the session after its two first turns
    for (std::size_t i = 0; i < fleet.nodes.size(); ++i) {
      for (const auto& seen : fleet.nodes[i]->seen()) {
        if (first_message(seen) == "hello from " + session && (is_preheat(seen) || i > 0)) {
          order.push_back(std::string{static_cast<char>('a' + i)} + ":" +
                          (is_preheat(seen) ? "preheat" : "turn"));
        }
      }
    }
    const std::string at = next.node.substr(5);
    EXPECT_EQ(order, (std::vector<std::string>{at + ":preheat", at + ":turn", at + ":turn"}))
        << session;
  }
  EXPECT_EQ(both("llmgw_preheats_total", {"outcome=\"sent\""}), n) << "a double preheat";
}

// Health that sees a node down or back within a probe (100 ms).
void quick_health(config::GatewayConfig& config) {
  config.health.interval = std::chrono::milliseconds{100};
  config.health.unhealthy_threshold = 1;
  config.health.healthy_threshold = 1;
}

// The requests of `session` on each node after its first turn: "b:preheat", "b:turn", ...
std::vector<std::string> requests_after_first(PreheatFleet& fleet, const std::string& session) {
  std::vector<std::string> order;
  bool first = true;
  for (std::size_t i = 0; i < fleet.nodes.size(); ++i) {
    for (const auto& seen : fleet.nodes[i]->seen()) {
      if (first_message(seen) != "hello from " + session) {
        continue;
      }
      if (first && !is_preheat(seen) && i == 0) {
        first = false;  // its first turn, on node-a
        continue;
      }
      order.push_back(std::string{static_cast<char>('a' + i)} + ":" +
                      (is_preheat(seen) ? "preheat" : "turn"));
    }
  }
  return order;
}

// Warm on arrival: node-a is ejected; each of its sessions is preheated on its failover node at
// once, so its next turn (the failover turn) finds its history there.
TEST(GatewayPreheatMoves, WarmOnArrivalPreheatsTheFailoverNodeWhenTheOwnerIsEjected) {
  PreheatFleet fleet(recording_nodes(3), [](config::GatewayConfig& config) {
    quick_health(config);
    config.preheat.warm_on_arrival = true;
    config.preheat.arrival_min_prefill = std::chrono::milliseconds{0};
  });
  const auto moved = sessions_on(fleet, "node-a", 18, "arrival-");
  ASSERT_FALSE(moved.empty());
  // Every node has answered a turn: each one's prefill rate is known to the cost model.
  fleet.nodes[0]->set_down(true);
  ASSERT_TRUE(node_health_is(fleet, "node-a", false));
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", moved.size()))
      << moved.size() << " on node-a; sent "
      << fleet.metric("llmgw_preheats_total", {"outcome=\"sent\""}) << ", skipped "
      << fleet.metric("llmgw_preheats_skipped_total");
  for (const auto& session : moved) {
    const auto away = fleet.turn(session, "while a is down");
    ASSERT_EQ(away.status, 200) << away.body;
    EXPECT_NE(away.node, "node-a");
    EXPECT_EQ(away.response.header("X-Gateway-Preheated").value_or(""), "true") << session;
    const std::string at = away.node.substr(5);
    EXPECT_EQ(requests_after_first(fleet, session),
              (std::vector<std::string>{at + ":preheat", at + ":turn"}))
        << session;
  }
}

// Off by default; on, a history whose cold prefill on the failover node is estimated below
// preheat.arrival_min_prefill_ms (here: ~40 tokens at the nodes' 20 µs per token) is not worth it.
TEST(GatewayPreheatMoves, WarmOnArrivalSkipsWhatTheCostModelSaysDoesNotPay) {
  for (const bool on : {false, true}) {
    PreheatFleet fleet(recording_nodes(3), [on](config::GatewayConfig& config) {
      quick_health(config);
      config.preheat.warm_on_arrival = on;  // arrival_min_prefill: the default 100 ms
    });
    const auto moved = sessions_on(fleet, "node-a", 18, "cheap-");
    ASSERT_FALSE(moved.empty());
    fleet.nodes[0]->set_down(true);
    ASSERT_TRUE(node_health_is(fleet, "node-a", false));
    if (on) {
      ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_skipped_total", "reason=\"not_worth\"",
                                       moved.size()));
    }
    for (const auto& session : moved) {
      const auto away = fleet.turn(session, "while a is down");
      ASSERT_EQ(away.status, 200) << away.body;
      EXPECT_FALSE(away.response.header("X-Gateway-Preheated").has_value());
      EXPECT_EQ(requests_after_first(fleet, session),
                (std::vector<std::string>{away.node.substr(5) + ":turn"}))
          << session << (on ? " (on)" : " (off)");
    }
    EXPECT_EQ(fleet.metric("llmgw_preheats_total"), 0.0);
  }
}

// The ring of node-a, node-b, node-c and node-d (joined).
routing::HashRing ring_with_node_d(const PreheatFleet& fleet) {
  const std::vector<routing::RingMember> members{
      {"node-a", 1.0}, {"node-b", 1.0}, {"node-c", 1.0}, {"node-d", 1.0}};
  return routing::HashRing(members, fleet.config.routing.virtual_nodes);
}

void balance_requests(config::GatewayConfig& config) {
  config.routing.balance_by = "requests";
}

// balance_by: requests, a node joins while node-a has a request in flight (node-a is then at the
// request cap: 1 in flight of ceil(1.25 × 2 / 4) = 1). The sessions node-d now owns are preheated
// there; node-a's sessions, whose caches are on node-a where their next turns go, get none
// elsewhere however busy node-a is at that moment.
TEST(GatewayPreheatMoves, UnderRequestBalanceAPreheatGoesWhereTheSessionNowLivesNotWhereLoadSends) {
  auto joining = std::make_unique<RecordingOllamaNode>();
  const std::string joining_url = joining->base_url();
  PreheatFleet fleet(recording_nodes(3), balance_requests);
  const auto ring = ring_with_node_d(fleet);
  std::set<std::string> to_new;
  for (int i = 0; i < 24; ++i) {
    const std::string session = "load-" + std::to_string(i);
    ASSERT_EQ(fleet.turn(session).status, 200);
    if (ring.owner(routing::ring_position(session)) == 3) {
      to_new.insert(session);
    }
  }
  ASSERT_FALSE(to_new.empty());
  auto busy = fleet.turn_in_background(session_owned_by(ring, 0, "busy-a-"), "slow");
  ASSERT_TRUE(wait_until([&] {
    const auto health = json::parse(get_url(fleet.client, fleet.url("/health")).body);
    return health["nodes"][0]["admission"]["in_flight"] == 1;
  }));
  ASSERT_EQ(fleet.add_node("node-d", joining_url), 201);
  busy.join();  // (600 ms: every preheat of the change has been sent or skipped by then)
  ASSERT_TRUE(wait_until([&] {
    return fleet.metric("llmgw_preheats_total", {"outcome=\"completed\""}) >=
           static_cast<double>(to_new.size());
  }));
  std::set<std::string> warmed;
  for (const auto& seen : joining->seen()) {
    warmed.insert(first_message(seen).substr(std::string_view{"hello from "}.size()));
  }
  EXPECT_EQ(warmed, to_new);
  for (std::size_t i = 0; i < fleet.nodes.size(); ++i) {
    for (const auto& seen : fleet.nodes[i]->seen()) {
      EXPECT_FALSE(is_preheat(seen))
          << "a preheat of " << first_message(seen) << " on node " << static_cast<char>('a' + i);
    }
  }
  EXPECT_EQ(fleet.metric("llmgw_preheats_total", {"outcome=\"sent\""}),
            static_cast<double>(to_new.size()));
}

// balance_by: requests: a session moved to node-d is preheated there; when its next turn comes,
// another session keeps node-d at the request cap (1 in flight of ceil(1.25 × 2 / 4) = 1). The
// turn still goes to node-d, warm, and says so, rather than spilling to a node where it is cold.
TEST(GatewayPreheatMoves, UnderRequestBalanceATurnLandsOnItsPreheatedNodeWhileOthersKeepItBusy) {
  auto joining = std::make_unique<RecordingOllamaNode>();
  auto* node_d = joining.get();
  const std::string joining_url = joining->base_url();
  PreheatFleet fleet(recording_nodes(3), balance_requests);
  const auto ring = ring_with_node_d(fleet);
  const auto moving = session_owned_by(ring, 3, "moving-");
  ASSERT_EQ(fleet.turn(moving).status, 200);
  ASSERT_EQ(fleet.add_node("node-d", joining_url), 201);
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", 1));

  auto busy = fleet.turn_in_background(session_owned_by(ring, 3, "busy-d-"), "slow");
  ASSERT_TRUE(wait_until([&] { return node_d->seen().size() == 2; }));  // the preheat, the slow
  const auto next = fleet.turn(moving, "next");
  busy.join();
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.node, "node-d");
  EXPECT_EQ(next.response.header("X-Gateway-Preheated").value_or(""), "true");
  // Its mark ends with that turn: the one after routes as any other.
  EXPECT_FALSE(fleet.turn(moving, "after").response.header("X-Gateway-Preheated").has_value());
}

}  // namespace
}  // namespace llmgw::testing
