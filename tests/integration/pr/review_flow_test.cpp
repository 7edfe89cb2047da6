// The review pipeline end to end in process: github::Client against the fake GitHub API, the
// agent against a scripted model, and publishing (422 handling, de-duplication on re-runs).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/fake_github.hpp"
#include "fakes/sample_pr.hpp"
#include "fakes/scripted_chat.hpp"
#include "llmgw/github/client.hpp"
#include "llmgw/review/agent.hpp"
#include "llmgw/review/publish.hpp"
#include "llmgw/review/tools.hpp"

namespace llmgw::review {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

class ReviewFlow : public ::testing::Test {
 protected:
  ReviewFlow() {
    fake_.add_pull("acme/widgets", fakes::sample_fake_pull());
    github::ClientConfig config;
    config.base_url = fake_.base_url();
    config.token = "test-token";
    config.retry.sleep = [](std::chrono::milliseconds) {};
    client_.emplace(config);
    pr_ = client_->fetch_pull_request({"acme", "widgets"}, 42);
  }

  AgentResult run_agent(fakes::ScriptedChatClient& chat) {
    ReviewTools tools{pr_, [this](const std::string& path) {
                        return client_->get_file_content(pr_.repo, path, pr_.meta.head_sha);
                      }};
    return ReviewAgent{chat, tools}.run();
  }

  PublishResult publish(const ReviewDraft& draft) {
    return post_review(*client_, pr_, prepare_review(pr_, draft, &*client_));
  }

  static DraftComment comment(std::string path, int line, github::Side side, std::string body) {
    return {std::move(path), line, side, "warning", std::move(body), std::nullopt, std::nullopt};
  }

  static ReviewDraft two_comments() {
    return {"Summary.",
            {comment("src/cache.cpp", 17, github::Side::left, "lock gone"),
             comment("src/cache.hpp", 4, github::Side::right, "declare put/get")},
            "scripted",
            {},
            {}};
  }

