// Cache preheating (docs/DESIGN.md §2.4): when a node drains, each of its sessions' last prompts
// is sent once to the session's new node before the session's next turn, cut to one token, without
// the client's headers, never to a node without the model, behind every client request; a
// preheat that fails changes nothing for the client; ollama-sim caches what a preheat sent.
// (Shared placements and warm on arrival: gateway_preheat_moves_test.cpp.)

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "llmgw/routing/hash_ring.hpp"
#include "support/gateway_fixture.hpp"
#include "support/preheat_fleet.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

TEST(GatewayPreheat, ADrainedNodesSessionsGetExactlyOnePreheatEachBeforeTheirNextTurn) {
  PreheatFleet fleet(recording_nodes(3));
  const auto moved = sessions_on(fleet, "node-a", 18, "drained-");
  ASSERT_FALSE(moved.empty());

  ASSERT_EQ(fleet.patch("node-a", R"({"draining": true})"), 200);
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", moved.size()))
      << moved.size() << " moved; sent "
      << fleet.metric("llmgw_preheats_total", {"outcome=\"sent\""}) << ", skipped "
      << fleet.metric("llmgw_preheats_skipped_total");

  for (const auto& session : moved) {
    const auto next = fleet.turn(session, "and then?");
    ASSERT_EQ(next.status, 200) << next.body;
    EXPECT_NE(next.node, "node-a");
    EXPECT_EQ(next.response.header("X-Gateway-Preheated").value_or(""), "true") << session;
    // On the new node: one preheat of the last turn's messages, then the turn; nowhere else.
    std::vector<std::string> order;
    for (std::size_t n = 0; n < fleet.nodes.size(); ++n) {
      for (const auto& seen : fleet.nodes[n]->seen()) {
        if (first_message(seen) != "hello from " + session) {
          continue;
        }
        if (is_preheat(seen)) {
          EXPECT_EQ(seen.body["messages"].size(), 1U) << "the preheat is the last prompt";
          EXPECT_FALSE(seen.authorization) << "the client's Authorization was kept";
        }
        if (fleet.nodes[n].get() != fleet.nodes[fleet.index_of(next.node)].get()) {
          EXPECT_FALSE(is_preheat(seen)) << session << ": preheat on another node";
          continue;
        }
        order.push_back(is_preheat(seen) ? "preheat" : "turn");
      }
    }
    EXPECT_EQ(order, (std::vector<std::string>{"preheat", "turn"})) << session;
  }
  // The second turn on the warmed node says nothing more.
  const auto again = fleet.turn(moved.front(), "more");
  EXPECT_FALSE(again.response.header("X-Gateway-Preheated").has_value());
  EXPECT_EQ(fleet.metric("llmgw_preheats_total", {"outcome=\"sent\""}),
            static_cast<double>(moved.size()))
      << "sessions of the other nodes did not move and get none";
  EXPECT_EQ(fleet.metric("llmgw_preheat_prompt_tokens_total"), 100.0 * moved.size());
  const auto health = json::parse(get_url(fleet.client, fleet.url("/health")).body);
  EXPECT_EQ(health["preheat"]["sessions"], 18);
  EXPECT_GT(health["preheat"]["bytes"].get<double>(), 0);
}

TEST(GatewayPreheat, APreheatNeverReachesANodeWithoutTheModel) {
  std::vector<std::unique_ptr<RecordingOllamaNode>> nodes;
  nodes.push_back(std::make_unique<RecordingOllamaNode>());
  nodes.push_back(std::make_unique<RecordingOllamaNode>());
  nodes.push_back(std::make_unique<RecordingOllamaNode>(std::vector<std::string>{"qwen2.5:0.5b"}));
  PreheatFleet fleet(std::move(nodes));
  const auto moved = sessions_on(fleet, "node-a", 16, "model-");
  ASSERT_FALSE(moved.empty());
  ASSERT_EQ(fleet.patch("node-a", R"({"draining": true})"), 200);
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", moved.size()));
  EXPECT_TRUE(fleet.nodes[2]->seen().empty()) << "node-c holds no llama3.2 and got a request";
  for (const auto& session : moved) {
    EXPECT_EQ(fleet.turn(session, "next").node, "node-b");
  }
}

