// The two chat clients against the scripted fake server, over loopback.

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <sstream>

#include "fakes/fake_openai.hpp"
#include "llmgw/llm/chat_client.hpp"
#include "llmgw/net/http_client.hpp"
#include "support/test_certs.hpp"

namespace llmgw::llm {
namespace {

using fakes::FakeOpenAi;
using fakes::FakeReply;

constexpr std::string_view kKey = "gsk_TEST_SECRET_0123456789";

ProviderConfig openai_config(const FakeOpenAi& fake) {
  ProviderConfig config;
  config.provider = Provider::openai;
  config.base_url = fake.openai_base_url();
  config.model = "llama-3.3-70b-versatile";
  config.api_key = std::string{kKey};
  config.read_timeout = std::chrono::seconds{20};
  return config;
}

ProviderConfig ollama_config(const FakeOpenAi& fake) {
  ProviderConfig config;
  config.provider = Provider::ollama;
  config.base_url = fake.base_url();
  config.model = "llama3.2";
  config.context_tokens = 4096;
  config.session_id = "acme/widgets#42";
  config.read_timeout = std::chrono::seconds{20};
  return config;
}

ChatRequest hello() {
  ChatRequest request;
  request.messages = {Message::system("be brief"), Message::user("hello")};
  return request;
}

std::vector<ToolSpec> one_tool() {
  return {{"read_file",
           "Read a file",
           {{"type", "object"}, {"properties", {{"path", {{"type", "string"}}}}}}}};
}

TEST(OpenAiClient, StreamsTokensAsTheyArriveWithTheKeyAndSession) {
  FakeOpenAi fake;
  fake.push(FakeReply::text("The PR adds a cache to the lookup path."));
  auto client = make_chat_client(openai_config(fake));
  std::vector<std::string> tokens;
  auto request = hello();
  request.session_id = "acme/widgets#42";
  const auto result =
      client->chat(request, [&](std::string_view token) { tokens.emplace_back(token); });

  EXPECT_GT(tokens.size(), 3U);
  std::string joined;
  for (const auto& token : tokens) {
    joined += token;
  }
  EXPECT_EQ(joined, "The PR adds a cache to the lookup path.");
  EXPECT_EQ(result.content, joined);
  EXPECT_EQ(result.finish_reason, "stop");
  EXPECT_EQ(result.prompt_tokens, 11);  // from Groq's x_groq.usage
  EXPECT_EQ(result.completion_tokens, 7);

  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 1U);
  EXPECT_EQ(requests[0].path, "/v1/chat/completions");
  EXPECT_EQ(requests[0].header("Authorization"), "Bearer " + std::string{kKey});
  EXPECT_EQ(requests[0].header("X-Session-ID"), "acme/widgets#42");
  EXPECT_EQ(requests[0].body["stream"], true);
  EXPECT_EQ(requests[0].body["messages"][1]["content"], "hello");
}

TEST(OpenAiClient, ToolCallsAreRequestedWithoutStreamingAndTheirArgumentsDecoded) {
  FakeOpenAi fake;
  fake.push(FakeReply::tool_call("read_file", {{"path", "src/a.cpp"}}, "call_7"));
  auto client = make_chat_client(openai_config(fake));
  auto request = hello();
  request.tools = one_tool();
  std::vector<std::string> tokens;
  const auto result = client->chat(request, [&](std::string_view t) { tokens.emplace_back(t); });

  ASSERT_EQ(result.tool_calls.size(), 1U);
  EXPECT_EQ(result.tool_calls[0].id, "call_7");
  EXPECT_EQ(result.tool_calls[0].name, "read_file");
  EXPECT_EQ(result.tool_calls[0].arguments, (nlohmann::json{{"path", "src/a.cpp"}}));
  EXPECT_EQ(result.finish_reason, "tool_calls");
  const auto body = fake.requests().at(0).body;
  EXPECT_EQ(body["stream"], false);
  EXPECT_EQ(body["tools"][0]["function"]["name"], "read_file");
  EXPECT_TRUE(tokens.empty());
}

TEST(OpenAiClient, AMalformedToolCallKeepsItsRawArgumentsForTheAgent) {
  FakeOpenAi fake;
  fake.push(FakeReply::malformed_tool_call("read_file", "{\"path\": \"src/a.cpp\""));
  auto client = make_chat_client(openai_config(fake));
  auto request = hello();
  request.tools = one_tool();
  const auto result = client->chat(request);
  ASSERT_EQ(result.tool_calls.size(), 1U);
  ASSERT_TRUE(result.tool_calls[0].arguments.is_string());
  EXPECT_EQ(result.tool_calls[0].arguments.get<std::string>(), "{\"path\": \"src/a.cpp\"");
}

TEST(OpenAiClient, ToolMessagesCarryTheirCallIdAndArgumentsAsAJsonString) {
  FakeOpenAi fake;
  auto client = make_chat_client(openai_config(fake));
  auto request = hello();
  request.messages.push_back(Message::assistant("", {{"call_1", "read_file", {{"path", "a"}}}}));
  request.messages.push_back(Message::tool("call_1", "read_file", "contents"));
  client->chat(request);
  const auto messages = fake.requests().at(0).body["messages"];
  EXPECT_EQ(messages[2]["tool_calls"][0]["function"]["arguments"], R"({"path":"a"})");
  EXPECT_EQ(messages[3]["role"], "tool");
  EXPECT_EQ(messages[3]["tool_call_id"], "call_1");
}

TEST(OpenAiClient, WaitsOutA429AsTheServerAsksAndThenSucceeds) {
  FakeOpenAi fake;
  fake.push(FakeReply::rate_limited(1, "retry-after"));
  fake.push(FakeReply::rate_limited(0, "x-ratelimit-reset-requests"));
  fake.push(FakeReply::text("finally"));
  auto client = make_chat_client(openai_config(fake));
  const auto started = std::chrono::steady_clock::now();
  const auto result = client->chat(hello());
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(result.content, "finally");
  EXPECT_EQ(fake.request_count(), 3U);
  EXPECT_GE(elapsed, std::chrono::milliseconds{900}) << "Retry-After: 1 must be honoured";
  EXPECT_LT(elapsed, std::chrono::seconds{15});
}

TEST(OpenAiClient, GivesUpAfterItsAttemptsWithTheProvidersMessage) {
  FakeOpenAi fake;
  fake.set_fallback(FakeReply::rate_limited(0));
  auto config = openai_config(fake);
  config.max_attempts = 2;
  auto client = make_chat_client(config);
  try {
    client->chat(hello());
    FAIL() << "a persistent 429 must end in an error";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 429);
    EXPECT_NE(std::string{error.what()}.find("Rate limit reached"), std::string::npos)
        << error.what();
  }
  EXPECT_EQ(fake.request_count(), 2U);
}

