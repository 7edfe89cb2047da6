// Routing through the running gateway: session affinity equals the ring owner computed
// independently, header-less requests are spread round-robin, failover is sticky and returns, and
// bounded loads spill a crowded owner's sessions to the next node clockwise, and session placement
// spreads them and keeps each on its node.

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// routing.balance_by: requests at low load is the plain ring (DESIGN.md §2).
void balance_requests(config::GatewayConfig& config) {
  config.routing.balance_by = "requests";
}

TEST(GatewayRouting, FiftySessionsOfFourTurnsEachStayOnTheirRingOwner) {
  GatewayFixture fixture({.configure = balance_requests});
  net::HttpClient client;
  constexpr int kSessions = 50;
  constexpr int kTurns = 4;
  std::map<std::string, std::string> node_of_session;
  std::map<std::string, int> sessions_per_node;
  // Turns are interleaved across sessions, as concurrent conversations would be.
  for (int turn = 0; turn < kTurns; ++turn) {
    for (int s = 0; s < kSessions; ++s) {
      const std::string session = "affinity-session-" + std::to_string(s);
      const auto exchange =
          post_json(client, fixture.url("/api/generate"),
                    generate_body("turn " + std::to_string(turn), false), session);
      ASSERT_EQ(exchange.status, 200) << exchange.body;
      EXPECT_EQ(exchange.route, "affinity") << session;
      const std::string& expected = fixture.node_name(fixture.ring_owner(session));
      EXPECT_EQ(exchange.node, expected) << session << " turn " << turn;
      if (turn == 0) {
        node_of_session[session] = exchange.node;
        ++sessions_per_node[exchange.node];
      } else {
        EXPECT_EQ(exchange.node, node_of_session[session]) << session << " moved at turn " << turn;
      }
    }
  }
  // 50 sessions on a 3-node ring at 150 virtual nodes: every node owns some of them.
  EXPECT_EQ(sessions_per_node.size(), 3U);
}

TEST(GatewayRouting, RequestsWithoutAnyKeyAreSpreadEvenlyRoundRobin) {
  // Only the header as a key source: these identical bodies would share a `prefix` key.
  GatewayFixture fixture(
      {.configure = [](config::GatewayConfig& config) { config.routing.key_sources = "header"; }});
  net::HttpClient client;
  constexpr int kRequests = 60;
  std::map<std::string, int> per_node;
  for (int i = 0; i < kRequests; ++i) {
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("no session", false));
    ASSERT_EQ(exchange.status, 200) << exchange.body;
    EXPECT_EQ(exchange.route, "round_robin");
    ++per_node[exchange.node];
  }
  ASSERT_EQ(per_node.size(), 3U);
  for (const auto& [node, count] : per_node) {
    // Sequential requests take consecutive tickets of the shared counter: exactly 20 each; ±1
    // leaves room for a worker interleaving.
    EXPECT_NEAR(count, kRequests / 3, 1) << node;
  }
}

