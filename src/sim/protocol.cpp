#include "llmgw/sim/protocol.hpp"

#include <fmt/format.h>

#include <ctime>
#include <limits>
#include <nlohmann/json.hpp>

#include "llmgw/sim/model_registry.hpp"

namespace llmgw::sim {

namespace {

// Ordered, so records list their fields in the order Ollama writes them.
using json = nlohmann::ordered_json;

RequestError bad_request(std::string message) {
  return RequestError{400, std::move(message)};
}

// Parses a JSON object body; Ollama answers 400 for an empty body or anything but an object.
std::variant<json, RequestError> parse_object(std::string_view body) {
  if (body.find_first_not_of(" \t\r\n") == std::string_view::npos) {
    return bad_request("missing request body");
  }
  json parsed = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (parsed.is_discarded()) {
    return bad_request("invalid JSON in request body");
  }
  if (!parsed.is_object()) {
    return bad_request("request body must be a JSON object");
  }
  return parsed;
}

std::optional<std::string> string_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_string()) {
    return std::nullopt;
  }
  return it->get<std::string>();
}

// A JSON object body with its required, non-empty "model" field.
struct ModelBody {
  json object;
  std::string model;
};

std::variant<ModelBody, RequestError> parse_model_body(std::string_view body) {
  auto parsed = parse_object(body);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    return *error;
  }
  ModelBody result{std::move(std::get<json>(parsed)), {}};
  auto model = string_field(result.object, "model");
  if (!model || model->empty()) {
    return bad_request("model is required");
  }
  result.model = std::move(*model);
  return result;
}

// OpenAI allows content as a string or as a list of parts; only text parts count here.
std::optional<std::string> message_content(const json& content) {
  if (content.is_null()) {
    return std::string{};
  }
  if (content.is_string()) {
    return content.get<std::string>();
  }
  if (!content.is_array()) {
    return std::nullopt;
  }
  std::string text;
  for (const auto& part : content) {
    if (part.is_object() && part.value("type", "") == "text" && part.contains("text") &&
        part["text"].is_string()) {
      text += part["text"].get<std::string>();
    }
  }
  return text;
}

std::variant<std::vector<ChatMessage>, RequestError> parse_messages(const json& object) {
  std::vector<ChatMessage> messages;
  const auto it = object.find("messages");
  if (it == object.end() || it->is_null()) {
    return messages;
  }
  if (!it->is_array()) {
    return bad_request("messages must be an array");
  }
  for (const auto& entry : *it) {
    if (!entry.is_object()) {
      return bad_request("each message must be an object");
    }
    auto role = string_field(entry, "role");
    if (!role || role->empty()) {
      return bad_request("message role is required");
    }
    auto content = message_content(entry.contains("content") ? entry["content"] : json{});
    if (!content) {
      return bad_request("message content must be a string");
    }
    messages.push_back(ChatMessage{std::move(*role), std::move(*content)});
  }
  return messages;
}

// A non-negative integer limit; Ollama treats num_predict < 0 as "no limit".
std::optional<std::size_t> limit_field(const json& object, const char* name) {
  const auto it = object.find(name);
  if (it == object.end() || !it->is_number_integer()) {
    return std::nullopt;
  }
  const auto value = it->get<std::int64_t>();
  if (value < 0) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(value);
}

void put_stats(json& record, const FinalStats& stats) {
  record["done"] = true;
  record["done_reason"] = stats.done_reason;
  record["total_duration"] = stats.total_duration.count();
  record["load_duration"] = stats.load_duration.count();
  record["prompt_eval_count"] = stats.prompt_eval_count;
  record["prompt_eval_duration"] = stats.prompt_eval_duration.count();
  record["eval_count"] = stats.eval_count;
  record["eval_duration"] = stats.eval_duration.count();
}

json assistant_message(std::string_view content) {
  return json{{"role", "assistant"}, {"content", content}};
}

json usage(const FinalStats& stats) {
  return json{{"prompt_tokens", stats.prompt_eval_count},
              {"completion_tokens", stats.eval_count},
              {"total_tokens", stats.prompt_eval_count + stats.eval_count},
              {"prompt_tokens_details", {{"cached_tokens", stats.cached_tokens}}}};
}

