// `llmgw review OWNER/REPO PR`: fetch the pull request, let the ReAct agent draft comments, check
// them against the diff and post one review (or print it with --dry-run).

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>
#include <memory>

#include "llmgw/cli/command_support.hpp"
#include "llmgw/cli/commands.hpp"
#include "llmgw/github/client.hpp"
#include "llmgw/llm/chat_client.hpp"
#include "llmgw/review/agent.hpp"
#include "llmgw/review/publish.hpp"
#include "llmgw/review/tools.hpp"

namespace llmgw::cli {
namespace {

constexpr std::string_view kDefaultReviewModel = "llama-3.3-70b-versatile";

struct ReviewOptions {
  std::string repo;
  int number = 0;
  GithubOptions github;
  bool dry_run = false;
  int max_comments = 10;
  int max_steps = 24;
  std::int64_t token_budget = 200'000;
  llm::ProviderOverrides provider;
};

std::vector<std::string> review_notes(const github::PullRequest& pr,
                                      const review::AgentResult& result) {
  std::vector<std::string> notes;
  if (pr.diff_from_patches) {
    notes.push_back(
        "_GitHub's diff of this pull request was too large; the review read per-file patches._");
  }
  std::string unreadable;
  for (const auto& file : pr.files) {
    if (!file.patch && file.status != "removed") {
      unreadable += (unreadable.empty() ? "" : ", ") + ("`" + file.filename + "`");
    }
  }
  if (!unreadable.empty()) {
    notes.push_back(
        "_Files without a textual diff (binary or too large), not reviewed: " + unreadable + "._");
  }
  if (result.forced_finish) {
    notes.push_back("_The review stopped at a limit (" + result.stop_reason + ") after " +
                    std::to_string(result.steps) + " model calls._");
  }
  return notes;
}

int run_review(const ReviewOptions& options) {
  const auto repo = github::parse_repo(options.repo);
  if (!repo) {
    throw UsageError("OWNER/REPO expected, got '" + options.repo + "'");
  }
  const auto github_config = make_github_config(options.github);
  if (github_config.token.empty() && !options.dry_run) {
    throw UsageError(
        "posting a review needs a GitHub token: set GITHUB_TOKEN, or pass --token or "
        "--token-file (or use --dry-run)");
  }

  auto provider_config = llm::resolve_provider_config(
      llm::Provider::openai, std::string{kDefaultReviewModel}, options.provider);
  const auto session_id = repo->full_name() + "#" + std::to_string(options.number);
  provider_config.session_id = session_id;
  if (options.github.ca_file) {
    provider_config.ca_file = *options.github.ca_file;
  }
  // Not require_api_key(): the default provider deserves its own hint (--provider ollama).
  if (provider_config.provider == llm::Provider::openai && provider_config.api_key.empty() &&
      provider_config.base_url.find("api.groq.com") != std::string::npos) {
    throw UsageError("the default provider is Groq: set GROQ_API_KEY (or pass --provider ollama)");
  }
  auto chat = llm::make_chat_client(provider_config);

  github::Client github{github_config};
  std::cerr << "Fetching " << session_id << " from " << net::url_host(github_config.base_url)
            << "...\n";
  const auto pr = github.fetch_pull_request(*repo, options.number);
  std::cerr << "  " << pr.meta.title << " (" << pr.files.size() << " files, head "
            << pr.meta.head_sha.substr(0, 12) << ")\n";
  std::cerr << "Reviewing with " << chat->describe() << "...\n";

  review::ToolLimits limits;
  limits.max_comments = options.max_comments;
  // One observation may take at most a quarter of the context (a 8k model reads ~2k at a time).
  limits.max_observation_tokens =
      std::clamp<std::int64_t>(provider_config.context_tokens / 4, 500, 6000);
  review::ReviewTools tools{pr,
                            [&](const std::string& path) {
                              return github.get_file_content(*repo, path, pr.meta.head_sha);
                            },
                            limits};
  review::AgentOptions agent_options;
  agent_options.model = provider_config.model;
  agent_options.max_steps = options.max_steps;
  agent_options.token_budget = options.token_budget;
  agent_options.context_tokens = provider_config.context_tokens;
  agent_options.session_id = session_id;
  const auto result = review::ReviewAgent{*chat, tools, agent_options}.run();
  std::cerr << "  " << result.steps << " model calls, " << result.comments.size()
            << " comment(s) drafted, " << result.rejected_comments << " refused as off the diff ("
            << result.stop_reason << ")\n";

  review::ReviewDraft draft;
  draft.summary = result.summary;
  draft.comments = result.comments;
  draft.signature =
      provider_config.model + " via " + std::string{to_string(provider_config.provider)};
  draft.notes = review_notes(pr, result);

  if (options.dry_run) {
    github::Client* reader = github_config.token.empty() ? nullptr : &github;
    review::PreparedReview prepared;
    try {
      prepared = review::prepare_review(pr, draft, reader);
    } catch (const github::GithubError& e) {
      spdlog::warn("could not read the existing comments ({}); nothing is skipped", e.what());
      prepared = review::prepare_review(pr, draft, nullptr);
    }
    std::cout << review::render_review(pr, prepared);
    return kExitOk;
  }
  auto prepared = review::prepare_review(pr, draft, &github);
  const auto published = review::post_review(github, pr, std::move(prepared));
  if (!published.posted) {
    std::cout << "Nothing new to post: " << session_id << " at " << pr.meta.head_sha.substr(0, 12)
              << " already has this review.\n";
    return kExitOk;
  }
  std::cout << "Posted review " << published.review.html_url << ": "
            << published.inline_comments.size() << " inline comment(s), "
            << published.moved_to_body.size() << " moved into the body, "
            << published.skipped_duplicates.size() << " already posted earlier.\n";
  return kExitOk;
}

}  // namespace

void add_review_command(CLI::App& app, ExitCode& exit_code) {
  auto options = std::make_shared<ReviewOptions>();
  auto* cmd = app.add_subcommand(
      "review", "Review a pull request with an LLM agent and post one GitHub review");
  cmd->add_option("repo", options->repo, "OWNER/REPO")->required();
  cmd->add_option("pr", options->number, "Pull request number")
      ->required()
      ->check(CLI::PositiveNumber);
  add_github_options(*cmd, options->github);
  cmd->add_flag("--dry-run", options->dry_run, "Print the review instead of posting it");
  cmd->add_option("--max-comments", options->max_comments, "Most inline comments to post")
      ->check(CLI::Range(1, 50))
      ->capture_default_str();
  cmd->add_option("--max-steps", options->max_steps, "Most model calls of the agent")
      ->check(CLI::Range(2, 200))
      ->capture_default_str();
  cmd->add_option("--token-budget", options->token_budget,
                  "Most prompt+completion tokens over the whole review")
      ->check(CLI::Range(std::int64_t{1000}, std::int64_t{10'000'000}))
      ->capture_default_str();
  add_provider_options(*cmd, options->provider, llm::Provider::openai, kDefaultReviewModel);
  cmd->callback([options, &exit_code] {
    exit_code.value = run_command("review", [&] { return run_review(*options); });
  });
}

}  // namespace llmgw::cli