TEST(GatewayPreheat, APreheatYieldsToClientRequestsAtTheNodesCap) {
  // Plain ring: a keyed request waits for its node (never spills), so node-b's queue is sure.
  PreheatFleet fleet(recording_nodes(2), [](config::GatewayConfig& config) {
    config.routing.balance_factor = 0;
    config.nodes[1].max_in_flight = 2;
  });
  std::vector<routing::RingMember> members{{"node-a", 1.0}, {"node-b", 1.0}};
  const routing::HashRing ring(members, fleet.config.routing.virtual_nodes);
  const auto moving = session_owned_by(ring, 0, "moving-");
  ASSERT_EQ(fleet.turn(moving).node, "node-a");

  const auto node_b_admission = [&] {
    const auto health = json::parse(get_url(fleet.client, fleet.url("/health")).body);
    return health["nodes"][1]["admission"];
  };
  auto slow = fleet.turn_in_background(session_owned_by(ring, 1, "slow-"), "slow one");
  ASSERT_TRUE(wait_until([&] { return node_b_admission()["in_flight"] == 1; }));
  auto slower = fleet.turn_in_background(session_owned_by(ring, 1, "slower-"), "slow two");
  ASSERT_TRUE(wait_until([&] { return node_b_admission()["in_flight"] == 2; }));
  auto queued = fleet.turn_in_background(session_owned_by(ring, 1, "queued-"), "queued one");
  ASSERT_TRUE(wait_until([&] { return node_b_admission()["queued"]["interactive"] == 1; }));
  ASSERT_EQ(fleet.patch("node-a", R"({"draining": true})"), 200);
  slow.join();
  slower.join();
  queued.join();
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", 1));

  std::vector<std::string> order;
  for (const auto& seen : fleet.nodes[1]->seen()) {
    order.push_back(is_preheat(seen) ? "preheat" : first_message(seen));
  }
  // The two requests in flight reach the node in either order (each on its own connection); the
  // client request that waited at the cap must reach it before the preheat queued behind it.
  ASSERT_EQ(order.size(), 4u);
  std::sort(order.begin(), order.begin() + 2);
  EXPECT_EQ(order, (std::vector<std::string>{"slow one", "slow two", "queued one", "preheat"}))
      << "the client request waiting at the cap went after the preheat";
}

