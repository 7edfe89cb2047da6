// /health and /metrics after real traffic: the fields an operator reads, request and token counters
// that match what clients saw, and labels that never carry a session id or a path.

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

TEST(GatewayObservability, HealthReportsStatusVersionUptimeNodesAndRing) {
  GatewayFixture fixture;
  net::HttpClient client;
  const auto exchange = get_url(client, fixture.url("/health"));
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  EXPECT_NE(exchange.response.header("Content-Type").value_or("").find("application/json"),
            std::string_view::npos);
  const auto health = json::parse(exchange.body);
  EXPECT_EQ(health["status"], "ok");
  ASSERT_TRUE(health["version"].is_string());
  EXPECT_FALSE(health["version"].get<std::string>().empty());
  ASSERT_TRUE(health["uptime_seconds"].is_number());
  EXPECT_GE(health["uptime_seconds"].get<double>(), 0.0);
  EXPECT_LT(health["uptime_seconds"].get<double>(), 60.0);

  ASSERT_TRUE(health["nodes"].is_array());
  ASSERT_EQ(health["nodes"].size(), 3U);
  for (std::size_t i = 0; i < 3; ++i) {
    const auto& node = health["nodes"][i];
    EXPECT_EQ(node["name"], fixture.node_name(i));
    EXPECT_EQ(node["url"], fixture.sim(i).base_url());
    EXPECT_EQ(node["in_flight"], 0);
    EXPECT_EQ(node["healthy"], true);
    EXPECT_EQ(node["virtual_nodes"], 150);
  }
  EXPECT_EQ(health["ring"]["virtual_nodes_per_node"], 150);
  EXPECT_EQ(health["ring"]["virtual_nodes"], 450);  // points on the ring, all nodes together
  EXPECT_EQ(health["ring"]["nodes"], 3);
}

TEST(GatewayObservability, MetricsCountRequestsAndTokensClientsSawWithoutSessionIds) {
  GatewayFixture fixture;
  net::HttpClient client;
  std::map<std::string, int> requests_per_node;
  std::map<std::string, std::map<std::string, int>> routes_per_node;
  std::map<std::string, std::set<std::string>> sessions_per_node;
  std::map<std::string, double> prompt_tokens_per_node;
  std::map<std::string, double> completion_tokens_per_node;
  constexpr int kSessions = 6;
  constexpr int kTurns = 2;
  for (int turn = 0; turn < kTurns; ++turn) {
    for (int s = 0; s < kSessions; ++s) {
      const std::string session = "secret-metrics-session-" + std::to_string(s);
      const auto exchange =
          post_json(client, fixture.url("/api/generate"),
                    generate_body("tell me about turn " + std::to_string(turn)), session);
      ASSERT_EQ(exchange.status, 200) << exchange.body;
      const auto records = ndjson_records(exchange.body);
      ASSERT_FALSE(records.empty());
      const auto& last = records.back();
      ASSERT_TRUE(last["done"].get<bool>()) << last.dump();
      ++requests_per_node[exchange.node];
      ++routes_per_node[exchange.node][exchange.route];
      sessions_per_node[exchange.node].insert(session);
      prompt_tokens_per_node[exchange.node] += last["prompt_eval_count"].get<double>();
      completion_tokens_per_node[exchange.node] += last["eval_count"].get<double>();
    }
  }
  const auto exchange = get_url(client, fixture.url("/metrics"));
  ASSERT_EQ(exchange.status, 200);
  const std::string& metrics = exchange.body;

  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    const std::string& name = fixture.node_name(i);
    const std::string node_label = "node=\"" + name + "\"";
    EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total", {"code=\"2xx\"", node_label}),
              requests_per_node[name])
        << name;
    for (const auto& [route, count] : routes_per_node[name]) {
      EXPECT_EQ(
          metric_sum(metrics, "llmgw_requests_total", {node_label, "route=\"" + route + "\""}),
          count)
          << name << " " << route;
    }
    // Session placement is sticky: the sessions a node served are the ones placed on it.
    EXPECT_EQ(metric_sum(metrics, "llmgw_upstream_sessions", {node_label}),
              static_cast<double>(sessions_per_node[name].size()))
        << name;
    EXPECT_EQ(metric_sum(metrics, "llmgw_prompt_tokens_total", {node_label}),
              prompt_tokens_per_node[name])
        << name;
    EXPECT_EQ(metric_sum(metrics, "llmgw_completion_tokens_total", {node_label}),
              completion_tokens_per_node[name])
        << name;
    EXPECT_EQ(metric_sum(metrics, "llmgw_ring_virtual_nodes", {node_label}), 150.0) << name;
  }
  constexpr double kTotal = kSessions * kTurns;
  EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total", {"code=\"2xx\""}), kTotal);
  EXPECT_EQ(metric_sum(metrics, "llmgw_time_to_first_byte_seconds_count"), kTotal);
  EXPECT_EQ(metric_sum(metrics, "llmgw_time_to_first_byte_seconds_bucket", {"le=\"+Inf\""}),
            kTotal);
  EXPECT_NE(metrics.find("# TYPE llmgw_time_to_first_byte_seconds histogram"), std::string::npos);
  EXPECT_NE(metrics.find("# TYPE llmgw_request_duration_seconds histogram"), std::string::npos);
  EXPECT_EQ(metric_sum(metrics, "llmgw_routing_decisions_total"), kTotal);
  EXPECT_EQ(metric_sum(metrics, "llmgw_routing_decisions_total", {"route=\"round_robin\""}), 0.0);
  EXPECT_GT(metric_sum(metrics, "llmgw_prompt_tokens_total"), 0.0);

  EXPECT_EQ(metrics.find("secret-metrics-session"), std::string::npos)
      << "a session id became a metric label";
  EXPECT_EQ(metrics.find("/api/generate"), std::string::npos) << "a raw path became a label";
}

}  // namespace
}  // namespace llmgw::testing
