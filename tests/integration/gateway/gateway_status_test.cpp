// What an operator reads besides the requests: probes and scrapes that do not count as requests,
// the build and process metrics, first-token times that only generations feed, the /status page
// (self-contained HTML, behind the admin token only when asked) and the reasons of a node's
// ejection in /health.

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

std::string metrics_of(GatewayFixture& fixture) {
  net::HttpClient client;
  return get_url(client, fixture.url("/metrics")).body;
}

TEST(GatewayStatus, ProbesScrapesAndThePageAreNotCountedAsRequests) {
  GatewayFixture fixture;
  net::HttpClient client;
  for (int i = 0; i < 3; ++i) {
    for (const char* path : {"/", "/health", "/metrics", "/status"}) {
      EXPECT_EQ(get_url(client, fixture.url(path)).status, 200) << path;
    }
  }
  EXPECT_EQ(metric_sum(metrics_of(fixture), "llmgw_requests_total"), 0.0)
      << "a probe or scrape was counted as a request";
  ASSERT_EQ(post_json(client, fixture.url("/api/generate"), generate_body("hi", false)).status,
            200);
  const std::string after = metrics_of(fixture);
  EXPECT_EQ(metric_sum(after, "llmgw_requests_total"), 1.0);
  EXPECT_EQ(metric_sum(after, "llmgw_requests_total", {"node=\"none\""}), 0.0);
}

TEST(GatewayStatus, MetricsCarryBuildInfoAndStandardProcessMetrics) {
  GatewayFixture fixture;
  const std::string metrics = metrics_of(fixture);
  EXPECT_EQ(metric_sum(metrics, "llmgw_build_info", {"version=\""}), 1.0) << metrics;
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    EXPECT_NE(metrics.find(std::string{"\n"} + name + " "), std::string::npos) << name;
  }
  EXPECT_GT(metric_sum(metrics, "process_open_fds"), 5.0);  // listeners, sockets, logs
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_NEAR(metric_sum(metrics, "process_start_time_seconds"), now, 600.0);
}

TEST(GatewayStatus, OnlyGenerationsFeedTheFirstTokenHistogramAndBothAreByRoute) {
  GatewayFixture fixture;
  net::HttpClient client;
  // Metadata a node answers (the fleet listings, /api/tags and the like, the gateway answers
  // from every node: they are not a node's request and feed neither histogram).
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(get_url(client, fixture.url("/v1/models/llama3.2")).status, 200);
  }
  EXPECT_EQ(get_url(client, fixture.url("/api/tags")).status, 200);
  std::string metrics = metrics_of(fixture);
  EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total"), 5.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_request_duration_seconds_count"), 4.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_time_to_first_byte_seconds_count"), 0.0)
      << "metadata calls went into the first-token histogram";

  const auto keyed = post_json(client, fixture.url("/api/generate"), generate_body("a"), "s-1");
  ASSERT_EQ(keyed.status, 200);
  ASSERT_EQ(post_json(client, fixture.url("/api/chat"),
                      R"({"model":"llama3.2","messages":[{"role":"user","content":"x"}]})")
                .status,
            200);
  metrics = metrics_of(fixture);
  EXPECT_EQ(metric_sum(metrics, "llmgw_time_to_first_byte_seconds_count"), 2.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_time_to_first_byte_seconds_count",
                       {"route=\"" + keyed.route + "\"", "node=\"" + keyed.node + "\""}),
            1.0);
  // The metadata calls carry no session key: round-robin.
  EXPECT_EQ(metric_sum(metrics, "llmgw_request_duration_seconds_count", {"route=\"round_robin\""}),
            4.0);
}

TEST(GatewayStatus, StatusPageIsOneSelfContainedHtmlDocument) {
  GatewayFixture fixture;
  net::HttpClient client;
  const auto page = get_url(client, fixture.url("/status"));
  ASSERT_EQ(page.status, 200);
  EXPECT_EQ(page.response.header("Content-Type").value_or(""), "text/html; charset=utf-8");
  EXPECT_EQ(page.response.header("Cache-Control").value_or(""), "no-store");
  const std::string csp{page.response.header("Content-Security-Policy").value_or("")};
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
  EXPECT_NE(csp.find("connect-src 'self'"), std::string::npos) << csp;
  EXPECT_NE(page.body.find("<title>llmgw status</title>"), std::string::npos);
  for (const char* external : {"http://", "https://", "src=", "@import", "<link"}) {
    EXPECT_EQ(page.body.find(external), std::string::npos) << "the page loads " << external;
  }
  EXPECT_EQ(get_url(client, fixture.url("/status?refresh=500")).status, 200);
}

TEST(GatewayStatus, RequireTokenAsksForTheAdminTokenByBearerOrBasic) {
  constexpr std::string_view kToken = "s3cret-status-token";
  GatewayFixture fixture({.configure = [&](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
    config.status.require_token = true;
  }});
  net::HttpClient client;
  const auto refused = get_url(client, fixture.url("/status"));
  EXPECT_EQ(refused.status, 401);
  EXPECT_EQ(refused.response.header("WWW-Authenticate").value_or(""),
            "Basic realm=\"llmgw status\", charset=\"UTF-8\"");
  EXPECT_EQ(refused.body.find(kToken), std::string::npos);
  // base64("ops:s3cret-status-token"), base64("ops:wrong")
  const auto basic = get_url(client, fixture.url("/status"),
                             {{"Authorization", "Basic b3BzOnMzY3JldC1zdGF0dXMtdG9rZW4="}});
  EXPECT_EQ(basic.status, 200);
  EXPECT_EQ(basic.body.find(kToken), std::string::npos) << "the page carries the token";
  EXPECT_EQ(
      get_url(client, fixture.url("/status"), {{"Authorization", "Bearer " + std::string{kToken}}})
          .status,
      200);
  EXPECT_EQ(
      get_url(client, fixture.url("/status"), {{"Authorization", "Basic b3BzOndyb25n"}}).status,
      401);
  EXPECT_EQ(get_url(client, fixture.url("/health")).status, 200) << "/health stays open";
}

TEST(GatewayStatus, HealthListsRecentFailuresAndTheEjectionWithReasons) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.health.unhealthy_threshold = 2;
    config.health.interval = milliseconds{50};
    config.health.base_ejection = milliseconds{10'000};
  }});
  fixture.stop_sim(1);
  net::HttpClient client;
  json node;
  ASSERT_TRUE(wait_until(
      [&] {
        node = json::parse(get_url(client, fixture.url("/health")).body)["nodes"][1];
        return !node["healthy"].get<bool>();
      },
      milliseconds{5'000}))
      << "the stopped node was not ejected";
  const auto& events = node["recent_events"];
  ASSERT_TRUE(events.is_array()) << node.dump();
  bool failure = false;
  bool ejected = false;
  for (const auto& event : events) {
    failure = failure || (event["kind"] == "failure" && event["reason"].get<std::string>().find(
                                                            "health check") != std::string::npos);
    ejected = ejected ||
              (event["kind"] == "ejected" &&
               event["reason"].get<std::string>().find("2 failures in a row") != std::string::npos);
    EXPECT_GE(event["count"].get<int>(), 1);
    EXPECT_GE(event["last"].get<double>(), event["first"].get<double>());
  }
  EXPECT_TRUE(failure) << events.dump();
  EXPECT_TRUE(ejected) << events.dump();
  EXPECT_LE(events.size(), 8U);
}

}  // namespace
}  // namespace llmgw::testing
