#include "llmgw/server/usage_scanner.hpp"

#include <gtest/gtest.h>

namespace llmgw::server {
namespace {

TEST(UsageScanner, ReadsOllamaFinalRecordSplitAcrossChunks) {
  UsageScanner scanner;
  const std::string stream =
      "{\"model\":\"m\",\"response\":\"Hi\",\"done\":false}\n"
      "{\"model\":\"m\",\"response\":\"\",\"done\":true,\"done_reason\":\"stop\","
      "\"prompt_eval_count\":26,\"prompt_eval_duration\":130079000,\"eval_count\":259}\n";
  // Feed in awkward 7-byte pieces, as a network would.
  for (std::size_t i = 0; i < stream.size(); i += 7) {
    scanner.feed(std::string_view{stream}.substr(i, 7));
  }
  scanner.finish();
  ASSERT_TRUE(scanner.usage().seen);
  EXPECT_EQ(scanner.usage().prompt_tokens, 26U);
  EXPECT_EQ(scanner.usage().completion_tokens, 259U);
  EXPECT_DOUBLE_EQ(scanner.usage().prompt_eval_seconds, 0.130079);
}

TEST(UsageScanner, ReadsNonStreamedBodyWithoutTrailingNewline) {
  UsageScanner scanner;
  scanner.feed(R"({"response":"x","done":true,"prompt_eval_count":5,"eval_count":2})");
  scanner.finish();
  EXPECT_EQ(scanner.usage().prompt_tokens, 5U);
  EXPECT_EQ(scanner.usage().completion_tokens, 2U);
}

TEST(UsageScanner, ReadsOpenAiSseUsage) {
  UsageScanner scanner;
  scanner.feed("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n");
  scanner.feed("data: {\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3}}\n");
  scanner.feed("\ndata: [DONE]\n\n");
  scanner.finish();
  EXPECT_EQ(scanner.usage().prompt_tokens, 11U);
  EXPECT_EQ(scanner.usage().completion_tokens, 3U);
}

TEST(UsageScanner, IgnoresTokensThatMentionDoneAndOversizedLines) {
  UsageScanner scanner;
  scanner.feed("{\"response\":\"\\\"done\\\": true prompt_eval_count\",\"done\":false}\n");
  scanner.feed(std::string(UsageScanner::kMaxLineBytes + 10, 'x'));
  scanner.feed("\n");
  scanner.finish();
  EXPECT_FALSE(scanner.usage().seen);
}

// Found by tests/fuzz/usage_fuzzer: counts were read through a double and cast, undefined
// behaviour for a value beyond uint64 (a misbehaving node's 1e30) and inexact above 2^53. Whole
// numbers are read exactly; a negative, fractional-overflowing or non-finite count counts as 0.
TEST(UsageScanner, ReadsCountsExactlyAndIgnoresOutOfRangeOnes) {
  UsageScanner scanner;
  scanner.feed(R"({"done":true,"prompt_eval_count":18446744073709551615,"eval_count":1e30,)"
               R"("prompt_eval_duration":-5})"
               "\n");
  scanner.finish();
  ASSERT_TRUE(scanner.usage().seen);
  EXPECT_EQ(scanner.usage().prompt_tokens, 18446744073709551615U);
  EXPECT_EQ(scanner.usage().completion_tokens, 0U);
  EXPECT_EQ(scanner.usage().prompt_eval_seconds, 0.0);

  UsageScanner openai;
  openai.feed(R"(data: {"usage":{"prompt_tokens":9007199254740993,"completion_tokens":2.9}})");
  openai.finish();
  EXPECT_EQ(openai.usage().prompt_tokens, 9007199254740993U);
  EXPECT_EQ(openai.usage().completion_tokens, 2U);
}

TEST(UsageScanner, ANonBooleanDoneIsNotAFinalRecordAndDoesNotThrow) {
  // Found by the usage fuzzer: value("done", false) threw on {"done": 5} in the relay.
  UsageScanner scanner;
  EXPECT_NO_THROW(scanner.feed(R"({"model":"m","done":5,"prompt_eval_count":3})"
                               "\n"));
  EXPECT_FALSE(scanner.usage().seen);
  scanner.feed(R"({"model":"m","done":true,"prompt_eval_count":3,"eval_count":2})"
               "\n");
  EXPECT_TRUE(scanner.usage().seen);
  EXPECT_EQ(scanner.usage().prompt_tokens, 3U);
}

TEST(UsageScanner, OnlyGenerationAndEmbeddingAnswersReportUsage) {
  for (const char* path :
       {"/api/generate", "/api/chat", "/api/embed", "/api/embeddings", "/v1/chat/completions",
        "/v1/completions", "/v1/embeddings", "/v1/messages"}) {
    EXPECT_TRUE(UsageScanner::reports_usage(path)) << path;
  }
  for (const char* path :
       {"/api/show", "/api/tags", "/api/ps", "/v1/models", "/api/generate/x", "/", ""}) {
    EXPECT_FALSE(UsageScanner::reports_usage(path)) << path;
  }
}

}  // namespace
}  // namespace llmgw::server
