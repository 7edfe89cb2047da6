#include "llm/openai_client.hpp"

#include <map>

namespace llmgw::llm {
namespace {

nlohmann::json openai_message(const Message& message) {
  nlohmann::json out{{"role", message.role}, {"content", message.content}};
  if (!message.tool_calls.empty()) {
    auto calls = nlohmann::json::array();
    for (const auto& call : message.tool_calls) {
      calls.push_back(
          {{"id", call.id},
           {"type", "function"},
           {"function", {{"name", call.name}, {"arguments", detail::dump_json(call.arguments)}}}});
    }
    out["tool_calls"] = std::move(calls);
  }
  if (message.role == "tool") {
    out["tool_call_id"] = message.tool_call_id;
    if (!message.name.empty()) {
      out["name"] = message.name;
    }
  }
  return out;
}

void read_usage(const nlohmann::json& chunk, ChatResult& result) {
  const nlohmann::json* usage = nullptr;
  if (const auto it = chunk.find("usage"); it != chunk.end() && it->is_object()) {
    usage = &*it;
  } else if (const auto groq = chunk.find("x_groq"); groq != chunk.end() && groq->is_object()) {
    if (const auto inner = groq->find("usage"); inner != groq->end() && inner->is_object()) {
      usage = &*inner;  // Groq reports streamed usage here
    }
  }
  if (usage != nullptr) {
    result.prompt_tokens = detail::int_field(*usage, "prompt_tokens");
    result.completion_tokens = detail::int_field(*usage, "completion_tokens");
  }
}

// Parses the SSE events of a streamed completion.
struct StreamState {
  ChatResult result;
  std::map<int, ToolCall> calls;  // streamed tool calls by index, arguments still as text
  std::map<int, std::string> call_arguments;
  nlohmann::json error;  // a data: {"error": ...} event
  bool emitted = false;
  bool finished = false;  // [DONE] seen or a finish_reason given

  void on_line(std::string_view line, const TokenCallback& on_token) {
    if (!line.starts_with("data:")) {
      return;  // comments (": keep-alive"), event names, blank separators
    }
    line.remove_prefix(5);
    if (!line.empty() && line.front() == ' ') {
      line.remove_prefix(1);
    }
    if (line == "[DONE]") {
      finished = true;
      return;
    }
    const auto chunk = nlohmann::json::parse(line, nullptr, false);
    if (!chunk.is_object()) {
      return;
    }
    if (const auto it = chunk.find("error"); it != chunk.end() && !it->is_null()) {
      error = chunk;
      return;
    }
    read_usage(chunk, result);
    const auto choices = chunk.find("choices");
    if (choices == chunk.end() || !choices->is_array() || choices->empty()) {
      return;
    }
    const auto& choice = choices->front();
    if (const auto reason = choice.find("finish_reason");
        reason != choice.end() && reason->is_string()) {
      result.finish_reason = reason->get<std::string>();
      finished = true;
    }
    const auto delta = choice.find("delta");
    if (delta == choice.end() || !delta->is_object()) {
      return;
    }
    if (const auto content = delta->find("content");
        content != delta->end() && content->is_string() &&
        !content->get_ref<const std::string&>().empty()) {
      const auto& text = content->get_ref<const std::string&>();
      result.content += text;
      if (on_token) {
        emitted = true;
        on_token(text);
      }
    }
    if (const auto calls_json = delta->find("tool_calls");
        calls_json != delta->end() && calls_json->is_array()) {
      for (const auto& fragment : *calls_json) {
        const auto index = static_cast<int>(detail::int_field(fragment, "index"));
        auto& call = calls[index];
        if (const auto id = fragment.find("id"); id != fragment.end() && id->is_string()) {
          call.id = id->get<std::string>();
        }
        const auto function = detail::object_field(fragment, "function");
        if (const auto name = function.find("name"); name != function.end() && name->is_string()) {
          call.name += name->get<std::string>();
        }
        if (const auto args = function.find("arguments");
            args != function.end() && args->is_string()) {
          call_arguments[index] += args->get<std::string>();
        }
      }
    }
  }

