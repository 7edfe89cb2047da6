// The real `llmgw serve` process: SIGTERM stops accepting at once, lets a stream in flight finish,
// and exits 0 within the drain deadline.

#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "support/child_process.hpp"
#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

bool connection_refused(std::uint16_t port) {
  const int fd = connect_loopback(port, 1'000);
  if (fd >= 0) {
    ::close(fd);
    return false;
  }
  return errno == ECONNREFUSED;
}

TEST(GatewayShutdown, SigtermDrainsAStreamInFlightThenExitsZero) {
  // 15 tokens, 100 ms apart: the stream is still running when the signal arrives.
  sim::OllamaSim node(slow_sim_options(15, 100.0));
  node.start();
  ChildProcess gateway(LLMGW_BINARY, {"serve", "--listen", "127.0.0.1", "--port", "0", "--workers",
                                      "2", "--node", "node-a=" + node.base_url(), "--log-level",
                                      "info", "--set", "shutdown.drain_ms=8000"});
  const std::string marker = "llmgw listening on 127.0.0.1:";
  // The whole listening line (a start-up warning may come before it).
  const std::string output = gateway.read_until("routing", milliseconds{10'000});
  const auto at = output.find(marker);
  ASSERT_NE(at, std::string::npos) << output;
  const auto port = static_cast<std::uint16_t>(std::stoi(output.substr(at + marker.size())));
  ASSERT_GT(port, 0);
  const std::string base = "http://127.0.0.1:" + std::to_string(port);

  std::atomic<bool> first_chunk{false};
  std::string body;
  Exchange exchange;
  Clock::time_point stream_done;
  std::thread stream([&] {
    net::HttpClient client;
    exchange = post_json(client, base + "/api/generate", generate_body("drain me"), "drain-session",
                         {}, [&](std::string_view data) {
                           body.append(data);
                           first_chunk.store(true);
                           return true;
                         });
    stream_done = Clock::now();
  });
  struct Joiner {
    std::thread& thread;
    ~Joiner() {
      if (thread.joinable()) {
        thread.join();
      }
    }
  } joiner{stream};
  ASSERT_TRUE(wait_until([&] { return first_chunk.load(); }, milliseconds{10'000}))
      << "the stream never started";

  gateway.signal(SIGTERM);
  EXPECT_TRUE(wait_until([&] { return connection_refused(port); }, milliseconds{3'000}))
      << "the gateway still accepts connections after SIGTERM";

  stream.join();
  const auto exit_code = gateway.wait_exit(milliseconds{8'000 + 4'000});
  const auto exited = Clock::now();
  EXPECT_EQ(exchange.status, 200);
  const auto records = ndjson_records(body);
  ASSERT_EQ(records.size(), 16U) << body;  // every token and the final record
  EXPECT_TRUE(records.back()["done"].get<bool>()) << records.back().dump();
  EXPECT_EQ(records.back()["done_reason"], "stop");
  ASSERT_TRUE(exit_code.has_value()) << "llmgw did not exit within the drain deadline:\n"
                                     << gateway.read_until("\n\n\n", milliseconds{100});
  EXPECT_EQ(*exit_code, 0) << gateway.read_until("\n\n\n", milliseconds{100});
  EXPECT_LE(stream_done, exited);
}

TEST(GatewayShutdown, AStreamCutAtTheDrainDeadlineEndsWithAnErrorRecord) {
  // 40 tokens 100 ms apart (4 s) against a drain deadline of 300 ms.
  GatewayFixture fixture(
      {.nodes = 1,
       .sim = slow_sim_options(40, 100.0),
       .configure = [](config::GatewayConfig& config) { config.drain = milliseconds{300}; }});
  std::atomic<bool> first_chunk{false};
  std::string body;
  Exchange exchange;
  std::thread stream([&] {
    net::HttpClient client;
    exchange = post_json(client, fixture.url("/api/generate"), generate_body("cut me"), "cut", {},
                         [&](std::string_view data) {
                           body.append(data);
                           first_chunk.store(true);
                           return true;
                         });
  });
  ASSERT_TRUE(wait_until([&] { return first_chunk.load(); }, milliseconds{10'000}));
  fixture.gateway().request_stop();
  stream.join();
  fixture.gateway().wait();
  EXPECT_EQ(exchange.status, 200);
  const auto records = ndjson_records(body);
  ASSERT_FALSE(records.empty()) << body;
  ASSERT_TRUE(records.back().contains("error")) << "the stream ended without a word:\n" << body;
  EXPECT_NE(records.back()["error"].get<std::string>().find("shutting down"), std::string::npos)
      << records.back().dump();
  EXPECT_LT(records.size(), 41U) << "the stream was not cut";
}

}  // namespace
}  // namespace llmgw::testing
