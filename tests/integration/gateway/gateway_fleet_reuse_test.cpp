// The fleet endpoints' cost per request: listings (/api/tags, /api/ps) ask the nodes on the
// worker's keep-alive connections instead of a new connection per node and request, and still
// see a node's change at once; /api/version answers from the versions the health probes read,
// follows a node's new version at its next probe, and asks a node whose probe failed (which then
// is named in X-Gateway-Partial as before).

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "llmgw/net/http_server.hpp"
#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

bool lists_model(const Exchange& tags, std::string_view name) {
  const auto listing = json::parse(tags.body);
  for (const auto& entry : listing.at("models")) {
    if (entry.at("name") == name) {
      return true;
    }
  }
  return false;
}

TEST(GatewayFleetReuse, ListingsTakeKeepAliveConnectionsAndSeeAPullAtOnce) {
  GatewayFixture fixture({.nodes = 2, .configure = [](config::GatewayConfig& config) {
                            config.catalog.interval = std::chrono::milliseconds{0};  // no fetches
                          }});
  net::HttpClient client;  // one keep-alive connection: one gateway worker and its pool
  ASSERT_EQ(get_url(client, fixture.url("/api/tags")).status, 200);
  const auto before_a = fixture.sim(0).stats();
  const auto before_b = fixture.sim(1).stats();
  constexpr int kRounds = 20;
  for (int i = 0; i < kRounds; ++i) {
    const auto tags = get_url(client, fixture.url("/api/tags"));
    ASSERT_EQ(tags.status, 200) << tags.body;
    ASSERT_EQ(tags.response.header("X-Gateway-Partial"), std::nullopt);
    ASSERT_EQ(get_url(client, fixture.url("/api/ps")).status, 200);
  }
  for (const auto& [before, index] : {std::pair{before_a, 0}, std::pair{before_b, 1}}) {
    const auto after = fixture.sim(index).stats();
    // Every listing asked the node (none is cached) ...
    EXPECT_GE(after.requests - before.requests, 2U * kRounds) << "node " << index;
    // ... on the connection the first one left in the pool (one more: the start-up health probe
    // may land in between).
    EXPECT_LE(after.connections_accepted - before.connections_accepted, 1U) << "node " << index;
  }

  // A model pulled on a node directly is listed by the next /api/tags.
  ASSERT_FALSE(lists_model(get_url(client, fixture.url("/api/tags")), "phi3:latest"));
  const auto pulled = post_json(client, fixture.sim(0).base_url() + "/api/pull",
                                json{{"model", "phi3"}, {"stream", false}}.dump());
  ASSERT_EQ(pulled.status, 200) << pulled.body;
  EXPECT_TRUE(lists_model(get_url(client, fixture.url("/api/tags")), "phi3:latest"));

  // A stopped node's pooled connection is closed, not used: the node is left out and named.
  fixture.stop_sim(1);
  const auto partial = get_url(client, fixture.url("/api/tags"));
  ASSERT_EQ(partial.status, 200) << partial.body;
  EXPECT_EQ(partial.response.header("X-Gateway-Partial"), "node-b");
}

// A node whose /api/version answer the test sets, or makes a 500; counts the version requests.
class VersionNode {
 public:
  VersionNode()
      : server_({},
                [this](const net::ServerRequest& request,
                       net::ResponseStream& stream) -> boost::asio::awaitable<void> {
                  int status = 404;
                  std::string body = R"({"error":"not found"})";
                  if (request.path() == "/api/version") {
                    ++version_requests_;
                    const std::lock_guard lock(mutex_);
                    status = failing_ ? 500 : 200;
                    body = failing_ ? R"({"error":"broken"})" : json{{"version", version_}}.dump();
                  }
                  net::HttpHeaders headers{{"Content-Type", "application/json"}};
                  co_await stream.respond(status, std::move(headers), std::move(body));
                }) {
    server_.start();
  }

  std::string url() const { return server_.base_url(); }
  void set_version(std::string version) {
    const std::lock_guard lock(mutex_);
    version_ = std::move(version);
  }
  void set_failing(bool failing) {
    const std::lock_guard lock(mutex_);
    failing_ = failing;
  }
  std::uint64_t version_requests() const { return version_requests_.load(); }

 private:
  std::mutex mutex_;
  std::string version_ = "0.9.0";
  bool failing_ = false;
  std::atomic<std::uint64_t> version_requests_{0};
  net::HttpServer server_;
};

std::string fleet_version(net::HttpClient& client, const std::string& url) {
  const auto answer = get_url(client, url);
  if (answer.status != 200) {
    return "status " + std::to_string(answer.status) + ": " + answer.body;
  }
  return json::parse(answer.body).at("version").get<std::string>();
}

TEST(GatewayFleetReuse, VersionComesFromTheHealthProbesWithoutAskingTheNodesPerRequest) {
  VersionNode node;
  // Probes every minute: none after the first one during this test.
  const auto config = test_gateway_config({test_node("node-a", node.url())});
  server::Gateway gateway(config);
  gateway.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(gateway.port()) + "/api/version";
  net::HttpClient client;
  ASSERT_EQ(fleet_version(client, url), "0.9.0");
  ASSERT_TRUE(wait_until([&] { return node.version_requests() >= 1; }));
  const auto asked = node.version_requests();
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(fleet_version(client, url), "0.9.0");
  }
  // The start-up probe may have landed after the first request (which then asked the node).
  EXPECT_LE(node.version_requests() - asked, 1U);
}

TEST(GatewayFleetReuse, VersionFollowsTheNextProbeAndANodeWhoseProbeFailedIsAskedAndNamed) {
  VersionNode node;
  auto sim = std::make_unique<sim::OllamaSim>(fast_sim_options());  // answers "0.5.7"
  sim->start();
  auto config =
      test_gateway_config({test_node("node-a", sim->base_url()), test_node("node-b", node.url())});
  config.health.interval = std::chrono::milliseconds{100};
  config.health.unhealthy_threshold = 1'000;  // node-b stays a target while its probes fail
  server::Gateway gateway(config);
  gateway.start();
  const std::string url = "http://127.0.0.1:" + std::to_string(gateway.port()) + "/api/version";
  net::HttpClient client;
  EXPECT_EQ(fleet_version(client, url), "0.5.7");  // the lowest of 0.5.7 and 0.9.0

  node.set_version("0.4.2");  // as after a restart with another version
  EXPECT_TRUE(wait_until([&] { return fleet_version(client, url) == "0.4.2"; }))
      << fleet_version(client, url);

  // Its probe fails: its version is forgotten, the fleet asks it, it answers 500 and is left out.
  node.set_failing(true);
  Exchange answer;
  EXPECT_TRUE(wait_until([&] {
    answer = get_url(client, url);
    return answer.response.header("X-Gateway-Partial") == "node-b";
  })) << answer.status
      << " " << answer.body;
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(json::parse(answer.body), (json{{"version", "0.5.7"}}));
  sim->stop();
}

}  // namespace
}  // namespace llmgw::testing
