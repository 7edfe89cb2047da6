#pragma once

// What the PR-workflow subcommands (summarise, review, eval) share: the model-provider flags
// (--provider, --base-url, --model, --api-key-file, --context-tokens, --gateway), logging to
// stderr (stdout carries the command's output), and the mapping of failures to exit codes.

#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "llmgw/github/client.hpp"
#include "llmgw/llm/chat_client.hpp"

namespace CLI {
class App;
}  // namespace CLI

namespace llmgw::cli {

// A mistake on the command line that the user must fix: exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The model `review` and `review-server` ask for when none is given (Groq's).
inline constexpr std::string_view kDefaultReviewModel = "llama-3.3-70b-versatile";

// Adds the provider flags to `command`, storing into `overrides` (which must outlive parsing).
// `default_provider` and `default_model` only feed the help text.
void add_provider_options(CLI::App& command, llm::ProviderOverrides& overrides,
                          llm::Provider default_provider, std::string_view default_model);

// How to reach GitHub: --token, --token-file, --github-url, --ca-file.
struct GithubOptions {
  std::optional<std::string> token;
  std::optional<std::string> token_file;
  std::optional<std::string> github_url;
  std::optional<std::string> ca_file;  // also trusted for the model provider
};

void add_github_options(CLI::App& command, GithubOptions& options);

// The client configuration: base URL from --github-url or $GITHUB_API_URL, token from --token
// (else `fallback_token`), --token-file or $GITHUB_TOKEN.
github::ClientConfig make_github_config(const GithubOptions& options,
                                        const std::optional<std::string>& fallback_token = {});

// Refuses (UsageError) a hosted OpenAI-compatible provider without an API key, naming the
// environment variable to set, instead of letting the provider answer 401 later.
void require_api_key(const llm::ProviderConfig& config);

// Sends spdlog's default logger to stderr as "level: message".
void log_to_stderr();

// Runs a subcommand's body and returns its exit code; a failure is printed as
// "llmgw <command>: <what>" on stderr and becomes 2 (UsageError, std::invalid_argument) or 1.
int run_command(std::string_view command, const std::function<int()>& body);

}  // namespace llmgw::cli
