// `llmgw review-server`: a webhook receiver that reviews pull requests as GitHub reports them
// (opened, synchronize, reopened), with the same review as `llmgw review` (incremental on later
// pushes). See review/review_server.hpp for the protocol and docs/review.md for the setup.

#include "llmgw/review/review_server.hpp"

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

#include "llmgw/cli/command_support.hpp"
#include "llmgw/cli/commands.hpp"
#include "llmgw/github/client.hpp"
#include "llmgw/llm/chat_client.hpp"
#include "llmgw/review/pipeline.hpp"

namespace llmgw::cli {
namespace {

struct ReviewServerCliOptions {
  std::string listen = "127.0.0.1:8090";
  std::optional<std::string> secret_file;
  unsigned workers = 1;
  std::size_t max_pending = 64;
  GithubOptions github;
  review::ReviewSettings settings;
  llm::ProviderOverrides provider;
};

std::string read_secret(const std::optional<std::string>& file) {
  if (file) {
    std::ifstream in{*file};
    std::string line;
    if (!in || !std::getline(in, line)) {
      throw UsageError("--webhook-secret-file: cannot read " + *file);
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
      line.pop_back();
    }
    return line;
  }
  const char* env = std::getenv("GITHUB_WEBHOOK_SECRET");
  return env ? std::string{env} : std::string{};
}

int run_review_server(const ReviewServerCliOptions& options) {
  const auto colon = options.listen.rfind(':');
  int port = -1;
  if (colon != std::string::npos) {
    try {
      port = std::stoi(options.listen.substr(colon + 1));
    } catch (const std::exception&) {
      port = -1;
    }
  }
  if (colon == std::string::npos || colon == 0 || port < 0 || port > 65535) {
    throw UsageError("--listen: HOST:PORT expected, got '" + options.listen + "'");
  }
  review::ReviewServerOptions server_options;
  server_options.address = options.listen.substr(0, colon);
  server_options.port = static_cast<std::uint16_t>(port);
  server_options.secret = read_secret(options.secret_file);
  server_options.workers = options.workers;
  server_options.max_pending = options.max_pending;
  if (server_options.secret.empty()) {
    throw UsageError(
        "a webhook secret is required: set GITHUB_WEBHOOK_SECRET or pass --webhook-secret-file");
  }
  const auto github_config = make_github_config(options.github);
  if (github_config.token.empty()) {
    throw UsageError("posting reviews needs a GitHub token: set GITHUB_TOKEN or pass --token-file");
  }
  auto settings = options.settings;
  settings.dry_run = false;
  const auto provider_overrides = options.provider;
  const auto ca_file = options.github.ca_file;
  // Checked once at start, so that a wrong provider is a usage error, not a failed review later.
  llm::resolve_provider_config(llm::Provider::openai, std::string{kDefaultReviewModel},
                               provider_overrides);

  const auto runner = [=](const review::PullRequestEvent& event) {
    github::Client github{github_config};  // one per review: the client is not thread-safe
    const auto resolve = [&](const std::optional<std::string>& repo_model) {
      auto overrides = provider_overrides;
      if (!overrides.model && repo_model) {
        overrides.model = repo_model;
      }
      auto config = llm::resolve_provider_config(llm::Provider::openai,
                                                 std::string{kDefaultReviewModel}, overrides);
      config.session_id = event.repo.full_name() + "#" + std::to_string(event.number);
      if (ca_file) {
        config.ca_file = *ca_file;
      }
      return config;
    };
    const auto run = review::run_review(github, event.repo, event.number, settings, resolve, true,
                                        [](const std::string& line) { spdlog::info("{}", line); });
    spdlog::info("review-server: {}#{} at {}: {}", event.repo.full_name(), event.number,
                 run.pr.meta.head_sha.substr(0, 12),
                 run.published.posted ? "posted " + run.published.review.html_url
                                      : std::string{"nothing new to post"});
  };

  // Block the stop signals before any thread starts, so that sigwait below receives them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  review::ReviewServer server{server_options, runner};
  server.start();
  std::cerr << "llmgw review-server listening on " << server.base_url()
            << " (POST /webhook, GET /health, GET /metrics)\n";
  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("review-server: stopping; running reviews finish first");
  server.stop();
  return kExitOk;
}

}  // namespace

void add_review_server_command(CLI::App& app, ExitCode& exit_code) {
  auto options = std::make_shared<ReviewServerCliOptions>();
  auto* cmd = app.add_subcommand(
      "review-server", "Review pull requests as GitHub's webhook reports them (a service)");
  cmd->add_option("--listen", options->listen, "HOST:PORT to listen on")->capture_default_str();
  cmd->add_option("--webhook-secret-file", options->secret_file,
                  "File whose first line is the webhook secret (default: $GITHUB_WEBHOOK_SECRET)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--workers", options->workers, "Reviews run at the same time (different PRs)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--max-pending", options->max_pending,
                  "Most pull requests waiting for a review; past it deliveries get 503")
      ->check(CLI::Range(1, 10'000))
      ->capture_default_str();
  add_github_options(*cmd, options->github);
  cmd->add_option("--max-steps", options->settings.max_steps, "Most model calls per review")
      ->check(CLI::Range(2, 200))
      ->capture_default_str();
  cmd->add_option("--max-comments", options->settings.max_comments,
                  "Most inline comments (default: the repository's config, else 10)")
      ->check(CLI::Range(1, 50));
  cmd->add_option("--tools", options->settings.tools, "auto | native | text")
      ->check(CLI::IsMember({"auto", "native", "text"}))
      ->capture_default_str();
  cmd->add_option("--ignore", options->settings.ignore, "Glob of files not to review (repeatable)")
      ->allow_extra_args(false);
  add_provider_options(*cmd, options->provider, llm::Provider::openai, kDefaultReviewModel);
  cmd->callback([options, &exit_code] {
    exit_code.value = run_command("review-server", [&] { return run_review_server(*options); });
  });
}

}  // namespace llmgw::cli
