// Live reconfiguration through the real binary: SIGHUP reloads the --config file (new nodes,
// limits and routing for new requests, a stream in flight finishes on the node it started on); a
// bad file keeps the running configuration and logs every problem with its key path;
// `serve --check-config` validates and exits 0 or 2. In process: what a reload keeps (session
// placements, node state: a node set reloaded is the node set the admin API gives) and what it
// reports instead of applying (listen, workers).

#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "support/gateway_fixture.hpp"
#include "support/serve_process.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

struct NodeEntry {
  std::string name;
  std::string url;
};

// A configuration file: loopback, ephemeral port, rare health checks, the given nodes, and
// `extra` YAML sections (which must not repeat listen, workers, health or nodes).
std::string config_yaml(const std::vector<NodeEntry>& nodes, const std::string& extra = {},
                        unsigned workers = 1) {
  std::string yaml = "listen: {address: 127.0.0.1, port: 0}\nworkers: " + std::to_string(workers) +
                     "\nhealth: {interval_ms: 60000}\nnodes:\n";
  for (const auto& node : nodes) {
    yaml += "  - {name: " + node.name + ", url: \"" + node.url + "\"}\n";
  }
  return yaml + extra;
}

std::vector<std::string> health_node_names(net::HttpClient& client, const ServeProcess& gateway) {
  const auto health = get_url(client, gateway.url("/health"));
  std::vector<std::string> names;
  const auto parsed = json::parse(health.body);  // alive for the loop (a temporary's member is not)
  for (const auto& node : parsed["nodes"]) {
    names.push_back(node["name"]);
  }
  return names;
}

struct StreamOutcome {
  int status = 0;
  std::string node;
  std::string body;
};

TEST(GatewayReload, SighupAppliesNewNodesLimitsAndRoutingWhileAStreamFinishesOnItsOldNode) {
  sim::OllamaSim old_sim(slow_sim_options(60, 50.0));  // a 3 s stream
  old_sim.start();
  sim::OllamaSim new_sim(fast_sim_options());
  new_sim.start();
  TempDir dir("llmgw-reload");
  const std::string file = dir.write("gateway.yaml", config_yaml({{"old", old_sim.base_url()}}));
  ServeProcess gateway(file);
  ASSERT_NE(gateway.port(), 0);
  net::HttpClient client;
  ASSERT_EQ(health_node_names(client, gateway), std::vector<std::string>{"old"});

  std::atomic<bool> streaming{false};
  auto stream = std::async(std::launch::async, [&] {
    net::HttpClient stream_client;
    StreamOutcome outcome;
    const auto exchange =
        post_json(stream_client, gateway.url("/api/generate"), generate_body("a long story"), {},
                  {}, [&](std::string_view chunk) {
                    outcome.body += chunk;
                    streaming = true;
                    return true;
                  });
    outcome.status = exchange.status;
    outcome.node = exchange.node;
    return outcome;
  });
  ASSERT_TRUE(wait_until([&] { return streaming.load(); }, kWait)) << "the stream started";

  dir.write("gateway.yaml",
            config_yaml({{"new", new_sim.base_url()}},
                        "limits: {max_body_bytes: 2000}\nrouting: {balance_by: requests}\n",
                        /*workers=*/2));
  gateway.process().signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("snapshot version 2", kWait)) << gateway.process().output();
  EXPECT_EQ(stream.wait_for(milliseconds{0}), std::future_status::timeout)
      << "the stream was still in flight when the new configuration took over";
  EXPECT_TRUE(gateway.wait_for_output("workers: 2 takes a restart; still 1", kWait))
      << gateway.process().output();

  EXPECT_EQ(health_node_names(client, gateway), std::vector<std::string>{"new"});
  const auto routing = json::parse(get_url(client, gateway.url("/health")).body)["routing"];
  EXPECT_EQ(routing["balance_by"], "requests");
  const auto next = post_json(client, gateway.url("/api/generate"), generate_body("hi", false));
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.node, "new");
  const auto too_large =
      post_json(client, gateway.url("/api/generate"), generate_body(std::string(3000, 'x'), false));
  EXPECT_EQ(too_large.status, 413) << "the reloaded limits.max_body_bytes applies";

  ASSERT_EQ(stream.wait_for(kWait), std::future_status::ready);
  const auto outcome = stream.get();
  EXPECT_EQ(outcome.status, 200);
  EXPECT_EQ(outcome.node, "old") << "a request in flight keeps the snapshot it started with";
  const auto records = ndjson_records(outcome.body);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back()["done"], true) << "the stream was not cut: " << outcome.body;
  EXPECT_EQ(records.size(), 61U);
  EXPECT_FALSE(gateway.process().wait_exit(milliseconds{0}).has_value()) << "still running";
}

