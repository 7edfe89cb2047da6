#pragma once

// Turning the agent's draft into one GitHub review, safely:
//   - every inline comment carries a hidden marker, "<!-- llmgw:review:<hash> -->" (hash of path,
//     line, side and text), and the review body carries "<!-- llmgw:review-summary:<head sha> -->";
//     before posting, the PR's existing review comments are read, and a comment whose marker is
//     already there, or that lands where an earlier llmgw comment sits (same path, line, side), is
//     skipped. When nothing new is left and this head commit already has an llmgw review, nothing
//     is posted at all. So re-running a review never duplicates comments.
//   - one POST /pulls/{n}/reviews with event COMMENT and commit_id = the head sha.
//   - GitHub answers 422 without saying which comment it could not place. We then find out by
//     trying each comment alone in a PENDING review (deleted again at once), move the refused
//     ones into the review body, and post the rest. If that still fails, every comment goes into
//     the body.
//   - A 422 that says the user already has a pending review of their own (GitHub keeps one per
//     user and refuses any new review with inline comments then) is not about the lines: the
//     comments go into the body under a heading that says why, and nothing is probed.
//   - The POST is sent once. When the connection breaks after it went out, GitHub may have
//     created the review: the PR's reviews are listed and a review with exactly our body (it
//     carries the markers) counts as posted; only when there is none is it sent again, once.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/github/client.hpp"
#include "llmgw/review/tools.hpp"

namespace llmgw::review {

struct ReviewDraft {
  std::string summary;
  std::vector<DraftComment> comments;
  std::string signature;           // e.g. "llama-3.3-70b-versatile via openai", shown in the footer
  std::vector<std::string> notes;  // extra lines for the body (e.g. files left out)
  std::string usage{};             // llm::usage_line(), shown in the footer
};

// "<!-- llmgw:review:0123456789abcdef -->" for a comment (SHA-256 via OpenSSL, 16 hex digits).
std::string comment_marker(std::string_view path, int line, github::Side side,
                           std::string_view body);
std::string summary_marker(std::string_view head_sha);

// The head commit of the latest published llmgw review (its summary marker), for incremental
// reviews; nullopt when there is none.
std::optional<std::string> last_reviewed_head(const std::vector<github::ExistingReview>& reviews);

// The review as it would be posted, before de-duplication.
struct PreparedReview {
  github::ReviewRequest request;
  std::vector<github::ReviewComment> skipped_duplicates;
  bool already_reviewed = false;  // nothing new, and this head already has an llmgw review
  // request.body = body_main + body_footer; comments moved out of the diff go in between.
  std::string body_main;
  std::string body_footer;
};

// Builds the request. With a client, reads the PR's existing comments and reviews to skip what
// was already posted; without one (offline dry run) skips nothing.
PreparedReview prepare_review(const github::PullRequest& pr, const ReviewDraft& draft,
                              github::Client* client);

struct PublishResult {
  bool posted = false;
  github::PostedReview review;
  std::vector<github::ReviewComment> inline_comments;  // posted inline
  std::vector<github::ReviewComment> moved_to_body;    // refused by GitHub, quoted in the body
  std::vector<github::ReviewComment> skipped_duplicates;
  bool already_reviewed = false;
  // GitHub refused inline comments because the user has a pending review of their own.
  bool blocked_by_pending_review = false;
};

// Posts a prepared review (see the top of this file for the 422 handling). Throws GithubError for
// failures it cannot work around (401, 404, ...).
PublishResult post_review(github::Client& client, const github::PullRequest& pr,
                          PreparedReview prepared, int max_probes = 30);

// Markdown for --dry-run: the body, then each inline comment with its place.
std::string render_review(const github::PullRequest& pr, const PreparedReview& prepared);

}  // namespace llmgw::review
