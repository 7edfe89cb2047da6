// `make demo-pr` must keep working: scripts/demo-pr runs summarise, review --dry-run and eval
// against llmgw-fakes, as the documentation tells users to.

#include <gtest/gtest.h>

#include <filesystem>

#include "support/run_process.hpp"

namespace llmgw {
namespace {

TEST(DemoPr, RunsSummariseReviewAndEvalAgainstTheFakes) {
  const auto build_dir = std::filesystem::path{LLMGW_BINARY}.parent_path().string();
  const auto result = testing::run_process(
      {"/bin/bash", "-c", "cd \"$SOURCE_DIR\" && BUILD_DIR=\"$BUILD_DIR\" bash scripts/demo-pr"},
      {{"SOURCE_DIR", LLMGW_SOURCE_DIR},
       {"BUILD_DIR", build_dir},
       {"GITHUB_TOKEN", ""},
       {"GROQ_API_KEY", ""}},
      std::chrono::seconds{120});
  ASSERT_FALSE(result.timed_out) << result.out << result.err;
  ASSERT_EQ(result.exit_code, 0) << result.out << result.err;
  EXPECT_NE(result.out.find("## Risk areas"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("\"map_reduce\": true"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("dry run, not posted"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("Posted review"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("Incremental review: only the commits since the last review"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("### src/cache.hpp:5 (RIGHT)"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("Usage: llama-3.3-70b-versatile via openai, "), std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find("mean score"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("demo-pr: all three commands ran"), std::string::npos) << result.out;
}

}  // namespace
}  // namespace llmgw
