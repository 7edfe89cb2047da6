// `llmgw review` as a user runs it: the binary against the fake GitHub API and a scripted
// OpenAI-compatible model, configured only through flags and environment variables.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/fake_github.hpp"
#include "fakes/fake_openai.hpp"
#include "fakes/sample_pr.hpp"
#include "support/run_process.hpp"

namespace llmgw {
namespace {

using fakes::FakeReply;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kGithubToken = "ghp_CliSecretToken42";
constexpr std::string_view kModelKey = "gsk_CliSecretKey42";

class ReviewCli : public ::testing::Test {
 protected:
  ReviewCli() {
    github_.add_pull("acme/widgets", fakes::sample_fake_pull());
    github_.require_token(std::string{kGithubToken});
  }

  // The model's script: look at the diff, miss the line once, correct it, finish.
  void script_a_review() {
    model_.push(FakeReply::tool_call("get_file_diff", {{"path", "src/cache.cpp"}}, "c1"));
    model_.push(FakeReply::tool_call(
        "add_comment", {{"path", "src/cache.cpp"}, {"line", 3}, {"body", "lock?"}}, "c2"));
    model_.push(FakeReply::tool_call("add_comment",
                                     {{"path", "src/cache.cpp"},
                                      {"line", 17},
                                      {"side", "LEFT"},
                                      {"body", "put() dropped the lock that get() still takes."},
                                      {"severity", "error"}},
                                     "c3"));
    model_.push(FakeReply::tool_call(
        "finish", {{"summary", "Adds a size counter; put() is no longer locked."}}, "c4"));
  }

  testing::ProcessResult review(std::vector<std::string> extra,
                                std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv = {
        LLMGW_BINARY, "review",     "acme/widgets",           "42",      "--provider",
        "openai",     "--base-url", model_.openai_base_url(), "--model", "test-model"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    env.emplace("GITHUB_API_URL", github_.base_url());
    env.emplace("GITHUB_TOKEN", std::string{kGithubToken});
    env.emplace("GROQ_API_KEY", std::string{kModelKey});
    env.emplace("OPENAI_API_KEY", "");
    env.emplace("GROQ_BASE_URL", "");
    return testing::run_process(argv, env);
  }

  fakes::FakeGithub github_;
  fakes::FakeOpenAi model_;
};

TEST_F(ReviewCli, DryRunPrintsTheReviewAndPostsNothing) {
  script_a_review();
  const auto result = review({"--dry-run"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("# Review of acme/widgets#42"));
  EXPECT_THAT(result.out, HasSubstr("Adds a size counter; put() is no longer locked."));
  EXPECT_THAT(result.out, HasSubstr("### src/cache.cpp:17 (LEFT)\n**Error**: put() dropped"));
  EXPECT_THAT(result.err, HasSubstr("1 refused as off the diff"));
  EXPECT_EQ(github_.requests("/repos/acme/widgets/pulls/42/reviews", "POST"), 0u);
  EXPECT_TRUE(github_.posted_reviews().empty());
  // Every model call carried the PR's session id, for a gateway's affinity.
  ASSERT_GE(model_.requests().size(), 4u);
  EXPECT_EQ(model_.requests()[0].header("x-session-id"), "acme/widgets#42");
}

TEST_F(ReviewCli, PostsOneReviewAndARerunPostsNothingNew) {
  script_a_review();
  const auto first = review({});
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_THAT(first.out, HasSubstr("Posted review"));
  EXPECT_THAT(first.out, HasSubstr("1 inline comment(s)"));
  ASSERT_EQ(github_.posted_reviews().size(), 1u);
  EXPECT_EQ(github_.posted_reviews()[0]["comments"][0]["line"], 17);

  script_a_review();
  const auto second = review({});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_THAT(second.out, HasSubstr("Nothing new to post"));
  EXPECT_EQ(github_.posted_reviews().size(), 1u);
  EXPECT_EQ(github_.review_comments().size(), 1u);
}

TEST_F(ReviewCli, UsageErrorsExitWith2) {
  const auto bad_repo =
      testing::run_process({LLMGW_BINARY, "review", "not-a-repo", "42", "--dry-run"});
  EXPECT_EQ(bad_repo.exit_code, 2);
  EXPECT_THAT(bad_repo.err, HasSubstr("OWNER/REPO expected"));
  const auto bad_number = testing::run_process({LLMGW_BINARY, "review", "acme/widgets", "x"});
  EXPECT_EQ(bad_number.exit_code, 2);
  const auto bad_provider = review({"--provider", "bard"});
  EXPECT_EQ(bad_provider.exit_code, 2);
  const auto no_token = review({}, {{"GITHUB_TOKEN", ""}});
  EXPECT_EQ(no_token.exit_code, 2);
  EXPECT_THAT(no_token.err, HasSubstr("needs a GitHub token"));
}

TEST_F(ReviewCli, RuntimeFailuresExitWith1AndNeverShowSecrets) {
  // A wrong token: GitHub answers 401.
  const auto result = review({"--dry-run"}, {{"GITHUB_TOKEN", "ghp_WrongSecret99"}});
  EXPECT_EQ(result.exit_code, 1);
  EXPECT_THAT(result.err, HasSubstr("401 Unauthorized: Bad credentials"));
  for (const auto* secret : {"ghp_WrongSecret99", "gsk_CliSecretKey42"}) {
    EXPECT_THAT(result.err, Not(HasSubstr(secret)));
    EXPECT_THAT(result.out, Not(HasSubstr(secret)));
  }
  // The model fails: the key must not show either.
  model_.set_fallback(FakeReply::error(401, "Invalid API Key"));
  const auto model_down = review({"--dry-run"});
  EXPECT_EQ(model_down.exit_code, 1);
  EXPECT_THAT(model_down.err, HasSubstr("Invalid API Key"));
  EXPECT_THAT(model_down.err, Not(HasSubstr(std::string{kModelKey})));
  EXPECT_THAT(model_down.err, Not(HasSubstr(std::string{kGithubToken})));
}

}  // namespace
}  // namespace llmgw