TEST(OpenAiClient, ContextTooLongAndToolUseFailedAreTyped) {
  FakeOpenAi fake;
  fake.push(FakeReply::context_too_long());
  fake.push(FakeReply::tool_use_failed("<function=read_file>{\"path\": 3}</function>"));
  auto client = make_chat_client(openai_config(fake));
  EXPECT_THROW(client->chat(hello()), ContextTooLongError);
  try {
    client->chat(hello());
    FAIL() << "tool_use_failed must throw";
  } catch (const ToolUseFailedError& error) {
    EXPECT_EQ(error.status(), 400);
    EXPECT_EQ(error.failed_generation(), "<function=read_file>{\"path\": 3}</function>");
  }
  EXPECT_EQ(fake.request_count(), 2U) << "4xx other than 429 are not retried";
}

TEST(OpenAiClient, TheKeyNeverAppearsInErrorsEvenWhenTheServerEchoesIt) {
  FakeOpenAi fake;
  fake.push(FakeReply::error(401, "Invalid API Key: " + std::string{kKey}));
  auto client = make_chat_client(openai_config(fake));
  try {
    client->chat(hello());
    FAIL() << "401 must throw";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 401);
    EXPECT_EQ(std::string{error.what()}.find(kKey), std::string::npos) << error.what();
    EXPECT_EQ(error.provider_message().find(kKey), std::string::npos);
    EXPECT_NE(std::string{error.what()}.find("Invalid API Key"), std::string::npos);
  }
  EXPECT_EQ(client->describe().find(kKey), std::string::npos);
}

