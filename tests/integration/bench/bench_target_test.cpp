// `llmgw bench --target URL --api openai` against an OpenAI-compatible server that reports its
// cache the way vLLM (usage.prompt_tokens_details.cached_tokens) and llama.cpp's llama-server
// (timings.cache_n) do: the report's cache reuse comes from those answers, and the requests are
// the ones such a server understands.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "fakes/fake_openai.hpp"
#include "llmgw/bench/bench.hpp"
#include "support/bench_options.hpp"

namespace llmgw::bench {
namespace {

using nlohmann::json;

BenchOptions target_options(const std::string& url, const std::string& mode) {
  BenchOptions options = testing::quick_bench(3, 2, 10, 8);
  options.workload.api = kApiOpenAi;
  options.modes = {mode};
  options.target_url = url;
  return options;
}

TEST(BenchTarget, CacheReuseComesFromOpenAiUsageCachedTokens) {
  fakes::FakeOpenAi server;
  fakes::FakeReply reply = fakes::FakeReply::text("a short reply");
  reply.prompt_tokens = 100;
  reply.cached_tokens = 60;
  server.set_fallback(reply);

  const auto result = run_bench(target_options(server.base_url(), kModeBounded));
  const json& mode = result.report["modes"][0];
  EXPECT_EQ(mode["errors"], 0) << mode.dump();
  EXPECT_EQ(mode["cache_reuse_source"], "usage");
  EXPECT_DOUBLE_EQ(mode["cache_reuse"].get<double>(), 0.6);
  EXPECT_DOUBLE_EQ(mode["cache_reuse_reported"].get<double>(), 0.6);

  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 6U);
  for (const auto& request : requests) {
    EXPECT_EQ(request.path, "/v1/chat/completions");
    EXPECT_EQ(request.body["stream"], true);
    EXPECT_EQ(request.body["stream_options"]["include_usage"], true);
    EXPECT_EQ(request.body["max_tokens"], 8);
    EXPECT_TRUE(request.header("X-Session-ID").has_value());
  }
  // The second turn carries the first reply as the assistant's message.
  bool second_turn = false;
  for (const auto& request : requests) {
    const auto& messages = request.body["messages"];
    if (messages.size() == 3) {
      second_turn = true;
      EXPECT_EQ(messages[1], (json{{"role", "assistant"}, {"content", "a short reply"}}));
    }
  }
  EXPECT_TRUE(second_turn);
}

TEST(BenchTarget, CacheReuseComesFromLlamaCppTimingsAndTheKeyCanGoInTheBody) {
  fakes::FakeOpenAi server;
  fakes::FakeReply reply = fakes::FakeReply::text("ok");
  reply.prompt_tokens = 80;
  reply.cache_n = 20;  // prompt_n 60 evaluated
  server.set_fallback(reply);

  auto options = target_options(server.base_url(), kModeBounded);
  options.workload.session_id_in_body = true;
  const auto result = run_bench(options);
  const json& mode = result.report["modes"][0];
  EXPECT_EQ(mode["errors"], 0) << mode.dump();
  EXPECT_EQ(mode["cache_reuse_source"], "usage");
  EXPECT_DOUBLE_EQ(mode["cache_reuse"].get<double>(), 0.25);
  for (const auto& request : server.requests()) {
    EXPECT_FALSE(request.header("X-Session-ID").has_value());
    EXPECT_TRUE(request.body["prompt_cache_key"].is_string()) << request.body.dump();
  }
}

TEST(BenchTarget, AServerThatReportsNoCacheFallsBackToTheEstimate) {
  fakes::FakeOpenAi server;
  server.set_fallback(fakes::FakeReply::text("ok"));
  const auto result = run_bench(target_options(server.base_url(), kModeRoundRobin));
  const json& mode = result.report["modes"][0];
  EXPECT_EQ(mode["errors"], 0) << mode.dump();
  EXPECT_TRUE(mode["cache_reuse_reported"].is_null());
  EXPECT_NE(mode["cache_reuse_source"], "usage");
  for (const auto& request : server.requests()) {
    EXPECT_FALSE(request.header("X-Session-ID").has_value());  // round_robin sends no key
  }
}

TEST(BenchTarget, AnUnknownApiIsRefused) {
  auto options = target_options("http://127.0.0.1:1", kModeBounded);
  options.workload.api = "grpc";
  EXPECT_THROW(run_bench(options), std::invalid_argument);
}

}  // namespace
}  // namespace llmgw::bench
