// Error responses a client can act on: each status with a JSON {"error": ...} body that says what
// happened, and a 5xx from one node retried on the next before any byte reached the client.

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// The "error" message of a JSON error body; fails the test when the body is not one.
std::string error_message(const std::string& body) {
  const auto parsed = json::parse(body, nullptr, false);
  if (parsed.is_discarded() || !parsed.is_object() || !parsed.contains("error") ||
      !parsed["error"].is_string()) {
    ADD_FAILURE() << "not a JSON {\"error\": ...} body: " << body;
    return {};
  }
  return parsed["error"].get<std::string>();
}

TEST(GatewayErrors, MalformedRequestGets400) {
  GatewayFixture fixture;
  const auto response = raw_exchange(fixture.gateway().port(), "THIS IS NOT HTTP AT ALL\r\n\r\n");
  ASSERT_EQ(raw_status(response), 400) << response;
  EXPECT_NE(error_message(raw_body(response)).find("malformed"), std::string::npos);
}

TEST(GatewayErrors, BodyOverTheLimitGets413) {
  GatewayFixture fixture(
      {.configure = [](config::GatewayConfig& config) { config.limits.max_body_bytes = 1024; }});
  net::HttpClient client;
  const auto exchange = post_json(client, fixture.url("/api/generate"),
                                  generate_body(std::string(4096, 'x')), "big-body-session");
  ASSERT_EQ(exchange.status, 413) << exchange.body;
  EXPECT_NE(error_message(exchange.body).find("max_body_bytes"), std::string::npos);
  EXPECT_EQ(fixture.sim(fixture.ring_owner("big-body-session")).stats().prompt_tokens, 0U)
      << "the oversized request reached a node";
}

TEST(GatewayErrors, ChunkedBodyOverTheLimitGets413) {
  GatewayFixture fixture(
      {.configure = [](config::GatewayConfig& config) { config.limits.max_body_bytes = 1024; }});
  std::ostringstream request;
  request << "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
          << "Transfer-Encoding: chunked\r\n\r\n"
          << std::hex << 2048 << "\r\n"
          << std::string(2048, 'x') << "\r\n0\r\n\r\n";
  const auto response = raw_exchange(fixture.gateway().port(), request.str());
  ASSERT_EQ(raw_status(response), 413) << response.substr(0, 200);
  EXPECT_NE(error_message(raw_body(response)).find("max_body_bytes"), std::string::npos);
}

TEST(GatewayErrors, HeaderOverTheLimitGets431) {
  GatewayFixture fixture(
      {.configure = [](config::GatewayConfig& config) { config.limits.max_header_bytes = 2048; }});
  const std::string request =
      "GET /api/tags HTTP/1.1\r\nHost: localhost\r\nX-Padding: " + std::string(8192, 'p') +
      "\r\n\r\n";
  const auto response = raw_exchange(fixture.gateway().port(), request);
  ASSERT_EQ(raw_status(response), 431) << response.substr(0, 200);
  EXPECT_NE(error_message(raw_body(response)).find("max_header_bytes"), std::string::npos);
}

TEST(GatewayErrors, EveryNodeDownGets502) {
  GatewayFixture fixture;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    fixture.stop_sim(i);  // nothing listens on its port any more
  }
  net::HttpClient client;
  for (const std::string session : {"", "down-session"}) {
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("anyone?"), session);
    ASSERT_EQ(exchange.status, 502) << exchange.body;
    EXPECT_NE(error_message(exchange.body).find("could not connect"), std::string::npos)
        << exchange.body;
  }
}

TEST(GatewayErrors, NodesThatDoNotAnswerInTimeGet504) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.timeouts.first_byte = milliseconds{300};
  }});
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    fixture.sim(i).set_fault({.mode = sim::FaultMode::hang});
  }
  net::HttpClient client;
  const auto started = Clock::now();
  const auto exchange =
      post_json(client, fixture.url("/api/generate"), generate_body("hello?"), "hang-session");
  const auto took = Clock::now() - started;
  ASSERT_EQ(exchange.status, 504) << exchange.body;
  EXPECT_NE(error_message(exchange.body).find("did not answer within 300 ms"), std::string::npos)
      << exchange.body;
  // Three attempts of 300 ms each, with generous room for a loaded machine.
  EXPECT_GE(took, milliseconds{300});
  EXPECT_LT(took, milliseconds{4'000});
}

TEST(GatewayErrors, A5xxFromTheOwnerIsRetriedOnTheNextNode) {
  GatewayFixture fixture;
  const std::string session = "retry-session";
  const auto order = fixture.ring_order(session);
  fixture.sim(order[0]).set_fault({.mode = sim::FaultMode::error500});
  net::HttpClient client;
  const auto exchange =
      post_json(client, fixture.url("/api/generate"), generate_body("retry me", false), session);
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  EXPECT_EQ(exchange.node, fixture.node_name(order[1]));
  EXPECT_EQ(exchange.route, "failover");
  EXPECT_TRUE(json::parse(exchange.body)["done"].get<bool>());
}

TEST(GatewayErrors, AStreamThatBreaksMidwayEndsWithAnErrorRecord) {
  GatewayFixture fixture;
  const std::string session = "broken-stream-session";
  const auto owner = fixture.ring_owner(session);
  fixture.sim(owner).set_fault({.mode = sim::FaultMode::close_mid_stream, .after_tokens = 2});
  net::HttpClient client;
  const auto exchange =
      post_json(client, fixture.url("/api/generate"), generate_body("break"), session);
  // The head went out before the break, so the status stays 200 and nothing is retried.
  ASSERT_EQ(exchange.status, 200);
  EXPECT_EQ(exchange.node, fixture.node_name(owner));
  const auto records = ndjson_records(exchange.body);
  ASSERT_EQ(records.size(), 3U) << exchange.body;  // two tokens, then the gateway's error record
  EXPECT_FALSE(records[1].contains("error"));
  ASSERT_TRUE(records.back().contains("error")) << exchange.body;
  EXPECT_NE(records.back()["error"].get<std::string>().find(fixture.node_name(owner)),
            std::string::npos);
}

}  // namespace
}  // namespace llmgw::testing