  fakes::FakeGithub fake_;
  std::optional<github::Client> client_;
  github::PullRequest pr_;
};

TEST_F(ReviewFlow, AgentCorrectsAnInvalidLineAndOneReviewIsPosted) {
  fakes::ScriptedChatClient chat;
  chat.call("read_file", {{"path", "src/cache.cpp"}, {"start_line", 1}, {"end_line", 21}})
      .call("add_comment", {{"path", "src/cache.cpp"}, {"line", 8}, {"body", "lock?"}})
      .call("add_comment", {{"path", "src/cache.cpp"},
                            {"line", 17},
                            {"side", "RIGHT"},
                            {"body", "put() no longer takes mutex_; get() does."},
                            {"severity", "error"}})
      .call("finish", {{"summary", "Adds a size counter; put() lost its lock."}});
  const auto result = run_agent(chat);
  ASSERT_EQ(result.comments.size(), 1u);
  EXPECT_EQ(result.rejected_comments, 1);
  // read_file went to the contents API at the head commit.
  EXPECT_EQ(fake_.requests("/repos/acme/widgets/contents/src/cache.cpp"), 1u);

  const auto published = publish({result.summary, result.comments, "scripted", {}, {}});
  EXPECT_TRUE(published.posted);
  const auto reviews = fake_.posted_reviews();
  ASSERT_EQ(reviews.size(), 1u);
  EXPECT_EQ(reviews[0]["event"], "COMMENT");
  EXPECT_EQ(reviews[0]["commit_id"], fakes::kSampleHeadSha);
  EXPECT_THAT(reviews[0]["body"].get<std::string>(),
              HasSubstr("Adds a size counter; put() lost its lock."));
  ASSERT_EQ(reviews[0]["comments"].size(), 1u);
  const auto& posted = reviews[0]["comments"][0];
  EXPECT_EQ(posted["path"], "src/cache.cpp");
  EXPECT_EQ(posted["line"], 17);
  EXPECT_EQ(posted["side"], "RIGHT");
  EXPECT_THAT(posted["body"].get<std::string>(), HasSubstr("**Error**: put() no longer takes"));
  EXPECT_THAT(posted["body"].get<std::string>(), HasSubstr("<!-- llmgw:review:"));
  EXPECT_EQ(fake_.rejected_reviews(), 0u);
}

TEST_F(ReviewFlow, Unprocessable422MovesTheRefusedCommentIntoTheBody) {
  // GitHub's view of the diff disagrees with ours on one line.
  fake_.refuse_comment_at("src/cache.cpp", 18);
  const auto published = publish({"Summary.",
                                  {comment("src/cache.cpp", 17, github::Side::left, "lock gone"),
                                   comment("src/cache.cpp", 18, github::Side::right, "racy size")},
                                  "scripted",
                                  {},
                                  {}});
  EXPECT_TRUE(published.posted);
  ASSERT_EQ(published.inline_comments.size(), 1u);
  EXPECT_EQ(published.inline_comments[0].line, 17);
  ASSERT_EQ(published.moved_to_body.size(), 1u);
  EXPECT_EQ(published.moved_to_body[0].line, 18);

  const auto reviews = fake_.posted_reviews();
  ASSERT_EQ(reviews.size(), 1u) << "the probes must stay pending and be deleted";
  ASSERT_EQ(reviews[0]["comments"].size(), 1u);
  EXPECT_EQ(reviews[0]["comments"][0]["line"], 17);
  const auto body = reviews[0]["body"].get<std::string>();
  EXPECT_THAT(body, HasSubstr("Comments that could not be placed on the diff"));
  EXPECT_THAT(body, HasSubstr("`src/cache.cpp` line 18 (RIGHT): **Warning**: racy size"));
  EXPECT_GE(fake_.rejected_reviews(), 2u);  // the full review, then the probe of line 18
}

TEST_F(ReviewFlow, ReRunDoesNotPostDuplicates) {
  const ReviewDraft draft{"Summary.",
                          {comment("src/cache.cpp", 17, github::Side::left, "lock gone")},
                          "scripted",
                          {},
                          {}};
  EXPECT_TRUE(publish(draft).posted);
  const auto again = publish(draft);
  EXPECT_FALSE(again.posted);
  EXPECT_TRUE(again.already_reviewed);
  EXPECT_EQ(again.skipped_duplicates.size(), 1u);
  EXPECT_EQ(fake_.posted_reviews().size(), 1u);
  EXPECT_EQ(fake_.review_comments().size(), 1u);

  // A later run with one new finding posts only that one; the old one is not repeated, even
  // reworded on the same line.
  const ReviewDraft more{"Summary 2.",
                         {comment("src/cache.cpp", 17, github::Side::left, "lock gone (again)"),
                          comment("src/cache.hpp", 4, github::Side::right, "declare put/get")},
                         "scripted",
                         {},
                         {}};
  const auto third = publish(more);
  EXPECT_TRUE(third.posted);
  ASSERT_EQ(third.inline_comments.size(), 1u);
  EXPECT_EQ(third.inline_comments[0].path, "src/cache.hpp");
  EXPECT_EQ(fake_.review_comments().size(), 2u);
}

TEST_F(ReviewFlow, CommentsMovedIntoTheBodyAreNotRepeatedOnAReRun) {
  fake_.refuse_comment_at("src/cache.cpp", 18);
  const ReviewDraft draft{"Summary.",
                          {comment("src/cache.cpp", 18, github::Side::right, "racy size")},
                          "scripted",
                          {},
                          {}};
  EXPECT_EQ(publish(draft).moved_to_body.size(), 1u);
  const auto again = publish(draft);
  EXPECT_FALSE(again.posted);
  EXPECT_EQ(fake_.posted_reviews().size(), 1u);
}

TEST_F(ReviewFlow, DryRunRendersWithoutPosting) {
  const ReviewDraft draft{"Summary.",
                          {comment("src/cache.cpp", 17, github::Side::left, "lock gone")},
                          "model-x via openai",
                          {"_note_"},
                          {}};
  const auto text = render_review(pr_, prepare_review(pr_, draft, &*client_));
  EXPECT_THAT(text, HasSubstr("# Review of acme/widgets#42"));
  EXPECT_THAT(text, HasSubstr("### src/cache.cpp:17 (LEFT)\n**Warning**: lock gone"));
  EXPECT_THAT(text, HasSubstr("model-x via openai"));
  EXPECT_THAT(text, Not(HasSubstr("<!--")));
  EXPECT_EQ(fake_.requests("/repos/acme/widgets/pulls/42/reviews", "POST"), 0u);
}

// GitHub created the review, then the kept-alive connection dropped before its answer: the POST
// must not be sent again (that posts every comment twice); the review is found by its marker.
TEST_F(ReviewFlow, AConnectionDropAfterGithubCreatedTheReviewDoesNotPostItTwice) {
  fake_.drop_connection_after_next_review();
  const auto published = publish(two_comments());
  EXPECT_TRUE(published.posted);
  EXPECT_EQ(published.inline_comments.size(), 2u);
  EXPECT_EQ(fake_.posted_reviews().size(), 1u);
  EXPECT_EQ(fake_.review_comments().size(), 2u);
  EXPECT_EQ(fake_.requests("/repos/acme/widgets/pulls/42/reviews", "POST"), 1u);
}

// The user has a pending review of their own in the browser: GitHub refuses any review with
// inline comments. That is not "these lines cannot take a comment": say why, post the comments
// in the body, and leave the user's pending review alone.
TEST_F(ReviewFlow, AUsersOwnPendingReviewIsExplainedNotTakenForMisplacedComments) {
  fake_.add_user_pending_review("acme/widgets", 42);
  const auto published = publish(two_comments());
  EXPECT_TRUE(published.posted);
  EXPECT_EQ(published.moved_to_body.size(), 2u);
  EXPECT_TRUE(published.blocked_by_pending_review);
  const auto reviews = fake_.posted_reviews();
  ASSERT_EQ(reviews.size(), 1u);
  EXPECT_TRUE(reviews[0]["comments"].empty());
  const auto body = reviews[0]["body"].get<std::string>();
  EXPECT_THAT(body, HasSubstr("pending review"));
  EXPECT_THAT(body, Not(HasSubstr("could not be placed on the diff")));
  EXPECT_THAT(body, HasSubstr("`src/cache.cpp` line 17 (LEFT): **Warning**: lock gone"));
  EXPECT_EQ(fake_.rejected_reviews(), 1u) << "no probing: no line is at fault";
  EXPECT_EQ(fake_.requests("/repos/acme/widgets/pulls/42/reviews/", "DELETE"), 0u);
}

TEST_F(ReviewFlow, MultiLineSuggestionsArePostedWithTheirRange) {
  DraftComment suggestion = comment("src/cache.cpp", 18, github::Side::right, "Lock it.");
  suggestion.start_line = 17;
  suggestion.suggestion = "  std::lock_guard lock(mutex_);\n  entries_[key] = value;";
  const auto published = publish({"Summary.", {suggestion}, "scripted", {}, {}});
  ASSERT_EQ(published.inline_comments.size(), 1u);
  const auto reviews = fake_.posted_reviews();
  ASSERT_EQ(reviews.size(), 1u);
  const auto& posted = reviews[0]["comments"][0];
  EXPECT_EQ(posted["start_line"], 17);
  EXPECT_EQ(posted["start_side"], "RIGHT");
  EXPECT_EQ(posted["line"], 18);
  EXPECT_THAT(posted["body"].get<std::string>(), HasSubstr("```suggestion\n  std::lock_guard"));
}

}  // namespace
}  // namespace llmgw::review
