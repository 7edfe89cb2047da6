#include "llm/ollama_client.hpp"

namespace llmgw::llm {
namespace {

nlohmann::json ollama_message(const Message& message) {
  nlohmann::json out{{"role", message.role}, {"content", message.content}};
  if (!message.tool_calls.empty()) {
    auto calls = nlohmann::json::array();
    for (const auto& call : message.tool_calls) {
      calls.push_back({{"function", {{"name", call.name}, {"arguments", call.arguments}}}});
    }
    out["tool_calls"] = std::move(calls);
  }
  if (message.role == "tool" && !message.name.empty()) {
    out["tool_name"] = message.name;
  }
  return out;
}

// The state of one streamed answer.
struct Accumulator {
  ChatResult result;
  std::string error;  // a {"error": ...} record
  bool emitted = false;
  bool done = false;

  void record_line(std::string_view line, const TokenCallback& on_token) {
    if (line.empty()) {
      return;
    }
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (json.is_object()) {
      record(json, on_token);
    }  // else an error page or noise; the status code tells the story
  }

  void record(const nlohmann::json& json, const TokenCallback& on_token) {
    if (const auto it = json.find("error"); it != json.end() && !it->is_null()) {
      error = it->is_string() ? it->get<std::string>() : it->dump();
      return;
    }
    if (const auto message = json.find("message"); message != json.end() && message->is_object()) {
      const auto content = detail::string_field(*message, "content");
      if (!content.empty()) {
        result.content += content;
        if (on_token) {
          emitted = true;
          on_token(content);
        }
      }
      if (const auto calls = message->find("tool_calls");
          calls != message->end() && calls->is_array()) {
        for (const auto& call : *calls) {
          const auto function = detail::object_field(call, "function");
          ToolCall tool_call;
          tool_call.id =
              detail::string_field(call, "id", "call_" + std::to_string(result.tool_calls.size()));
          tool_call.name = detail::string_field(function, "name");
          tool_call.arguments = detail::decode_arguments(
              function.contains("arguments") ? function["arguments"] : nullptr);
          result.tool_calls.push_back(std::move(tool_call));
        }
      }
    }
    if (const auto it = json.find("done");
        it != json.end() && it->is_boolean() && it->get<bool>()) {
      done = true;
      result.prompt_tokens = detail::int_field(json, "prompt_eval_count");
      result.completion_tokens = detail::int_field(json, "eval_count");
      result.finish_reason = detail::string_field(json, "done_reason", "stop");
    }
  }
};

}  // namespace

OllamaClient::OllamaClient(const ProviderConfig& config) : http_(config, "ollama") {}

nlohmann::json OllamaClient::request_body(const ChatRequest& request, bool stream) const {
  const auto& config = http_.config();
  nlohmann::json body{{"model", request.model.empty() ? config.model : request.model},
                      {"stream", stream}};
  auto messages = nlohmann::json::array();
  for (const auto& message : request.messages) {
    messages.push_back(ollama_message(message));
  }
  body["messages"] = std::move(messages);
  if (!request.tools.empty() && config.native_tools) {
    body["tools"] = detail::tools_json(request.tools);
  }
  if (request.json_schema) {
    body["format"] = *request.json_schema;
  }
  // num_ctx makes the budget real: without it Ollama silently cuts prompts at its own default.
  nlohmann::json options{{"num_ctx", config.context_tokens}};
  if (request.temperature) {
    options["temperature"] = *request.temperature;
  }
  if (request.max_tokens) {
    options["num_predict"] = *request.max_tokens;
  }
  if (request.seed) {
    options["seed"] = *request.seed;
  }
  body["options"] = std::move(options);
  return body;
}

ChatResult OllamaClient::chat(const ChatRequest& request, const TokenCallback& on_token) {
  // Text is always streamed, even when nobody watches the tokens: a local model on a CPU can take
  // minutes for a long answer, and a token every so often keeps the read timeout (the idle time
  // between bytes) from firing. Tool calls arrive whole in one record either way, and older
  // Ollama versions do not stream them, so requests with tools are not streamed.
  const bool stream = request.tools.empty();
  Accumulator accumulator;
  detail::LineHandler lines{
      .reset = [&] { accumulator = Accumulator{}; },
      .on_line = [&](std::string_view line) { accumulator.record_line(line, on_token); },
      .emitted = [&] { return accumulator.emitted; },
  };
  const auto response = http_.post_json("/api/chat", request_body(request, stream),
                                        request.session_id, stream ? &lines : nullptr);
  if (response.status < 200 || response.status >= 300) {
    http_.throw_api_error(response.status, response.body);
  }
  if (!stream) {
    // One JSON object (possibly pretty-printed); NDJSON if the server streamed anyway.
    const auto whole = nlohmann::json::parse(response.body, nullptr, false);
    if (whole.is_object()) {
      accumulator.record(whole, on_token);
    } else {
      detail::LineSplitter splitter;
      const auto feed = [&](std::string_view line) { accumulator.record_line(line, on_token); };
      splitter.feed(response.body, feed);
      splitter.finish(feed);
    }
  }
  if (!accumulator.error.empty()) {
    // A mid-stream {"error": ...} record: the request failed after the head said 200.
    http_.throw_api_error(500, nlohmann::json{{"error", accumulator.error}}.dump());
  }
  if (!accumulator.done) {
    throw net::TransportError("ollama " + net::url_host(http_.config().base_url) +
                              ": the answer ended without its final record");
  }
  return std::move(accumulator.result);
}

}  // namespace llmgw::llm