TEST(GatewayReload, ABadFileKeepsTheRunningConfigurationAndLogsEveryProblemWithItsKeyPath) {
  sim::OllamaSim node_a(fast_sim_options());
  node_a.start();
  sim::OllamaSim node_b(fast_sim_options());
  node_b.start();
  TempDir dir("llmgw-reload-bad");
  const std::string file = dir.write("gateway.yaml", config_yaml({{"a", node_a.base_url()}}));
  ServeProcess gateway(file);
  ASSERT_NE(gateway.port(), 0);

  dir.write("gateway.yaml", config_yaml({{"b", "ftp://127.0.0.1:1"}},
                                        "routing: {balance_factor: 0.5}\n"
                                        "timeouts: {conect_ms: 5}\n"));
  gateway.process().signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("reload failed: keeping the running configuration", kWait))
      << gateway.process().output();
  for (const std::string path :
       {"nodes[0].url:", "routing.balance_factor:", "timeouts.conect_ms:"}) {
    EXPECT_TRUE(gateway.wait_for_output("reload: " + path, kWait)) << path << " not logged:\n"
                                                                   << gateway.process().output();
  }

  net::HttpClient client;
  EXPECT_EQ(health_node_names(client, gateway), std::vector<std::string>{"a"});
  const auto served = post_json(client, gateway.url("/api/generate"), generate_body("hi", false));
  EXPECT_EQ(served.status, 200);
  EXPECT_EQ(served.node, "a");

  dir.write("gateway.yaml", config_yaml({{"b", node_b.base_url()}}));
  gateway.process().signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("snapshot version 2", kWait)) << gateway.process().output();
  EXPECT_EQ(health_node_names(client, gateway), std::vector<std::string>{"b"})
      << "a mended file applies on the next SIGHUP";
}

