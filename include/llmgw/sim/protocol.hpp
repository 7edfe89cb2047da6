#pragma once

// The emulator's wire formats: parsing Ollama-native and OpenAI-compatible requests, and building
// the exact JSON records Ollama sends back. Pure functions over strings (JSON text in, JSON text
// out), so the shapes are unit-testable without a socket.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "llmgw/sim/tokenizer.hpp"

namespace llmgw::sim {

enum class Endpoint { generate, chat, openai_chat, openai_completion, anthropic_messages };

// True for /v1/chat/completions and /v1/completions, whose errors and streams use OpenAI's shapes.
constexpr bool is_openai(Endpoint endpoint) noexcept {
  return endpoint == Endpoint::openai_chat || endpoint == Endpoint::openai_completion;
}

// True for /v1/messages (Anthropic's Messages API, which Ollama serves since 0.14).
constexpr bool is_anthropic(Endpoint endpoint) noexcept {
  return endpoint == Endpoint::anthropic_messages;
}

struct InferenceRequest {
  Endpoint endpoint = Endpoint::generate;
  std::string model;
  std::string prompt;                // the rendered prompt the model evaluates
  bool stream = true;                // Ollama streams by default, OpenAI does not
  bool include_usage = false;        // OpenAI stream_options.include_usage
  bool raw = false;                  // /api/generate "raw": no template and no context returned
  bool load_only = false;            // empty prompt / no messages: Ollama only loads the model
  std::optional<std::size_t> limit;  // options.num_predict, max_tokens
  // keep_alive: how long the model stays loaded after this request (negative = forever).
  std::optional<std::chrono::nanoseconds> keep_alive;
  std::optional<std::size_t> num_ctx;  // options.num_ctx: a different value reloads the model
};

struct EmbedRequest {
  std::string model;
  std::vector<std::string> inputs;
  bool legacy = false;  // /api/embeddings: {"prompt"} in, {"embedding"} out
  std::optional<std::chrono::nanoseconds> keep_alive;
  std::optional<std::size_t> num_ctx;
};

// A request the emulator refuses, with the status and message it answers.
struct RequestError {
  int status = 400;
  std::string message;
};

std::variant<InferenceRequest, RequestError> parse_inference_request(Endpoint endpoint,
                                                                     std::string_view body);
std::variant<EmbedRequest, RequestError> parse_embed_request(std::string_view body, bool legacy);
// The "model" (or legacy "name") field of /api/show and /api/delete.
std::variant<std::string, RequestError> parse_model_field(std::string_view body);

struct PullRequest {
  std::string model;
  bool stream = true;
};
std::variant<PullRequest, RequestError> parse_pull_request(std::string_view body);

struct CopyRequest {
  std::string source;
  std::string destination;
};
std::variant<CopyRequest, RequestError> parse_copy_request(std::string_view body);

// RFC 3339 UTC with nanoseconds, as Ollama's created_at: "2024-07-22T20:47:51.147561234Z".
std::string format_created_at(std::chrono::system_clock::time_point when);

// The statistics of a finished generation, durations in nanoseconds as Ollama reports them.
struct FinalStats {
  std::string done_reason = "stop";  // "stop", "length", "load"
  std::chrono::nanoseconds total_duration{0};
  std::chrono::nanoseconds load_duration{0};
  std::size_t prompt_eval_count = 0;                 // the whole prompt
  std::chrono::nanoseconds prompt_eval_duration{0};  // only the evaluated (uncached) tokens
  std::size_t eval_count = 0;
  std::chrono::nanoseconds eval_duration{0};
  std::size_t cached_tokens = 0;  // reported on the OpenAI path as prompt_tokens_details
};

// One streamed NDJSON record ({"model","created_at","response"|"message","done":false}), with its
// trailing newline.
std::string ollama_stream_record(Endpoint endpoint, std::string_view model,
                                 std::string_view created_at, std::string_view piece);

// The final record (stream) or the whole response (stream:false: `text` is the full reply).
// `context` is attached for /api/generate unless raw. No trailing newline.
std::string ollama_final_record(Endpoint endpoint, std::string_view model,
                                std::string_view created_at, std::string_view text,
                                const FinalStats& stats, const Tokens* context);

// A load-only answer ({"done":true,"done_reason":"load"}, or "unload" for keep_alive 0), no
// trailing newline.
std::string ollama_load_record(Endpoint endpoint, std::string_view model,
                               std::string_view created_at, std::string_view done_reason = "load");

// {"error":"..."}: Ollama's error body and its mid-stream error record.
std::string ollama_error(std::string_view message);

// {"error":{"message","type","param":null,"code":null}} with the type Ollama derives from status.
std::string openai_error(int status, std::string_view message);

struct OpenAiIds {
  std::string id;            // "chatcmpl-123" / "cmpl-123"
  std::int64_t created = 0;  // unix seconds
};

// One SSE event ("data: {...}\n\n") carrying a delta; `finish_reason` empty means null.
std::string openai_stream_event(Endpoint endpoint, const OpenAiIds& ids, std::string_view model,
                                std::string_view piece, std::string_view finish_reason);
// The usage-only chunk sent before [DONE] when stream_options.include_usage is set.
std::string openai_usage_event(Endpoint endpoint, const OpenAiIds& ids, std::string_view model,
                               const FinalStats& stats);
inline constexpr std::string_view kOpenAiDone = "data: [DONE]\n\n";

// The complete chat.completion / text_completion object with usage.
std::string openai_response(Endpoint endpoint, const OpenAiIds& ids, std::string_view model,
                            std::string_view text, const FinalStats& stats);

// "stop" or "length" as OpenAI's finish_reason.
std::string_view finish_reason(const FinalStats& stats) noexcept;

}  // namespace llmgw::sim
