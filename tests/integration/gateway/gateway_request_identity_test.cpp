// Every request's identity through the gateway: the client's X-Request-ID (or a generated one)
// reaches the node and comes back, on relayed answers and on the gateway's own; traceparent keeps
// the client's trace with the gateway's hop as the parent, or starts one. A fake
// OpenAI-compatible node records what it received.

#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "fakes/fake_openai.hpp"
#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

const std::string kChat =
    R"({"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":4})";
const std::string kTraceId = "4bf92f3577b34da6a3ce929d0e0e4736";

class GatewayRequestIdentity : public ::testing::Test {
 protected:
  void SetUp() override {
    auto node = test_node("fake", node_.base_url());
    node.api = "openai";
    auto config = test_gateway_config({node});
    config.catalog.interval = std::chrono::milliseconds{0};
    config::validate(config);
    gateway_ = std::make_unique<server::Gateway>(config);
    gateway_->start();
  }

  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(gateway_->port()) + std::string{path};
  }

  fakes::FakeOpenAi node_;
  std::unique_ptr<server::Gateway> gateway_;
  net::HttpClient client_;
};

TEST_F(GatewayRequestIdentity, TheClientsRequestIdAndTraceReachTheNodeAndTheIdComesBack) {
  const std::string parent = "00f067aa0ba902b7";
  const auto exchange = post_json(
      client_, url("/v1/chat/completions"), kChat, "s1",
      {{"X-Request-ID", "client-req-7"}, {"traceparent", "00-" + kTraceId + "-" + parent + "-01"}});
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  EXPECT_EQ(exchange.response.header("X-Request-ID").value_or(""), "client-req-7");
  ASSERT_EQ(node_.request_count(), 1U);
  const auto received = node_.requests().front();
  EXPECT_EQ(received.header("X-Request-ID").value_or(""), "client-req-7");
  const std::string traceparent{received.header("traceparent").value_or("")};
  std::smatch parts;
  ASSERT_TRUE(
      std::regex_match(traceparent, parts, std::regex{"00-([0-9a-f]{32})-([0-9a-f]{16})-01"}))
      << traceparent;
  EXPECT_EQ(parts[1], kTraceId) << "the client's trace continues";
  EXPECT_NE(parts[2], parent) << "the gateway's hop is the node's parent";
}

TEST_F(GatewayRequestIdentity, ARequestWithoutIdsGetsGeneratedOnesAndBadOnesAreReplaced) {
  const auto plain = post_json(client_, url("/v1/chat/completions"), kChat, "s2");
  ASSERT_EQ(plain.status, 200) << plain.body;
  const std::string id{plain.response.header("X-Request-ID").value_or("")};
  EXPECT_TRUE(std::regex_match(id, std::regex{"[0-9a-f]{32}"})) << id;
  const auto received = node_.requests().back();
  EXPECT_EQ(received.header("X-Request-ID").value_or(""), id);
  EXPECT_TRUE(std::regex_match(std::string{received.header("traceparent").value_or("")},
                               std::regex{"00-[0-9a-f]{32}-[0-9a-f]{16}-00"}));

  const auto bad = post_json(client_, url("/v1/chat/completions"), kChat, "s3",
                             {{"X-Request-ID", std::string(300, 'x')}, {"traceparent", "junk"}});
  ASSERT_EQ(bad.status, 200) << bad.body;
  EXPECT_TRUE(std::regex_match(std::string{bad.response.header("X-Request-ID").value_or("")},
                               std::regex{"[0-9a-f]{32}"}));
  EXPECT_NE(bad.response.header("X-Request-ID").value_or(""), id);
}

TEST_F(GatewayRequestIdentity, TheGatewaysOwnAnswersCarryTheRequestIdToo) {
  // A priority class the gateway does not know: its own 400, no node touched.
  const auto refused = post_json(client_, url("/v1/chat/completions"), kChat, "s4",
                                 {{"X-Request-ID", "req-refused"}, {"X-Request-Priority", "vip"}});
  EXPECT_EQ(refused.status, 400) << refused.body;
  EXPECT_EQ(refused.response.header("X-Request-ID").value_or(""), "req-refused");
  EXPECT_EQ(node_.request_count(), 0U);
  // A local endpoint.
  const auto health = get_url(client_, url("/health"), {{"X-Request-ID", "req-health"}});
  EXPECT_EQ(health.response.header("X-Request-ID").value_or(""), "req-health");
}

}  // namespace
}  // namespace llmgw::testing
