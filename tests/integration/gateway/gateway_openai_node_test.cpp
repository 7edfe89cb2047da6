// `nodes[].api: openai` in front of an OpenAI-compatible server that is not the sim: the fake
// answers GET /health and GET /v1/models as llama-server and vLLM do. The gateway probes /health
// (never Ollama's /api/version), lists the node's models from /v1/models, routes a request for a
// listed model to it with the server's own stream (usage included) relayed, and answers a model
// the node does not list with 404 without sending it there.

#include <gtest/gtest.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "fakes/fake_openai.hpp"
#include "llmgw/server/gateway.hpp"
#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

TEST(GatewayOpenAiNode, AFakeOpenAiServerIsProbedListedAndServed) {
  fakes::FakeOpenAi server;
  server.set_models({"qwen2.5-coder-7b"});
  fakes::FakeReply reply = fakes::FakeReply::text("hello from the fake");
  reply.cached_tokens = 5;
  server.set_fallback(reply);

  auto node = test_node("llama-cpp", server.base_url());
  node.api = "openai";
  auto config = test_gateway_config({node});
  config.health.interval = std::chrono::milliseconds{200};
  config.catalog.interval = std::chrono::seconds{30};
  config::validate(config);
  server::Gateway gateway(config);
  gateway.start();
  const std::string base = "http://127.0.0.1:" + std::to_string(gateway.port());

  net::HttpClient client;
  ASSERT_TRUE(wait_until([&] {
    const auto health = json::parse(get_url(client, base + "/health").body);
    const auto& entry = health["nodes"][0];
    return entry["healthy"].get<bool>() && entry["catalog"]["current"].get<bool>();
  })) << get_url(client, base + "/health").body;
  const auto health = json::parse(get_url(client, base + "/health").body);
  EXPECT_EQ(health["nodes"][0]["api"], "openai");
  EXPECT_EQ(health["nodes"][0]["catalog"]["models"], (json{"qwen2.5-coder-7b:latest"}));

  // The union catalog shows the node's model.
  const auto models = json::parse(get_url(client, base + "/v1/models").body);
  ASSERT_EQ(models["data"].size(), 1U) << models.dump();
  EXPECT_EQ(models["data"][0]["id"], "qwen2.5-coder-7b");

  const auto streamed =
      post_json(client, base + "/v1/chat/completions",
                json{{"model", "qwen2.5-coder-7b"},
                     {"stream", true},
                     {"stream_options", {{"include_usage", true}}},
                     {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}}
                    .dump());
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_EQ(streamed.node, "llama-cpp");
  EXPECT_NE(streamed.body.find("hello"), std::string::npos) << streamed.body;
  EXPECT_NE(streamed.body.find(R"("cached_tokens":5)"), std::string::npos) << streamed.body;
  EXPECT_NE(streamed.body.find("data: [DONE]"), std::string::npos) << streamed.body;
  EXPECT_EQ(server.request_count(), 1U);

  const auto missing = post_json(
      client, base + "/v1/chat/completions",
      json{{"model", "llama3.2"}, {"messages", json::array({{{"role", "user"}, {"content", "x"}}})}}
          .dump());
  EXPECT_EQ(missing.status, 404) << missing.body;
  EXPECT_EQ(json::parse(missing.body)["error"]["type"], "not_found_error") << missing.body;
  EXPECT_EQ(server.request_count(), 1U) << "a model the node does not list never reaches it";
  gateway.request_stop();
  gateway.wait();
}

}  // namespace
}  // namespace llmgw::testing
