#include "llmgw/review/publish.hpp"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <tuple>

#include "llmgw/util/text.hpp"

namespace llmgw::review {
namespace {

constexpr std::string_view kMarkerPrefix = "<!-- llmgw:review:";
constexpr std::size_t kMaxSummaryBytes = 40'000;
constexpr std::size_t kMaxCommentBytes = 8'000;

std::string hex_sha256(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("OpenSSL SHA-256 failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < length; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xf];
  }
  return out;
}

// Every "<!-- llmgw:review:<hash> -->" in a text (with prefix "<!-- llmgw:", every marker).
std::vector<std::string> markers_in(std::string_view text,
                                    std::string_view prefix = kMarkerPrefix) {
  std::vector<std::string> markers;
  for (auto pos = text.find(prefix); pos != std::string_view::npos;
       pos = text.find(prefix, pos + 1)) {
    const auto end = text.find("-->", pos);
    if (end == std::string_view::npos) {
      break;
    }
    markers.emplace_back(text.substr(pos, end + 3 - pos));
  }
  return markers;
}

std::string strip_markers(std::string text) {
  for (const auto& marker : markers_in(text, "<!-- llmgw:")) {
    const auto pos = text.find(marker);
    text.erase(pos, marker.size());
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

// "line 17" or "lines 15-17".
std::string lines_of(const github::ReviewComment& comment) {
  return comment.start_line
             ? "lines " + std::to_string(*comment.start_line) + "-" + std::to_string(comment.line)
             : "line " + std::to_string(comment.line);
}

constexpr std::string_view kMovedHeading = "Comments that could not be placed on the diff";
constexpr std::string_view kPendingHeading =
    "Comments (not inline: you have a pending review on this pull request)";
constexpr std::string_view kPendingExplanation =
    "_GitHub allows one pending review per user, and the account that posts this review has one "
    "open on this pull request, so GitHub refused inline comments. Submit or discard that pending "
    "review to get inline comments from later runs._\n";

std::string moved_section(const std::vector<github::ReviewComment>& moved,
                          std::string_view heading = kMovedHeading,
                          std::string_view explanation = {}) {
  if (moved.empty()) {
    return {};
  }
  std::string out = "\n\n### " + std::string{heading} + "\n" + std::string{explanation};
  for (const auto& comment : moved) {
    const auto markers = markers_in(comment.body);
    out += "- `" + comment.path + "` " + lines_of(comment) + " (" +
           std::string{to_string(comment.side)} + "): " + strip_markers(comment.body);
    // The marker stays (invisible) so that a re-run knows this comment was already reported.
    for (const auto& marker : markers) {
      out += " " + marker;
    }
    out += "\n";
  }
  return out;
}

github::ReviewRequest with_comments(const PreparedReview& prepared,
                                    std::vector<github::ReviewComment> inline_comments,
                                    const std::vector<github::ReviewComment>& moved,
                                    bool pending_review = false) {
  github::ReviewRequest request = prepared.request;
  request.comments = std::move(inline_comments);
  request.body = prepared.body_main +
                 (pending_review ? moved_section(moved, kPendingHeading, kPendingExplanation)
                                 : moved_section(moved)) +
                 prepared.body_footer;
  return request;
}

// GitHub's 422 when the user already has a pending review: "User can only have one pending
// review per pull request".
bool is_pending_review_conflict(const github::GithubError& error) {
  const auto mentions = [](std::string_view text) {
    return text.find("pending review") != std::string_view::npos;
  };
  return error.status() == 422 &&
         (mentions(error.api_message()) ||
          std::any_of(error.errors().begin(), error.errors().end(), mentions));
}

// POSTs the review once. A broken connection after the request went out leaves us not knowing
// whether GitHub created it: the review with exactly this body (it carries our markers) answers
// that. Only when there is none is the request sent again, once, on a fresh connection.
github::PostedReview create_once(github::Client& client, const github::PullRequest& pr,
                                 const github::ReviewRequest& request) {
  for (int attempt = 1;; ++attempt) {
    try {
      return client.create_review(pr.repo, pr.meta.number, request);
    } catch (const net::TransportError& e) {
      spdlog::warn(
          "the connection broke while posting the review ({}); checking whether GitHub "
          "created it",
          e.what());
      for (const auto& review : client.list_reviews(pr.repo, pr.meta.number)) {
        if (review.state != "PENDING" && review.body == request.body) {
          spdlog::info("GitHub had created the review (id {}); not posting it again", review.id);
          return {review.id, pr.meta.html_url.empty() ? std::string{}
                                                      : pr.meta.html_url + "#pullrequestreview-" +
                                                            std::to_string(review.id)};
        }
      }
      if (attempt >= 2) {
        throw;
      }
      spdlog::info("GitHub has no such review; sending it again");
    }
  }
}

// Tries each comment alone in a PENDING review (never published; deleted at once) to learn which
// ones GitHub refuses. Comments past `max_probes` are counted as refused: safe, if wordier.
std::vector<bool> probe_refused(github::Client& client, const github::PullRequest& pr,
                                const std::vector<github::ReviewComment>& comments,
                                int max_probes) {
  std::vector<bool> refused(comments.size(), true);
  for (std::size_t i = 0; i < comments.size() && static_cast<int>(i) < max_probes; ++i) {
    github::ReviewRequest probe;
    probe.commit_id = pr.meta.head_sha;
    probe.event.clear();
    probe.comments = {comments[i]};
    try {
      const auto pending = client.create_review(pr.repo, pr.meta.number, probe);
      refused[i] = false;
      client.delete_pending_review(pr.repo, pr.meta.number, pending.id);
    } catch (const github::GithubError& e) {
      if (e.status() != 422) {
        throw;
      }
    }
  }
  return refused;
}

}  // namespace

std::string comment_marker(std::string_view path, int line, github::Side side,
                           std::string_view body) {
  const auto key = std::string{path} + "\n" + std::to_string(line) + "\n" +
                   std::string{to_string(side)} + "\n" + std::string{body};
  return std::string{kMarkerPrefix} + hex_sha256(key).substr(0, 16) + " -->";
}

std::string summary_marker(std::string_view head_sha) {
  return "<!-- llmgw:review-summary:" + std::string{head_sha} + " -->";
}

std::optional<std::string> last_reviewed_head(const std::vector<github::ExistingReview>& reviews) {
  constexpr std::string_view kPrefix = "<!-- llmgw:review-summary:";
  std::optional<std::string> last;
  for (const auto& review : reviews) {  // GitHub lists reviews oldest first
    const auto pos = review.body.rfind(kPrefix);
    if (review.state == "PENDING" || pos == std::string::npos) {
      continue;
    }
    const auto start = pos + kPrefix.size();
    const auto end = review.body.find(" -->", start);
    if (end != std::string::npos && end > start) {
      last = review.body.substr(start, end - start);
    }
  }
  return last;
}

PreparedReview prepare_review(const github::PullRequest& pr, const ReviewDraft& draft,
                              github::Client* client) {
  std::set<std::string> posted_markers;
  std::set<std::tuple<std::string, int, std::string>> llmgw_locations;
  bool head_reviewed = false;
  if (client != nullptr) {
    for (const auto& existing : client->list_review_comments(pr.repo, pr.meta.number)) {
      const auto markers = markers_in(existing.body);
      posted_markers.insert(markers.begin(), markers.end());
      if (!markers.empty() && existing.line) {
        llmgw_locations.emplace(existing.path, *existing.line,
                                existing.side.empty() ? "RIGHT" : existing.side);
      }
    }
    for (const auto& review : client->list_reviews(pr.repo, pr.meta.number)) {
      const auto markers = markers_in(review.body);  // comments moved into a body earlier
      posted_markers.insert(markers.begin(), markers.end());
      head_reviewed =
          head_reviewed || review.body.find(summary_marker(pr.meta.head_sha)) != std::string::npos;
    }
  }

  PreparedReview prepared;
  prepared.request.commit_id = pr.meta.head_sha;
  prepared.request.event = "COMMENT";
  for (const auto& draft_comment : draft.comments) {
    auto text = draft_comment.rendered_body();
    if (text.size() > kMaxCommentBytes) {
      text = std::string{util::utf8_prefix(text, kMaxCommentBytes)} + "\n\n[comment cut]";
    }
    text = util::valid_utf8(text);
    const auto marker =
        comment_marker(draft_comment.path, draft_comment.line, draft_comment.side, text);
    github::ReviewComment comment{draft_comment.path, draft_comment.line, draft_comment.side,
                                  text + "\n\n" + marker, draft_comment.start_line};
    const bool duplicate = posted_markers.contains(marker) ||
                           llmgw_locations.contains(
                               {comment.path, comment.line, std::string{to_string(comment.side)}});
    (duplicate ? prepared.skipped_duplicates : prepared.request.comments)
        .push_back(std::move(comment));
  }
  prepared.already_reviewed = head_reviewed && prepared.request.comments.empty();

  // GitHub refuses bodies over 65536 characters; a rambling model must not fail the post.
  prepared.body_main =
      draft.summary.size() > kMaxSummaryBytes
          ? std::string{util::utf8_prefix(draft.summary, kMaxSummaryBytes)} + "\n\n[summary cut]"
          : draft.summary;
  prepared.body_main = util::valid_utf8(prepared.body_main);
  for (const auto& note : draft.notes) {
    prepared.body_main += "\n\n" + note;
  }
  if (!prepared.skipped_duplicates.empty()) {
    prepared.body_main += "\n\n_" + std::to_string(prepared.skipped_duplicates.size()) +
                          " comment(s) already posted by an earlier run were not repeated._";
  }
  prepared.body_footer = "\n\n---\n_Automated review by llmgw" +
                         (draft.signature.empty() ? std::string{} : " (" + draft.signature + ")") +
                         "._\n" +
                         (draft.usage.empty() ? std::string{} : "_" + draft.usage + "_\n") +
                         summary_marker(pr.meta.head_sha);
  prepared.request.body = prepared.body_main + prepared.body_footer;
  return prepared;
}

PublishResult post_review(github::Client& client, const github::PullRequest& pr,
                          PreparedReview prepared, int max_probes) {
  PublishResult result;
  result.skipped_duplicates = prepared.skipped_duplicates;
  result.already_reviewed = prepared.already_reviewed;
  if (prepared.already_reviewed) {
    spdlog::info("{}#{}: head {} already has an llmgw review and nothing new; not posting",
                 pr.repo.full_name(), pr.meta.number, pr.meta.head_sha);
    return result;
  }
  const auto& comments = prepared.request.comments;
  try {
    result.review = create_once(client, pr, prepared.request);
    result.posted = true;
    result.inline_comments = comments;
    return result;
  } catch (const github::GithubError& e) {
    if (e.status() != 422 || comments.empty()) {
      throw;
    }
    if (is_pending_review_conflict(e)) {
      spdlog::warn(
          "GitHub refused inline comments: the posting account has a pending review on {}#{}; "
          "the comments go into the review body",
          pr.repo.full_name(), pr.meta.number);
      result.review = create_once(client, pr, with_comments(prepared, {}, comments, true));
      result.posted = true;
      result.moved_to_body = comments;
      result.blocked_by_pending_review = true;
      return result;
    }
    spdlog::warn("GitHub refused the review ({}); finding the comments it cannot place", e.what());
  }

  const auto refused = probe_refused(client, pr, comments, max_probes);
  std::vector<github::ReviewComment> placeable;
  std::vector<github::ReviewComment> moved;
  for (std::size_t i = 0; i < comments.size(); ++i) {
    (refused[i] ? moved : placeable).push_back(comments[i]);
  }
  try {
    result.review = create_once(client, pr, with_comments(prepared, placeable, moved));
    result.inline_comments = std::move(placeable);
    result.moved_to_body = std::move(moved);
  } catch (const github::GithubError& e) {
    if (e.status() != 422) {
      throw;
    }
    // Still refused: put every comment in the body; a body-only review always fits.
    spdlog::warn("GitHub refused the review again ({}); posting every comment in the body",
                 e.what());
    result.review = create_once(client, pr, with_comments(prepared, {}, comments));
    result.inline_comments.clear();
    result.moved_to_body = comments;
  }
  result.posted = true;
  return result;
}

std::string render_review(const github::PullRequest& pr, const PreparedReview& prepared) {
  std::string out = "# Review of " + pr.repo.full_name() + "#" + std::to_string(pr.meta.number) +
                    " at " + pr.meta.head_sha.substr(0, 12) + " (dry run, not posted)\n\n";
  out += strip_markers(prepared.request.body) + "\n";
  out += "\n## Inline comments (" + std::to_string(prepared.request.comments.size()) + ")\n";
  for (const auto& comment : prepared.request.comments) {
    out += "\n### " + comment.path + ":" +
           (comment.start_line ? std::to_string(*comment.start_line) + "-" : std::string{}) +
           std::to_string(comment.line) + " (" + std::string{to_string(comment.side)} + ")\n" +
           strip_markers(comment.body) + "\n";
  }
  if (!prepared.skipped_duplicates.empty()) {
    out += "\n" + std::to_string(prepared.skipped_duplicates.size()) +
           " comment(s) skipped: already posted by an earlier run.\n";
  }
  if (prepared.already_reviewed) {
    out +=
        "\nNothing new: this head commit already has an llmgw review; a real run would not "
        "post.\n";
  }
  return out;
}

}  // namespace llmgw::review
