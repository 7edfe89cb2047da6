#pragma once

// A GitHub REST client for the PR workflow: pull request metadata, changed files (all pages),
// the unified diff (with a fallback to per-file patches when GitHub refuses a diff as too large),
// file contents at a commit, existing review comments, and posting a review.
//
// Every request carries Accept: application/vnd.github+json (or the diff media type),
// X-GitHub-Api-Version: 2022-11-28 and, when a token is set, Authorization: Bearer <token>.
// Requests are retried through net::send_with_retry (429, 5xx, rate-limited 403, transport errors).
// Failures throw GithubError, whose message names the host, the status and GitHub's own
// "message"; the token never appears in messages or logs.
//
// Not thread-safe (it owns one keep-alive HttpClient): use one Client per thread.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/github/diff.hpp"
#include "llmgw/net/http_client.hpp"
#include "llmgw/net/retry.hpp"

namespace llmgw::github {

inline constexpr std::string_view kDefaultApiUrl = "https://api.github.com";

// "OWNER/REPO".
struct RepoRef {
  std::string owner;
  std::string name;

  std::string full_name() const { return owner + "/" + name; }
};

// Parses "OWNER/REPO"; nullopt when it is not two non-empty parts of [A-Za-z0-9._-].
std::optional<RepoRef> parse_repo(std::string_view text);

struct PullRequestMeta {
  int number = 0;
  std::string title;
  std::string body;  // may be empty
  std::string author;
  std::string state;  // "open", "closed"
  std::string head_sha;
  std::string base_sha;
  std::string head_ref;
  std::string base_ref;
  std::string html_url;
};

struct ChangedFile {
  std::string filename;
  std::string previous_filename;  // set for renames
  std::string status;             // "added", "modified", "removed", "renamed", ...
  int additions = 0;
  int deletions = 0;
  std::optional<std::string> patch;  // absent for binary or very large files
};

// Everything the summariser and the reviewer read about one pull request.
struct PullRequest {
  RepoRef repo;
  PullRequestMeta meta;
  std::vector<ChangedFile> files;
  std::string diff;                  // the unified diff (rebuilt from patches on fallback)
  bool diff_from_patches = false;    // true when GitHub answered 406 and patches were used
  std::vector<FileDiff> file_diffs;  // `diff` parsed, one per file

  // The parsed diff of one file, or nullptr.
  const FileDiff* find_file_diff(std::string_view path) const;
};

struct ReviewComment {
  std::string path;
  int line = 0;  // the last line of a multi-line comment
  Side side = Side::right;
  std::string body;
  std::optional<int> start_line{};  // multi-line: the first line (start_side = side)
};

struct ReviewRequest {
  std::string commit_id;
  std::string body;
  std::string event = "COMMENT";
  std::vector<ReviewComment> comments;
};

struct PostedReview {
  std::int64_t id = 0;
  std::string html_url;
};

// A review comment already on the pull request (GET /pulls/{n}/comments).
struct ExistingComment {
  std::int64_t id = 0;
  std::string path;
  std::optional<int> line;  // null when the comment is outdated
  std::string side;
  std::string body;
};

// A review already on the pull request (GET /pulls/{n}/reviews).
struct ExistingReview {
  std::int64_t id = 0;
  std::string body;
  std::string commit_id;
  std::string state;  // "COMMENTED", "PENDING", ...
};

// A failed GitHub call. what() = "<host> answered <status> <reason>: <message>".
class GithubError : public std::runtime_error {
 public:
  GithubError(const std::string& what, int status, std::string api_message,
              std::vector<std::string> errors);
  int status() const noexcept { return status_; }
  const std::string& api_message() const noexcept { return api_message_; }
  // The "errors" array of a 422 answer, each rendered as text.
  const std::vector<std::string>& errors() const noexcept { return errors_; }

 private:
  int status_;
  std::string api_message_;
  std::vector<std::string> errors_;
};

// Sends one request; the default is a net::HttpClient. Tests can substitute a function.
using Transport = std::function<net::ClientResponse(const net::ClientRequest&)>;

struct ClientConfig {
  std::string base_url{kDefaultApiUrl};  // no trailing slash needed
  std::string token;                     // empty = anonymous
  net::ClientOptions http;
  net::RetryOptions retry;
  Transport transport;  // empty = a net::HttpClient built from `http`
};

// The token from, in order: `cli_token`, the first line of `token_file`, $GITHUB_TOKEN.
// Throws std::runtime_error naming the file (never its content) when the file cannot be read.
std::string resolve_token(const std::optional<std::string>& cli_token,
                          const std::optional<std::string>& token_file);
// $GITHUB_API_URL or https://api.github.com.
std::string default_api_url();

class Client {
 public:
  explicit Client(ClientConfig config);
  ~Client();
  Client(Client&&) noexcept;
  Client& operator=(Client&&) noexcept;

  PullRequestMeta get_pull_request(const RepoRef& repo, int number);
  // Every page (per_page=100, following Link rel="next").
  std::vector<ChangedFile> list_files(const RepoRef& repo, int number);
  // The unified diff; nullopt when GitHub answers 406 (diff too large).
  std::optional<std::string> get_diff(const RepoRef& repo, int number);
  // Metadata, files and diff, with the per-file patch fallback, parsed.
  PullRequest fetch_pull_request(const RepoRef& repo, int number);

  // The file's bytes at `ref` (a commit sha); nullopt when GitHub answers 404.
  std::optional<std::string> get_file_content(const RepoRef& repo, std::string_view path,
                                              std::string_view ref);

  // The files changed between two commits (GET /compare/{base}...{head}: the changes of the
  // commits after `base`, as GitHub lists them, at most 300 files); nullopt when GitHub does not
  // know `base` (404, e.g. after a force-push).
  std::optional<std::vector<ChangedFile>> compare_files(const RepoRef& repo, std::string_view base,
                                                        std::string_view head);

  // Every review comment on the pull request (all pages).
  std::vector<ExistingComment> list_review_comments(const RepoRef& repo, int number);

  // Every review on the pull request (all pages).
  std::vector<ExistingReview> list_reviews(const RepoRef& repo, int number);

  // POST /repos/{o}/{r}/pulls/{n}/reviews. Throws GithubError (status 422 with errors() for
  // comments GitHub could not place). An empty `event` leaves the review PENDING (unpublished).
  PostedReview create_review(const RepoRef& repo, int number, const ReviewRequest& review);
  // DELETE /repos/{o}/{r}/pulls/{n}/reviews/{id}: discards a PENDING review.
  void delete_pending_review(const RepoRef& repo, int number, std::int64_t review_id);

  // Requests sent so far (each retry counts).
  std::uint64_t requests_sent() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::github
