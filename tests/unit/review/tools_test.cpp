#include "llmgw/review/tools.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <set>

#include "fakes/sample_pr.hpp"
#include "llmgw/llm/token_budget.hpp"

namespace llmgw::review {
namespace {

using nlohmann::json;

class ReviewToolsTest : public ::testing::Test {
 protected:
  ReviewTools make_tools(ToolLimits limits = {}) {
    return ReviewTools{pr_,
                       [this](const std::string& path) -> std::optional<std::string> {
                         ++reads_;
                         const auto it = files_.find(path);
                         return it == files_.end() ? std::nullopt : std::optional{it->second};
                       },
                       limits};
  }

  github::PullRequest pr_ = fakes::sample_pull_request();
  std::map<std::string, std::string> files_ = fakes::sample_head_files();
  int reads_ = 0;
};

TEST_F(ReviewToolsTest, ListFilesShowsStatusAndCommentableLines) {
  auto tools = make_tools();
  const auto out = tools.call("list_files", json::object());
  EXPECT_TRUE(out.ok);
  EXPECT_NE(out.observation.find("src/cache.cpp (modified, +1 -1) commentable: RIGHT 14-19; "
                                 "LEFT 17"),
            std::string::npos)
      << out.observation;
  EXPECT_NE(out.observation.find("docs/old.md (removed, +0 -2) commentable: LEFT 1-2"),
            std::string::npos);
}

TEST_F(ReviewToolsTest, FileDiffLabelsEveryLineWithSideAndNumber) {
  auto tools = make_tools();
  const auto out = tools.call("get_file_diff", {{"path", "src/cache.cpp"}});
  EXPECT_NE(out.observation.find("LEFT 17 | -  std::lock_guard lock(mutex_);"), std::string::npos)
      << out.observation;
  EXPECT_NE(out.observation.find("RIGHT 18 | +  size_ = entries_.size();"), std::string::npos);
  EXPECT_NE(out.observation.find("RIGHT 17 |    entries_[key] = value;"), std::string::npos);
  EXPECT_FALSE(tools.call("get_file_diff", {{"path", "nope.cpp"}}).ok);
  EXPECT_FALSE(tools.call("get_file_diff", json::object()).ok);
}

TEST_F(ReviewToolsTest, ReadFileReturnsNumberedLinesAtHeadAndCachesTheFile) {
  auto tools = make_tools();
  const auto out =
      tools.call("read_file", {{"path", "src/cache.cpp"}, {"start_line", 16}, {"end_line", "17"}});
  EXPECT_EQ(out.observation,
            "src/cache.cpp lines 16-17 of 21:\n16: void Cache::put(int key, int value) {\n"
            "17:   entries_[key] = value;\n");
  tools.call("read_file", {{"path", "src/cache.cpp"}});
  EXPECT_EQ(reads_, 1);
  const auto removed = tools.call("read_file", {{"path", "docs/old.md"}});
  EXPECT_FALSE(removed.ok);
  EXPECT_NE(removed.observation.find("does not exist at the head"), std::string::npos);
  EXPECT_FALSE(tools.call("read_file", {{"path", "src/cache.cpp"}, {"start_line", 99}}).ok);
}

TEST_F(ReviewToolsTest, SearchCodeFindsRegexMatchesInPrFilesOnly) {
  files_["unrelated.cpp"] = "mutex_\n";
  auto tools = make_tools();
  const auto out = tools.call("search_code", {{"pattern", "mutex_?\\b"}});
  EXPECT_NE(out.observation.find("src/cache.cpp:8:   std::lock_guard lock(mutex_);"),
            std::string::npos)
      << out.observation;
  EXPECT_NE(out.observation.find("src/cache.hpp:3: #include <mutex>"), std::string::npos);
  EXPECT_EQ(out.observation.find("unrelated.cpp"), std::string::npos);
  // An invalid expression is searched for literally instead of failing.
  const auto literal = tools.call("search_code", {{"pattern", "find(key"}});
  EXPECT_NE(literal.observation.find("src/cache.cpp:9:"), std::string::npos) << literal.observation;
}

TEST_F(ReviewToolsTest, AddCommentOffTheDiffIsRefusedWithTheAllowedLines) {
  auto tools = make_tools();
  const auto out =
      tools.call("add_comment", {{"path", "src/cache.cpp"}, {"line", 8}, {"body", "lock here"}});
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.observation.find("line 8 (RIGHT) of src/cache.cpp is not part of the diff"),
            std::string::npos)
      << out.observation;
  EXPECT_NE(out.observation.find("Commentable lines: RIGHT 14-19; LEFT 17"), std::string::npos);
  EXPECT_NE(out.observation.find("nearest is RIGHT 14"), std::string::npos);
  EXPECT_TRUE(tools.comments().empty());
  EXPECT_EQ(tools.rejected_comments(), 1);
}

TEST_F(ReviewToolsTest, AMultiLineCommentMustStayWithinOneHunk) {
  auto tools = make_tools();
  const auto across = tools.call(
      "add_comment",
      {{"path", "src/cache.cpp"}, {"start_line", 12}, {"line", 15}, {"body", "this block"}});
  EXPECT_FALSE(across.ok);
  EXPECT_NE(across.observation.find("line 12 (RIGHT) of src/cache.cpp is not part of the diff; a "
                                    "multi-line comment must stay within one hunk"),
            std::string::npos)
      << across.observation;
  const auto reversed = tools.call(
      "add_comment",
      {{"path", "src/cache.cpp"}, {"start_line", 16}, {"line", 15}, {"body", "this block"}});
  EXPECT_FALSE(reversed.ok);
  EXPECT_NE(reversed.observation.find("start_line must be a line number no greater than line"),
            std::string::npos)
      << reversed.observation;
  const auto within = tools.call(
      "add_comment",
      {{"path", "src/cache.cpp"}, {"start_line", 14}, {"line", 16}, {"body", "this block"}});
  EXPECT_TRUE(within.ok) << within.observation;
  ASSERT_EQ(tools.comments().size(), 1U);
  EXPECT_EQ(tools.comments().front().start_line, 14);
  EXPECT_EQ(tools.rejected_comments(), 2);
}

TEST_F(ReviewToolsTest, AddCommentAcceptsRightAndLeftLinesOfTheDiff) {
  auto tools = make_tools();
  EXPECT_TRUE(tools
                  .call("add_comment", {{"path", "src/cache.cpp"},
                                        {"line", 17},
                                        {"side", "left"},
                                        {"body", "Why drop the lock?"},
                                        {"severity", "critical"}})
                  .ok);
  EXPECT_TRUE(
      tools
          .call("add_comment",
                {{"path", "src/cache.cpp"}, {"line", "18"}, {"body", "size_ races with get()"}})
          .ok);
  ASSERT_EQ(tools.comments().size(), 2u);
  EXPECT_EQ(tools.comments()[0].side, github::Side::left);
  EXPECT_EQ(tools.comments()[0].rendered_body(), "**Error**: Why drop the lock?");
  EXPECT_EQ(tools.comments()[1].line, 18);
  EXPECT_EQ(tools.comments()[1].rendered_body(), "**Suggestion**: size_ races with get()");
}

TEST_F(ReviewToolsTest, AddCommentRefusesDuplicatesBadSidesAndPastTheLimit) {
  auto tools = make_tools(ToolLimits{1});
  const json comment = {{"path", "src/cache.hpp"}, {"line", 2}, {"body", "x"}};
  EXPECT_TRUE(tools.call("add_comment", comment).ok);
  EXPECT_NE(tools.call("add_comment", comment).observation.find("already a comment"),
            std::string::npos);
  EXPECT_NE(tools.call("add_comment", {{"path", "src/cache.hpp"}, {"line", 3}, {"body", "y"}})
                .observation.find("limit of 1 comments"),
            std::string::npos);
  EXPECT_NE(tools
                .call("add_comment",
                      {{"path", "src/cache.hpp"}, {"line", 3}, {"side", "UP"}, {"body", "y"}})
                .observation.find("side must be"),
            std::string::npos);
  EXPECT_FALSE(tools.call("add_comment", {{"path", "src/cache.hpp"}, {"line", 3}}).ok);
  EXPECT_EQ(tools.comments().size(), 1u);
}

TEST_F(ReviewToolsTest, FinishRecordsTheSummaryAndEndsTheReview) {
  auto tools = make_tools();
  EXPECT_FALSE(tools.call("finish", {{"summary", "  "}}).ok);
  const auto out = tools.call("finish", {{"summary", "Looks racy."}});
  EXPECT_TRUE(out.finished);
  EXPECT_TRUE(tools.finished());
  EXPECT_EQ(tools.summary(), "Looks racy.");
  EXPECT_FALSE(tools.call("list_files", json::object()).ok);
}

TEST_F(ReviewToolsTest, UnknownToolAndFailingReaderBecomeErrorObservations) {
  auto tools = ReviewTools{pr_, [](const std::string&) -> std::optional<std::string> {
                             throw std::runtime_error("api.github.com answered 500");
                           }};
  EXPECT_NE(tools.call("rm_rf", json::object()).observation.find("unknown tool"),
            std::string::npos);
  const auto out = tools.call("read_file", {{"path", "src/cache.cpp"}});
  EXPECT_FALSE(out.ok);
  EXPECT_NE(out.observation.find("answered 500"), std::string::npos);
}

TEST_F(ReviewToolsTest, OverviewNamesThePrAndItsFiles) {
  const auto tools = make_tools();
  const auto overview = tools.overview();
  EXPECT_NE(overview.find("acme/widgets#42: Cache: track the size"), std::string::npos);
  EXPECT_NE(overview.find("- src/cache.hpp (added, +4 -0)"), std::string::npos);
}

// 4294967313 is 2^32 + 17: narrowed to int it would land on line 17, a commentable line.
TEST_F(ReviewToolsTest, LineNumbersOutOfRangeAreRefusedNotNarrowed) {
  auto tools = make_tools();
  for (const json& line : {json(4294967313LL), json("4294967313"), json(1e300), json(-17),
                           json(17.5), json(std::numeric_limits<double>::infinity())}) {
    const auto out =
        tools.call("add_comment", {{"path", "src/cache.cpp"}, {"line", line}, {"body", "lock?"}});
    EXPECT_FALSE(out.ok) << line.dump();
  }
  EXPECT_TRUE(tools.comments().empty());
  EXPECT_EQ(tools.rejected_comments(), 6);
  EXPECT_TRUE(
      tools.call("add_comment", {{"path", "src/cache.cpp"}, {"line", 17.0}, {"body", "lock?"}}).ok);
}

// A 1,200-line new file in an 8k context: a quarter of the window per observation, so the diff
// comes in pages that say where the next one starts.
TEST_F(ReviewToolsTest, FileDiffPagesThroughABigFileByLineRange) {
  std::string patch = "@@ -0,0 +1,1200 @@\n";
  for (int i = 1; i <= 1200; ++i) {
    patch += "+int value_" + std::to_string(i) + " = compute(" + std::to_string(i) + ");\n";
  }
  const std::string diff =
      "diff --git a/big.cpp b/big.cpp\nnew file mode 100644\n--- /dev/null\n+++ b/big.cpp\n" +
      patch;
  pr_.files = {{"big.cpp", "", "added", 1200, 0, patch}};
  pr_.diff = diff;
  pr_.file_diffs = github::parse_unified_diff(diff);
  ToolLimits limits;
  limits.max_observation_tokens = 2048;
  auto tools = make_tools(limits);

  std::set<int> seen;
  json arguments = {{"path", "big.cpp"}};
  for (int call = 0; call < 40 && seen.size() < 1200; ++call) {
    const auto out = tools.call("get_file_diff", arguments);
    ASSERT_TRUE(out.ok) << out.observation;
    ASSERT_LE(llm::estimate_tokens(out.observation), 2048 + 64);
    for (int i = 1; i <= 1200; ++i) {
      if (out.observation.find("RIGHT " + std::to_string(i) + " | +int value_" + std::to_string(i) +
                               " ") != std::string::npos) {
        seen.insert(i);
      }
    }
    const auto next = out.observation.find("\"start_line\": ");
    if (next == std::string::npos) {
      break;
    }
    arguments["start_line"] = std::stoi(out.observation.substr(next + 14));
  }
  EXPECT_EQ(seen.size(), 1200u);

  const auto range =
      tools.call("get_file_diff", {{"path", "big.cpp"}, {"start_line", 500}, {"end_line", 502}});
  EXPECT_NE(range.observation.find("RIGHT 500 | +int value_500 "), std::string::npos);
  EXPECT_NE(range.observation.find("RIGHT 502 | +int value_502 "), std::string::npos);
  EXPECT_EQ(range.observation.find("RIGHT 503 |"), std::string::npos);
  EXPECT_EQ(range.observation.find("RIGHT 499 |"), std::string::npos);
}

// expand: the enclosing function around each hunk, read from the file at head, marked as not
// commentable.
TEST_F(ReviewToolsTest, FileDiffExpandsToTheEnclosingFunction) {
  std::string file = "namespace acme {\n\nint Cache::evict(int key) {\n";
  for (int i = 4; i <= 30; ++i) {
    file += "  step(" + std::to_string(i) + ");\n";
  }
  file += "}\n\n}  // namespace acme\n";  // line 31 is the closing brace
  const std::string patch =
      "@@ -15,5 +15,5 @@ int Cache::evict(int key) {\n"
      "   step(15);\n   step(16);\n-  step(17);\n+  step(17); // changed\n   step(18);\n"
      "   step(19);\n";
  const std::string diff =
      "diff --git a/evict.cpp b/evict.cpp\n--- a/evict.cpp\n+++ b/evict.cpp\n" + patch;
  pr_.files = {{"evict.cpp", "", "modified", 1, 1, patch}};
  pr_.diff = diff;
  pr_.file_diffs = github::parse_unified_diff(diff);
  files_["evict.cpp"] = file;
  auto tools = make_tools();
  const auto out = tools.call("get_file_diff", {{"path", "evict.cpp"}, {"expand", true}});
  ASSERT_TRUE(out.ok) << out.observation;
  EXPECT_NE(out.observation.find("3 : int Cache::evict(int key) {"), std::string::npos)
      << out.observation;
  EXPECT_NE(out.observation.find("31 : }"), std::string::npos) << out.observation;
  EXPECT_NE(out.observation.find("RIGHT 17 | +  step(17); // changed"), std::string::npos);
  EXPECT_EQ(out.observation.find("33 :"), std::string::npos) << "stops at the block's end";
}

TEST_F(ReviewToolsTest, MultiLineCommentsAndSuggestionsAreCheckedAgainstTheDiff) {
  auto tools = make_tools();
  const auto ok = tools.call("add_comment", {{"path", "src/cache.cpp"},
                                             {"start_line", 17},
                                             {"line", 18},
                                             {"body", "Take the lock again."},
                                             {"suggestion",
                                              "  std::lock_guard lock(mutex_);\n"
                                              "  entries_[key] = value;"}});
  ASSERT_TRUE(ok.ok) << ok.observation;
  ASSERT_EQ(tools.comments().size(), 1u);
  EXPECT_EQ(tools.comments()[0].start_line, 17);
  EXPECT_EQ(tools.comments()[0].rendered_body(),
            "**Suggestion**: Take the lock again.\n\n```suggestion\n"
            "  std::lock_guard lock(mutex_);\n  entries_[key] = value;\n```");
  // Off the diff at the start, backwards, or a suggestion on removed lines: refused.
  EXPECT_FALSE(
      tools
          .call("add_comment",
                {{"path", "src/cache.cpp"}, {"start_line", 10}, {"line", 15}, {"body", "x"}})
          .ok);
  EXPECT_FALSE(tools
                   .call("add_comment",
                         {{"path", "src/cache.hpp"}, {"start_line", 4}, {"line", 2}, {"body", "x"}})
                   .ok);
  EXPECT_FALSE(tools
                   .call("add_comment", {{"path", "src/cache.cpp"},
                                         {"line", 17},
                                         {"side", "LEFT"},
                                         {"body", "x"},
                                         {"suggestion", "y"}})
                   .ok);
  // A suggestion holding a fence gets a longer one.
  ASSERT_TRUE(tools
                  .call("add_comment", {{"path", "src/cache.hpp"},
                                        {"line", 1},
                                        {"body", "doc"},
                                        {"suggestion", "```\ncode\n```"}})
                  .ok);
  EXPECT_NE(tools.comments()[1].rendered_body().find("````suggestion\n```\ncode\n```\n````"),
            std::string::npos)
      << tools.comments()[1].rendered_body();
}

}  // namespace
}  // namespace llmgw::review
