// The chat clients against the in-process Ollama emulator: the native and the OpenAI-compatible
// API of something that behaves like Ollama (token counts, KV cache, faults), not a script.

#include <gtest/gtest.h>

#include "llmgw/llm/chat_client.hpp"
#include "llmgw/net/http_client.hpp"
#include "llmgw/pr/summarise.hpp"
#include "llmgw/sim/ollama_sim.hpp"

namespace llmgw::llm {
namespace {

sim::SimOptions fast_sim() {
  sim::SimOptions options;
  options.latency.time_scale = 0.001;
  options.output = {6, 12};
  options.seed = 7;
  return options;
}

ProviderConfig config_for(const sim::OllamaSim& ollama, Provider provider) {
  ProviderConfig config;
  config.provider = provider;
  config.base_url = ollama.base_url() + (provider == Provider::openai ? "/v1" : "");
  config.model = "llama3.2";
  config.max_attempts = 2;
  config.read_timeout = std::chrono::seconds{20};
  return config;
}

ChatRequest question(std::string text) {
  ChatRequest request;
  request.messages = {Message::system("You summarise pull requests."),
                      Message::user(std::move(text))};
  return request;
}

TEST(OllamaSimChat, NativeChatStreamsAndReportsOllamasTokenCounts) {
  sim::OllamaSim ollama{fast_sim()};
  ollama.start();
  auto client = make_chat_client(config_for(ollama, Provider::ollama));
  std::vector<std::string> pieces;
  const auto result = client->chat(question("What does this diff change?"),
                                   [&](std::string_view piece) { pieces.emplace_back(piece); });
  EXPECT_GE(pieces.size(), 6U) << "one record per generated token";
  std::string joined;
  for (const auto& piece : pieces) {
    joined += piece;
  }
  EXPECT_EQ(joined, result.content);
  EXPECT_GT(result.prompt_tokens, 0);
  EXPECT_EQ(result.completion_tokens, static_cast<std::int64_t>(pieces.size()));
  EXPECT_FALSE(result.finish_reason.empty());
}

TEST(OllamaSimChat, TheSameSessionReusesTheWarmCache) {
  sim::OllamaSim ollama{fast_sim()};
  ollama.start();
  auto config = config_for(ollama, Provider::ollama);
  config.session_id = "acme/widgets#42";
  auto client = make_chat_client(config);
  const std::string context(4000, 'x');  // a long shared prefix: the PR's diff
  client->chat(question(context + "\nSummarise file a."));
  const auto before = ollama.stats().cached_prompt_tokens;
  client->chat(question(context + "\nSummarise file b."));
  EXPECT_GT(ollama.stats().cached_prompt_tokens, before + 500)
      << "the second call of one PR should hit the first call's KV slot";
}

TEST(OllamaSimChat, OpenAiCompatibleEndpointStreamsSse) {
  sim::OllamaSim ollama{fast_sim()};
  ollama.start();
  auto client = make_chat_client(config_for(ollama, Provider::openai));
  int pieces = 0;
  const auto result = client->chat(question("Summarise."), [&](std::string_view) { ++pieces; });
  EXPECT_GE(pieces, 6);
  EXPECT_FALSE(result.content.empty());
  const auto whole = client->chat(question("Summarise."));
  EXPECT_EQ(whole.content, result.content) << "the emulator is deterministic";
}

TEST(OllamaSimChat, FaultsBecomeTypedErrors) {
  sim::OllamaSim ollama{fast_sim()};
  ollama.start();
  auto client = make_chat_client(config_for(ollama, Provider::ollama));

  ollama.set_fault({sim::FaultMode::error_mid_stream, 10.0, 2});
  std::string seen;
  EXPECT_THROW(client->chat(question("hi"), [&](std::string_view t) { seen += t; }), ApiError);
  EXPECT_FALSE(seen.empty()) << "tokens before the error record were streamed";

  ollama.set_fault({sim::FaultMode::close_mid_stream, 10.0, 2});
  EXPECT_THROW(client->chat(question("hi"), [](std::string_view) {}), net::TransportError);

  ollama.set_fault({sim::FaultMode::error500, 10.0, 0});
  try {
    client->chat(question("hi"));
    FAIL() << "a 500 must end in an error after the retries";
  } catch (const ApiError& error) {
    EXPECT_EQ(error.status(), 500);
  }

  ollama.set_fault({});
  EXPECT_FALSE(client->chat(question("hi")).content.empty()) << "recovers once the fault clears";
}

TEST(OllamaSimChat, SummariseRunsEndToEndOnTheEmulator) {
  sim::OllamaSim ollama{fast_sim()};
  ollama.start();
  auto config = config_for(ollama, Provider::ollama);
  auto client = make_chat_client(config);
  github::PullRequest pr;
  pr.repo = {"acme", "widgets"};
  pr.meta.number = 42;
  pr.meta.title = "Add a cache";
  for (int f = 0; f < 3; ++f) {
    github::ChangedFile file;
    file.filename = "src/f" + std::to_string(f) + ".cpp";
    file.status = "modified";
    file.additions = 200;
    file.patch = "@@ -1,1 +1,200 @@\n" + std::string(200 * 30, '+');
    pr.files.push_back(file);
  }
  pr::SummariseOptions options;
  options.context_tokens = 2048;
  options.session_id = "acme/widgets#42";
  const auto summary = pr::summarise(pr, *client, options);
  EXPECT_TRUE(summary.map_reduce);
  EXPECT_EQ(summary.llm_calls, 4);
  EXPECT_EQ(summary.files.size(), 3U);
  EXPECT_GT(summary.prompt_tokens, 0);
  EXPECT_EQ(summary.markdown.rfind("# Add a cache\n", 0), 0U);
}

}  // namespace
}  // namespace llmgw::llm
