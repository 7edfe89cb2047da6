#include "llmgw/cli/command_support.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "llmgw/cli/commands.hpp"

namespace llmgw::cli {

void add_provider_options(CLI::App& command, llm::ProviderOverrides& overrides,
                          llm::Provider default_provider, std::string_view default_model) {
  const bool ollama = default_provider == llm::Provider::ollama;
  command
      .add_option("--provider", overrides.provider,
                  ollama ? "ollama | openai | groq (default: ollama)"
                         : "ollama | openai | groq (default: openai at Groq)")
      ->check(CLI::IsMember({"ollama", "openai", "groq"}));
  command.add_option("--base-url", overrides.base_url,
                     "Provider base URL, http:// or https:// (ollama: $OLLAMA_HOST or "
                     "http://127.0.0.1:11434; openai: $GROQ_BASE_URL or "
                     "https://api.groq.com/openai/v1)");
  command.add_option("--model", overrides.model, "Model name")
      ->default_str(std::string{default_model});
  command
      .add_option("--api-key-file", overrides.api_key_file,
                  "File whose first line is the provider's API key (default: $GROQ_API_KEY or "
                  "$OPENAI_API_KEY)")
      ->check(CLI::ExistingFile);
  command
      .add_option("--context-tokens", overrides.context_tokens,
                  "The model's context window in tokens (default 8192)")
      ->check(CLI::Range(std::int64_t{256}, std::int64_t{10'000'000}));
  command.add_option("--gateway", overrides.gateway,
                     "Base URL of an llmgw gateway for Ollama calls; X-Session-ID keeps one PR's "
                     "calls on one node");
}

void add_github_options(CLI::App& command, GithubOptions& options) {
  command.add_option("--token", options.token, "GitHub token (default: $GITHUB_TOKEN)");
  command
      .add_option("--token-file", options.token_file, "File whose first line is the GitHub token")
      ->check(CLI::ExistingFile);
  command.add_option("--github-url", options.github_url,
                     "GitHub API base URL (default: $GITHUB_API_URL or https://api.github.com)");
  command
      .add_option("--ca-file", options.ca_file,
                  "Extra PEM CA bundle trusted for the GitHub API and the model provider")
      ->check(CLI::ExistingFile);
}

github::ClientConfig make_github_config(const GithubOptions& options,
                                        const std::optional<std::string>& fallback_token) {
  if (options.token && fallback_token) {
    throw UsageError("give the GitHub token once");
  }
  github::ClientConfig config;
  config.base_url = options.github_url.value_or(github::default_api_url());
  config.token =
      github::resolve_token(options.token ? options.token : fallback_token, options.token_file);
  if (options.ca_file) {
    config.http.ca_file = *options.ca_file;
  }
  return config;
}

void require_api_key(const llm::ProviderConfig& config) {
  if (config.provider != llm::Provider::openai || !config.api_key.empty()) {
    return;
  }
  if (config.base_url.find("api.groq.com") != std::string::npos) {
    throw UsageError("Groq needs an API key: set GROQ_API_KEY or pass --api-key-file");
  }
  if (config.base_url.find("api.openai.com") != std::string::npos) {
    throw UsageError("OpenAI needs an API key: set OPENAI_API_KEY or pass --api-key-file");
  }
}

void log_to_stderr() {
  if (!spdlog::get("llmgw-cli")) {
    auto logger = spdlog::stderr_color_mt("llmgw-cli");
    logger->set_pattern("%^%l%$: %v");
    spdlog::set_default_logger(logger);
  }
}

int run_command(std::string_view command, const std::function<int()>& body) {
  try {
    log_to_stderr();
    return body();
  } catch (const UsageError& e) {
    std::cerr << "llmgw " << command << ": " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::invalid_argument& e) {
    std::cerr << "llmgw " << command << ": " << e.what() << "\n";
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "llmgw " << command << ": " << e.what() << "\n";
    return kExitFailure;
  }
}

}  // namespace llmgw::cli
