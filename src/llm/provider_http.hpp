#pragma once

// What the Ollama and OpenAI-compatible clients share: one keep-alive HTTP client, JSON POSTs with
// retry (net::send_with_retry), line-by-line streaming, and the mapping of error answers to the
// typed errors of chat_client.hpp. Private to src/llm.

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "llmgw/llm/chat_client.hpp"
#include "llmgw/net/http_client.hpp"
#include "llmgw/net/retry.hpp"

namespace llmgw::llm::detail {

// Splits a byte stream into lines ("\n" or "\r\n"); the last line may lack its newline.
class LineSplitter {
 public:
  void feed(std::string_view bytes, const std::function<void(std::string_view)>& on_line);
  void finish(const std::function<void(std::string_view)>& on_line);

 private:
  std::string pending_;
};

// Receives a streamed body line by line.
struct LineHandler {
  std::function<void()> reset;                    // before every attempt
  std::function<void(std::string_view)> on_line;  // each line of the body
  // True once something reached the user (a token): a transport failure after that is not retried,
  // since the user would see the start of the answer twice.
  std::function<bool()> emitted;
};

class ProviderHttp {
 public:
  ProviderHttp(const ProviderConfig& config, std::string provider_name);

  // POSTs `body` as JSON to base_url + path. With `lines`, the body is streamed to it and the
  // returned response's body holds only its first 64 KiB (for error messages). Retries 429, 5xx and
  // transport failures. Throws net::TransportError when the provider cannot be reached.
  net::ClientResponse post_json(std::string_view path, const nlohmann::json& body,
                                const std::optional<std::string>& session_id,
                                const LineHandler* lines);

  // Throws the typed error for a non-2xx answer: ContextTooLongError (413, context_length_exceeded,
  // "context length"), ToolUseFailedError (400 tool_use_failed), else ApiError.
  [[noreturn]] void throw_api_error(int status, std::string_view body) const;

  const ProviderConfig& config() const noexcept { return config_; }
  std::string describe() const;

 private:
  ProviderConfig config_;
  std::string provider_name_;
  std::string host_;
  net::HttpClient http_;
};

// Tool definitions in the {"type": "function", "function": {...}} form both APIs share.
nlohmann::json tools_json(const std::vector<ToolSpec>& tools);

// Null-tolerant field readers. OpenAI, Ollama's /v1 and vLLM send null for fields they do not
// fill ("code": null, "finish_reason": null, a tool call's "id": null), where json::value() would
// throw type_error.302. A missing, null or mistyped field gives the fallback.
std::string string_field(const nlohmann::json& object, std::string_view key,
                         std::string fallback = {});
std::int64_t int_field(const nlohmann::json& object, std::string_view key,
                       std::int64_t fallback = 0);
// The field when it is an object, else an empty object.
nlohmann::json object_field(const nlohmann::json& object, std::string_view key);

// A tool call's arguments as an object: OpenAI sends them as a JSON-encoded string, Ollama (and
// some OpenAI-compatible servers) as the object. An empty or null value is an empty object; a
// string that is not JSON is kept as a string so the agent can tell the model it was malformed.
nlohmann::json decode_arguments(const nlohmann::json& arguments);

// The JSON text of `value`; invalid UTF-8 (a diff of a Latin-1 file) is replaced, never thrown on.
std::string dump_json(const nlohmann::json& value);

}  // namespace llmgw::llm::detail
