#pragma once

// A scripted chat-model server on net::HttpServer (loopback, ephemeral port) for the LLM clients
// and the PR commands. It speaks both wire protocols:
//   POST /v1/chat/completions  OpenAI-compatible (Groq): JSON, or SSE ("data: {...}", "[DONE]")
//   when
//                              the request says "stream": true; tool_calls with arguments as a
//                              JSON string; errors as {"error": {"message", "type", "code"}}.
//   POST /api/chat             Ollama native: NDJSON records, the last with done: true and token
//                              counts; errors as {"error": "..."}.
// GET /health and GET /v1/models answer as llama-server and vLLM do (a gateway's `api: openai`
// node). Each request takes the next reply from a queue (then the fallback reply): text, tool
// calls, malformed tool calls, 429 with Retry-After or x-ratelimit-reset-requests, Groq's 400
// tool_use_failed, 413 context too long. Every request is recorded for assertions.
//
// Thread-safe: the server thread and the test thread share state under a mutex.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/llm/chat_client.hpp"
#include "llmgw/net/http_server.hpp"

namespace llmgw::fakes {

struct FakeReply {
  int status = 200;
  std::string content;
  std::vector<llm::ToolCall> tool_calls;
  // When set, the first tool call's arguments are sent as this text verbatim (malformed calls).
  std::optional<std::string> raw_arguments;
  net::HttpHeaders headers;  // extra response headers (retry-after, x-ratelimit-...)
  std::string error_body;    // verbatim body of an error reply (status != 200)
  std::int64_t prompt_tokens = 11;
  std::int64_t completion_tokens = 7;
  // Streams: break the connection after this many content chunks (fault injection).
  std::optional<int> abort_after_chunks;
  // When set, sent verbatim as the whole body with `status` (fields set to null, odd shapes).
  std::optional<std::string> raw_body{};
  std::string finish_reason = "stop";  // OpenAI's finish_reason for text replies
  // Prompt tokens served from the cache, reported the way the servers do: OpenAI's (and vLLM's)
  // usage.prompt_tokens_details.cached_tokens (a usage chunk before [DONE] when the request asked
  // for stream_options.include_usage), and llama.cpp's timings.cache_n (with prompt_n, the
  // evaluated rest) on the last chunk.
  std::optional<std::int64_t> cached_tokens{};
  std::optional<std::int64_t> cache_n{};

  static FakeReply text(std::string content);
  static FakeReply tool_call(std::string name, nlohmann::json arguments, std::string id = "call_1");
  static FakeReply malformed_tool_call(std::string name, std::string raw_arguments);
  // 429 with "retry-after: <seconds>" (header_name may be "x-ratelimit-reset-requests", then the
  // value is "<seconds>s").
  static FakeReply rate_limited(int seconds, std::string header_name = "retry-after");
  // Groq's 400 for a tool call it could not parse, with the model's raw output.
  static FakeReply tool_use_failed(std::string failed_generation);
  // 413 with OpenAI's context_length_exceeded code.
  static FakeReply context_too_long();
  // Any error status with an OpenAI-style error body carrying `message`.
  static FakeReply error(int status, std::string message);
  // `body` verbatim with `status`.
  static FakeReply raw(int status, std::string body);
};

struct RecordedRequest {
  std::string path;
  net::HttpHeaders headers;
  nlohmann::json body;  // null when the body was not JSON

  std::optional<std::string_view> header(std::string_view name) const {
    return net::find_header(headers, name);
  }
  // The content of a chat request's last message (the prompt a scripted reply reads).
  std::string last_message() const { return body["messages"].back()["content"].get<std::string>(); }
};

class FakeOpenAi {
 public:
  // Serves HTTPS with `tls` (certificates from support/test_certs.hpp), else plain HTTP.
  explicit FakeOpenAi(std::optional<net::ServerTlsOptions> tls = std::nullopt);
  ~FakeOpenAi();
  FakeOpenAi(const FakeOpenAi&) = delete;
  FakeOpenAi& operator=(const FakeOpenAi&) = delete;

  // "http[s]://127.0.0.1:PORT": add "/v1" for the OpenAI-compatible API; Ollama's lives at the
  // root.
  std::string base_url() const;
  std::string openai_base_url() const { return base_url() + "/v1"; }

  void push(FakeReply reply);
  // Answers every request once the queue is empty (default: a short text).
  void set_fallback(FakeReply reply);
  // Computes replies from requests instead of the queue (a judge, a summariser).
  void set_responder(std::function<FakeReply(const RecordedRequest&)> responder);
  // The models GET /v1/models lists (default: "fake-model"); GET /health answers {"status":"ok"},
  // as llama-server does. Neither is recorded as a request.
  void set_models(std::vector<std::string> models);
  // A model without tool calling: a request that offers tools gets 400 "<model> does not support
  // tools" (Ollama's words; OpenAI-style body on /v1 with "code": null, as Ollama's /v1 sends).
  // Requests without tools take replies as usual.
  void refuse_tools(bool refuse);

  std::vector<RecordedRequest> requests() const;
  std::size_t request_count() const;

 private:
  struct State;
  boost::asio::awaitable<void> handle(const net::ServerRequest& request,
                                      net::ResponseStream& stream);
  std::shared_ptr<State> state_;
  std::unique_ptr<net::HttpServer> server_;
};

}  // namespace llmgw::fakes
