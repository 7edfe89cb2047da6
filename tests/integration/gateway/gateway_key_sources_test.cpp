// Session keys for clients that send no X-Session-ID (routing.key_sources): the agents' own
// headers, the body's prompt_cache_key and the fingerprint of the conversation's start, each
// keeping a conversation on one node and saying which source decided (X-Gateway-Key-Source).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

std::string chat(const json& messages) {
  return json{{"model", "llama3.2"}, {"messages", messages}, {"stream", false}}.dump();
}

TEST(GatewayKeySources, AHeaderlessConversationStaysOnOneNodeForEightTurns) {
  GatewayFixture fixture;
  net::HttpClient client;
  json messages = json::array({{{"role", "system"}, {"content", "You are terse."}},
                               {{"role", "user"}, {"content", "tell me about rings"}}});
  std::set<std::string> nodes;
  for (int turn = 0; turn < 8; ++turn) {
    const auto exchange = post_json(client, fixture.url("/api/chat"), chat(messages));
    ASSERT_EQ(exchange.status, 200) << exchange.body;
    EXPECT_EQ(exchange.response.header("X-Gateway-Key-Source").value_or(""), "prefix");
    EXPECT_NE(exchange.route, "round_robin");
    nodes.insert(exchange.node);
    messages.push_back(json::parse(exchange.body)["message"]);
    messages.push_back({{"role", "user"}, {"content", "and turn " + std::to_string(turn)}});
  }
  EXPECT_EQ(nodes.size(), 1U) << "the conversation moved between nodes";
  // Its later turns were served from the node's KV cache.
  std::uint64_t cached = 0;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    cached += fixture.sim(i).stats().cached_prompt_tokens;
  }
  EXPECT_GT(cached, 0U);
}

TEST(GatewayKeySources, EachSourceIsNamedAndTheFirstThatAnswersDecides) {
  GatewayFixture fixture;
  net::HttpClient client;
  const std::string body = chat(json::array({{{"role", "user"}, {"content", "hi"}}}));
  const auto source_of = [&](const net::HttpHeaders& headers, const std::string& path,
                             const std::string& request_body) {
    const auto exchange = post_json(client, fixture.url(path), request_body, {}, headers);
    EXPECT_EQ(exchange.status, 200) << exchange.body;
    return std::string{exchange.response.header("X-Gateway-Key-Source").value_or("")};
  };
  EXPECT_EQ(source_of({{"X-Session-Id", "a"}}, "/api/chat", body), "header:x-session-id");
  EXPECT_EQ(source_of({{"x-session-affinity", "b"}}, "/api/chat", body),
            "header:x-session-affinity");
  EXPECT_EQ(source_of({{"x-claude-code-session-id", "c"}}, "/api/chat", body),
            "header:x-claude-code-session-id");
  EXPECT_EQ(source_of({{"session-id", "d"}}, "/api/chat", body), "header:session-id");
  EXPECT_EQ(source_of({{"session-id", "d"}, {"X-Session-ID", "e"}}, "/api/chat", body),
            "header:x-session-id");
  const std::string openai = json{
      {"model", "llama3.2"},
      {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})},
      {"prompt_cache_key",
       "conversation-7"}}.dump();
  EXPECT_EQ(source_of({}, "/v1/chat/completions", openai), "body:prompt_cache_key");
  EXPECT_EQ(source_of({}, "/api/chat", body), "prefix");
  // A proxied GET without a key (/api/tags is answered by the gateway for the fleet).
  const auto tags = get_url(client, fixture.url("/v1/models/llama3.2"));
  EXPECT_EQ(tags.response.header("X-Gateway-Key-Source").value_or(""), "none");
  EXPECT_EQ(tags.route, "round_robin");

  net::HttpClient metrics_client;
  const auto metrics = get_url(metrics_client, fixture.url("/metrics")).body;
  EXPECT_EQ(metric_sum(metrics, "llmgw_routing_key_sources_total", {"source=\"prefix\""}), 1.0);
  EXPECT_EQ(
      metric_sum(metrics, "llmgw_routing_key_sources_total", {"source=\"header:x-session-id\""}),
      2.0);
}

TEST(GatewayKeySources, AConfiguredListReplacesTheDefault) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.routing.key_sources = "header:x-tenant";
  }});
  net::HttpClient client;
  const std::string body = chat(json::array({{{"role", "user"}, {"content", "hi"}}}));
  const auto headerless = post_json(client, fixture.url("/api/chat"), body);
  EXPECT_EQ(headerless.route, "round_robin") << "prefix is not in the list";
  const auto tenant = post_json(client, fixture.url("/api/chat"), body, {}, {{"X-Tenant", "t1"}});
  EXPECT_EQ(tenant.response.header("X-Gateway-Key-Source").value_or(""), "header:x-tenant");
}

}  // namespace
}  // namespace llmgw::testing
