#include "llmgw/llm/chat_client.hpp"

#include <boost/url/parse.hpp>
#include <cstdlib>
#include <fstream>

#include "llm/ollama_client.hpp"
#include "llm/openai_client.hpp"
#include "llmgw/net/url.hpp"

namespace llmgw::llm {
namespace {

constexpr std::string_view kDefaultOllamaUrl = "http://127.0.0.1:11434";
constexpr std::string_view kDefaultGroqUrl = "https://api.groq.com/openai/v1";
constexpr std::string_view kDefaultOllamaModel = "llama3.2";
constexpr std::string_view kDefaultGroqModel = "llama-3.3-70b-versatile";
constexpr std::string_view kOllamaPort = "11434";

// OLLAMA_HOST is "host", "host:port" or a URL, as the Ollama CLI accepts it. A missing port is
// Ollama's 11434 for plain HTTP (443 for https, as a URL implies).
std::string ollama_url_from_host(std::string host) {
  while (!host.empty() && host.back() == '/') {
    host.pop_back();
  }
  if (host.find("://") == std::string::npos) {
    host = "http://" + host;
  }
  const auto parsed = boost::urls::parse_uri(host);
  if (!parsed) {
    throw std::invalid_argument("OLLAMA_HOST: not a host[:port] or URL");
  }
  if (!parsed->has_port() && parsed->scheme() == "http") {
    std::string url{parsed->scheme()};
    url += "://";
    url += parsed->encoded_host_and_port();
    url += ':';
    url += kOllamaPort;
    url += parsed->encoded_path();
    return url;
  }
  return host;
}

std::string first_line_of_file(const std::string& path) {
  std::ifstream file{path};
  std::string line;
  if (!file || !std::getline(file, line)) {
    throw std::invalid_argument("--api-key-file: cannot read " + path);
  }
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) {
    line.pop_back();
  }
  return line;
}

}  // namespace

std::optional<Provider> parse_provider(std::string_view name) {
  if (name == "ollama") {
    return Provider::ollama;
  }
  if (name == "openai" || name == "groq") {
    return Provider::openai;
  }
  return std::nullopt;
}

std::string_view to_string(Provider provider) noexcept {
  return provider == Provider::ollama ? "ollama" : "openai";
}

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): read at startup, before any thread writes the env.
    if (const char* value = std::getenv(name.c_str()); value != nullptr && *value != '\0') {
      return std::string{value};
    }
    return std::nullopt;
  };
}

ProviderConfig resolve_provider_config(Provider default_provider, std::string default_model,
                                       const ProviderOverrides& overrides, const EnvLookup& env) {
  ProviderConfig config;
  config.provider = default_provider;
  if (overrides.provider) {
    const auto chosen = parse_provider(*overrides.provider);
    if (!chosen) {
      throw std::invalid_argument("--provider: expected ollama, openai or groq, got '" +
                                  *overrides.provider + "'");
    }
    config.provider = *chosen;
  }
  if (overrides.model) {
    config.model = *overrides.model;
  } else if (config.provider == default_provider) {
    config.model = std::move(default_model);
  } else {
    config.model = config.provider == Provider::ollama ? kDefaultOllamaModel : kDefaultGroqModel;
  }

  if (config.provider == Provider::ollama) {
    if (overrides.base_url) {
      config.base_url = *overrides.base_url;
    } else if (overrides.gateway) {
      config.base_url = *overrides.gateway;
    } else if (auto host = env("OLLAMA_HOST")) {
      config.base_url = ollama_url_from_host(std::move(*host));
    } else {
      config.base_url = kDefaultOllamaUrl;
    }
  } else {
    if (overrides.base_url) {
      config.base_url = *overrides.base_url;
    } else if (auto url = env("GROQ_BASE_URL")) {
      config.base_url = std::move(*url);
    } else {
      config.base_url = kDefaultGroqUrl;
    }
    if (overrides.api_key_file) {
      config.api_key = first_line_of_file(*overrides.api_key_file);
    } else if (auto key = env("GROQ_API_KEY")) {
      config.api_key = std::move(*key);
    } else if (auto openai_key = env("OPENAI_API_KEY")) {
      config.api_key = std::move(*openai_key);
    }
  }
  while (!config.base_url.empty() && config.base_url.back() == '/') {
    config.base_url.pop_back();
  }
  if (overrides.context_tokens) {
    if (*overrides.context_tokens < 256) {
      throw std::invalid_argument("--context-tokens: must be at least 256");
    }
    config.context_tokens = *overrides.context_tokens;
  }
  return config;
}

std::unique_ptr<ChatClient> make_chat_client(const ProviderConfig& config) {
  if (!config.base_url.starts_with("http://") && !config.base_url.starts_with("https://")) {
    throw std::invalid_argument("base URL must start with http:// or https://: " +
                                redact(net::redact_url(config.base_url), config.api_key));
  }
  if (config.provider == Provider::ollama) {
    return std::make_unique<OllamaClient>(config);
  }
  return std::make_unique<OpenAiClient>(config);
}

std::string redact(std::string text, std::string_view secret) {
  if (secret.empty()) {
    return text;
  }
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3)) {
    text.replace(pos, secret.size(), "***");
  }
  return text;
}

}  // namespace llmgw::llm
