#include "llmgw/sim/anthropic.hpp"

#include <nlohmann/json.hpp>

namespace llmgw::sim {

namespace {

using json = nlohmann::ordered_json;

std::string event(std::string_view name, const json& payload) {
  std::string out = "event: ";
  out += name;
  out += "\ndata: ";
  out += payload.dump();
  out += "\n\n";
  return out;
}

json message_object(std::string_view id, std::string_view model, json content,
                    const json& stop_reason, std::size_t input_tokens, std::size_t output_tokens) {
  return json{{"id", id},
              {"type", "message"},
              {"role", "assistant"},
              {"model", model},
              {"content", std::move(content)},
              {"stop_reason", stop_reason},
              {"stop_sequence", nullptr},
              {"usage", {{"input_tokens", input_tokens}, {"output_tokens", output_tokens}}}};
}

}  // namespace

std::string anthropic_error(int status, std::string_view message, std::string_view request_id) {
  std::string_view type = "api_error";
  switch (status) {
    case 400:
      type = "invalid_request_error";
      break;
    case 401:
      type = "authentication_error";
      break;
    case 403:
      type = "permission_error";
      break;
    case 404:
      type = "not_found_error";
      break;
    case 429:
      type = "rate_limit_error";
      break;
    case 503:
    case 529:
      type = "overloaded_error";
      break;
    default:
      break;
  }
  return json{{"type", "error"},
              {"error", {{"type", type}, {"message", message}}},
              {"request_id", request_id}}
      .dump();
}

std::string_view anthropic_stop_reason(const FinalStats& stats) noexcept {
  return stats.done_reason == "length" ? "max_tokens" : "end_turn";
}

std::string anthropic_stream_start(std::string_view id, std::string_view model,
                                   std::size_t input_tokens) {
  return event("message_start", json{{"type", "message_start"},
                                     {"message", message_object(id, model, json::array(), nullptr,
                                                                input_tokens, 0)}}) +
         event("content_block_start", json{{"type", "content_block_start"},
                                           {"index", 0},
                                           {"content_block", {{"type", "text"}, {"text", ""}}}});
}

std::string anthropic_stream_delta(std::string_view piece) {
  return event("content_block_delta", json{{"type", "content_block_delta"},
                                           {"index", 0},
                                           {"delta", {{"type", "text_delta"}, {"text", piece}}}});
}

std::string anthropic_stream_end(const FinalStats& stats) {
  return event("content_block_stop", json{{"type", "content_block_stop"}, {"index", 0}}) +
         event("message_delta", json{{"type", "message_delta"},
                                     {"delta", {{"stop_reason", anthropic_stop_reason(stats)}}},
                                     {"usage",
                                      {{"input_tokens", stats.prompt_eval_count},
                                       {"output_tokens", stats.eval_count}}}}) +
         event("message_stop", json{{"type", "message_stop"}});
}

std::string anthropic_stream_error(std::string_view message) {
  return event("error",
               json{{"type", "error"}, {"error", {{"type", "api_error"}, {"message", message}}}});
}

std::string anthropic_response(std::string_view id, std::string_view model, std::string_view text,
                               const FinalStats& stats) {
  return message_object(id, model, json::array({json{{"type", "text"}, {"text", text}}}),
                        anthropic_stop_reason(stats), stats.prompt_eval_count, stats.eval_count)
      .dump();
}

}  // namespace llmgw::sim