json openai_envelope(Endpoint endpoint, const OpenAiIds& ids, std::string_view model, bool chunk) {
  const bool chat = endpoint == Endpoint::openai_chat;
  return json{
      {"id", ids.id},
      {"object", chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
      {"created", ids.created},
      {"model", model},
      {"system_fingerprint", "fp_ollama"}};
}

// keep_alive as Ollama's api.Duration reads it: a number of seconds or a Go duration string; any
// negative value means forever.
std::optional<RequestError> read_keep_alive(const json& object,
                                            std::optional<std::chrono::nanoseconds>& keep_alive) {
  const auto it = object.find("keep_alive");
  if (it == object.end() || it->is_null()) {
    return std::nullopt;
  }
  if (it->is_number()) {
    const double seconds = it->get<double>();
    keep_alive = seconds < 0.0 || seconds > 9e9
                     ? std::chrono::nanoseconds{-1}
                     : std::chrono::nanoseconds{static_cast<std::int64_t>(seconds * 1e9)};
    return std::nullopt;
  }
  if (it->is_string()) {
    const auto text = it->get<std::string>();
    keep_alive = parse_go_duration(text);
    if (!keep_alive) {
      return bad_request("time: invalid duration \"" + text + "\"");
    }
    return std::nullopt;
  }
  return bad_request("keep_alive must be a duration string or a number of seconds");
}

// keep_alive and options.num_ctx, which decide the model's residency.
std::optional<RequestError> read_residency(const json& object,
                                           std::optional<std::chrono::nanoseconds>& keep_alive,
                                           std::optional<std::size_t>& num_ctx) {
  if (auto error = read_keep_alive(object, keep_alive)) {
    return error;
  }
  const auto options = object.find("options");
  if (options != object.end() && options->is_object()) {
    const auto ctx = limit_field(*options, "num_ctx");
    if (ctx && *ctx > 0) {
      num_ctx = ctx;
    }
  }
  return std::nullopt;
}

std::string sse(const json& payload) {
  return "data: " + payload.dump() + "\n\n";
}

}  // namespace