TEST(OpenAiClient, TheKeyNeverAppearsInLogsAtAnyLevel) {
  FakeOpenAi fake;
  auto echoed = FakeReply::rate_limited(0);
  echoed.error_body = R"({"error": {"message": "slow down, )" + std::string{kKey} + R"("}})";
  fake.push(echoed);
  fake.push(FakeReply::error(401, "Invalid API Key " + std::string{kKey}));

  std::ostringstream log;
  const auto previous = spdlog::default_logger();
  auto capture = std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_mt>(log));
  capture->set_level(spdlog::level::trace);
  spdlog::set_default_logger(capture);
  try {
    make_chat_client(openai_config(fake))->chat(hello());
  } catch (const ApiError&) {
  }
  spdlog::set_default_logger(previous);

  EXPECT_NE(log.str().find("429"), std::string::npos) << "the retry is logged: " << log.str();
  EXPECT_EQ(log.str().find(kKey), std::string::npos) << log.str();
}

TEST(OpenAiClient, AsksForAJsonSchemaAndFallsBackToJsonModeWhenTheModelHasNone) {
  FakeOpenAi fake;
  fake.push(
      FakeReply::error(400, "response_format `json_schema` is not supported with this model"));
  fake.push(FakeReply::text(R"({"winner": "A"})"));
  fake.push(FakeReply::text(R"({"winner": "B"})"));
  auto client = make_chat_client(openai_config(fake));
  auto request = hello();
  request.json_schema = nlohmann::json{{"type", "object"}};
  EXPECT_EQ(client->chat(request).content, R"({"winner": "A"})");
  EXPECT_EQ(client->chat(request).content, R"({"winner": "B"})");
  const auto requests = fake.requests();
  ASSERT_EQ(requests.size(), 3U);
  EXPECT_EQ(requests[0].body["response_format"]["type"], "json_schema");
  EXPECT_EQ(requests[0].body["response_format"]["json_schema"]["schema"]["type"], "object");
  EXPECT_EQ(requests[1].body["response_format"]["type"], "json_object");
  EXPECT_EQ(requests[2].body["response_format"]["type"], "json_object")
      << "the fallback is remembered";
}

TEST(OpenAiClient, AStreamThatBreaksAfterTokensIsNotRetried) {
  FakeOpenAi fake;
  auto broken = FakeReply::text("one two three four five");
  broken.abort_after_chunks = 2;
  fake.push(broken);
  fake.push(FakeReply::text("should not be fetched"));
  auto client = make_chat_client(openai_config(fake));
  std::string seen;
  EXPECT_THROW(client->chat(hello(), [&](std::string_view t) { seen += t; }), net::TransportError);
  EXPECT_EQ(seen, "one two");
  EXPECT_EQ(fake.request_count(), 1U);
}

TEST(OpenAiClient, AnUnreachableProviderIsATransportErrorNamingTheHost) {
  std::string base_url;
  {
    FakeOpenAi gone;
    base_url = gone.openai_base_url();
  }  // stopped: nothing listens on its port now
  ProviderConfig config;
  config.provider = Provider::openai;
  config.base_url = base_url;
  config.api_key = std::string{kKey};
  config.max_attempts = 1;
  auto client = make_chat_client(config);
  try {
    client->chat(hello());
    FAIL() << "connecting to a closed port must fail";
  } catch (const net::TransportError& error) {
    EXPECT_NE(std::string{error.what()}.find("127.0.0.1"), std::string::npos) << error.what();
    EXPECT_EQ(std::string{error.what()}.find(kKey), std::string::npos);
  }
}

