#pragma once

// `.llmgw-review.yaml`: the reviewed repository's own settings for llmgw review, read from the
// pull request's base commit (so that a pull request cannot change how it is reviewed).
//
//   model: qwen2.5-coder:14b          # the model, when --model is not given
//   instructions: |                   # added to the reviewer's instructions (at most 4000 bytes)
//     We use absl::Status, never exceptions.
//   ignore: ["gen/**", "*.snap"]      # globs of files not to review, on top of the defaults
//   default_ignores: true             # false: review lock files, vendored code, ... too
//   max_comments: 5                   # 1..50, when --max-comments is not given
//   severity_threshold: warning       # info | suggestion | warning | error: lower ones not posted
//
// Command-line flags override the file. Validation is strict: an unknown key, a wrong type or a
// value out of range is an error that names the key's path ("ignore[1]: must be a string").

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::review {

inline constexpr std::string_view kRepoConfigPath = ".llmgw-review.yaml";
inline constexpr std::size_t kMaxInstructionsBytes = 4000;

struct RepoConfig {
  std::optional<std::string> model;
  std::optional<std::string> instructions;
  std::vector<std::string> ignore;
  std::optional<bool> default_ignores;
  std::optional<int> max_comments;
  std::optional<std::string> severity_threshold;  // normalised: info|suggestion|warning|error
};

// what() = "<key path>: <problem>" (the caller prefixes the file's name).
class RepoConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses the file's text. An empty file is an empty config. Throws RepoConfigError.
RepoConfig parse_repo_config(std::string_view yaml_text);

// The rank of a severity: info 0 < suggestion 1 < warning 2 < error 3; -1 for anything else.
int severity_rank(std::string_view severity);

}  // namespace llmgw::review