std::variant<InferenceRequest, RequestError> parse_inference_request(Endpoint endpoint,
                                                                     std::string_view body) {
  auto parsed = parse_model_body(body);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    return *error;
  }
  const json& object = std::get<ModelBody>(parsed).object;
  InferenceRequest request;
  request.endpoint = endpoint;
  request.model = std::move(std::get<ModelBody>(parsed).model);
  const auto stream = object.find("stream");
  if (stream != object.end() && !stream->is_null() && !stream->is_boolean()) {
    return bad_request("stream must be a boolean");
  }
  // Ollama's own API streams by default; the OpenAI and Anthropic APIs do not.
  request.stream = stream != object.end() && stream->is_boolean()
                       ? stream->get<bool>()
                       : !is_openai(endpoint) && !is_anthropic(endpoint);
  if (auto error = read_residency(object, request.keep_alive, request.num_ctx)) {
    return *error;
  }

  switch (endpoint) {
    case Endpoint::generate: {
      const auto prompt = string_field(object, "prompt").value_or("");
      request.raw = object.value("raw", false);
      request.load_only = prompt.empty();
      request.prompt =
          render_generate(string_field(object, "system").value_or(""), prompt, request.raw);
      // The deprecated "context" (a previous response's tokens) goes in front of the prompt, which
      // is what lets a generate-style conversation reuse its KV slot.
      if (const auto context = object.find("context"); context != object.end()) {
        Tokens earlier;
        if (!context->is_array()) {
          return bad_request("context must be an array of token ids");
        }
        for (const auto& id : *context) {
          if (!id.is_number_unsigned() ||
              id.get<std::uint64_t>() > std::numeric_limits<TokenId>::max()) {
            return bad_request("context must be an array of token ids");
          }
          earlier.push_back(static_cast<TokenId>(id.get<std::uint64_t>()));
        }
        request.prompt = detokenize(earlier) + request.prompt;
      }
      if (const auto options = object.find("options"); options != object.end()) {
        if (!options->is_object()) {
          return bad_request("options must be an object");
        }
        request.limit = limit_field(*options, "num_predict");
      }
      break;
    }
    case Endpoint::chat:
    case Endpoint::openai_chat: {
      auto messages = parse_messages(object);
      if (auto* error = std::get_if<RequestError>(&messages)) {
        return *error;
      }
      auto& list = std::get<std::vector<ChatMessage>>(messages);
      if (list.empty() && endpoint == Endpoint::openai_chat) {
        return bad_request("[] is too short - 'messages'");
      }
      request.load_only = list.empty();
      request.prompt = render_chat(list);
      if (endpoint == Endpoint::chat) {
        if (const auto options = object.find("options"); options != object.end()) {
          if (!options->is_object()) {
            return bad_request("options must be an object");
          }
          request.limit = limit_field(*options, "num_predict");
        }
      } else {
        request.limit = limit_field(object, "max_completion_tokens");
        if (!request.limit) {
          request.limit = limit_field(object, "max_tokens");
        }
      }
      break;
    }
    case Endpoint::anthropic_messages: {
      // Ollama's middleware turns it into a chat: "system" (a string or text blocks) first, then
      // the messages; max_tokens becomes num_predict.
      auto messages = parse_messages(object);
      if (auto* error = std::get_if<RequestError>(&messages)) {
        return *error;
      }
      auto& list = std::get<std::vector<ChatMessage>>(messages);
      request.limit = limit_field(object, "max_tokens");
      if (!request.limit || *request.limit == 0) {
        return bad_request("max_tokens is required and must be positive");
      }
      if (list.empty()) {
        return bad_request("messages is required");
      }
      if (const auto system = object.find("system"); system != object.end()) {
        auto text = message_content(*system);
        if (!text) {
          return bad_request("system must be a string or a list of text blocks");
        }
        if (!text->empty()) {
          list.insert(list.begin(), ChatMessage{"system", std::move(*text)});
        }
      }
      request.prompt = render_chat(list);
      break;
    }
    case Endpoint::openai_completion: {
      const auto prompt = object.find("prompt");
      std::string text;
      if (prompt != object.end() && prompt->is_string()) {
        text = prompt->get<std::string>();
      } else if (prompt != object.end() && prompt->is_array() && !prompt->empty() &&
                 prompt->front().is_string()) {
        text = prompt->front().get<std::string>();
      } else {
        return bad_request("prompt is required");
      }
      request.prompt = render_generate("", text, false);
      request.limit = limit_field(object, "max_tokens");
      break;
    }
  }
  if (is_openai(endpoint)) {
    const auto options = object.find("stream_options");
    request.include_usage =
        options != object.end() && options->is_object() && options->value("include_usage", false);
  }
  return request;
}

std::variant<EmbedRequest, RequestError> parse_embed_request(std::string_view body, bool legacy) {
  auto parsed = parse_model_body(body);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    return *error;
  }
  const json& object = std::get<ModelBody>(parsed).object;
  EmbedRequest request;
  request.legacy = legacy;
  request.model = std::move(std::get<ModelBody>(parsed).model);
  if (auto error = read_residency(object, request.keep_alive, request.num_ctx)) {
    return *error;
  }
  const auto input = object.find(legacy ? "prompt" : "input");
  if (input == object.end() || input->is_null()) {
    return request;  // Ollama answers an empty list (it only loads the model)
  }
  if (input->is_string()) {
    request.inputs.push_back(input->get<std::string>());
    return request;
  }
  if (!legacy && input->is_array()) {
    for (const auto& item : *input) {
      if (!item.is_string()) {
        return bad_request("invalid input type");
      }
      request.inputs.push_back(item.get<std::string>());
    }
    return request;
  }
  return bad_request("invalid input type");
}

std::variant<std::string, RequestError> parse_model_field(std::string_view body) {
  auto parsed = parse_object(body);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    return *error;
  }
  const json& object = std::get<json>(parsed);
  auto model = string_field(object, "model");
  if (!model || model->empty()) {
    model = string_field(object, "name");
  }
  if (!model || model->empty()) {
    return bad_request("model is required");
  }
  return *model;
}

std::variant<PullRequest, RequestError> parse_pull_request(std::string_view body) {
  auto model = parse_model_field(body);
  if (auto* error = std::get_if<RequestError>(&model)) {
    return *error;
  }
  // parse_model_field accepted the body, so it is a JSON object.
  const json object = json::parse(body, nullptr, /*allow_exceptions=*/false);
  const auto stream = object.find("stream");
  return PullRequest{std::move(std::get<std::string>(model)),
                     stream == object.end() || !stream->is_boolean() || stream->get<bool>()};
}