TEST(OpenAiClient, SpeaksHttpsVerifyingTheCertificateAgainstTheConfiguredCa) {
  const testing::TestCertificates certs;
  FakeOpenAi fake{net::ServerTlsOptions{certs.certificate_chain_file(), certs.private_key_file()}};
  ASSERT_EQ(fake.base_url().rfind("https://", 0), 0U) << fake.base_url();
  fake.set_fallback(FakeReply::text("over TLS"));
  auto config = openai_config(fake);
  config.ca_file = certs.ca_file();
  std::string streamed;
  EXPECT_EQ(
      make_chat_client(config)->chat(hello(), [&](std::string_view t) { streamed += t; }).content,
      "over TLS");
  EXPECT_EQ(streamed, "over TLS");

  // Without the test CA the system store cannot vouch for the server: refused, never ignored.
  config.ca_file.clear();
  config.max_attempts = 1;
  try {
    make_chat_client(config)->chat(hello());
    FAIL() << "an unknown CA must be refused";
  } catch (const net::TransportError& error) {
    EXPECT_EQ(std::string{error.what()}.find(kKey), std::string::npos) << error.what();
  }
  EXPECT_EQ(fake.request_count(), 1U) << "the refused handshake sent no request";
}

TEST(OpenAiClient, RefusesACertificateForAnotherHost) {
  const testing::TestCertificates certs{{{"api.groq.example"}, {}}};
  FakeOpenAi fake{net::ServerTlsOptions{certs.certificate_chain_file(), certs.private_key_file()}};
  auto config = openai_config(fake);
  config.ca_file = certs.ca_file();
  config.max_attempts = 1;
  EXPECT_THROW(make_chat_client(config)->chat(hello()), net::TransportError);
  EXPECT_EQ(fake.request_count(), 0U);
}

TEST(OllamaClient, StreamsNdjsonAndReadsTheFinalRecordsCounts) {
  FakeOpenAi fake;
  fake.push(FakeReply::text("Adds retries with backoff."));
  auto client = make_chat_client(ollama_config(fake));
  std::vector<std::string> tokens;
  auto request = hello();
  request.json_schema = std::nullopt;
  request.temperature = 0.2;
  request.max_tokens = 256;
  request.seed = 9;
  const auto result = client->chat(request, [&](std::string_view t) { tokens.emplace_back(t); });
  EXPECT_GT(tokens.size(), 2U);
  EXPECT_EQ(result.content, "Adds retries with backoff.");
  EXPECT_EQ(result.prompt_tokens, 11);
  EXPECT_EQ(result.completion_tokens, 7);
  const auto sent = fake.requests().at(0);
  EXPECT_EQ(sent.path, "/api/chat");
  EXPECT_EQ(sent.header("X-Session-ID"), "acme/widgets#42");
  EXPECT_FALSE(sent.header("Authorization").has_value());
  EXPECT_EQ(sent.body["stream"], true);
  EXPECT_EQ(sent.body["options"]["num_ctx"], 4096);
  EXPECT_EQ(sent.body["options"]["num_predict"], 256);
  EXPECT_EQ(sent.body["options"]["seed"], 9);
}

TEST(OllamaClient, ToolCallsAndSchemasUseOllamasFields) {
  FakeOpenAi fake;
  fake.push(FakeReply::tool_call("read_file", {{"path", "b.py"}}));
  fake.push(FakeReply::text(R"({"ok": true})"));
  auto client = make_chat_client(ollama_config(fake));
  auto request = hello();
  request.tools = one_tool();
  const auto called = client->chat(request);
  ASSERT_EQ(called.tool_calls.size(), 1U);
  EXPECT_EQ(called.tool_calls[0].name, "read_file");
  EXPECT_EQ(called.tool_calls[0].arguments["path"], "b.py");
  EXPECT_FALSE(called.tool_calls[0].id.empty());

  auto json_request = hello();
  json_request.json_schema = nlohmann::json{{"type", "object"}};
  EXPECT_EQ(client->chat(json_request).content, R"({"ok": true})");
  const auto requests = fake.requests();
  EXPECT_EQ(requests[0].body["tools"][0]["type"], "function");
  EXPECT_EQ(requests[0].body["stream"], false);
  EXPECT_EQ(requests[1].body["format"]["type"], "object");
  EXPECT_EQ(requests[1].body["stream"], true) << "text streams so the idle timeout stays alive";
}

