// github::Client's requests and its handling of answers, through an in-process transport.
#include "llmgw/github/client.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "support/wait.hpp"

namespace llmgw::github {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct Recorded {
  std::vector<net::ClientRequest> requests;
  std::vector<net::ClientResponse> answers;  // consumed in order

  Client client(std::string token = "tok") {
    ClientConfig config;
    config.base_url = "https://ghe.example.com/api/v3/";
    config.token = std::move(token);
    config.retry.sleep = [](std::chrono::milliseconds) {};
    config.transport = [this](const net::ClientRequest& request) {
      requests.push_back(request);
      auto answer = answers.at(requests.size() - 1);
      return answer;
    };
    return Client{config};
  }
};

TEST(GithubClientRequests, SendsGithubHeadersAndTheBearerToken) {
  Recorded recorded;
  recorded.answers.push_back(
      {200,
       {},
       R"({"number":5,"title":"t","user":{"login":"u"},"head":{"sha":"h"},"base":{"sha":"b"}})"});
  auto client = recorded.client("s3cr3t");
  const auto meta = client.get_pull_request({"o", "r"}, 5);
  EXPECT_EQ(meta.head_sha, "h");
  EXPECT_EQ(meta.author, "u");
  const auto& request = recorded.requests.at(0);
  EXPECT_EQ(request.url, "https://ghe.example.com/api/v3/repos/o/r/pulls/5");
  EXPECT_EQ(net::find_header(request.headers, "accept"), "application/vnd.github+json");
  EXPECT_EQ(net::find_header(request.headers, "x-github-api-version"), "2022-11-28");
  EXPECT_EQ(net::find_header(request.headers, "authorization"), "Bearer s3cr3t");
  EXPECT_TRUE(net::find_header(request.headers, "user-agent"));
}

TEST(GithubClientRequests, AnonymousWithoutAToken) {
  Recorded recorded;
  recorded.answers.push_back({200, {}, "[]"});
  auto client = recorded.client("");
  EXPECT_TRUE(client.list_files({"o", "r"}, 1).empty());
  EXPECT_FALSE(net::find_header(recorded.requests.at(0).headers, "authorization"));
}

TEST(GithubClientRequests, RefusesToFollowAPageLinkToAnotherHost) {
  Recorded recorded;
  recorded.answers.push_back(
      {200, {{"Link", "<https://evil.example.net/steal?page=2>; rel=\"next\""}}, "[]"});
  auto client = recorded.client("s3cr3t");
  try {
    client.list_files({"o", "r"}, 1);
    FAIL() << "expected a GithubError";
  } catch (const GithubError& e) {
    EXPECT_THAT(e.what(), HasSubstr("refusing to follow a link"));
    EXPECT_THAT(e.what(), Not(HasSubstr("s3cr3t")));
  }
  EXPECT_EQ(recorded.requests.size(), 1u);  // the token never went to evil.example.net
}

TEST(GithubClientRequests, PathsAndRefsAreEncodedAndBase64ContentDecoded) {
  Recorded recorded;
  recorded.answers.push_back({200,
                              {{"Content-Type", "application/json; charset=utf-8"}},
                              R"({"encoding":"base64","content":"aGVsbG8g\nd29ybGQ="})"});
  auto client = recorded.client();
  EXPECT_EQ(client.get_file_content({"o", "r"}, "dir/a b#c.txt", "abc123"), "hello world");
  EXPECT_EQ(recorded.requests.at(0).url,
            "https://ghe.example.com/api/v3/repos/o/r/contents/dir/a%20b%23c.txt?ref=abc123");
}

TEST(GithubClientRequests, ErrorsRedactATokenEchoedByTheServer) {
  Recorded recorded;
  recorded.answers.push_back({400, {}, R"({"message":"bad header Bearer s3cr3t"})"});
  auto client = recorded.client("s3cr3t");
  try {
    client.get_pull_request({"o", "r"}, 1);
    FAIL() << "expected a GithubError";
  } catch (const GithubError& e) {
    EXPECT_THAT(e.what(), HasSubstr("ghe.example.com answered 400 Bad Request: bad header"));
    EXPECT_THAT(e.what(), Not(HasSubstr("s3cr3t")));
    EXPECT_THAT(e.api_message(), Not(HasSubstr("s3cr3t")));
  }
}

TEST(GithubToken, FlagThenFileThenEnvironment) {
  const auto dir = testing::make_temp_dir("llmgw-token");
  const auto file = dir + "/token";
  std::ofstream{file} << "from-file\n";
  EXPECT_EQ(resolve_token(std::string{"from-flag"}, file), "from-flag");
  EXPECT_EQ(resolve_token(std::nullopt, file), "from-file");
  try {
    resolve_token(std::nullopt, dir + "/missing");
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("cannot read the token file"));
  }
}

}  // namespace
}  // namespace llmgw::github