  void finish_tool_calls() {
    for (auto& [index, call] : calls) {
      call.arguments = detail::decode_arguments(call_arguments[index]);
      if (call.id.empty()) {
        call.id = "call_" + std::to_string(index);  // servers that send "id": null
      }
      result.tool_calls.push_back(std::move(call));
    }
  }
};

ChatResult parse_completion(const nlohmann::json& body) {
  ChatResult result;
  read_usage(body, result);
  const auto choices = body.find("choices");
  if (choices == body.end() || !choices->is_array() || choices->empty()) {
    return result;
  }
  const auto& choice = choices->front();
  result.finish_reason = detail::string_field(choice, "finish_reason");
  const auto message = detail::object_field(choice, "message");
  if (const auto content = message.find("content");
      content != message.end() && content->is_string()) {
    result.content = content->get<std::string>();
  }
  if (const auto calls = message.find("tool_calls"); calls != message.end() && calls->is_array()) {
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
  return result;
}

bool complains_about_schema(const ApiError& error) {
  const auto& message = error.provider_message();
  // Providers word this differently ("json_schema is not supported", "response_format ...
  // unsupported", "'minimum' is not permitted in schema"); all are about the schema we sent.
  return error.status() == 400 && (message.find("schema") != std::string::npos ||
                                   message.find("response_format") != std::string::npos);
}

}  // namespace

OpenAiClient::OpenAiClient(const ProviderConfig& config) : http_(config, "openai") {}

nlohmann::json OpenAiClient::request_body(const ChatRequest& request, bool stream,
                                          bool json_object_fallback) const {
  const auto& config = http_.config();
  nlohmann::json body{{"model", request.model.empty() ? config.model : request.model},
                      {"stream", stream}};
  auto messages = nlohmann::json::array();
  for (const auto& message : request.messages) {
    messages.push_back(openai_message(message));
  }
  if (request.json_schema && json_object_fallback) {
    messages.push_back({{"role", "system"},
                        {"content",
                         "Answer with one JSON object that matches this JSON Schema, "
                         "and nothing else:\n" +
                             detail::dump_json(*request.json_schema)}});
  }
  body["messages"] = std::move(messages);
  if (!request.tools.empty() && config.native_tools) {
    body["tools"] = detail::tools_json(request.tools);
  }
  if (request.json_schema) {
    if (json_object_fallback) {
      body["response_format"] = {{"type", "json_object"}};
    } else {
      body["response_format"] = {
          {"type", "json_schema"},
          {"json_schema", {{"name", "answer"}, {"schema", *request.json_schema}}}};
    }
  }
  if (request.temperature) {
    body["temperature"] = *request.temperature;
  }
  if (request.max_tokens) {
    body["max_tokens"] = *request.max_tokens;
  }
  if (request.seed) {
    body["seed"] = *request.seed;
  }
  return body;
}

ChatResult OpenAiClient::chat(const ChatRequest& request, const TokenCallback& on_token) {
  if (!request.json_schema || schema_unsupported_) {
    return send(request, on_token, schema_unsupported_);
  }
  try {
    return send(request, on_token, false);
  } catch (const ApiError& error) {
    if (!complains_about_schema(error)) {
      throw;
    }
    // Groq serves structured outputs on some models only; JSON mode works on all of them.
    schema_unsupported_ = true;
    return send(request, on_token, true);
  }
}

ChatResult OpenAiClient::send(const ChatRequest& request, const TokenCallback& on_token,
                              bool json_object_fallback) {
  const bool stream = static_cast<bool>(on_token) && request.tools.empty();
  const auto body = request_body(request, stream, json_object_fallback);
  if (!stream) {
    const auto response = http_.post_json("/chat/completions", body, request.session_id, nullptr);
    if (response.status < 200 || response.status >= 300) {
      http_.throw_api_error(response.status, response.body);
    }
    const auto parsed = nlohmann::json::parse(response.body, nullptr, false);
    if (!parsed.is_object()) {
      http_.throw_api_error(502, R"({"error": {"message": "the answer is not JSON"}})");
    }
    if (const auto error = parsed.find("error"); error != parsed.end() && !error->is_null()) {
      http_.throw_api_error(500, response.body);
    }
    auto result = parse_completion(parsed);
    if (on_token && !result.content.empty()) {
      on_token(result.content);
    }
    return result;
  }

  StreamState state;
  detail::LineHandler lines{
      .reset = [&] { state = StreamState{}; },
      .on_line = [&](std::string_view line) { state.on_line(line, on_token); },
      .emitted = [&] { return state.emitted; },
  };
  const auto response = http_.post_json("/chat/completions", body, request.session_id, &lines);
  if (response.status < 200 || response.status >= 300) {
    http_.throw_api_error(response.status, response.body);
  }
  if (!state.error.is_null()) {
    http_.throw_api_error(500, state.error.dump());
  }
  if (!state.finished) {
    // Some servers answer a stream request with a plain completion.
    const auto whole = nlohmann::json::parse(response.body, nullptr, false);
    if (whole.is_object() && whole.contains("choices")) {
      auto result = parse_completion(whole);
      if (!result.content.empty()) {
        on_token(result.content);
      }
      return result;
    }
    throw net::TransportError("openai " + net::url_host(http_.config().base_url) +
                              ": the stream ended without [DONE] or a finish reason");
  }
  state.finish_tool_calls();
  return std::move(state.result);
}

}  // namespace llmgw::llm
