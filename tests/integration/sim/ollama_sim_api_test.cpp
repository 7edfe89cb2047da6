// The emulator's HTTP API as an Ollama client sees it: endpoints, stream formats, error shapes.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/sim/sim_test_support.hpp"
#include "llmgw/sim/tokenizer.hpp"

namespace llmgw::sim {
namespace {

using nlohmann::json;
using testing::get;
using testing::ndjson_records;
using testing::post;
using testing::RunningSim;
using testing::sse_payloads;

TEST(OllamaSimApi, GenerateStreamsNdjsonAndEndsWithNanosecondStats) {
  RunningSim sim;
  net::HttpClient client;
  const auto response = post(client, sim.url("/api/generate"),
                             R"({"model":"llama3.2","prompt":"Why is the sky blue?"})");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.header("Content-Type").value_or(""), "application/x-ndjson");
  const auto records = ndjson_records(response.body);
  ASSERT_GE(records.size(), 2u);
  std::string text;
  for (std::size_t i = 0; i + 1 < records.size(); ++i) {
    EXPECT_EQ(records[i]["model"], "llama3.2");
    EXPECT_TRUE(records[i]["created_at"].is_string());
    EXPECT_EQ(records[i]["done"], false);
    text += records[i]["response"].get<std::string>();
  }
  EXPECT_FALSE(text.empty());
  const json& last = records.back();
  EXPECT_EQ(last["done"], true);
  EXPECT_EQ(last["done_reason"], "stop");
  EXPECT_EQ(last["response"], "");
  EXPECT_EQ(last["eval_count"], records.size() - 1);
  EXPECT_EQ(last["prompt_eval_count"],
            count_tokens(render_generate("", "Why is the sky blue?", false)));
  for (const char* field :
       {"total_duration", "load_duration", "prompt_eval_duration", "eval_duration"}) {
    EXPECT_TRUE(last[field].is_number_integer()) << field;
  }
  EXPECT_GT(last["total_duration"].get<std::int64_t>(), 0);
  ASSERT_TRUE(last["context"].is_array());
  EXPECT_FALSE(last["context"].empty());
}

TEST(OllamaSimApi, GenerateWithoutStreamingGivesOneObjectWithTheSameText) {
  RunningSim sim;
  net::HttpClient client;
  const std::string request = R"({"model":"llama3.2","prompt":"Tell me a story"})";
  const auto streamed = ndjson_records(post(client, sim.url("/api/generate"), request).body);
  std::string streamed_text;
  for (const auto& record : streamed) {
    streamed_text += record["response"].get<std::string>();
  }
  const auto whole = post(client, sim.url("/api/generate"),
                          R"({"model":"llama3.2","prompt":"Tell me a story","stream":false})");
  ASSERT_EQ(whole.status, 200);
  const auto body = json::parse(whole.body);
  EXPECT_EQ(body["done"], true);
  EXPECT_EQ(body["response"], streamed_text) << "replies are deterministic";
  EXPECT_EQ(body["eval_count"], streamed.size() - 1);
}

TEST(OllamaSimApi, NumPredictCutsTheReplyWithDoneReasonLength) {
  RunningSim sim;
  net::HttpClient client;
  const auto response =
      post(client, sim.url("/api/generate"),
           R"({"model":"llama3.2","prompt":"hi","stream":false,"options":{"num_predict":2}})");
  const auto body = json::parse(response.body);
  EXPECT_EQ(body["eval_count"], 2);
  EXPECT_EQ(body["done_reason"], "length");
}

TEST(OllamaSimApi, ChatStreamsAssistantMessagesWithoutContext) {
  RunningSim sim;
  net::HttpClient client;
  const auto response =
      post(client, sim.url("/api/chat"),
           R"({"model":"qwen2.5:0.5b","messages":[{"role":"user","content":"hello"}]})");
  ASSERT_EQ(response.status, 200);
  const auto records = ndjson_records(response.body);
  ASSERT_GE(records.size(), 2u);
  EXPECT_EQ(records.front()["message"]["role"], "assistant");
  EXPECT_TRUE(records.front()["message"]["content"].is_string());
  EXPECT_EQ(records.back()["done"], true);
  EXPECT_FALSE(records.back().contains("context"));
  EXPECT_EQ(records.back()["prompt_eval_count"], count_tokens(render_chat({{"user", "hello"}})));
}

TEST(OllamaSimApi, OpenAiChatStreamsSseEndingWithDone) {
  RunningSim sim;
  net::HttpClient client;
  const auto response = post(client, sim.url("/v1/chat/completions"),
                             R"({"model":"llama3.2","stream":true,
                                 "stream_options":{"include_usage":true},
                                 "messages":[{"role":"user","content":"hello"}]})");
  ASSERT_EQ(response.status, 200);
  EXPECT_EQ(response.header("Content-Type").value_or(""), "text/event-stream");
  const auto payloads = sse_payloads(response.body);
  ASSERT_GE(payloads.size(), 4u);
  EXPECT_EQ(payloads.back(), "[DONE]");
  const auto first = json::parse(payloads.front());
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"]["role"], "assistant");
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  const auto finish = json::parse(payloads[payloads.size() - 3]);
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "stop");
  const auto usage = json::parse(payloads[payloads.size() - 2]);
  EXPECT_GT(usage["usage"]["completion_tokens"].get<int>(), 0);
}