TEST(GatewayPreheat, ATurnThatFindsItsPreheatRunningWaitsForItAndLandsWarm) {
  PreheatFleet fleet(recording_nodes(3));
  const auto moved = sessions_on(fleet, "node-a", 12, "running-");
  ASSERT_FALSE(moved.empty());
  const auto& session = moved.front();
  // Its kept prompt ends with "slow": the node takes 600 ms over it, and so over its preheat.
  // Long enough (~50,000 tokens estimated) that a cold prefill at the rate these nodes report
  // (100 tokens in 2 ms) would take longer than waiting for the preheat: the turn waits at most
  // that long.
  ASSERT_EQ(fleet.turn(session, "slow one " + std::string(200'000, 'x')).node, "node-a");

  ASSERT_EQ(fleet.patch("node-a", R"({"draining": true})"), 200);
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"sent\"", moved.size()));
  ASSERT_LT(fleet.metric("llmgw_preheats_total", {"outcome=\"completed\""}),
            static_cast<double>(moved.size()))
      << "the slow preheat ended before the turn could find it running";
  // The next turn comes while its preheat runs: it waits for it, then lands on the warm node,
  // instead of prefilling its history a second time beside the preheat.
  const auto next = fleet.turn(session, "and then?");
  ASSERT_EQ(next.status, 200) << next.body;
  EXPECT_NE(next.node, "node-a");
  EXPECT_EQ(next.response.header("X-Gateway-Preheated").value_or(""), "true");
  std::vector<std::string> order;
  for (const auto& seen : fleet.nodes[fleet.index_of(next.node)]->seen()) {
    if (first_message(seen) == "hello from " + session) {
      order.push_back(is_preheat(seen) ? "preheat" : "turn");
    }
  }
  EXPECT_EQ(order, (std::vector<std::string>{"preheat", "turn"}));
}

TEST(GatewayPreheat, ATurnThatFindsItsPreheatRunningStaysWhereItIsWarmWhileThatNodeServes) {
  auto joining = std::make_unique<RecordingOllamaNode>();
  const std::string joining_url = joining->base_url();
  PreheatFleet fleet(recording_nodes(3),
                     [](config::GatewayConfig& config) { config.routing.balance_factor = 0; });
  std::vector<routing::RingMember> members{
      {"node-a", 1.0}, {"node-b", 1.0}, {"node-c", 1.0}, {"node-d", 1.0}};
  const routing::HashRing ring(members, fleet.config.routing.virtual_nodes);
  const auto session = session_owned_by(ring, 3, "joining-");
  // A slow kept prompt (600 ms on these nodes, and so its preheat), long enough that waiting
  // would pay (as in the test above).
  const auto before = fleet.turn(session, "slow one " + std::string(200'000, 'x'));
  ASSERT_EQ(before.status, 200);

  ASSERT_EQ(fleet.add_node("node-d", joining_url), 201);
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"sent\"", 1));
  ASSERT_EQ(fleet.metric("llmgw_preheats_total", {"outcome=\"completed\""}), 0.0);
  // Its preheat runs on node-d; its last node still serves and still has its history: the turn
  // goes there at once, warm, rather than waiting for node-d or prefilling beside the preheat.
  const auto during = fleet.turn(session, "and then?");
  ASSERT_EQ(during.status, 200) << during.body;
  EXPECT_EQ(during.node, before.node);
  EXPECT_FALSE(during.response.header("X-Gateway-Preheated").has_value());
  // The turn after the preheat goes to the warmed node, which says so.
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", 1));
  const auto after = fleet.turn(session, "and after?");
  EXPECT_EQ(after.node, "node-d");
  EXPECT_EQ(after.response.header("X-Gateway-Preheated").value_or(""), "true");
}

TEST(GatewayPreheat, AFailedPreheatChangesNothingForTheClient) {
  std::vector<std::unique_ptr<RecordingOllamaNode>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_unique<RecordingOllamaNode>(
        std::vector<std::string>{"llama3.2:latest"}, /*fail_preheats=*/true));
  }
  PreheatFleet fleet(std::move(nodes));
  const auto moved = sessions_on(fleet, "node-a", 16, "failing-");
  ASSERT_FALSE(moved.empty());
  ASSERT_EQ(fleet.patch("node-a", R"({"draining": true})"), 200);
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"failed\"", moved.size()));
  for (const auto& session : moved) {
    const auto next = fleet.turn(session, "still there?");
    EXPECT_EQ(next.status, 200) << next.body;
    EXPECT_NE(next.node, "node-a");
    EXPECT_FALSE(next.response.header("X-Gateway-Preheated").has_value());
  }
  const auto health = json::parse(get_url(fleet.client, fleet.url("/health")).body);
  for (const auto& node : health["nodes"]) {
    EXPECT_EQ(node["healthy"], true) << "a preheat's 500 counted against " << node["name"];
    EXPECT_EQ(node["consecutive_failures"], 0);
  }
}

