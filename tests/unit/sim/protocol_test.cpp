#include "llmgw/sim/protocol.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace llmgw::sim {
namespace {

using nlohmann::json;

InferenceRequest parse_ok(Endpoint endpoint, std::string_view body) {
  auto parsed = parse_inference_request(endpoint, body);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    ADD_FAILURE() << "unexpected error: " << error->message;
    return {};
  }
  return std::get<InferenceRequest>(parsed);
}

RequestError parse_error(Endpoint endpoint, std::string_view body) {
  auto parsed = parse_inference_request(endpoint, body);
  if (!std::holds_alternative<RequestError>(parsed)) {
    ADD_FAILURE() << "expected an error for " << body;
    return {};
  }
  return std::get<RequestError>(parsed);
}

TEST(SimProtocol, GenerateDefaultsToStreamingAndTemplatesThePrompt) {
  const auto request = parse_ok(Endpoint::generate, R"({"model":"llama3.2","prompt":"why?"})");
  EXPECT_EQ(request.model, "llama3.2");
  EXPECT_TRUE(request.stream);
  EXPECT_EQ(request.prompt, "<|user|>\nwhy?\n<|assistant|>\n");
  EXPECT_FALSE(request.limit.has_value());
  const auto limited =
      parse_ok(Endpoint::generate,
               R"({"model":"m","prompt":"x","stream":false,"options":{"num_predict":5}})");
  EXPECT_FALSE(limited.stream);
  EXPECT_EQ(limited.limit, 5u);
  EXPECT_TRUE(parse_ok(Endpoint::generate, R"({"model":"m"})").load_only);
}

TEST(SimProtocol, GenerateContextPrefixesThePreviousConversation) {
  const std::string earlier = "<|user|>\nhi\n<|assistant|>\nHello.";
  nlohmann::json body{{"model", "m"}, {"prompt", "more"}, {"context", tokenize(earlier)}};
  const auto request = parse_ok(Endpoint::generate, body.dump());
  EXPECT_EQ(request.prompt, earlier + "<|user|>\nmore\n<|assistant|>\n");
  EXPECT_EQ(parse_error(Endpoint::generate, R"({"model":"m","prompt":"x","context":[-1]})").status,
            400);
}

TEST(SimProtocol, OpenAiDefaultsToNonStreamingAndReadsMaxTokens) {
  const auto request =
      parse_ok(Endpoint::openai_chat,
               R"({"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"}]}],
          "max_tokens":7,"stream_options":{"include_usage":true}})");
  EXPECT_FALSE(request.stream);
  EXPECT_EQ(request.limit, 7u);
  EXPECT_TRUE(request.include_usage);
  EXPECT_EQ(request.prompt, "<|user|>\nhi\n<|assistant|>\n");
}

TEST(SimProtocol, BadRequestsAreRefusedWith400) {
  EXPECT_EQ(parse_error(Endpoint::generate, "{not json").status, 400);
  EXPECT_EQ(parse_error(Endpoint::generate, "").message, "missing request body");
  EXPECT_EQ(parse_error(Endpoint::chat, R"({"messages":[]})").message, "model is required");
  EXPECT_EQ(parse_error(Endpoint::chat, R"({"model":"m","messages":"hi"})").status, 400);
  EXPECT_EQ(parse_error(Endpoint::openai_completion, R"({"model":"m"})").status, 400);
  EXPECT_EQ(parse_error(Endpoint::generate, R"({"model":"m","stream":"yes"})").status, 400);
}

TEST(SimProtocol, StreamRecordsHaveOllamasFields) {
  const auto chat = json::parse(ollama_stream_record(Endpoint::chat, "m", "t", "Hi"));
  EXPECT_EQ(chat, json::parse(R"({"model":"m","created_at":"t",
      "message":{"role":"assistant","content":"Hi"},"done":false})"));
  const auto gen = json::parse(ollama_stream_record(Endpoint::generate, "m", "t", "Hi"));
  EXPECT_EQ(gen, json::parse(R"({"model":"m","created_at":"t","response":"Hi","done":false})"));
}

TEST(SimProtocol, FinalRecordCarriesNanosecondStatsAndContextOnlyForGenerate) {
  FinalStats stats;
  stats.done_reason = "length";
  stats.total_duration = std::chrono::milliseconds{3};
  stats.prompt_eval_count = 10;
  stats.prompt_eval_duration = std::chrono::microseconds{5};
  stats.eval_count = 4;
  const Tokens context{1, 2, 3};
  const auto gen =
      json::parse(ollama_final_record(Endpoint::generate, "m", "t", "", stats, &context));
  EXPECT_EQ(gen["done"], true);
  EXPECT_EQ(gen["done_reason"], "length");
  EXPECT_EQ(gen["total_duration"], 3'000'000);
  EXPECT_EQ(gen["prompt_eval_duration"], 5'000);
  EXPECT_EQ(gen["prompt_eval_count"], 10);
  EXPECT_EQ(gen["context"], json::parse("[1,2,3]"));
  const auto chat = json::parse(ollama_final_record(Endpoint::chat, "m", "t", "", stats, &context));
  EXPECT_FALSE(chat.contains("context"));
  EXPECT_EQ(chat["message"]["role"], "assistant");
}

TEST(SimProtocol, OpenAiShapes) {
  const OpenAiIds ids{"chatcmpl-1", 1700000000};
  const std::string event = openai_stream_event(Endpoint::openai_chat, ids, "m", "Hi", "");
  ASSERT_EQ(event.rfind("data: ", 0), 0u);
  ASSERT_EQ(event.substr(event.size() - 2), "\n\n");
  const auto chunk = json::parse(event.substr(6));
  EXPECT_EQ(chunk["object"], "chat.completion.chunk");
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "Hi");
  EXPECT_TRUE(chunk["choices"][0]["finish_reason"].is_null());

  FinalStats stats;
  stats.prompt_eval_count = 10;
  stats.eval_count = 5;
  stats.cached_tokens = 6;
  const auto full = json::parse(openai_response(Endpoint::openai_completion, ids, "m", "x", stats));
  EXPECT_EQ(full["object"], "text_completion");
  EXPECT_EQ(full["choices"][0]["text"], "x");
  EXPECT_EQ(full["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(full["usage"]["total_tokens"], 15);
  EXPECT_EQ(full["usage"]["prompt_tokens_details"]["cached_tokens"], 6);

  const auto error = json::parse(openai_error(404, "model \"x\" not found"));
  EXPECT_EQ(error["error"]["type"], "not_found_error");
  EXPECT_EQ(error["error"]["message"], "model \"x\" not found");
}

TEST(SimProtocol, CreatedAtIsRfc3339WithNanoseconds) {
  const auto when = std::chrono::system_clock::time_point{std::chrono::seconds{1'700'000'000}} +
                    std::chrono::nanoseconds{123};
  EXPECT_EQ(format_created_at(when), "2023-11-14T22:13:20.000000123Z");
}

}  // namespace
}  // namespace llmgw::sim
