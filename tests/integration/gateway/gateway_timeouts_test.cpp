// The timeouts a client and a node run into (kept by one watchdog per client connection), and
// responses of every size relayed intact whether their body came with the head or after it.

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

long long elapsed_ms(Clock::time_point since) {
  return std::chrono::duration_cast<milliseconds>(Clock::now() - since).count();
}

struct TimedAnswer {
  std::string answer;  // everything the gateway sent before it closed
  long long took_ms = 0;
};

// Sends `bytes` on a fresh connection to a gateway whose client_header is `client_header`.
TimedAnswer send_raw_with_client_header(milliseconds client_header, const std::string& bytes) {
  GatewayFixture fixture({.configure = [client_header](config::GatewayConfig& config) {
    config.timeouts.client_header = client_header;
  }});
  const auto started = Clock::now();
  auto answer = raw_exchange(fixture.gateway().port(), bytes, 8'000);
  return {std::move(answer), elapsed_ms(started)};
}

TEST(GatewayTimeouts, AClientThatNeverFinishesItsHeadIsClosedAfterClientHeader) {
  // No blank line: the head never ends. raw_exchange returns when the gateway closes.
  const auto [answer, took] = send_raw_with_client_header(
      milliseconds{300}, "GET /api/version HTTP/1.1\r\nHost: gateway\r\n");
  EXPECT_EQ(answer, "") << "a connection that timed out before its head gets no answer";
  EXPECT_GE(took, 250) << "closed before client_header (300 ms) passed";
  EXPECT_LT(took, 4'000) << "not closed by the client_header timeout (300 ms)";
}

TEST(GatewayTimeouts, AnIdleKeepAliveConnectionIsClosedAfterClientHeaderNotBefore) {
  // One complete request, then silence: the answer comes at once, the close after ~400 ms.
  const auto [answer, took] = send_raw_with_client_header(
      milliseconds{400}, "GET /api/version HTTP/1.1\r\nHost: gateway\r\n\r\n");
  ASSERT_EQ(raw_status(answer), 200) << answer;
  EXPECT_TRUE(json::parse(raw_body(answer)).contains("version")) << answer;
  EXPECT_GE(took, 300) << "the idle connection was closed before client_header (400 ms)";
  EXPECT_LT(took, 4'000) << "the idle connection was not closed by client_header (400 ms)";
}

TEST(GatewayTimeouts, AStreamThatStallsLongerThanIdleEndsWithAnErrorRecord) {
  // Tokens 1.5 s apart against an idle timeout of 300 ms: the stream is cut at the first gap.
  GatewayFixture fixture({.nodes = 1,
                          .sim = slow_sim_options(4, 1'500.0),
                          .configure = [](config::GatewayConfig& config) {
                            config.timeouts.idle = milliseconds{300};
                          }});
  net::HttpClient client;
  const auto started = Clock::now();
  const auto exchange =
      post_json(client, fixture.url("/api/generate"), generate_body("stall"), "stall-session");
  const auto took = elapsed_ms(started);
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  const auto records = ndjson_records(exchange.body);
  ASSERT_FALSE(records.empty()) << exchange.body;
  ASSERT_TRUE(records.back().contains("error")) << exchange.body;
  EXPECT_NE(records.back()["error"].get<std::string>().find("ended the stream unexpectedly"),
            std::string::npos)
      << exchange.body;
  EXPECT_LT(took, 4'500) << "the stream ran to its end (4 tokens, 1.5 s apart): idle not enforced";
}

TEST(GatewayTimeouts, ShortTimeoutsDoNotCutAStreamWhoseChunksComeInTime) {
  // Tokens 100 ms apart, idle 400 ms, client_header 200 ms: every wait is shorter than its limit,
  // and the short client_header between requests does not leak into the relay.
  GatewayFixture fixture({.nodes = 1,
                          .sim = slow_sim_options(6, 100.0),
                          .configure = [](config::GatewayConfig& config) {
                            config.timeouts.idle = milliseconds{400};
                            config.timeouts.client_header = milliseconds{200};
                          }});
  net::HttpClient client;
  for (int turn = 0; turn < 2; ++turn) {
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("in time"), "kept-session");
    ASSERT_EQ(exchange.status, 200) << exchange.body;
    const auto records = ndjson_records(exchange.body);
    ASSERT_EQ(records.size(), 7U) << exchange.body;  // 6 tokens + the final done record
    EXPECT_TRUE(records.back()["done"].get<bool>()) << exchange.body;
  }
}

TEST(GatewayTimeouts, ResponsesSmallerAndLargerThanTheRelayBufferArriveIntact) {
  // 2 KiB relay buffer (RelayBuffers): a few tokens fit with the head, 6,000 tokens take many
  // reads, more than 16 KiB in all.
  for (const std::size_t tokens : {4U, 6'000U}) {
    sim::SimOptions options = fast_sim_options();
    options.latency.time_scale = 0.0001;
    options.output = {tokens, tokens};
    GatewayFixture fixture({.nodes = 1, .sim = options});
    net::HttpClient client;
    const auto exchange = post_json(client, fixture.url("/api/generate"),
                                    generate_body("size me", false), "size-session");
    ASSERT_EQ(exchange.status, 200) << exchange.body.substr(0, 200);
    const auto parsed = json::parse(exchange.body, nullptr, false);
    ASSERT_FALSE(parsed.is_discarded())
        << "not one JSON document: " << exchange.body.size() << " bytes";
    EXPECT_EQ(parsed["eval_count"].get<std::size_t>(), tokens);
    if (tokens > 1'000) {
      EXPECT_GT(exchange.body.size(), 16U * 1024U) << "the body did not exceed the relay buffer";
    }
  }
}

}  // namespace
}  // namespace llmgw::testing