TEST(OllamaClient, ErrorsAreTypedFromOllamasErrorShape) {
  FakeOpenAi fake;
  fake.push(FakeReply::error(404, "model \"nope\" not found, try pulling it first"));
  fake.push(FakeReply::error(400, "input exceeds the context length of the model"));
  auto client = make_chat_client(ollama_config(fake));
  try {
    client->chat(hello());
    FAIL() << "404 must throw";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 404);
    EXPECT_EQ(error.provider_message(), "model \"nope\" not found, try pulling it first");
  }
  EXPECT_THROW(client->chat(hello()), ContextTooLongError);
}

// OpenAI, Ollama's /v1 and vLLM send null for fields they do not fill: an error's code, a
// finish_reason, a tool call's id. None of them may cost the real answer or the real error.
TEST(OpenAiClient, NullFieldsInErrorsKeepTheProvidersMessage) {
  FakeOpenAi fake;
  fake.push(FakeReply::raw(
      400, R"({"error": {"message": "model \"tiny\" is loading", "type": null, "code": null}})"));
  auto client = make_chat_client(openai_config(fake));
  try {
    client->chat(hello());
    FAIL() << "a 400 must throw";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 400);
    EXPECT_EQ(error.provider_message(), "model \"tiny\" is loading");
  }
}

TEST(OpenAiClient, NullFinishReasonAndNullToolCallIdsAreRead) {
  FakeOpenAi fake;
  fake.push(FakeReply::raw(200, R"({"id": "x", "choices": [{"index": 0, "finish_reason": null,
      "message": {"role": "assistant", "content": null, "tool_calls": [{"id": null,
      "type": "function", "function": {"name": "read_file", "arguments": "{\"path\": \"a\"}"}}]}}],
      "usage": {"prompt_tokens": null, "completion_tokens": 3}})"));
  auto client = make_chat_client(openai_config(fake));
  auto request = hello();
  request.tools = one_tool();
  const auto result = client->chat(request);
  ASSERT_EQ(result.tool_calls.size(), 1U);
  EXPECT_EQ(result.tool_calls[0].name, "read_file");
  EXPECT_FALSE(result.tool_calls[0].id.empty())
      << "a made-up id, so the tool answer can refer to it";
  EXPECT_EQ(result.tool_calls[0].arguments["path"], "a");
  EXPECT_EQ(result.completion_tokens, 3);
}

TEST(OllamaClient, NullFieldsInRecordsAreRead) {
  FakeOpenAi fake;
  fake.push(FakeReply::raw(200, R"({"model": "m", "message": {"role": "assistant",
      "content": null, "tool_calls": [{"id": null, "function": {"name": "read_file",
      "arguments": {"path": "a"}}}]}, "done": true, "done_reason": null,
      "prompt_eval_count": null, "eval_count": 2})"));
  fake.push(FakeReply::raw(400, R"({"error": null})"));
  auto client = make_chat_client(ollama_config(fake));
  auto request = hello();
  request.tools = one_tool();
  const auto result = client->chat(request);
  ASSERT_EQ(result.tool_calls.size(), 1U);
  EXPECT_FALSE(result.tool_calls[0].id.empty());
  EXPECT_EQ(result.completion_tokens, 2);
  try {
    client->chat(request);
    FAIL() << "a 400 must throw";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 400);
  }
}

// A model without tool calling says so in a 400; the client names it as such, so that the agent
// can switch to the text format.
TEST(OpenAiClient, AModelThatRefusesToolsIsTyped) {
  FakeOpenAi fake;
  fake.refuse_tools(true);
  auto client = make_chat_client(openai_config(fake));
  auto request = hello();
  request.tools = one_tool();
  EXPECT_THROW(client->chat(request), ToolsUnsupportedError);
  auto ollama = make_chat_client(ollama_config(fake));
  EXPECT_THROW(ollama->chat(request), ToolsUnsupportedError);
}

}  // namespace
}  // namespace llmgw::llm
