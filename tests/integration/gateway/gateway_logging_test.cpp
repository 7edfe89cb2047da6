// The gateway's log output through the real binary: with log.format json every line is one JSON
// object (start, ejection, reload errors, access lines, shutdown); probes and scrapes write no
// access lines unless log.access_log_probes is on, and a reload turns it on.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "support/gateway_fixture.hpp"
#include "support/serve_process.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream stream(text);
  for (std::string line; std::getline(stream, line);) {
    if (!line.empty()) {
      lines.push_back(line);
    }
  }
  return lines;
}

TEST(GatewayLogging, WithJsonFormatEveryLineIsOneJsonObject) {
  sim::OllamaSim sim(fast_sim_options());
  sim.start();
  TempDir dir("llmgw-json-log");
  // A node nobody listens on (port 1) is ejected after one failed probe: a warning line.
  const std::string yaml =
      "listen: {address: 127.0.0.1, port: 0}\nworkers: 1\n"
      "nodes:\n  - {name: up, url: \"" +
      sim.base_url() +
      "\"}\n  - {name: down, url: \"http://127.0.0.1:1\"}\n"
      "health: {interval_ms: 200, unhealthy_threshold: 1}\n"
      "log: {format: json}\n";
  const std::string file = dir.write("gateway.yaml", yaml);
  ServeProcess gateway(file);
  ASSERT_NE(gateway.port(), 0);
  ASSERT_TRUE(gateway.wait_for_output("ejected", kWait)) << gateway.process().output();

  net::HttpClient client;
  // A proxied path (/api/tags is answered by the gateway for the fleet: no node in its line).
  EXPECT_EQ(get_url(client, gateway.url("/v1/models/llama3.2")).status, 200);
  // A reload error quoting a value with a quote and a backslash: escaped, not pasted.
  dir.write("gateway.yaml", yaml + "routing: {balance_by: \"a\\\"b\\\\c\"}\n");
  gateway.process().signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("routing.balance_by", kWait)) << gateway.process().output();
  gateway.process().signal(SIGTERM);
  ASSERT_EQ(gateway.process().wait_exit(kWait), 0);
  gateway.wait_for_output("\"stopped\"", kWait);

  std::vector<std::string> messages;
  std::vector<json> access;
  for (const auto& line : lines_of(gateway.process().output())) {
    json record;
    ASSERT_NO_THROW(record = json::parse(line)) << "not JSON: " << line;
    ASSERT_TRUE(record.is_object()) << line;
    EXPECT_TRUE(record["time"].is_string()) << line;
    EXPECT_TRUE(record["level"].is_string()) << line;
    if (record.contains("access")) {
      access.push_back(record["access"]);
    } else {
      ASSERT_TRUE(record["message"].is_string()) << line;
      messages.push_back(record["message"]);
    }
  }
  const auto logged = [&](const std::string& text) {
    for (const auto& message : messages) {
      if (message.find(text) != std::string::npos) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(logged("llmgw listening on 127.0.0.1:"));
  EXPECT_TRUE(logged("node down ejected for"));
  EXPECT_TRUE(logged("reload failed: keeping the running configuration"));
  EXPECT_TRUE(logged("routing.balance_by: must be one of sessions, requests; got \"a\\\"b\\\\c\""));
  EXPECT_TRUE(logged("stopping: no new connections"));
  EXPECT_TRUE(logged("stopped"));
  ASSERT_EQ(access.size(), 1U) << "one proxied request";
  EXPECT_EQ(access[0]["path"], "/v1/models/llama3.2");
  EXPECT_EQ(access[0]["status"], 200);
  EXPECT_EQ(access[0]["node"], "up");
}

TEST(GatewayLogging, ProbesAndScrapesWriteNoAccessLinesUntilAccessLogProbesIsOn) {
  sim::OllamaSim sim(fast_sim_options());
  sim.start();
  TempDir dir("llmgw-probe-log");
  const std::string yaml =
      "listen: {address: 127.0.0.1, port: 0}\nworkers: 1\n"
      "health: {interval_ms: 60000}\nnodes: [\"" +
      sim.base_url() + "\"]\n";
  const std::string file = dir.write("gateway.yaml", yaml);
  ServeProcess gateway(file);
  ASSERT_NE(gateway.port(), 0);

  net::HttpClient client;
  for (const std::string path : {"/health", "/metrics", "/", "/status"}) {
    EXPECT_EQ(get_url(client, gateway.url(path)).status, 200) << path;
  }
  // Requests on one connection are answered in order: once the proxied request's line is out,
  // the probes' lines would be out too.
  EXPECT_EQ(get_url(client, gateway.url("/api/tags")).status, 200);
  ASSERT_TRUE(gateway.wait_for_output("GET /api/tags 200", kWait)) << gateway.process().output();
  const std::string before = gateway.process().output();
  EXPECT_EQ(before.find("GET /health"), std::string::npos) << before;
  EXPECT_EQ(before.find("GET /metrics"), std::string::npos) << before;
  EXPECT_EQ(before.find("GET / "), std::string::npos) << before;
  EXPECT_EQ(before.find("GET /status"), std::string::npos) << before;

  dir.write("gateway.yaml", yaml + "log: {access_log_probes: true}\n");
  gateway.process().signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("snapshot version 2", kWait)) << gateway.process().output();
  EXPECT_EQ(get_url(client, gateway.url("/health")).status, 200);
  EXPECT_TRUE(gateway.wait_for_output("GET /health 200", kWait)) << gateway.process().output();
}

}  // namespace
}  // namespace llmgw::testing
