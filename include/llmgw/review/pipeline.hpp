#pragma once

// One review of one pull request, from fetching it to posting (or printing) the review: what
// `llmgw review` and `llmgw review-server` both run.
//
//   1. fetch the PR; read .llmgw-review.yaml at the base commit (flags override it);
//   2. drop ignored files (defaults + config + flags);
//   3. incremental: when an earlier llmgw review exists for another head, keep only the files
//      the commits since then changed (GET /compare/<last>...<head>), and say so in the summary;
//      when that commit is gone (force-push), review everything and say that instead;
//   4. run the agent; drop comments below the severity threshold;
//   5. prepare and post one review (or render it for a dry run), with the usage line.
//
// Throws what the clients throw (github::GithubError, llm::ApiError, net::TransportError) and
// RepoConfigError (message prefixed with the file's path) for a bad repository config.

#include <chrono>
#include <functional>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "llmgw/github/client.hpp"
#include "llmgw/llm/chat_client.hpp"
#include "llmgw/review/publish.hpp"

namespace llmgw::review {

struct ReviewSettings {
  std::optional<int> max_comments;  // unset: the repo config's, else 10
  int max_steps = 24;
  std::int64_t token_budget = 200'000;
  std::string tools = "auto";  // auto | native | text
  std::vector<std::string> ignore;
  bool no_default_ignores = false;
  bool full = false;  // review every file even when an earlier review exists
  bool dry_run = false;
  bool read_repo_config = true;
  std::string repo_config_path{".llmgw-review.yaml"};
  std::optional<std::string> severity_threshold;  // unset: the repo config's, else none
};

// Makes the provider's configuration once the repository's own model choice is known (nullopt
// when the config names none); the caller applies its flags and environment.
using ProviderResolver =
    std::function<llm::ProviderConfig(const std::optional<std::string>& repo_model)>;

struct ReviewRun {
  github::PullRequest pr;
  std::optional<std::string> incremental_since;  // the earlier head, when incremental
  std::string usage;                             // llm::usage_line()
  PreparedReview prepared;
  PublishResult published;  // not filled by a dry run
  std::string rendered;     // the dry run's Markdown
};

// `progress` receives human-readable lines (stderr for the CLI, the log for the server).
// can_read_existing: the PR's reviews and comments may be read (a token is set); without it an
// offline dry run skips de-duplication and incremental review.
ReviewRun run_review(github::Client& github, const github::RepoRef& repo, int number,
                     const ReviewSettings& settings, const ProviderResolver& resolve_provider,
                     bool can_read_existing,
                     const std::function<void(const std::string&)>& progress);

}  // namespace llmgw::review
