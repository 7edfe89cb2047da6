#pragma once

// One chat interface over two wire protocols: Ollama's native /api/chat (NDJSON streaming) and the
// OpenAI-compatible /chat/completions (Groq, OpenAI, Ollama's /v1; SSE streaming).
//
// A ChatClient is blocking and not thread-safe (it owns one keep-alive HTTP client); use one per
// thread. Errors are typed so that callers can react: shrink the input on ContextTooLongError, feed
// the provider's complaint back to the model on ToolUseFailedError. No error message ever contains
// the API key or a request body.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::llm {

// A tool invocation requested by the model. `arguments` is always a JSON value here, even when the
// provider sent it as a JSON-encoded string (OpenAI does); a string that is not valid JSON is kept
// as a JSON string so that the caller can report it back to the model.
struct ToolCall {
  std::string id;  // provider's call id ("call_abc"); Ollama has none, a stable one is made up
  std::string name;
  nlohmann::json arguments = nlohmann::json::object();
};

struct Message {
  std::string role;  // "system", "user", "assistant" or "tool"
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant messages that call tools
  std::string tool_call_id;          // tool messages: the call this answers (OpenAI)
  std::string name;                  // tool messages: the tool's name

  static Message system(std::string text) { return {"system", std::move(text), {}, {}, {}}; }
  static Message user(std::string text) { return {"user", std::move(text), {}, {}, {}}; }
  static Message assistant(std::string text, std::vector<ToolCall> calls = {}) {
    return {"assistant", std::move(text), std::move(calls), {}, {}};
  }
  static Message tool(std::string call_id, std::string tool_name, std::string result) {
    return {"tool", std::move(result), {}, std::move(call_id), std::move(tool_name)};
  }
};

// A function the model may call. `parameters` is a JSON Schema object.
struct ToolSpec {
  std::string name;
  std::string description;
  nlohmann::json parameters = nlohmann::json::object();
};

struct ChatRequest {
  std::string model;  // empty: the client's configured model
  std::vector<Message> messages;
  std::vector<ToolSpec> tools;  // empty: no tools offered
  // Constrains the reply to this JSON Schema: Ollama's `format`, OpenAI's
  // `response_format: {type: json_schema}`.
  std::optional<nlohmann::json> json_schema;
  std::optional<double> temperature;
  std::optional<int> max_tokens;  // Ollama's options.num_predict
  std::optional<std::int64_t> seed;
  // Sent as X-Session-ID so that a gateway keeps every call of one task on one node. Overrides
  // ProviderConfig::session_id when set.
  std::optional<std::string> session_id;
};

struct ChatResult {
  std::string content;
  std::vector<ToolCall> tool_calls;
  std::int64_t prompt_tokens = 0;
  std::int64_t completion_tokens = 0;
  std::string finish_reason;  // "stop", "length", "tool_calls", ...
};

// Streams content as it is generated: called once per received fragment, in order. Not called for
// tool calls. Concatenating every fragment gives ChatResult::content.
using TokenCallback = std::function<void(std::string_view)>;

class ChatClient {
 public:
  virtual ~ChatClient() = default;

  // Sends the conversation and returns the model's reply. Throws ApiError (or a subclass) for an
  // error answer from the provider after retries, net::TransportError when it cannot be reached.
  virtual ChatResult chat(const ChatRequest& request, const TokenCallback& on_token = {}) = 0;

  // Whether `tools` in a request are passed to the provider as native tool definitions. When false,
  // callers describe the tools in the prompt and parse a text ReAct format (review/react_parser).
  virtual bool supports_tools() const { return true; }

  // "ollama" or "openai" and the base URL, for progress messages (never contains the key).
  virtual std::string describe() const = 0;
};

