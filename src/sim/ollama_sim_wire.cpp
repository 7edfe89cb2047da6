// Each API's shapes for one generation: Ollama's NDJSON, OpenAI's SSE and Anthropic's SSE events,
// chosen by the request's endpoint, so the serving code in ollama_sim.cpp has one path.

#include <chrono>

#include "llmgw/sim/anthropic.hpp"
#include "llmgw/sim/protocol.hpp"
#include "ollama_sim_impl.hpp"

namespace llmgw::sim::detail {

namespace {

std::string now_created_at() {
  return format_created_at(std::chrono::system_clock::now());
}

}  // namespace

std::string_view stream_content_type(Endpoint endpoint) noexcept {
  return is_openai(endpoint) || is_anthropic(endpoint) ? "text/event-stream"
                                                       : "application/x-ndjson";
}

std::string error_body(Endpoint endpoint, int status, std::string_view message) {
  if (is_openai(endpoint)) {
    return openai_error(status, message);
  }
  if (is_anthropic(endpoint)) {
    return anthropic_error(status, message, "req_sim");
  }
  return ollama_error(message);
}

OpenAiIds make_ids(Endpoint endpoint, std::uint64_t number) {
  OpenAiIds ids;
  switch (endpoint) {
    case Endpoint::openai_chat:
      ids.id = "chatcmpl-" + std::to_string(number);
      break;
    case Endpoint::openai_completion:
      ids.id = "cmpl-" + std::to_string(number);
      break;
    case Endpoint::anthropic_messages:
      ids.id = "msg_" + std::to_string(number);
      break;
    case Endpoint::generate:
    case Endpoint::chat:
      return ids;
  }
  ids.created = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch())
                    .count();
  return ids;
}

std::string stream_head(const Generation& generation) {
  const InferenceRequest& req = generation.request;
  if (!is_anthropic(req.endpoint)) {
    return {};
  }
  return anthropic_stream_start(generation.ids.id, req.model, generation.stats.prompt_eval_count);
}

std::string stream_piece(const Generation& generation, std::string_view piece) {
  const InferenceRequest& req = generation.request;
  if (is_openai(req.endpoint)) {
    return openai_stream_event(req.endpoint, generation.ids, req.model, piece, "");
  }
  if (is_anthropic(req.endpoint)) {
    return anthropic_stream_delta(piece);
  }
  return ollama_stream_record(req.endpoint, req.model, now_created_at(), piece);
}

std::string stream_error(Endpoint endpoint, std::string_view message) {
  if (is_openai(endpoint)) {
    return "data: " + openai_error(500, message) + "\n\n";
  }
  if (is_anthropic(endpoint)) {
    return anthropic_stream_error(message);
  }
  return ollama_error(message) + "\n";
}

std::string stream_tail(const Generation& generation, const Tokens& context) {
  const InferenceRequest& req = generation.request;
  const FinalStats& stats = generation.stats;
  if (is_openai(req.endpoint)) {
    std::string tail =
        openai_stream_event(req.endpoint, generation.ids, req.model, "", finish_reason(stats));
    if (req.include_usage) {
      tail += openai_usage_event(req.endpoint, generation.ids, req.model, stats);
    }
    return tail += kOpenAiDone;
  }
  if (is_anthropic(req.endpoint)) {
    return anthropic_stream_end(stats);
  }
  return ollama_final_record(req.endpoint, req.model, now_created_at(), "", stats,
                             req.raw ? nullptr : &context) +
         "\n";
}

std::string whole_body(const Generation& generation, std::string_view text, const Tokens& context) {
  const InferenceRequest& req = generation.request;
  if (is_openai(req.endpoint)) {
    return openai_response(req.endpoint, generation.ids, req.model, text, generation.stats);
  }
  if (is_anthropic(req.endpoint)) {
    return anthropic_response(generation.ids.id, req.model, text, generation.stats);
  }
  return ollama_final_record(req.endpoint, req.model, now_created_at(), text, generation.stats,
                             req.raw ? nullptr : &context);
}

}  // namespace llmgw::sim::detail
