#include "llmgw/review/tools.hpp"

#include <gtest/gtest.h>

#include "fakes/sample_pr.hpp"

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

}  // namespace
}  // namespace llmgw::review
