// PATCH /admin/nodes/NAME: draining a node moves its sessions at their next turn and gives it no
// new ones; a weight change keeps the node (its counters, its sessions); bad input is a 400 that
// says what is wrong, an unknown node a 404; the same change made by a reload gives the same
// fleet.

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

constexpr std::string_view kDrainToken = "drain-admin-token";

net::ClientResponse patch_node(net::HttpClient& client, GatewayFixture& fixture,
                               const std::string& name, const std::string& body,
                               std::string_view token = kDrainToken) {
  net::ClientRequest request;
  request.method = "PATCH";
  request.url = fixture.url("/admin/nodes/" + name);
  if (!token.empty()) {
    request.headers.push_back({"Authorization", "Bearer " + std::string{token}});
  }
  request.headers.push_back({"Content-Type", "application/json"});
  request.body = body;
  return client.send(request);
}

GatewayFixture drain_fixture() {
  return GatewayFixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kDrainToken};
  }});
}

std::vector<std::string> sessions_named(const std::string& prefix, int count) {
  std::vector<std::string> sessions;
  for (int i = 0; i < count; ++i) {
    sessions.push_back(prefix + std::to_string(i));
  }
  return sessions;
}

json node_entry(GatewayFixture& fixture, net::HttpClient& client, std::string_view name) {
  const auto health = json::parse(get_url(client, fixture.url("/health")).body);
  for (const auto& node : health["nodes"]) {
    if (node["name"] == name) {
      return node;
    }
  }
  ADD_FAILURE() << "no node " << name << " in /health";
  return {};
}

TEST(GatewayDrain, ADrainedNodeKeepsNoSessionAndTakesNoNewRequestUntilUndrained) {
  auto fixture = drain_fixture();
  net::HttpClient client;
  const auto sessions = sessions_named("drain-me-", 30);
  const auto before = session_nodes(fixture, client, sessions);
  ASSERT_GT(std::count(before.begin(), before.end(), "node-a"), 0);

  const auto drained = patch_node(client, fixture, "node-a", R"({"draining": true})");
  ASSERT_EQ(drained.status, 200) << drained.body;
  const auto listed = json::parse(drained.body)["nodes"];
  ASSERT_EQ(listed[0]["name"], "node-a");
  EXPECT_EQ(listed[0]["draining"], true);
  EXPECT_EQ(node_entry(fixture, client, "node-a")["draining"], true);

  const auto after = session_nodes(fixture, client, sessions);
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    EXPECT_NE(after[i], "node-a") << sessions[i] << " stayed on the drained node";
    if (before[i] != "node-a") {
      EXPECT_EQ(after[i], before[i]) << sessions[i] << " moved although its node stays";
    }
  }
  const auto fresh = session_nodes(fixture, client, sessions_named("new-while-drained-", 20));
  EXPECT_EQ(std::count(fresh.begin(), fresh.end(), "node-a"), 0);
  for (int i = 0; i < 6; ++i) {  // unkeyed: round robin over the others
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("hi", false));
    EXPECT_EQ(exchange.status, 200);
    EXPECT_NE(exchange.node, "node-a");
  }
  // The drained node is still a node: listed, health checked, served its old requests.
  EXPECT_GT(node_entry(fixture, client, "node-a")["requests"].get<int>(), 0);

  ASSERT_EQ(patch_node(client, fixture, "node-a", R"({"draining": false})").status, 200);
  const auto back = session_nodes(fixture, client, sessions_named("new-after-undrain-", 20));
  EXPECT_GT(std::count(back.begin(), back.end(), "node-a"), 0) << "undrained node took nothing";
}

TEST(GatewayDrain, AStreamInFlightOnTheDrainedNodeFinishesThere) {
  GatewayFixture fixture(
      {.sim = slow_sim_options(40, 10.0), .configure = [](config::GatewayConfig& config) {
         config.admin.token = std::string{kDrainToken};
       }});
  net::HttpClient client;
  std::string session;
  for (int i = 0; session.empty(); ++i) {
    if (fixture.node_name(fixture.ring_owner("stream-" + std::to_string(i))) == "node-b") {
      session = "stream-" + std::to_string(i);
    }
  }
  bool patched = false;
  int patch_status = 0;
  net::HttpClient admin_client;
  std::string streamed;
  const auto exchange = post_json(
      client, fixture.url("/api/generate"), generate_body("a long answer"), session, {},
      [&](std::string_view chunk) {
        streamed.append(chunk);
        if (!patched) {  // the first bytes are in: drain the node mid-stream
          patched = true;
          patch_status = patch_node(admin_client, fixture, "node-b", R"({"draining":true})").status;
        }
        return true;
      });
  EXPECT_EQ(patch_status, 200);
  EXPECT_EQ(exchange.status, 200);
  EXPECT_EQ(exchange.node, "node-b");
  const auto records = ndjson_records(streamed);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back()["done"], true) << "the stream was cut by the drain";
  const auto next =
      post_json(client, fixture.url("/api/generate"), generate_body("next", false), session);
  EXPECT_EQ(next.status, 200);
  EXPECT_NE(next.node, "node-b") << "the next turn stayed on the drained node";
}

