// The gateway's own resources, through the real binary: the open-files limit it raises (or works
// within) and the listening port it refuses to share with another gateway.

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "llmgw/sim/ollama_sim.hpp"
#include "support/child_process.hpp"
#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using std::chrono::milliseconds;

// The port from the gateway's "llmgw listening on ADDRESS:PORT" line, 0 if it never came.
int listening_port(ChildProcess& gateway) {
  const std::string marker = "llmgw listening on 127.0.0.1:";
  const std::string output = gateway.read_until("routing", milliseconds{20'000});
  const auto at = output.find(marker);
  if (at == std::string::npos) {
    ADD_FAILURE() << "the gateway did not start: " << output;
    return 0;
  }
  return std::stoi(output.substr(at + marker.size()));
}

// `llmgw serve ARGS` under `ulimit_args` (e.g. "-n 200"), exec'd by /bin/sh so that the child's
// pid is the gateway's.
std::unique_ptr<ChildProcess> serve_with_ulimit(const std::string& ulimit_args,
                                                const std::string& serve_args) {
  return std::make_unique<ChildProcess>(
      "/bin/sh", std::vector<std::string>{
                     "-c", "ulimit " + ulimit_args + " && exec " + std::string{LLMGW_BINARY} +
                               " serve --listen 127.0.0.1 --port 0 --workers 1 " + serve_args});
}

// The soft "Max open files" of process `pid`.
std::size_t soft_open_files(pid_t pid) {
  std::ifstream limits("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(limits, line)) {
    if (line.starts_with("Max open files")) {
      return std::stoull(line.substr(std::string_view{"Max open files"}.size()));
    }
  }
  return 0;
}

TEST(GatewayResources, ASecondServeOnAPortInUseRefusesToStart) {
  ChildProcess first(LLMGW_BINARY, {"serve", "--listen", "127.0.0.1", "--port", "0", "--workers",
                                    "2", "--node", "http://127.0.0.1:9"});
  const int port = listening_port(first);
  ASSERT_GT(port, 0);
  ChildProcess second(
      LLMGW_BINARY, {"serve", "--listen", "127.0.0.1", "--port", std::to_string(port), "--workers",
                     "2", "--node", "http://127.0.0.1:9"});
  const std::string output = second.read_until("listens on this port", milliseconds{20'000});
  const auto exit_code = second.wait_exit(milliseconds{20'000});
  ASSERT_TRUE(exit_code.has_value()) << "the second gateway started: " << output;
  EXPECT_EQ(*exit_code, 1);
  EXPECT_NE(output.find("cannot listen on 127.0.0.1:" + std::to_string(port)), std::string::npos)
      << output;
  EXPECT_NE(output.find("another process"), std::string::npos) << output;
  // The first one still serves.
  net::HttpClient client;
  EXPECT_EQ(get_url(client, "http://127.0.0.1:" + std::to_string(port) + "/health").status, 200);
}

TEST(GatewayResources, TheOpenFilesSoftLimitIsRaisedAtStart) {
  auto gateway = serve_with_ulimit("-Sn 128",
                                   "--node http://127.0.0.1:9 --set "
                                   "limits.max_connections=1000");
  ASSERT_GT(listening_port(*gateway), 0);
  // 2 per connection, the pools (1 worker x 1 node x 64), the reserve.
  EXPECT_GE(soft_open_files(gateway->pid()), 2U * 1000 + 64 + 64);
}

TEST(GatewayResources, RunningOutOfDescriptorsIsAnsweredByTheGatewayAndEjectsNoNode) {
  std::vector<std::unique_ptr<sim::OllamaSim>> sims;
  std::string nodes;
  for (int i = 0; i < 3; ++i) {
    sims.push_back(std::make_unique<sim::OllamaSim>(slow_sim_options(10, 20.0)));
    sims.back()->start();
    nodes += " --node node-" + std::to_string(i) + "=" + sims.back()->base_url();
  }
  // 200 descriptors: (200 - 64 reserved - 3 pooled) / 2 = 66 client connections.
  auto gateway = serve_with_ulimit("-n 200", nodes + " --set limits.max_idle_upstream_per_node=1");
  const int port = listening_port(*gateway);
  ASSERT_GT(port, 0);
  EXPECT_NE(gateway->output().find("open-files limit 200"), std::string::npos) << gateway->output();

  constexpr int kStreams = 150;
  const std::string body = generate_body("hold a descriptor", true);
  const std::string request =
      "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nContent-Type: "
      "application/json\r\nConnection: close\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  // All connections first, then the requests: accepted connections take the descriptors that
  // the upstream connects need next (the 1,000 streams under ulimit -n 1024).
  std::vector<int> sockets;
  for (int i = 0; i < kStreams; ++i) {
    const int fd = connect_loopback(static_cast<std::uint16_t>(port), 10'000);
    ASSERT_GE(fd, 0);
    sockets.push_back(fd);
  }
  for (const int fd : sockets) {
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  }
  int ok = 0;
  int refused = 0;
  int other = 0;
  std::string example;
  for (const int fd : sockets) {
    std::string response;
    char buffer[4096];
    for (ssize_t n = 0; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
      response.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    const int status = raw_status(response);
    ok += status == 200 ? 1 : 0;
    refused += status == 503 ? 1 : 0;
    if (status != 200 && status != 503) {
      ++other;
      example = response.substr(0, 300);
    }
  }
  EXPECT_EQ(other, 0) << "e.g. " << example;
  EXPECT_GT(ok, 0);
  EXPECT_EQ(ok + refused, kStreams);

  net::HttpClient client;
  const auto health = get_url(client, "http://127.0.0.1:" + std::to_string(port) + "/health");
  const auto parsed = nlohmann::json::parse(health.body, nullptr, false);
  ASSERT_TRUE(parsed.contains("nodes")) << health.body;
  for (const auto& node : parsed["nodes"]) {
    EXPECT_TRUE(node["healthy"].get<bool>()) << node.dump();
  }
  EXPECT_EQ(
      post_json(client, "http://127.0.0.1:" + std::to_string(port) + "/api/generate", body).status,
      200);
}

}  // namespace
}  // namespace llmgw::testing
