// `llmgw review OWNER/REPO PR`: fetch the pull request, let the ReAct agent draft comments, check
// them against the diff and post one review (or print it with --dry-run).

#include <CLI/CLI.hpp>
#include <iostream>
#include <memory>

#include "llmgw/cli/command_support.hpp"
#include "llmgw/cli/commands.hpp"
#include "llmgw/github/client.hpp"
#include "llmgw/llm/chat_client.hpp"
#include "llmgw/review/pipeline.hpp"
#include "llmgw/review/repo_config.hpp"

namespace llmgw::cli {
namespace {

struct ReviewOptions {
  std::string repo;
  int number = 0;
  GithubOptions github;
  review::ReviewSettings settings;
  bool no_config = false;
  llm::ProviderOverrides provider;
};

int run_review(ReviewOptions options) {
  const auto repo = github::parse_repo(options.repo);
  if (!repo) {
    throw UsageError("OWNER/REPO expected, got '" + options.repo + "'");
  }
  const auto github_config = make_github_config(options.github);
  auto& settings = options.settings;
  if (github_config.token.empty() && !settings.dry_run) {
    throw UsageError(
        "posting a review needs a GitHub token: set GITHUB_TOKEN, or pass --token or "
        "--token-file (or use --dry-run)");
  }
  settings.read_repo_config = !options.no_config;
  // Resolved once here so that usage errors come before any network call; again below when the
  // repository's config names a model.
  const auto resolve = [&](const std::optional<std::string>& repo_model) {
    auto overrides = options.provider;
    if (!overrides.model && repo_model) {
      overrides.model = repo_model;
    }
    auto config = llm::resolve_provider_config(llm::Provider::openai,
                                               std::string{kDefaultReviewModel}, overrides);
    config.session_id = repo->full_name() + "#" + std::to_string(options.number);
    if (options.github.ca_file) {
      config.ca_file = *options.github.ca_file;
    }
    // Not require_api_key(): the default provider deserves its own hint (--provider ollama).
    if (config.provider == llm::Provider::openai && config.api_key.empty() &&
        config.base_url.find("api.groq.com") != std::string::npos) {
      throw UsageError(
          "the default provider is Groq: set GROQ_API_KEY (or pass --provider ollama)");
    }
    return config;
  };
  resolve(std::nullopt);

  github::Client github{github_config};
  const auto session_id = repo->full_name() + "#" + std::to_string(options.number);
  std::cerr << "Fetching " << session_id << " from " << net::url_host(github_config.base_url)
            << "...\n";
  review::ReviewRun run;
  try {
    run = review::run_review(github, *repo, options.number, settings, resolve,
                             !github_config.token.empty(),
                             [](const std::string& line) { std::cerr << line << "\n"; });
  } catch (const review::RepoConfigError& e) {
    throw UsageError(e.what());
  }
  if (settings.dry_run) {
    std::cout << run.rendered;
    return kExitOk;
  }
  const auto& published = run.published;
  if (!published.posted) {
    std::cout << "Nothing new to post: " << session_id << " at "
              << run.pr.meta.head_sha.substr(0, 12) << " already has this review.\n";
  } else {
    std::cout << "Posted review " << published.review.html_url << ": "
              << published.inline_comments.size() << " inline comment(s), "
              << published.moved_to_body.size() << " moved into the body, "
              << published.skipped_duplicates.size() << " already posted earlier.\n";
    if (published.blocked_by_pending_review) {
      std::cout << "GitHub refused inline comments because you have a pending review on this "
                   "pull request; they are in the review body. Submit or discard it for inline "
                   "comments.\n";
    }
  }
  std::cout << run.usage << "\n";
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
  cmd->add_flag("--dry-run", options->settings.dry_run, "Print the review instead of posting it");
  cmd->add_option("--max-comments", options->settings.max_comments,
                  "Most inline comments to post (default: the repository's config, else 10)")
      ->check(CLI::Range(1, 50));
  cmd->add_option("--max-steps", options->settings.max_steps, "Most model calls of the agent")
      ->check(CLI::Range(2, 200))
      ->capture_default_str();
  cmd->add_option("--token-budget", options->settings.token_budget,
                  "Most prompt+completion tokens over the whole review")
      ->check(CLI::Range(std::int64_t{1000}, std::int64_t{10'000'000}))
      ->capture_default_str();
  cmd->add_option("--tools", options->settings.tools,
                  "How the model calls tools: native (the provider's tool calling), text (a ReAct "
                  "format in the prompt, for models without tool calling) or auto (native, "
                  "falling back to text when the model refuses tools)")
      ->check(CLI::IsMember({"auto", "native", "text"}))
      ->capture_default_str();
  cmd->add_option("--ignore", options->settings.ignore,
                  "Glob of files not to review (repeatable; .gitignore rules: '*.min.js', "
                  "'**/vendor/**'), on top of the defaults")
      ->allow_extra_args(false);
  cmd->add_flag("--no-default-ignores", options->settings.no_default_ignores,
                "Review lock files, vendored and generated code and minified assets too");
  cmd->add_flag("--full", options->settings.full,
                "Review every file, even when an earlier llmgw review exists (default: only the "
                "commits since the last reviewed head)");
  cmd->add_option("--severity-threshold", options->settings.severity_threshold,
                  "Post only comments at least this severe: info | suggestion | warning | error "
                  "(default: the repository's config, else all)")
      ->check(CLI::IsMember({"info", "suggestion", "warning", "error"}));
  cmd->add_option("--config", options->settings.repo_config_path,
                  "Path of the review config in the repository, read at the base commit")
      ->capture_default_str();
  cmd->add_flag("--no-config", options->no_config, "Do not read the repository's review config");
  add_provider_options(*cmd, options->provider, llm::Provider::openai, kDefaultReviewModel);
  cmd->callback([options, &exit_code] {
    exit_code.value = run_command("review", [&] { return run_review(*options); });
  });
}

}  // namespace llmgw::cli