// ollama-sim keeps what a preheat prefilled in a KV slot: the moved session's next turn finds its
// history cached on the new node.
TEST(GatewayPreheat, OllamaSimCachesThePreheatedPromptForTheNextTurn) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kPreheatToken};
  }});
  net::HttpClient client;
  const std::string history(8'000, 'h');  // ~2,000 tokens
  const auto body_for = [&](const std::string& session, bool next) {
    json messages = json::array({{{"role", "user"}, {"content", session + history}}});
    if (next) {
      messages.push_back({{"role", "assistant"}, {"content", "fine"}});
      messages.push_back({{"role", "user"}, {"content", "next"}});
    }
    return json{{"model", "llama3.2"}, {"messages", messages}, {"stream", false}}.dump();
  };
  std::string session;
  for (int i = 0; session.empty(); ++i) {
    const std::string candidate = "cached-" + std::to_string(i);
    if (fixture.ring_owner(candidate) == 0) {
      session = candidate;
    }
  }
  ASSERT_EQ(post_json(client, fixture.url("/api/chat"), body_for(session, false), session).node,
            "node-a");
  net::ClientRequest drain;
  drain.method = "PATCH";
  drain.url = fixture.url("/admin/nodes/node-a");
  drain.headers = {{"Authorization", "Bearer " + std::string{kPreheatToken}}};
  drain.body = R"({"draining": true})";
  ASSERT_EQ(client.send(drain).status, 200);
  ASSERT_TRUE(wait_until([&] {
    return metric_sum(get_url(client, fixture.url("/metrics")).body, "llmgw_preheats_total",
                      {"outcome=\"completed\""}) == 1;
  }));
  const auto next = post_json(client, fixture.url("/api/chat"), body_for(session, true), session);
  ASSERT_EQ(next.status, 200);
  EXPECT_EQ(next.response.header("X-Gateway-Preheated").value_or(""), "true");
  const auto& stats = fixture.sim(*fixture.node_index(next.node)).stats();
  // The preheat's prompt was evaluated cold; the turn found all of it cached.
  EXPECT_GE(stats.cached_prompt_tokens, 1'900U) << "prompt tokens: " << stats.prompt_tokens;
}

// On the plain ring a node that joins owns part of the ring at once: the sessions it now owns get
// their preheat there before their next turn; the others none.
TEST(GatewayPreheat, ANodeAddedWarmsTheSessionsItNowOwns) {
  auto nodes = recording_nodes(3);
  auto joining = std::make_unique<RecordingOllamaNode>();
  const std::string joining_url = joining->base_url();
  PreheatFleet fleet(std::move(nodes),
                     [](config::GatewayConfig& config) { config.routing.balance_factor = 0; });
  std::vector<std::string> sessions;
  for (int i = 0; i < 24; ++i) {
    sessions.push_back("joined-" + std::to_string(i));
    ASSERT_EQ(fleet.turn(sessions.back()).status, 200);
  }
  std::vector<routing::RingMember> members{
      {"node-a", 1.0}, {"node-b", 1.0}, {"node-c", 1.0}, {"node-d", 1.0}};
  const routing::HashRing ring(members, fleet.config.routing.virtual_nodes);
  std::set<std::string> to_new;
  for (const auto& session : sessions) {
    if (ring.owner(routing::ring_position(session)) == 3) {
      to_new.insert(session);
    }
  }
  ASSERT_FALSE(to_new.empty());
  ASSERT_EQ(fleet.add_node("node-d", joining_url), 201);
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", to_new.size()))
      << to_new.size() << " sessions now owned by node-d";
  std::set<std::string> warmed;
  for (const auto& seen : joining->seen()) {
    EXPECT_TRUE(is_preheat(seen));
    warmed.insert(first_message(seen).substr(std::string_view{"hello from "}.size()));
  }
  EXPECT_EQ(warmed, to_new);
  for (const auto& session : to_new) {
    const auto next = fleet.turn(session, "next");
    EXPECT_EQ(next.node, "node-d");
    EXPECT_EQ(next.response.header("X-Gateway-Preheated").value_or(""), "true");
  }
}

TEST(GatewayPreheat, ASessionWhosePromptIsNotKeptIsCountedAsSkipped) {
  PreheatFleet fleet(recording_nodes(3), [](config::GatewayConfig& config) {
    config.preheat.max_bytes = 64;  // smaller than any entry: nothing is kept
  });
  const auto moved = sessions_on(fleet, "node-a", 12, "unkept-");
  ASSERT_FALSE(moved.empty());
  ASSERT_EQ(fleet.patch("node-a", R"({"draining": true})"), 200);
  ASSERT_TRUE(
      fleet.metric_reaches("llmgw_preheats_skipped_total", "reason=\"no_prompt\"", moved.size()));
  EXPECT_EQ(fleet.metric("llmgw_preheats_total"), 0.0);
  const auto health = json::parse(get_url(fleet.client, fleet.url("/health")).body);
  EXPECT_EQ(health["preheat"]["sessions"], 0);
  EXPECT_EQ(health["preheat"]["max_bytes"], 64);
}

// Failover and return (DESIGN §2.4): a session that failed over from its owner returns once
// the owner is healthy again, but only after its preheat there ended. The preheats begin when the
// owner is taken back (here each takes 600 ms: the kept prompt says "slow"); a turn that comes
// meanwhile stays on the failover node (warm); the first one after the preheat returns.
TEST(GatewayPreheat, ASessionReturnsToItsRecoveredOwnerOnlyAfterItsPreheat) {
  PreheatFleet fleet(recording_nodes(3), [](config::GatewayConfig& config) {
    config.health.interval = std::chrono::milliseconds{100};
    config.health.unhealthy_threshold = 1;
    config.health.healthy_threshold = 1;
  });
  std::vector<std::string> owned;
  for (int i = 0; i < 18; ++i) {
    const std::string session = "recover-" + std::to_string(i);
    const auto first = fleet.turn(session);
    ASSERT_EQ(first.status, 200) << first.body;
    if (first.node == "node-a" && first.route == "affinity") {
      owned.push_back(session);
    }
  }
  ASSERT_FALSE(owned.empty());

  fleet.nodes[0]->set_down(true);
  ASSERT_TRUE(node_health_is(fleet, "node-a", false));  // the turns below are placed away
  for (const auto& session : owned) {
    const auto away = fleet.turn(session, "while a is down, slow");
    ASSERT_EQ(away.status, 200) << away.body;
    EXPECT_NE(away.node, "node-a");
  }
  fleet.nodes[0]->set_down(false);
  ASSERT_TRUE(node_health_is(fleet, "node-a", true));

  for (const auto& session : owned) {
    const auto stays = fleet.turn(session, "a is back");
    ASSERT_EQ(stays.status, 200) << stays.body;
    EXPECT_NE(stays.node, "node-a") << session << " returned before its preheat ended";
  }
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"completed\"", owned.size()));
  for (const auto& session : owned) {
    const auto back = fleet.turn(session, "home again");
    ASSERT_EQ(back.status, 200) << back.body;
    EXPECT_EQ(back.node, "node-a");
    EXPECT_EQ(back.response.header("X-Gateway-Preheated").value_or(""), "true") << session;
    std::vector<std::string> order;  // on node-a: its first turn, the preheat, the return
    for (const auto& seen : fleet.nodes[0]->seen()) {
      if (first_message(seen) == "hello from " + session) {
        order.push_back(is_preheat(seen) ? "preheat" : "turn");
      }
    }
    EXPECT_EQ(order, (std::vector<std::string>{"turn", "preheat", "turn"})) << session;
  }
}