TEST(GatewayReload, CheckConfigExitsZeroForAGoodFileAndTwoWithEveryProblemForABadOne) {
  TempDir dir("llmgw-check-config");
  const std::string good = dir.write("good.yaml", config_yaml({{"a", "http://127.0.0.1:11434"}}));
  ChildProcess ok(LLMGW_BINARY, {"serve", "--check-config", "--config", good});
  ASSERT_EQ(ok.wait_exit(kWait), 0) << ok.read_until("\n", milliseconds{1'000});
  EXPECT_NE(ok.read_until("configuration ok", kWait).find("configuration ok"), std::string::npos);

  const std::string bad = dir.write(
      "bad.yaml", config_yaml({{"a", "ftp://127.0.0.1:1"}}, "routing: {balance_by: tokens}\n"));
  ChildProcess refused(LLMGW_BINARY, {"serve", "--check-config", "--config", bad});
  const auto exit_code = refused.wait_exit(kWait);
  const std::string output = refused.read_until("routing.balance_by", kWait);
  ASSERT_EQ(exit_code, 2) << output;
  EXPECT_NE(output.find("nodes[0].url:"), std::string::npos) << output;
  EXPECT_NE(output.find("routing.balance_by:"), std::string::npos) << output;
  EXPECT_EQ(output.find("configuration ok"), std::string::npos) << output;
}

json health_of(GatewayFixture& fixture, net::HttpClient& client) {
  return json::parse(get_url(client, fixture.url("/health")).body);
}

TEST(GatewayReload, PlacementsSurviveAReloadThatKeepsTheBalanceModeAndResetWhenItChanges) {
  GatewayFixture fixture;
  net::HttpClient client;
  for (int i = 0; i < 6; ++i) {
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("hi", false),
                  "reload-session-" + std::to_string(i));
    ASSERT_EQ(exchange.status, 200) << exchange.body;
  }
  ASSERT_EQ(health_of(fixture, client)["routing"]["live_sessions"], 6);

  auto next = fixture.config();
  next.timeouts.first_byte = milliseconds{4'000};
  next.routing.session_idle = milliseconds{200'000};
  EXPECT_TRUE(fixture.gateway().reload(next).empty());
  EXPECT_EQ(health_of(fixture, client)["routing"]["live_sessions"], 6)
      << "a reload that keeps balance_by keeps the sessions where their caches are";

  next.routing.balance_by = "requests";
  fixture.gateway().reload(next);
  auto health = health_of(fixture, client);
  EXPECT_EQ(health["routing"]["balance_by"], "requests");
  EXPECT_EQ(health["routing"]["live_sessions"], 0);
  for (const auto& node : health["nodes"]) {
    EXPECT_EQ(node["sessions"], 0) << node.dump() << ": the retired table gave its counts back";
  }

  next.routing.balance_by = "sessions";
  fixture.gateway().reload(next);
  EXPECT_EQ(health_of(fixture, client)["routing"]["live_sessions"], 0) << "a fresh table";
  EXPECT_EQ(
      post_json(client, fixture.url("/api/generate"), generate_body("hi", false), "again").status,
      200);
  EXPECT_EQ(health_of(fixture, client)["routing"]["live_sessions"], 1);
}

TEST(GatewayReload, ListenAndWorkersTakeARestartAndAreReportedNotApplied) {
  GatewayFixture fixture;
  auto next = fixture.config();
  next.listen.port = 1;
  next.workers = 3;
  next.routing.max_attempts = 2;
  const auto notes = fixture.gateway().reload(next);
  ASSERT_EQ(notes.size(), 2U);
  EXPECT_NE(notes[0].find("listen.port: 1 takes a restart"), std::string::npos) << notes[0];
  EXPECT_NE(notes[1].find("workers: 3 takes a restart; still 2"), std::string::npos) << notes[1];
  net::HttpClient client;
  const auto health = health_of(fixture, client);
  EXPECT_EQ(health["routing"]["max_attempts"], 2) << "the rest of the change applies";
}

TEST(GatewayReload, ReloadingTheNodeSetTheAdminApiMadeChangesNothing) {
  constexpr std::string_view kToken = "reload-admin-token";
  GatewayFixture fixture({.configure = [&](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
  }});
  sim::OllamaSim extra(fast_sim_options());
  extra.start();
  net::HttpClient client;
  net::ClientRequest add;
  add.method = "POST";
  add.url = fixture.url("/admin/nodes");
  add.headers = {{"Authorization", "Bearer " + std::string{kToken}},
                 {"Content-Type", "application/json"}};
  add.body = json{{"name", "node-d"}, {"url", extra.base_url()}}.dump();
  ASSERT_EQ(client.send(add).status, 201);
  for (int i = 0; i < 8; ++i) {  // round robin: every node, node-d included, serves some
    ASSERT_EQ(post_json(client, fixture.url("/api/generate"), generate_body("hi", false)).status,
              200);
  }
  // The catalog fetches run in the background: compare once every node's is current.
  const auto settled_health = [&] {
    json health;
    EXPECT_TRUE(wait_until([&] {
      health = health_of(fixture, client);
      return std::all_of(health["nodes"].begin(), health["nodes"].end(),
                         [](const json& node) { return node["catalog"]["current"] == true; });
    })) << health.dump();
    return health;
  };
  auto by_admin = settled_health();

  auto next = fixture.config();
  next.nodes.push_back(test_node("node-d", extra.base_url()));
  EXPECT_TRUE(fixture.gateway().reload(next).empty());
  auto by_reload = settled_health();
  for (auto* health : {&by_reload, &by_admin}) {
    for (auto& node : (*health)["nodes"]) {
      node["catalog"].erase("age_ms");  // the time since the last fetch moves on
    }
  }
  EXPECT_EQ(by_reload["nodes"], by_admin["nodes"])
      << "same nodes, same ring, same counters: the nodes that stay are the same nodes";
  EXPECT_EQ(by_reload["ring"]["virtual_nodes"], by_admin["ring"]["virtual_nodes"]);
  EXPECT_GT(by_reload["ring"]["snapshot_version"], by_admin["ring"]["snapshot_version"]);
}

}  // namespace
}  // namespace llmgw::testing