std::variant<CopyRequest, RequestError> parse_copy_request(std::string_view body) {
  auto parsed = parse_object(body);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    return *error;
  }
  const json& object = std::get<json>(parsed);
  CopyRequest request{string_field(object, "source").value_or(""),
                      string_field(object, "destination").value_or("")};
  if (request.source.empty() || request.destination.empty()) {
    return bad_request("source and destination are required");
  }
  return request;
}

std::string format_created_at(std::chrono::system_clock::time_point when) {
  const auto since_epoch = when.time_since_epoch();
  const auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds);
  const std::time_t time = static_cast<std::time_t>(seconds.count());
  std::tm utc{};
  gmtime_r(&time, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                     nanos.count());
}

std::string ollama_stream_record(Endpoint endpoint, std::string_view model,
                                 std::string_view created_at, std::string_view piece) {
  json record{{"model", model}, {"created_at", created_at}};
  if (endpoint == Endpoint::chat) {
    record["message"] = assistant_message(piece);
  } else {
    record["response"] = piece;
  }
  record["done"] = false;
  return record.dump() + "\n";
}

std::string ollama_final_record(Endpoint endpoint, std::string_view model,
                                std::string_view created_at, std::string_view text,
                                const FinalStats& stats, const Tokens* context) {
  json record{{"model", model}, {"created_at", created_at}};
  if (endpoint == Endpoint::chat) {
    record["message"] = assistant_message(text);
  } else {
    record["response"] = text;
  }
  put_stats(record, stats);
  if (endpoint == Endpoint::generate && context != nullptr) {
    record["context"] = *context;
  }
  return record.dump();
}

std::string ollama_load_record(Endpoint endpoint, std::string_view model,
                               std::string_view created_at, std::string_view done_reason) {
  json record{{"model", model}, {"created_at", created_at}};
  if (endpoint == Endpoint::chat) {
    record["message"] = assistant_message("");
  } else {
    record["response"] = "";
  }
  record["done_reason"] = done_reason;
  record["done"] = true;
  return record.dump();
}

std::string ollama_error(std::string_view message) {
  return json{{"error", message}}.dump();
}

std::string openai_error(int status, std::string_view message) {
  std::string_view type = "api_error";
  if (status == 400) {
    type = "invalid_request_error";
  } else if (status == 404) {
    type = "not_found_error";
  }
  return json{
      {"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", nullptr}}}}
      .dump();
}

std::string_view finish_reason(const FinalStats& stats) noexcept {
  return stats.done_reason == "length" ? "length" : "stop";
}

std::string openai_stream_event(Endpoint endpoint, const OpenAiIds& ids, std::string_view model,
                                std::string_view piece, std::string_view reason) {
  json event = openai_envelope(endpoint, ids, model, /*chunk=*/true);
  json choice{{"index", 0}};
  if (endpoint == Endpoint::openai_chat) {
    choice["delta"] = assistant_message(piece);
  } else {
    choice["text"] = piece;
  }
  choice["finish_reason"] = reason.empty() ? json(nullptr) : json(reason);
  event["choices"] = json::array({choice});
  return sse(event);
}

std::string openai_usage_event(Endpoint endpoint, const OpenAiIds& ids, std::string_view model,
                               const FinalStats& stats) {
  json event = openai_envelope(endpoint, ids, model, /*chunk=*/true);
  event["choices"] = json::array();
  event["usage"] = usage(stats);
  return sse(event);
}

std::string openai_response(Endpoint endpoint, const OpenAiIds& ids, std::string_view model,
                            std::string_view text, const FinalStats& stats) {
  json response = openai_envelope(endpoint, ids, model, /*chunk=*/false);
  json choice{{"index", 0}};
  if (endpoint == Endpoint::openai_chat) {
    choice["message"] = assistant_message(text);
  } else {
    choice["text"] = text;
  }
  choice["finish_reason"] = finish_reason(stats);
  response["choices"] = json::array({choice});
  response["usage"] = usage(stats);
  return response.dump();
}

}  // namespace llmgw::sim
