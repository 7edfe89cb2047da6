// The emulator's compatibility APIs beyond chat: Anthropic's /v1/messages, the embedding
// endpoints in their three shapes, and /v1/models/{id}.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/sim/sim_test_support.hpp"

namespace llmgw::sim {
namespace {

using nlohmann::json;
using testing::get;
using testing::post;
using testing::RunningSim;
using testing::sse_payloads;

// The event names of an SSE body, in order.
std::vector<std::string> sse_events(const std::string& body) {
  std::vector<std::string> events;
  std::size_t at = 0;
  while ((at = body.find("event: ", at)) != std::string::npos) {
    const auto end = body.find('\n', at);
    events.push_back(body.substr(at + 7, end - at - 7));
    at = end;
  }
  return events;
}

std::string messages_body(const json& messages, bool stream, int max_tokens = 64) {
  return json{{"model", "llama3.2"},
              {"max_tokens", max_tokens},
              {"system", "You are terse."},
              {"messages", messages},
              {"stream", stream}}
      .dump();
}

TEST(OllamaSimCompat, MessagesAnswersAnAnthropicMessage) {
  RunningSim sim;
  net::HttpClient client;
  const auto response =
      post(client, sim.url("/v1/messages"),
           messages_body(json::array({{{"role", "user"}, {"content", "Hello there"}}}), false));
  ASSERT_EQ(response.status, 200) << response.body;
  const auto body = json::parse(response.body);
  EXPECT_EQ(body["type"], "message");
  EXPECT_EQ(body["role"], "assistant");
  EXPECT_EQ(body["model"], "llama3.2");
  EXPECT_EQ(body["id"].get<std::string>().rfind("msg_", 0), 0u);
  ASSERT_EQ(body["content"].size(), 1u);
  EXPECT_EQ(body["content"][0]["type"], "text");
  EXPECT_FALSE(body["content"][0]["text"].get<std::string>().empty());
  EXPECT_EQ(body["stop_reason"], "end_turn");
  EXPECT_TRUE(body["stop_sequence"].is_null());
  EXPECT_GT(body["usage"]["input_tokens"].get<int>(), 0);
  EXPECT_GT(body["usage"]["output_tokens"].get<int>(), 0);

  const auto cut = json::parse(
      post(client, sim.url("/v1/messages"),
           messages_body(json::array({{{"role", "user"}, {"content", "More"}}}), false, 1))
          .body);
  EXPECT_EQ(cut["stop_reason"], "max_tokens");
  EXPECT_EQ(cut["usage"]["output_tokens"], 1);
}

TEST(OllamaSimCompat, MessagesStreamsAnthropicsEventSequence) {
  RunningSim sim;
  net::HttpClient client;
  const auto response =
      post(client, sim.url("/v1/messages"),
           messages_body(json::array({{{"role", "user"}, {"content", "Stream please"}}}), true));
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.header("Content-Type").value_or(""), "text/event-stream");
  const auto events = sse_events(response.body);
  ASSERT_GE(events.size(), 6u);
  EXPECT_EQ(events[0], "message_start");
  EXPECT_EQ(events[1], "content_block_start");
  for (std::size_t i = 2; i + 3 < events.size(); ++i) {
    EXPECT_EQ(events[i], "content_block_delta") << i;
  }
  EXPECT_EQ(events[events.size() - 3], "content_block_stop");
  EXPECT_EQ(events[events.size() - 2], "message_delta");
  EXPECT_EQ(events.back(), "message_stop");