TEST(OllamaSimApi, OpenAiNonStreamingChatAndCompletionCarryUsage) {
  RunningSim sim;
  net::HttpClient client;
  const auto chat = post(client, sim.url("/v1/chat/completions"),
                         R"({"model":"llama3.2","messages":[{"role":"user","content":"hi"}]})");
  ASSERT_EQ(chat.status, 200);
  const auto chat_body = json::parse(chat.body);
  EXPECT_EQ(chat_body["object"], "chat.completion");
  EXPECT_TRUE(chat_body["choices"][0]["message"]["content"].is_string());
  EXPECT_EQ(chat_body["usage"]["prompt_tokens"], count_tokens(render_chat({{"user", "hi"}})));

  const auto completion = post(client, sim.url("/v1/completions"),
                               R"({"model":"llama3.2","prompt":"Once","max_tokens":3})");
  ASSERT_EQ(completion.status, 200);
  const auto completion_body = json::parse(completion.body);
  EXPECT_EQ(completion_body["object"], "text_completion");
  EXPECT_EQ(completion_body["usage"]["completion_tokens"], 3);
  EXPECT_EQ(completion_body["choices"][0]["finish_reason"], "length");
}

TEST(OllamaSimApi, UnknownModelIs404InEachApisShape) {
  RunningSim sim;
  net::HttpClient client;
  const auto native = post(client, sim.url("/api/chat"),
                           R"({"model":"nope","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(native.status, 404);
  EXPECT_EQ(json::parse(native.body),
            json::parse(R"({"error":"model \"nope\" not found, try pulling it first"})"));
  const auto openai = post(client, sim.url("/v1/chat/completions"),
                           R"({"model":"nope","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(openai.status, 404);
  EXPECT_EQ(json::parse(openai.body)["error"]["type"], "not_found_error");
}

TEST(OllamaSimApi, BadRequestsAre400WithAnErrorMessage) {
  RunningSim sim;
  net::HttpClient client;
  const auto bad_json = post(client, sim.url("/api/generate"), "{not json");
  EXPECT_EQ(bad_json.status, 400);
  EXPECT_TRUE(json::parse(bad_json.body)["error"].is_string());
  const auto no_model = post(client, sim.url("/api/chat"), R"({"messages":[]})");
  EXPECT_EQ(no_model.status, 400);
  EXPECT_EQ(json::parse(no_model.body)["error"], "model is required");
}

TEST(OllamaSimApi, InformationalEndpoints) {
  RunningSim sim;
  net::HttpClient client;
  const auto root = get(client, sim.url("/"));
  EXPECT_EQ(root.status, 200);
  EXPECT_EQ(root.body, "Ollama is running");
  EXPECT_TRUE(json::parse(get(client, sim.url("/api/version")).body)["version"].is_string());

  const auto tags = json::parse(get(client, sim.url("/api/tags")).body);
  ASSERT_EQ(tags["models"].size(), 2u);
  std::vector<std::string> names;
  for (const auto& model : tags["models"]) {
    names.push_back(model["name"]);
    EXPECT_EQ(model["digest"].get<std::string>().size(), 64u);
    EXPECT_EQ(model["details"]["format"], "gguf");
  }
  EXPECT_NE(std::find(names.begin(), names.end(), "llama3.2:latest"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "qwen2.5:0.5b"), names.end());

  EXPECT_TRUE(json::parse(get(client, sim.url("/api/ps")).body)["models"].empty())
      << "as in Ollama, nothing is loaded before the first request";
  ASSERT_EQ(post(client, sim.url("/api/generate"), R"({"model":"llama3.2"})").status, 200);
  EXPECT_TRUE(
      json::parse(get(client, sim.url("/api/ps")).body)["models"][0].contains("expires_at"));
  const auto models = json::parse(get(client, sim.url("/v1/models")).body);
  EXPECT_EQ(models["object"], "list");
  EXPECT_EQ(models["data"].size(), 2u);

  const auto show = post(client, sim.url("/api/show"), R"({"model":"llama3.2"})");
  EXPECT_EQ(show.status, 200);
  EXPECT_EQ(json::parse(show.body)["details"]["family"], "llama");
  EXPECT_EQ(post(client, sim.url("/api/show"), R"({"model":"nope"})").status, 404);

  EXPECT_EQ(get(client, sim.url("/no/such/path")).status, 404);
}

TEST(OllamaSimApi, EmbedReturnsUnitVectorsPerInput) {
  RunningSim sim;
  net::HttpClient client;
  const auto response = post(client, sim.url("/api/embed"),
                             R"({"model":"llama3.2","input":["first text","second text"]})");
  ASSERT_EQ(response.status, 200);
  const auto body = json::parse(response.body);
  ASSERT_EQ(body["embeddings"].size(), 2u);
  EXPECT_EQ(body["embeddings"][0].size(), 384u);
  double norm = 0;
  for (const auto& x : body["embeddings"][0])
    norm += x.get<double>() * x.get<double>();
  EXPECT_NEAR(norm, 1.0, 1e-4);
  EXPECT_NE(body["embeddings"][0], body["embeddings"][1]);
}

TEST(OllamaSimApi, MetricsCountRequestsTokensAndConnections) {
  RunningSim sim;
  net::HttpClient client;
  post(client, sim.url("/api/chat"),
       R"({"model":"llama3.2","stream":false,"messages":[{"role":"user","content":"hi"}]})");
  const auto metrics = get(client, sim.url("/metrics"));
  ASSERT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("ollama_sim_requests_total{endpoint=\"/api/chat\"} 1"),
            std::string::npos)
      << metrics.body;
  EXPECT_NE(metrics.body.find("ollama_sim_connections_accepted_total 1"), std::string::npos);
  const std::string prompt_tokens = "ollama_sim_prompt_tokens_total " +
                                    std::to_string(count_tokens(render_chat({{"user", "hi"}})));
  EXPECT_NE(metrics.body.find(prompt_tokens), std::string::npos) << metrics.body;
  EXPECT_NE(metrics.body.find("ollama_sim_slots_busy 0"), std::string::npos);
  EXPECT_EQ(sim->stats().connections_accepted, 1u) << "keep-alive reuses one connection";
}

}  // namespace
}  // namespace llmgw::sim
