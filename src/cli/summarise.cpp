// `llmgw summarise OWNER/REPO PR [TOKEN]`: fetch a pull request and summarise it with a model.
// The summary goes to stdout (streamed as generated when stdout is a terminal); progress to stderr.

#include "llmgw/pr/summarise.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <iostream>
#include <memory>

#include "llmgw/cli/command_support.hpp"
#include "llmgw/cli/commands.hpp"
#include "llmgw/github/client.hpp"
#include "llmgw/llm/chat_client.hpp"
#include "llmgw/llm/usage.hpp"
#include "llmgw/review/ignore.hpp"

namespace llmgw::cli {
namespace {

constexpr std::string_view kDefaultSummaryModel = "llama3.2";

struct SummariseCliOptions {
  std::string repo;
  int number = 0;
  std::optional<std::string> positional_token;  // the seed's form: summarise o/r 1 $GITHUB_TOKEN
  GithubOptions github;
  bool json = false;
  std::size_t max_files = 60;
  std::optional<std::int64_t> seed;
  std::vector<std::string> ignore;
  bool no_default_ignores = false;
  llm::ProviderOverrides provider;
};

int run_summarise(const SummariseCliOptions& options) {
  const auto started = std::chrono::steady_clock::now();
  const auto repo = github::parse_repo(options.repo);
  if (!repo) {
    throw UsageError("OWNER/REPO expected, got '" + options.repo + "'");
  }
  const auto github_config = make_github_config(options.github, options.positional_token);

  auto provider_config = llm::resolve_provider_config(
      llm::Provider::ollama, std::string{kDefaultSummaryModel}, options.provider);
  if (options.github.ca_file) {
    provider_config.ca_file = *options.github.ca_file;
  }
  const auto session_id = repo->full_name() + "#" + std::to_string(options.number);
  // Local calls carry the PR as the session so that a gateway keeps them on one warm node.
  if (provider_config.provider == llm::Provider::ollama || options.provider.gateway) {
    provider_config.session_id = session_id;
  }
  require_api_key(provider_config);
  auto chat = llm::make_chat_client(provider_config);

  github::Client github{github_config};
  std::cerr << "Fetching " << session_id << " from " << net::url_host(github_config.base_url)
            << "...\n";
  auto pr = github.fetch_pull_request(*repo, options.number);
  auto globs =
      options.no_default_ignores ? std::vector<std::string>{} : review::default_ignore_globs();
  globs.insert(globs.end(), options.ignore.begin(), options.ignore.end());
  const auto ignored = review::drop_ignored_files(pr, globs);
  if (!ignored.empty()) {
    std::cerr << ignored.size() << " file(s) ignored (lock files, vendored or generated code, "
              << "--ignore)\n";
  }
  std::cerr << "Summarising " << pr.files.size() << " files with " << chat->describe() << "\n";

  const bool terminal = ::isatty(STDOUT_FILENO) == 1;
  pr::SummariseOptions summarise_options;
  summarise_options.context_tokens = provider_config.context_tokens;
  summarise_options.reply_tokens = std::min<std::int64_t>(1024, provider_config.context_tokens / 4);
  summarise_options.max_map_files = options.max_files;
  summarise_options.json = options.json;
  summarise_options.stream = terminal && !options.json;
  summarise_options.session_id = provider_config.session_id;
  summarise_options.seed = options.seed;
  summarise_options.on_progress = [](const std::string& line) { std::cerr << line << "\n"; };
  if (summarise_options.stream) {
    summarise_options.on_text = [](std::string_view text) { std::cout << text << std::flush; };
  }
  const auto summary = pr::summarise(pr, *chat, summarise_options);
  const llm::Usage usage{provider_config.model,
                         std::string{to_string(provider_config.provider)},
                         summary.prompt_tokens,
                         summary.completion_tokens,
                         std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started),
                         summary.llm_calls,
                         false};
  const auto note = review::ignored_note(ignored);
  if (options.json) {
    auto json = pr::to_json(summary);
    json["usage"]["model"] = usage.model;
    json["usage"]["provider"] = usage.provider;
    json["usage"]["seconds"] = static_cast<double>(usage.elapsed.count()) / 1000.0;
    json["ignored"] = ignored;
    std::cout << json.dump(2) << "\n";
  } else {
    if (!summarise_options.stream) {
      std::cout << summary.markdown;
    }
    std::cout << (note.empty() ? std::string{} : "\n" + note + "\n") << "\n---\n_"
              << llm::usage_line(usage) << "_\n";
  }
  std::cerr << summary.llm_calls << " model call(s), " << summary.prompt_tokens
            << " prompt tokens, " << summary.completion_tokens << " completion tokens"
            << (summary.left_out.empty()
                    ? std::string{}
                    : ", " + std::to_string(summary.left_out.size()) + " file(s) left out")
            << "\n";
  return kExitOk;
}

}  // namespace

void add_summarise_command(CLI::App& app, ExitCode& exit_code) {
  auto options = std::make_shared<SummariseCliOptions>();
  auto* cmd = app.add_subcommand("summarise", "Summarise a GitHub pull request with an LLM");
  cmd->alias("summarize");
  cmd->add_option("repo", options->repo, "OWNER/REPO")->required();
  cmd->add_option("pr", options->number, "Pull request number")
      ->required()
      ->check(CLI::PositiveNumber);
  cmd->add_option("github_token", options->positional_token,
                  "GitHub token (kept for the older positional form; prefer $GITHUB_TOKEN)");
  add_github_options(*cmd, options->github);
  cmd->add_flag("--json", options->json, "Print the summary as JSON fields instead of Markdown");
  cmd->add_option("--max-files", options->max_files,
                  "Most files summarised one by one when the PR exceeds the context; the "
                  "smallest changes beyond it are left out and named")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Sampling seed, for repeatable summaries");
  cmd->add_option("--ignore", options->ignore,
                  "Glob of files to leave out (repeatable; .gitignore rules), on top of the "
                  "defaults (lock files, vendored and generated code, minified assets)")
      ->allow_extra_args(false);
  cmd->add_flag("--no-default-ignores", options->no_default_ignores,
                "Read lock files, vendored and generated code and minified assets too");
  add_provider_options(*cmd, options->provider, llm::Provider::ollama, kDefaultSummaryModel);
  cmd->callback([options, &exit_code] {
    exit_code.value = run_command("summarise", [&] { return run_summarise(*options); });
  });
}

}  // namespace llmgw::cli
