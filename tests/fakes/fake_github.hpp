#pragma once

// A fake GitHub REST API on net::HttpServer (loopback, ephemeral port), close enough to the real
// one that github::Client cannot tell: pull request metadata, the diff media type (and 406 when
// told the diff is too large), paginated files, comments and reviews with Link headers, contents
// at a commit (raw or base64 JSON), creating reviews (published or PENDING) with GitHub's 422
// "Unprocessable Entity" for a comment it cannot place, deleting pending reviews, 401 for a wrong
// token, and rate limits (403 with x-ratelimit-remaining: 0 and x-ratelimit-reset, or 429 with
// Retry-After). It records what was posted and counts requests, for assertions.
//
// Thread-safe: the server's threads and the test thread share state under a mutex.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/github/client.hpp"
#include "llmgw/net/http_server.hpp"

namespace llmgw::fakes {

struct FakePull {
  github::PullRequestMeta meta;
  std::vector<github::ChangedFile> files;
  std::string diff;
  std::map<std::string, std::string> head_files;    // path -> content at meta.head_sha
  std::map<std::string, std::string> base_files{};  // path -> content at meta.base_sha
};

// acme/widgets#42 from fakes/sample_pr.hpp, ready to serve.
FakePull sample_fake_pull();
// The same after a second push that changes only src/cache.hpp (head kSampleSecondHeadSha).
FakePull sample_fake_pull_second_push();

class FakeGithub {
 public:
  explicit FakeGithub(std::optional<net::ServerTlsOptions> tls = std::nullopt);
  ~FakeGithub();
  FakeGithub(const FakeGithub&) = delete;
  FakeGithub& operator=(const FakeGithub&) = delete;

  std::string base_url() const;

  void add_pull(const std::string& owner_repo, FakePull pull);
  // The diff request answers 406 "diff too large", as GitHub does past 300 files / 20k lines.
  void set_diff_too_large(bool too_large);
  // Requests without "Authorization: Bearer <token>" get 401 "Bad credentials".
  void require_token(std::string token);
  // GitHub's view of the diff differs from ours on this line: a review comment there gets 422.
  void refuse_comment_at(std::string path, int line);
  // The next `count` requests are rate limited: status 403 (primary limit: remaining 0 and
  // x-ratelimit-reset = now + reset_in) or 429 (Retry-After: reset_in seconds).
  void rate_limit_next(int count, int status, std::chrono::seconds reset_in);
  // The next `count` requests hit GitHub's secondary rate limit: 403 with "You have exceeded a
  // secondary rate limit" and no rate-limit or Retry-After header.
  void secondary_rate_limit_next(int count);
  // The next review POST that GitHub accepts is stored, then the connection is closed without an
  // answer (a drop after the server acted).
  void drop_connection_after_next_review();
  // The token's user has a PENDING review of their own on the pull request: GitHub then refuses
  // any new review with inline comments (422 "one pending review per pull request").
  void add_user_pending_review(const std::string& owner_repo, int number);
  // Sets the head commit of a pull request (a push to its branch), with a new diff and files.
  void push_head(const std::string& owner_repo, FakePull pull);
  // For a demo process: POST /_fake/push/<owner>/<repo>/<number> then does push_head(pull).
  void allow_demo_push(const std::string& owner_repo, FakePull pull);

  // Published reviews (event set), as posted: {"commit_id", "body", "event", "comments": [...]}.
  std::vector<nlohmann::json> posted_reviews() const;
  // Inline review comments currently on the PR (published only).
  std::vector<nlohmann::json> review_comments() const;
  // Requests whose path starts with `path_prefix` and whose method is `method` (empty: any).
  std::uint64_t requests(std::string_view path_prefix = {}, std::string_view method = {}) const;
  // Every request seen, "METHOD target", in order.
  std::vector<std::string> request_log() const;
  // Review POSTs answered 422.
  std::uint64_t rejected_reviews() const;

 private:
  struct State;
  struct Reply {
    int status = 200;
    net::HttpHeaders headers;
    std::string body;  // status kDropConnection: close the connection instead of answering
  };
  static constexpr int kDropConnection = -1;
  Reply handle(const net::ServerRequest& request);
  Reply route(const net::ServerRequest& request);
  Reply compare(const std::string& owner_repo, std::string_view range);

  std::unique_ptr<State> state_;
  std::unique_ptr<net::HttpServer> server_;
};

}  // namespace llmgw::fakes