// An error answer from the provider. what() is "<provider> <host>: HTTP <status>: <message>" with
// the provider's own message; it never contains the API key.
class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string provider_message, const std::string& what)
      : std::runtime_error(what), status_(status), provider_message_(std::move(provider_message)) {}
  int status() const noexcept { return status_; }
  const std::string& provider_message() const noexcept { return provider_message_; }

 private:
  int status_;
  std::string provider_message_;
};

// The prompt does not fit the model's context (HTTP 413, OpenAI's `context_length_exceeded`,
// Ollama's "context length" messages). The caller should shrink its input and try again.
class ContextTooLongError : public ApiError {
 public:
  using ApiError::ApiError;
};

// Groq's 400 `tool_use_failed`: the model produced a tool call the provider could not parse.
// failed_generation() is the model's raw output, to be fed back to it with a correction request.
class ToolUseFailedError : public ApiError {
 public:
  ToolUseFailedError(int status, std::string provider_message, const std::string& what,
                     std::string failed_generation)
      : ApiError(status, std::move(provider_message), what),
        failed_generation_(std::move(failed_generation)) {}
  const std::string& failed_generation() const noexcept { return failed_generation_; }

 private:
  std::string failed_generation_;
};

// The model (or the server in front of it) has no tool calling: Ollama's "<model> does not
// support tools", vLLM's "tool choice requires --enable-auto-tool-choice". The caller should
// describe the tools in the prompt instead (the text ReAct format).
class ToolsUnsupportedError : public ApiError {
 public:
  using ApiError::ApiError;
};

enum class Provider { ollama, openai };

// "ollama" / "openai" (also "groq", an alias of openai with Groq's defaults); nullopt otherwise.
std::optional<Provider> parse_provider(std::string_view name);
std::string_view to_string(Provider provider) noexcept;

struct ProviderConfig {
  Provider provider = Provider::ollama;
  std::string base_url;  // Ollama: "http://host:11434"; OpenAI-compatible: ".../v1"
  std::string model;
  std::string api_key;  // may be empty (Ollama, a gateway); never logged
  std::int64_t context_tokens = 8192;
  std::optional<std::string> session_id;  // default X-Session-ID of every request
  bool native_tools = true;               // false: the text ReAct format is used instead
  std::string ca_file;                    // extra PEM CA bundle for https base URLs
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{300'000};  // local models can think for a while
  int max_attempts = 4;                             // 429 / 5xx / connect failures
};

// Reads the environment through this (tests pass a map instead of the process environment).
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
EnvLookup process_env();

// What the user asked for on the command line; unset fields fall back to the environment, then to
// the task's defaults.
struct ProviderOverrides {
  std::optional<std::string> provider;  // "ollama" | "openai" | "groq"
  std::optional<std::string> base_url;
  std::optional<std::string> model;
  std::optional<std::string> api_key_file;  // a file whose first line is the key
  std::optional<std::int64_t> context_tokens;
  std::optional<std::string> gateway;  // base URL of an llmgw gateway for Ollama calls
};

// Resolves the provider for a task:
//   ollama: base URL = --base-url, else --gateway, else OLLAMA_HOST ("host:port" or a URL), else
//           http://127.0.0.1:11434.
//   openai: base URL = --base-url, else GROQ_BASE_URL, else https://api.groq.com/openai/v1; key
//   from
//           --api-key-file, else GROQ_API_KEY, else OPENAI_API_KEY.
// Throws std::invalid_argument naming the bad option (an unknown provider, an unreadable key file).
ProviderConfig resolve_provider_config(Provider default_provider, std::string default_model,
                                       const ProviderOverrides& overrides,
                                       const EnvLookup& env = process_env());

// The client for a provider (OllamaClient or OpenAiClient). Throws std::invalid_argument for a base
// URL that is not http:// or https://.
std::unique_ptr<ChatClient> make_chat_client(const ProviderConfig& config);

// `text` with every occurrence of `secret` replaced by "***" (no-op for an empty secret).
std::string redact(std::string text, std::string_view secret);

}  // namespace llmgw::llm