TEST(GatewayDrain, AWeightChangeKeepsTheNodeItsCountersAndItsSessions) {
  auto fixture = drain_fixture();
  net::HttpClient client;
  const auto sessions = sessions_named("weighted-", 20);
  const auto before = session_nodes(fixture, client, sessions);
  const auto requests_before = node_entry(fixture, client, "node-c")["requests"].get<int>();
  ASSERT_GT(requests_before, 0);

  const auto changed = patch_node(client, fixture, "node-c", R"({"weight": 3})");
  ASSERT_EQ(changed.status, 200) << changed.body;
  const auto node = node_entry(fixture, client, "node-c");
  EXPECT_EQ(node["weight"], 3.0);
  EXPECT_EQ(node["virtual_nodes"], 3 * fixture.config().routing.virtual_nodes);
  EXPECT_EQ(node["requests"], requests_before) << "the node was replaced, not changed";
  EXPECT_EQ(session_nodes(fixture, client, sessions), before) << "placed sessions stay";
  // A heavier node gets a larger share of new sessions.
  const auto fresh = session_nodes(fixture, client, sessions_named("after-weight-", 40));
  EXPECT_GT(std::count(fresh.begin(), fresh.end(), "node-c"), 40 / 3);
}

TEST(GatewayDrain, BadPatchesAre400WithTheReasonAnUnknownNode404AndNoTokenRefused) {
  auto fixture = drain_fixture();
  net::HttpClient client;
  const auto error_of = [](const net::ClientResponse& response) {
    return json::parse(response.body)["error"].get<std::string>();
  };
  struct Case {
    std::string body;
    std::string says;
  };
  const std::vector<Case> cases{
      {"not json", "not valid JSON"},
      {"{}", "expected a JSON object"},
      {"[true]", "expected a JSON object"},
      {R"({"draining": "yes"})", "\"draining\" must be true or false"},
      {R"({"weight": 0})", "\"weight\" must be a number > 0"},
      {R"({"weight": "heavy"})", "\"weight\" must be a number > 0"},
      {R"({"draining": true, "colour": "red"})", "unknown field \"colour\""},
  };
  for (const auto& bad : cases) {
    const auto response = patch_node(client, fixture, "node-a", bad.body);
    EXPECT_EQ(response.status, 400) << bad.body;
    EXPECT_NE(error_of(response).find(bad.says), std::string::npos)
        << bad.body << " -> " << response.body;
  }
  const auto unknown = patch_node(client, fixture, "node-z", R"({"draining": true})");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(error_of(unknown).find("no node named \"node-z\""), std::string::npos);
  EXPECT_EQ(patch_node(client, fixture, "node-a", R"({"draining": true})", "").status, 401);
  EXPECT_EQ(patch_node(client, fixture, "node-a", R"({"draining": true})", "wrong").status, 401);
  const auto node = node_entry(fixture, client, "node-a");
  EXPECT_EQ(node["draining"], false) << "a refused change was applied";
  EXPECT_EQ(node["weight"], 1.0);
}

TEST(GatewayDrain, AReloadWithTheSameChangeGivesTheSameFleetAsThePatch) {
  auto fixture = drain_fixture();
  net::HttpClient client;
  session_nodes(fixture, client, sessions_named("reload-same-", 12));
  ASSERT_EQ(patch_node(client, fixture, "node-a", R"({"draining": true})").status, 200);
  ASSERT_EQ(patch_node(client, fixture, "node-b", R"({"weight": 2.5})").status, 200);
  const auto settled = [&] {
    json health;
    EXPECT_TRUE(wait_until([&] {
      health = json::parse(get_url(client, fixture.url("/health")).body);
      // Catalogs fetched, and the drained node's sessions' preheats over (they hold slots).
      return std::all_of(health["nodes"].begin(), health["nodes"].end(), [](const json& node) {
        return node["catalog"]["current"] == true && node["admission"]["in_flight"] == 0;
      });
    })) << health.dump();
    for (auto& node : health["nodes"]) {
      node["catalog"].erase("age_ms");
    }
    return health;
  };
  const auto by_patch = settled();

  auto next = fixture.config();
  next.nodes[0].draining = true;
  next.nodes[1].weight = 2.5;
  EXPECT_TRUE(fixture.gateway().reload(next).empty());
  const auto by_reload = settled();
  EXPECT_EQ(by_reload["nodes"], by_patch["nodes"])
      << "same nodes, same counters, same draining and weight";
  EXPECT_EQ(by_reload["ring"]["virtual_nodes"], by_patch["ring"]["virtual_nodes"]);
  EXPECT_EQ(by_reload["routing"]["live_sessions"], by_patch["routing"]["live_sessions"]);
}

}  // namespace
}  // namespace llmgw::testing