  const auto payloads = sse_payloads(response.body);
  ASSERT_EQ(payloads.size(), events.size());
  const auto start = json::parse(payloads[0]);
  EXPECT_EQ(start["type"], "message_start");
  EXPECT_TRUE(start["message"]["content"].empty());
  std::string text;
  for (std::size_t i = 2; i + 3 < payloads.size(); ++i) {
    const auto delta = json::parse(payloads[i]);
    EXPECT_EQ(delta["delta"]["type"], "text_delta");
    text += delta["delta"]["text"].get<std::string>();
  }
  EXPECT_FALSE(text.empty());
  const auto end = json::parse(payloads[payloads.size() - 2]);
  EXPECT_EQ(end["delta"]["stop_reason"], "end_turn");
  EXPECT_EQ(end["usage"]["output_tokens"], payloads.size() - 5);
}

TEST(OllamaSimCompat, MessagesReuseTheKvCacheLikeChat) {
  RunningSim sim;
  net::HttpClient client;
  json messages = json::array({{{"role", "user"}, {"content", "Tell me about the ocean tides"}}});
  const auto first =
      json::parse(post(client, sim.url("/v1/messages"), messages_body(messages, false)).body);
  messages.push_back({{"role", "assistant"}, {"content", first["content"][0]["text"]}});
  messages.push_back({{"role", "user"}, {"content", "And the moon?"}});
  const auto cached_before = sim->stats().cached_prompt_tokens;
  post(client, sim.url("/v1/messages"), messages_body(messages, false));
  EXPECT_GE(sim->stats().cached_prompt_tokens - cached_before,
            first["usage"]["input_tokens"].get<std::uint64_t>())
      << "the second turn starts with the first turn's prompt and reply";
}

TEST(OllamaSimCompat, MessagesErrorsUseAnthropicsShape) {
  RunningSim sim;
  net::HttpClient client;
  const auto no_max = post(client, sim.url("/v1/messages"),
                           R"({"model":"llama3.2","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(no_max.status, 400);
  const auto bad = json::parse(no_max.body);
  EXPECT_EQ(bad["type"], "error");
  EXPECT_EQ(bad["error"]["type"], "invalid_request_error");
  EXPECT_EQ(bad["error"]["message"], "max_tokens is required and must be positive");
  const auto missing =
      post(client, sim.url("/v1/messages"),
           R"({"model":"nope","max_tokens":5,"messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"]["type"], "not_found_error");
}

TEST(OllamaSimCompat, EmbeddingsInTheLegacyAndOpenAiShapes) {
  RunningSim sim;
  net::HttpClient client;
  const auto legacy =
      post(client, sim.url("/api/embeddings"), R"({"model":"llama3.2","prompt":"some text"})");
  ASSERT_EQ(legacy.status, 200);
  EXPECT_EQ(json::parse(legacy.body)["embedding"].size(), 384u);

  const auto openai =
      post(client, sim.url("/v1/embeddings"), R"({"model":"llama3.2","input":["first","second"]})");
  ASSERT_EQ(openai.status, 200);
  const auto body = json::parse(openai.body);
  EXPECT_EQ(body["object"], "list");
  EXPECT_EQ(body["model"], "llama3.2");
  ASSERT_EQ(body["data"].size(), 2u);
  EXPECT_EQ(body["data"][1]["object"], "embedding");
  EXPECT_EQ(body["data"][1]["index"], 1);
  EXPECT_EQ(body["data"][1]["embedding"].size(), 384u);
  EXPECT_GT(body["usage"]["prompt_tokens"].get<int>(), 0);
  EXPECT_EQ(body["usage"]["total_tokens"], body["usage"]["prompt_tokens"]);

  const auto missing =
      post(client, sim.url("/v1/embeddings"), R"({"model":"nope","input":"text"})");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"]["type"], "not_found_error");
  EXPECT_EQ(post(client, sim.url("/v1/embeddings"), R"({"model":"llama3.2"})").status, 400);
}

TEST(OllamaSimCompat, OpenAiModelById) {
  RunningSim sim;
  net::HttpClient client;
  const auto found = get(client, sim.url("/v1/models/qwen2.5:0.5b"));
  ASSERT_EQ(found.status, 200);
  const auto model = json::parse(found.body);
  EXPECT_EQ(model["id"], "qwen2.5:0.5b");
  EXPECT_EQ(model["object"], "model");
  EXPECT_TRUE(model["created"].is_number_integer());
  EXPECT_EQ(model["owned_by"], "library");
  EXPECT_EQ(get(client, sim.url("/v1/models/llama3.2")).status, 200);
  const auto missing = get(client, sim.url("/v1/models/nope"));
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"]["type"], "not_found_error");
}

}  // namespace
}  // namespace llmgw::sim