TEST(GatewayRouting, FailoverIsStickyWhileTheOwnerIsDownAndReturnsWhenItRecovers) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.health.interval = milliseconds{100};
    config.health.timeout = milliseconds{500};
    config.health.unhealthy_threshold = 1;
    config.health.healthy_threshold = 1;
  }});
  net::HttpClient client;
  const std::string session = "failover-session";
  const auto order = fixture.ring_order(session);
  const std::string owner = fixture.node_name(order[0]);
  const std::string next = fixture.node_name(order[1]);
  const auto url = fixture.url("/api/generate");

  auto first = post_json(client, url, generate_body("hello", false), session);
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.node, owner);
  EXPECT_EQ(first.route, "affinity");

  fixture.stop_sim(order[0]);
  for (int turn = 0; turn < 4; ++turn) {
    auto exchange = post_json(client, url, generate_body("while down", false), session);
    ASSERT_EQ(exchange.status, 200) << exchange.body;
    EXPECT_EQ(exchange.node, next) << "turn " << turn;
    EXPECT_EQ(exchange.route, "failover") << "turn " << turn;
  }

  fixture.restart_sim(order[0]);
  std::string last_node;
  std::string last_route;
  ASSERT_TRUE(wait_until(
      [&] {
        auto exchange = post_json(client, url, generate_body("after recovery", false), session);
        last_node = exchange.node;
        last_route = exchange.route;
        return exchange.status == 200 && exchange.node == owner;
      },
      milliseconds{5'000}))
      << "the session did not return to its owner " << owner
      << " after it recovered (last: " << last_node << ", " << last_route << ")";
  EXPECT_EQ(last_route, "affinity");
  for (int turn = 0; turn < 3; ++turn) {
    auto exchange = post_json(client, url, generate_body("back home", false), session);
    ASSERT_EQ(exchange.status, 200) << exchange.body;
    EXPECT_EQ(exchange.node, owner);
    EXPECT_EQ(exchange.route, "affinity");
  }
}

// Launches `sessions.size()` slow streams one after another, each once the gateway counts the
// previous one in flight, so that every routing decision sees a known load. Returns the exchanges
// and the per-node in-flight counts /health reported with all of them in flight.
struct BurstResult {
  std::vector<Exchange> exchanges;
  std::map<std::string, std::int64_t> in_flight_at_peak;
};

BurstResult run_burst(GatewayFixture& fixture, const std::vector<std::string>& sessions) {
  BurstResult result;
  result.exchanges.resize(sessions.size());
  std::vector<std::thread> threads;
  net::HttpClient observer;
  json health;
  const auto total_in_flight = [&] {
    health = json::parse(get_url(observer, fixture.url("/health")).body);
    return health["in_flight"].get<std::int64_t>();
  };
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    threads.emplace_back([&, i] {
      net::HttpClient client;
      result.exchanges[i] =
          post_json(client, fixture.url("/api/generate"), generate_body("burst"), sessions[i]);
    });
    const bool counted = wait_until(
        [&] { return total_in_flight() == static_cast<std::int64_t>(i + 1); }, milliseconds{5'000});
    EXPECT_TRUE(counted) << "request " << i << " was not counted in flight";
  }
  for (const auto& node : health["nodes"]) {
    result.in_flight_at_peak[node["name"].get<std::string>()] =
        node["in_flight"].get<std::int64_t>();
  }
  for (auto& thread : threads) {
    thread.join();
  }
  return result;
}

std::vector<std::string> sessions_owned_by(const GatewayFixture& fixture, std::size_t owner,
                                           std::size_t count) {
  std::vector<std::string> sessions;
  for (int i = 0; sessions.size() < count; ++i) {
    std::string session = "crowded-" + std::to_string(i);
    if (fixture.ring_owner(session) == owner) {
      sessions.push_back(std::move(session));
    }
  }
  return sessions;
}

TEST(GatewayRouting, BoundedLoadsSpillACrowdedOwnersSessionsAndKeepEveryNodeUnderTheCap) {
  GatewayFixture fixture({.sim = slow_sim_options(15, 100.0), .configure = balance_requests});
  constexpr std::size_t kStreams = 6;
  const auto sessions = sessions_owned_by(fixture, 0, kStreams);
  const std::string owner = fixture.node_name(0);
  const auto burst = run_burst(fixture, sessions);

  // With 6 in flight on 3 nodes, c = 1.25: cap = ceil(1.25 × 6 / 3) = 3 per node (the last request
  // was routed at T = 5: ceil(1.25 × 6 / 3)).
  const auto cap = static_cast<std::int64_t>(std::ceil(1.25 * kStreams / 3));
  for (const auto& [node, in_flight] : burst.in_flight_at_peak) {
    EXPECT_LE(in_flight, cap) << node;
  }
  int spilled = 0;
  for (std::size_t i = 0; i < kStreams; ++i) {
    const auto& exchange = burst.exchanges[i];
    ASSERT_EQ(exchange.status, 200) << sessions[i];
    if (exchange.route == "spill") {
      ++spilled;
      EXPECT_NE(exchange.node, owner) << sessions[i];
    } else {
      EXPECT_EQ(exchange.route, "affinity") << sessions[i];
      EXPECT_EQ(exchange.node, owner) << sessions[i];
    }
  }
  // Deterministic given serial launches: the owner takes requests 1, 3, 5; 2, 4, 6 spill.
  EXPECT_EQ(spilled, 3);
  EXPECT_EQ(burst.in_flight_at_peak.at(owner), 3);
}

TEST(GatewayRouting, SessionPlacementSpreadsACrowdedOwnersSessionsAndKeepsEachOnItsNode) {
  // The default, routing.balance_by: sessions. Six sessions that all hash to node 0 arrive one
  // after another: the session cap ceil((S + 1) / 3) lets node 0 take the 1st and the 4th, and
  // spreads the others over the two other nodes, two each.
  GatewayFixture fixture({.sim = slow_sim_options(15, 100.0)});
  constexpr std::size_t kStreams = 6;
  const auto sessions = sessions_owned_by(fixture, 0, kStreams);
  const std::string owner = fixture.node_name(0);
  const auto burst = run_burst(fixture, sessions);
  for (const auto& [node, in_flight] : burst.in_flight_at_peak) {
    EXPECT_EQ(in_flight, 2) << node;
  }
  std::map<std::string, std::string> home;
  for (std::size_t i = 0; i < kStreams; ++i) {
    const auto& exchange = burst.exchanges[i];
    ASSERT_EQ(exchange.status, 200) << sessions[i];
    EXPECT_EQ(exchange.route, exchange.node == owner ? "affinity" : "spill") << sessions[i];
    home[sessions[i]] = exchange.node;
  }
  EXPECT_EQ(home[sessions[0]], owner);
  EXPECT_EQ(home[sessions[3]], owner);

  // Later requests, one at a time (the owner idle): every session stays where it was placed, which
  // is where its KV cache is. Under balance_by: requests they would all return to the owner. Any
  // proxied path is routed by the session; /api/show answers at once even on these slow sims.
  net::HttpClient client;
  const std::string show = json{{"model", GatewayFixture::kModel}}.dump();
  for (int turn = 1; turn < 3; ++turn) {
    for (const auto& session : sessions) {
      const auto exchange = post_json(client, fixture.url("/api/show"), show, session);
      ASSERT_EQ(exchange.status, 200) << exchange.body;
      EXPECT_EQ(exchange.node, home[session]) << session << " moved at turn " << turn;
    }
  }
  const json health = json::parse(get_url(client, fixture.url("/health")).body);
  EXPECT_EQ(health["routing"]["balance_by"], "sessions");
  EXPECT_EQ(health["routing"]["live_sessions"], kStreams);
  for (const auto& node : health["nodes"]) {
    EXPECT_EQ(node["sessions"], 2) << node["name"];
  }
}

TEST(GatewayRouting, PlainRingSendsEveryCrowdedSessionToItsOwner) {
  // Six at once on one node: more than its default admission cap (4), which would spill two.
  // Streams of 4 s: the six are launched one after another, each seen in flight before the next,
  // which took more than 1.5 s on a loaded machine under the sanitizers.
  GatewayFixture fixture(
      {.sim = slow_sim_options(40, 100.0), .configure = [](config::GatewayConfig& config) {
         config.routing.balance_factor = 0.0;
         for (auto& node : config.nodes) {
           node.max_in_flight = 0;
         }
       }});
  constexpr std::size_t kStreams = 6;
  const auto sessions = sessions_owned_by(fixture, 0, kStreams);
  const std::string owner = fixture.node_name(0);
  const auto burst = run_burst(fixture, sessions);
  EXPECT_EQ(burst.in_flight_at_peak.at(owner), static_cast<std::int64_t>(kStreams));
  for (std::size_t i = 0; i < kStreams; ++i) {
    EXPECT_EQ(burst.exchanges[i].status, 200);
    EXPECT_EQ(burst.exchanges[i].node, owner) << sessions[i];
    EXPECT_EQ(burst.exchanges[i].route, "affinity") << sessions[i];
  }
}

}  // namespace
}  // namespace llmgw::testing
