// github::Client against the fake GitHub API over loopback HTTP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "fakes/fake_github.hpp"
#include "fakes/sample_pr.hpp"
#include "llmgw/github/client.hpp"
#include "support/test_certs.hpp"

namespace llmgw::github {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;
using ::testing::Not;

const RepoRef kRepo{"acme", "widgets"};

struct Harness {
  fakes::FakeGithub fake;
  std::vector<milliseconds> sleeps;

  Harness() { fake.add_pull("acme/widgets", fakes::sample_fake_pull()); }

  Client client(std::string token = "test-token", int max_attempts = 4) {
    ClientConfig config;
    config.base_url = fake.base_url();
    config.token = std::move(token);
    config.retry.policy.max_attempts = max_attempts;
    config.retry.policy.max_wait = std::chrono::seconds{30};
    config.retry.sleep = [this](milliseconds delay) { sleeps.push_back(delay); };
    return Client{config};
  }
};

fakes::FakePull big_pull(int file_count) {
  fakes::FakePull pull;
  pull.meta.number = 7;
  pull.meta.title = "Many files";
  pull.meta.head_sha = "abc";
  pull.meta.base_sha = "def";
  for (int i = 0; i < file_count; ++i) {
    const auto name = "src/file" + std::to_string(i) + ".txt";
    const std::string patch = "@@ -0,0 +1 @@\n+line " + std::to_string(i) + "\n";
    pull.files.push_back({name, "", "added", 1, 0, patch});
    pull.diff += "diff --git a/" + name + " b/" + name +
                 "\nnew file mode 100644\n--- /dev/null\n+++ b/" + name + "\n" + patch;
  }
  return pull;
}

TEST(GithubClient, ListsEveryFileAcrossThreePages) {
  Harness harness;
  harness.fake.add_pull("acme/big", big_pull(250));
  auto client = harness.client();
  const auto files = client.list_files({"acme", "big"}, 7);
  ASSERT_EQ(files.size(), 250u);
  EXPECT_EQ(files.front().filename, "src/file0.txt");
  EXPECT_EQ(files[100].filename, "src/file100.txt");
  EXPECT_EQ(files.back().filename, "src/file249.txt");
  EXPECT_EQ(harness.fake.requests("/repos/acme/big/pulls/7/files"), 3u);
  const auto log = harness.fake.request_log();
  EXPECT_THAT(log.front(), HasSubstr("per_page=100"));
}

TEST(GithubClient, FetchesMetadataFilesAndParsedDiff) {
  Harness harness;
  auto client = harness.client();
  const auto pr = client.fetch_pull_request(kRepo, 42);
  EXPECT_EQ(pr.meta.title, "Cache: track the size");
  EXPECT_EQ(pr.meta.author, "octocat");
  EXPECT_EQ(pr.meta.head_sha, fakes::kSampleHeadSha);
  EXPECT_EQ(pr.files.size(), 3u);
  EXPECT_FALSE(pr.diff_from_patches);
  EXPECT_EQ(pr.diff, fakes::sample_diff());
  ASSERT_EQ(pr.file_diffs.size(), 3u);
  ASSERT_NE(pr.find_file_diff("src/cache.cpp"), nullptr);
  EXPECT_TRUE(pr.find_file_diff("src/cache.cpp")->can_comment(17, Side::left));
}

TEST(GithubClient, DiffTooLargeFallsBackToPerFilePatches) {
  Harness harness;
  harness.fake.set_diff_too_large(true);
  auto client = harness.client();
  EXPECT_EQ(client.get_diff(kRepo, 42), std::nullopt);
  const auto pr = client.fetch_pull_request(kRepo, 42);
  EXPECT_TRUE(pr.diff_from_patches);
  // The rebuilt diff allows exactly the lines the real one does.
  const CommentableLines from_patches{pr.file_diffs};
  const CommentableLines real{parse_unified_diff(fakes::sample_diff())};
  for (const auto* path : {"src/cache.cpp", "src/cache.hpp", "docs/old.md"}) {
    EXPECT_EQ(from_patches.describe(path), real.describe(path)) << path;
  }
  EXPECT_TRUE(pr.find_file_diff("src/cache.hpp")->is_new);
  EXPECT_TRUE(pr.find_file_diff("docs/old.md")->is_deleted);
}

TEST(GithubClient, ReadsFileContentAtTheHeadCommit) {
  Harness harness;
  auto client = harness.client();
  const auto content = client.get_file_content(kRepo, "src/cache.hpp", fakes::kSampleHeadSha);
  ASSERT_TRUE(content);
  EXPECT_EQ(*content, fakes::sample_head_files().at("src/cache.hpp"));
  EXPECT_EQ(client.get_file_content(kRepo, "docs/old.md", fakes::kSampleHeadSha), std::nullopt);
}

TEST(GithubClient, WaitsForTheRateLimitResetThenSucceeds) {
  Harness harness;
  harness.fake.rate_limit_next(1, 403, std::chrono::seconds{2});
  auto client = harness.client();
  const auto meta = client.get_pull_request(kRepo, 42);
  EXPECT_EQ(meta.number, 42);
  ASSERT_EQ(harness.sleeps.size(), 1u);
  // x-ratelimit-reset is whole epoch seconds, 2 s ahead when it was sent.
  EXPECT_GE(harness.sleeps[0], milliseconds{900});
  EXPECT_LE(harness.sleeps[0], milliseconds{2'100});
  EXPECT_EQ(harness.fake.requests("/repos/acme/widgets/pulls/42"), 2u);
}

TEST(GithubClient, HonoursRetryAfterOn429) {
  Harness harness;
  harness.fake.rate_limit_next(2, 429, std::chrono::seconds{3});
  auto client = harness.client();
  EXPECT_EQ(client.list_files(kRepo, 42).size(), 3u);
  EXPECT_EQ(harness.sleeps, (std::vector<milliseconds>{milliseconds{3'000}, milliseconds{3'000}}));
}

TEST(GithubClient, RateLimitBeyondTheAttemptsIsAClearError) {
  Harness harness;
  harness.fake.rate_limit_next(10, 403, std::chrono::seconds{1});
  auto client = harness.client("test-token", 2);
  try {
    client.get_pull_request(kRepo, 42);
    FAIL() << "expected a GithubError";
  } catch (const GithubError& e) {
    EXPECT_EQ(e.status(), 403);
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:"));
    EXPECT_THAT(e.what(), HasSubstr("403 Forbidden: API rate limit exceeded"));
    EXPECT_THAT(e.what(), HasSubstr("rate limit resets at epoch"));
  }
}

TEST(GithubClient, ReviewWithACommentOffTheDiffIs422WithGithubsErrors) {
  Harness harness;
  auto client = harness.client();
  ReviewRequest review;
  review.commit_id = std::string{fakes::kSampleHeadSha};
  review.body = "summary";
  review.comments = {{"src/cache.cpp", 3, Side::right, "not in the diff"}};
  try {
    client.create_review(kRepo, 42, review);
    FAIL() << "expected a GithubError";
  } catch (const GithubError& e) {
    EXPECT_EQ(e.status(), 422);
    EXPECT_EQ(e.api_message(), "Unprocessable Entity");
    EXPECT_THAT(e.errors(), ::testing::ElementsAre("Line could not be resolved"));
  }
  review.comments[0].line = 18;
  const auto posted = client.create_review(kRepo, 42, review);
  EXPECT_GT(posted.id, 0);
  ASSERT_EQ(harness.fake.posted_reviews().size(), 1u);
  EXPECT_EQ(harness.fake.posted_reviews()[0]["event"], "COMMENT");
  EXPECT_EQ(client.list_review_comments(kRepo, 42).size(), 1u);
}

TEST(GithubClient, TokenNeverAppearsInErrorsOrLogs) {
  const std::string secret = "ghp_S3cretTokenValue0123456789";
  std::ostringstream captured;
  auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(captured);
  auto logger = std::make_shared<spdlog::logger>("capture", sink);
  logger->set_level(spdlog::level::trace);
  const auto previous = spdlog::default_logger();
  spdlog::set_default_logger(logger);

  Harness harness;
  harness.fake.require_token("the-right-token");
  harness.fake.rate_limit_next(1, 429, std::chrono::seconds{1});  // so that a retry is logged
  auto client = harness.client(secret);
  std::string message;
  try {
    client.fetch_pull_request(kRepo, 42);
  } catch (const GithubError& e) {
    message = e.what();
    EXPECT_EQ(e.status(), 401);
  }
  spdlog::set_default_logger(previous);

  EXPECT_THAT(message, HasSubstr("401 Unauthorized: Bad credentials"));
  EXPECT_THAT(message, Not(HasSubstr(secret)));
  EXPECT_THAT(captured.str(), HasSubstr("retrying"));
  EXPECT_THAT(captured.str(), Not(HasSubstr(secret)));
  EXPECT_THAT(captured.str(), Not(HasSubstr("S3cret")));
}

TEST(GithubClient, UnknownPullRequestNamesTheStatusAndMessage) {
  Harness harness;
  auto client = harness.client();
  try {
    client.get_pull_request(kRepo, 999);
    FAIL() << "expected a GithubError";
  } catch (const GithubError& e) {
    EXPECT_EQ(e.status(), 404);
    EXPECT_THAT(e.what(), HasSubstr("404 Not Found: Not Found"));
  }
}

TEST(GithubClient, HttpsWithATestCaAndRefusalWithoutIt) {
  const testing::TestCertificates certs;
  fakes::FakeGithub fake{
      net::ServerTlsOptions{certs.certificate_chain_file(), certs.private_key_file()}};
  fake.add_pull("acme/widgets", fakes::sample_fake_pull());
  ASSERT_EQ(fake.base_url().rfind("https://", 0), 0u);

  ClientConfig config;
  config.base_url = fake.base_url();
  config.token = "ghp_SecretForTls";
  config.retry.policy.max_attempts = 2;
  config.retry.sleep = [](milliseconds) {};
  config.http.ca_file = certs.ca_file();
  EXPECT_EQ(Client{config}.get_pull_request(kRepo, 42).number, 42);

  // The system store does not know the test CA: the certificate is refused, not ignored.
  config.http.ca_file.clear();
  try {
    Client{config}.get_pull_request(kRepo, 42);
    FAIL() << "expected the certificate to be refused";
  } catch (const net::TransportError& e) {
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1"));
    EXPECT_THAT(e.what(), Not(HasSubstr("ghp_SecretForTls")));
  }
}

TEST(RepoRef, ParsesOwnerSlashName) {
  EXPECT_EQ(parse_repo("psf/requests")->full_name(), "psf/requests");
  EXPECT_EQ(parse_repo("psf"), std::nullopt);
  EXPECT_EQ(parse_repo("psf/"), std::nullopt);
  EXPECT_EQ(parse_repo("a/b/c"), std::nullopt);
  EXPECT_EQ(parse_repo("../x"), std::nullopt);
}

// GitHub's secondary rate limit: 403, a message, and no header saying when to come back. GitHub
// asks for at least a minute, then exponentially longer.
TEST(GithubClient, WaitsAtLeastAMinuteOnTheSecondaryRateLimitWithBackoff) {
  Harness harness;
  harness.fake.secondary_rate_limit_next(2);
  ClientConfig config;
  config.base_url = harness.fake.base_url();
  config.token = "test-token";
  config.retry.policy.max_wait = std::chrono::minutes{10};
  config.retry.random = [] { return 0.5; };
  std::vector<milliseconds> sleeps;
  config.retry.sleep = [&](milliseconds delay) { sleeps.push_back(delay); };
  Client client{config};
  EXPECT_EQ(client.get_pull_request(kRepo, 42).number, 42);
  ASSERT_EQ(sleeps.size(), 2u);
  EXPECT_GE(sleeps[0], std::chrono::seconds{60});
  EXPECT_GE(sleeps[1], std::chrono::seconds{120}) << "doubled";
  EXPECT_EQ(harness.fake.requests("/repos/acme/widgets/pulls/42", "GET"), 3u);
}

TEST(GithubClient, ASecondaryRateLimitLongerThanAllowedIsReportedClearly) {
  Harness harness;
  harness.fake.secondary_rate_limit_next(10);
  auto client = harness.client();  // waits of at most 30 s allowed
  try {
    client.get_pull_request(kRepo, 42);
    FAIL() << "the limit outlasts the allowed wait";
  } catch (const GithubError& error) {
    EXPECT_EQ(error.status(), 403);
    EXPECT_THAT(std::string{error.what()}, HasSubstr("secondary rate limit"));
  }
}

}  // namespace
}  // namespace llmgw::github
