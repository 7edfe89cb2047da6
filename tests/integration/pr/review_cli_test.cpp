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

// Many small local models have no tool calling: the provider says so and the review goes on in
// the text ReAct format.
TEST_F(ReviewCli, AModelWithoutToolCallingReviewsInTheTextFormat) {
  model_.refuse_tools(true);
  model_.push(FakeReply::text(
      "Thought: the lock\nAction: add_comment\nAction Input: {\"path\": \"src/cache.cpp\", "
      "\"line\": 17, \"side\": \"LEFT\", \"body\": \"put() dropped the lock.\"}"));
  model_.push(FakeReply::text("Final Answer: put() is no longer locked."));
  const auto result = review({"--dry-run"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_THAT(result.out, HasSubstr("put() is no longer locked."));
  EXPECT_THAT(result.out, HasSubstr("### src/cache.cpp:17 (LEFT)"));
  EXPECT_THAT(result.err, HasSubstr("text format"));
}

TEST_F(ReviewCli, ToolsTextNeverOffersToolsAndABadValueIsAUsageError) {
  model_.push(FakeReply::text("Final Answer: fine."));
  const auto result = review({"--dry-run", "--tools", "text"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  ASSERT_FALSE(model_.requests().empty());
  for (const auto& request : model_.requests()) {
    EXPECT_FALSE(request.body.contains("tools")) << request.body.dump();
  }
  EXPECT_EQ(review({"--dry-run", "--tools", "maybe"}).exit_code, 2);
}

TEST_F(ReviewCli, IgnoredFilesAreLeftOutAndAUsageLineEndsTheReview) {
  model_.push(FakeReply::tool_call("finish", {{"summary", "Adds a size counter."}}, "c1"));
  const auto result = review({"--dry-run", "--ignore", "*.hpp"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto overview = model_.requests().at(0).body["messages"][1]["content"].get<std::string>();
  EXPECT_THAT(overview, Not(HasSubstr("src/cache.hpp")));
  EXPECT_THAT(overview, HasSubstr("src/cache.cpp"));
  EXPECT_THAT(result.out, HasSubstr("1 file(s) not reviewed"));
  EXPECT_THAT(result.out, HasSubstr("`src/cache.hpp`"));
  // The fake reports 11 prompt and 7 completion tokens per call.
  EXPECT_THAT(result.out, HasSubstr("Usage: test-model via openai, 11 tokens in / 7 out, "));
  EXPECT_THAT(result.out, HasSubstr(" s, 1 model call."));
}

// A second push changes only src/cache.hpp: the re-run reviews the commits since the head the
// first review recorded in its marker, and says so.
TEST_F(ReviewCli, ARerunAfterAPushReviewsOnlyWhatChangedSince) {
  script_a_review();
  ASSERT_EQ(review({}).exit_code, 0);
  github_.push_head("acme/widgets", fakes::sample_fake_pull_second_push());
  model_.push(FakeReply::tool_call("add_comment",
                                   {{"path", "src/cache.hpp"},
                                    {"line", 5},
                                    {"body", "Document the unit of the capacity."},
                                    {"severity", "warning"}},
                                   "c5"));
  model_.push(FakeReply::tool_call("finish", {{"summary", "Declares cache_capacity()."}}, "c6"));
  const auto second = review({});
  ASSERT_EQ(second.exit_code, 0) << second.err;
  const auto requests = model_.requests();
  const auto overview = requests.back().body["messages"][1]["content"].get<std::string>();
  EXPECT_THAT(overview, HasSubstr("src/cache.hpp"));
  EXPECT_THAT(overview, Not(HasSubstr("src/cache.cpp")));
  EXPECT_EQ(github_.requests("/repos/acme/widgets/compare/" + std::string{fakes::kSampleHeadSha} +
                             "..." + std::string{fakes::kSampleSecondHeadSha}),
            1u);
  const auto reviews = github_.posted_reviews();
  ASSERT_EQ(reviews.size(), 2u);
  EXPECT_EQ(reviews[1]["commit_id"], fakes::kSampleSecondHeadSha);
  EXPECT_THAT(reviews[1]["body"].get<std::string>(),
              HasSubstr("Incremental review: only the commits since the last review at `" +
                        std::string{fakes::kSampleHeadSha}.substr(0, 12) + "`"));
  ASSERT_EQ(reviews[1]["comments"].size(), 1u);
  EXPECT_EQ(reviews[1]["comments"][0]["path"], "src/cache.hpp");
  // --full reviews everything again.
  model_.push(FakeReply::tool_call("finish", {{"summary", "Everything again."}}, "c7"));
  ASSERT_EQ(review({"--full", "--dry-run"}).exit_code, 0);
  const auto full = model_.requests().back().body["messages"][1]["content"].get<std::string>();
  EXPECT_THAT(full, HasSubstr("src/cache.cpp"));
}

class ReviewCliWithConfig : public ReviewCli {
 protected:
  void set_config(std::string yaml) {
    auto pull = fakes::sample_fake_pull();
    pull.base_files[".llmgw-review.yaml"] = std::move(yaml);
    github_.add_pull("acme/widgets", std::move(pull));
  }
};

TEST_F(ReviewCliWithConfig, TheRepositorysConfigSetsInstructionsIgnoresAndThreshold) {
  set_config(
      "instructions: Always check who holds mutex_.\nignore: ['*.hpp']\n"
      "severity_threshold: error\nmax_comments: 3\n");
  model_.push(FakeReply::tool_call(
      "add_comment",
      {{"path", "src/cache.cpp"}, {"line", 18}, {"body", "A nit."}, {"severity", "info"}}, "c1"));
  model_.push(FakeReply::tool_call("finish", {{"summary", "One nit."}}, "c2"));
  const auto result = review({"--dry-run"});
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto requests = model_.requests();  // a copy: a reference into it must outlive the line
  const auto& first = requests.at(0).body["messages"];
  EXPECT_THAT(first[0]["content"].get<std::string>(), HasSubstr("Always check who holds mutex_."));
  EXPECT_THAT(first[0]["content"].get<std::string>(), HasSubstr("at most 3 comments"));
  EXPECT_THAT(first[1]["content"].get<std::string>(), Not(HasSubstr("src/cache.hpp")));
  EXPECT_THAT(result.out, HasSubstr("1 comment(s) below the severity threshold"));
  EXPECT_THAT(result.out, HasSubstr("## Inline comments (0)"));

  // A flag overrides the file.
  model_.push(FakeReply::tool_call(
      "add_comment",
      {{"path", "src/cache.cpp"}, {"line", 18}, {"body", "A nit."}, {"severity", "info"}}, "c3"));
  model_.push(FakeReply::tool_call("finish", {{"summary", "One nit."}}, "c4"));
  const auto overridden = review({"--dry-run", "--severity-threshold", "info"});
  ASSERT_EQ(overridden.exit_code, 0) << overridden.err;
  EXPECT_THAT(overridden.out, HasSubstr("## Inline comments (1)"));
}

TEST_F(ReviewCliWithConfig, AnInvalidConfigIsAUsageErrorNamingTheKey) {
  set_config("max_comments: 99\n");
  const auto result = review({"--dry-run"});
  EXPECT_EQ(result.exit_code, 2) << result.err;
  EXPECT_THAT(result.err, HasSubstr(".llmgw-review.yaml (base commit " +
                                    std::string{fakes::kSampleBaseSha}.substr(0, 12) +
                                    "): max_comments: must be a whole number from 1 to 50"));
  EXPECT_EQ(model_.request_count(), 0u);
}

}  // namespace
}  // namespace llmgw