// A failed preheat does not hold the session back: it returns at its next turn, cold.
TEST(GatewayPreheat, ASessionReturnsAtOnceWhenItsReturnPreheatFails) {
  std::vector<std::unique_ptr<RecordingOllamaNode>> nodes;
  nodes.push_back(std::make_unique<RecordingOllamaNode>(std::vector<std::string>{"llama3.2:latest"},
                                                        /*fail_preheats=*/true));
  nodes.push_back(std::make_unique<RecordingOllamaNode>());
  PreheatFleet fleet(std::move(nodes), [](config::GatewayConfig& config) {
    config.health.interval = std::chrono::milliseconds{100};
    config.health.unhealthy_threshold = 1;
    config.health.healthy_threshold = 1;
  });
  std::string session;
  for (int i = 0; i < 16 && session.empty(); ++i) {
    const auto first = fleet.turn("refused-" + std::to_string(i));
    if (first.node == "node-a" && first.route == "affinity") {
      session = "refused-" + std::to_string(i);
    }
  }
  ASSERT_FALSE(session.empty());
  fleet.nodes[0]->set_down(true);
  ASSERT_TRUE(node_health_is(fleet, "node-a", false));
  ASSERT_EQ(fleet.turn(session, "while a is down").node, "node-b");
  fleet.nodes[0]->set_down(false);
  ASSERT_TRUE(node_health_is(fleet, "node-a", true));
  // Its return preheat began when node-a was taken back, and failed.
  ASSERT_TRUE(fleet.metric_reaches("llmgw_preheats_total", "outcome=\"failed\"", 1));
  const auto back = fleet.turn(session, "home again");
  EXPECT_EQ(back.node, "node-a");
  EXPECT_FALSE(back.response.header("X-Gateway-Preheated").has_value());
}

}  // namespace
}  // namespace llmgw::testing
