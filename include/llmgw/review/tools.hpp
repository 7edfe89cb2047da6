#pragma once

// The tools the review agent may call, over one pull request: list_files, get_file_diff,
// read_file (at the head commit), search_code (within the PR's files), add_comment (checked
// against the diff) and finish. Each call returns an observation (text for the model); a bad call
// returns an observation that starts with "Error:" and says how to do better. Nothing here talks
// to GitHub except through the injected FileReader, and nothing is posted: comments are drafted
// for review::publish_review.
//
// Not thread-safe.

#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/github/client.hpp"
#include "llmgw/github/diff.hpp"
#include "llmgw/llm/chat_client.hpp"

namespace llmgw::review {

// A comment the agent drafted (already validated against the diff).
struct DraftComment {
  std::string path;
  int line = 0;  // the last line of the range
  github::Side side = github::Side::right;
  std::string severity;  // "info", "suggestion", "warning", "error"
  std::string body;      // as the model wrote it
  // A multi-line comment covers start_line..line (same side, every line in the diff).
  std::optional<int> start_line{};
  // Replacement text for the commented lines (RIGHT side only), posted as GitHub's
  // ```suggestion block so that the author can apply it with one click.
  std::optional<std::string> suggestion{};

  // The body as posted: severity label, the text, then the suggestion block.
  std::string rendered_body() const;
};

// The file's text at the PR's head commit; nullopt when it does not exist there.
using FileReader = std::function<std::optional<std::string>(const std::string& path)>;

struct ToolLimits {
  int max_comments = 10;
  std::int64_t max_observation_tokens = 3000;  // longer observations are cut, with a note
  int max_read_lines = 300;                    // per read_file call
  int max_search_results = 40;
  int max_search_files = 100;  // files read by one search_code call
};

struct ToolOutcome {
  std::string observation;
  bool ok = true;         // false: the call was refused (the observation says why)
  bool finished = false;  // finish was called
};

class ReviewTools {
 public:
  ReviewTools(const github::PullRequest& pr, FileReader reader, ToolLimits limits = {});

  // Function definitions for native tool calling (and for the text ReAct instructions).
  static std::vector<llm::ToolSpec> specs();

  // Runs one call; never throws (a failing FileReader becomes an error observation).
  ToolOutcome call(std::string_view name, const nlohmann::json& arguments);

  const std::vector<DraftComment>& comments() const noexcept { return comments_; }
  const std::string& summary() const noexcept { return summary_; }
  bool finished() const noexcept { return finished_; }
  int rejected_comments() const noexcept { return rejected_comments_; }
  int max_comments() const noexcept { return limits_.max_comments; }

  // A short overview of the PR for the first prompt: title, author, description, files.
  std::string overview() const;

 private:
  ToolOutcome dispatch(std::string_view name, const nlohmann::json& arguments);
  ToolOutcome list_files() const;
  ToolOutcome get_file_diff(const nlohmann::json& arguments);
  ToolOutcome read_file(const nlohmann::json& arguments);
  ToolOutcome search_code(const nlohmann::json& arguments);
  ToolOutcome add_comment(const nlohmann::json& arguments);
  ToolOutcome finish(const nlohmann::json& arguments);

  const std::string* cached_file(const std::string& path, std::string& error);
  std::string limit(std::string text) const;

  const github::PullRequest& pr_;
  FileReader reader_;
  ToolLimits limits_;
  github::CommentableLines commentable_;
  std::map<std::string, std::optional<std::string>, std::less<>> file_cache_;
  std::vector<DraftComment> comments_;
  std::string summary_;
  bool finished_ = false;
  int rejected_comments_ = 0;
};

}  // namespace llmgw::review
