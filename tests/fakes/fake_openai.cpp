#include "fakes/fake_openai.hpp"

#include <deque>

namespace llmgw::fakes {

struct FakeOpenAi::State {
  mutable std::mutex mutex;
  std::deque<FakeReply> queue;
  FakeReply fallback = FakeReply::text("(fallback reply)");
  std::function<FakeReply(const RecordedRequest&)> responder;
  std::vector<RecordedRequest> requests;
  std::string base_url;
  bool refuse_tools = false;
  std::vector<std::string> models{"fake-model"};
};

FakeReply FakeReply::text(std::string content) {
  FakeReply reply;
  reply.content = std::move(content);
  return reply;
}

FakeReply FakeReply::tool_call(std::string name, nlohmann::json arguments, std::string id) {
  FakeReply reply;
  reply.tool_calls.push_back({std::move(id), std::move(name), std::move(arguments)});
  return reply;
}

FakeReply FakeReply::malformed_tool_call(std::string name, std::string raw_arguments) {
  auto reply = tool_call(std::move(name), nlohmann::json::object());
  reply.raw_arguments = std::move(raw_arguments);
  return reply;
}

FakeReply FakeReply::rate_limited(int seconds, std::string header_name) {
  auto reply = error(
      429, "Rate limit reached for model. Please try again in " + std::to_string(seconds) + "s.");
  const bool duration = header_name.starts_with("x-ratelimit-reset");
  reply.headers.push_back(
      {std::move(header_name), std::to_string(seconds) + (duration ? "s" : "")});
  return reply;
}

FakeReply FakeReply::tool_use_failed(std::string failed_generation) {
  FakeReply reply;
  reply.status = 400;
  reply.error_body = nlohmann::json{{"error",
                                     {{"message",
                                       "Failed to call a function. Please adjust your prompt. See "
                                       "'failed_generation' for more details."},
                                      {"type", "invalid_request_error"},
                                      {"code", "tool_use_failed"},
                                      {"failed_generation", std::move(failed_generation)}}}}
                         .dump();
  return reply;
}

FakeReply FakeReply::context_too_long() {
  FakeReply reply;
  reply.status = 413;
  reply.error_body =
      nlohmann::json{{"error",
                      {{"message",
                        "This model's maximum context length is 8192 tokens. However, your "
                        "messages resulted in 9000 tokens."},
                       {"type", "invalid_request_error"},
                       {"code", "context_length_exceeded"}}}}
          .dump();
  return reply;
}

FakeReply FakeReply::error(int status, std::string message) {
  FakeReply reply;
  reply.status = status;
  reply.error_body =
      nlohmann::json{{"error", {{"message", std::move(message)}, {"type", "api_error"}}}}.dump();
  return reply;
}

FakeReply FakeReply::raw(int status, std::string body) {
  FakeReply reply;
  reply.status = status;
  reply.raw_body = std::move(body);
  return reply;
}

namespace {

// The reply's content cut into a few pieces, as a model streams tokens.
std::vector<std::string> pieces_of(const std::string& content) {
  std::vector<std::string> pieces;
  std::size_t start = 0;
  while (start < content.size()) {
    auto end = content.find(' ', start + 1);
    end = end == std::string::npos ? content.size() : end;
    pieces.push_back(content.substr(start, end - start));
    start = end;
  }
  return pieces;
}

nlohmann::json openai_tool_calls(const FakeReply& reply) {
  auto calls = nlohmann::json::array();
  for (std::size_t i = 0; i < reply.tool_calls.size(); ++i) {
    const auto& call = reply.tool_calls[i];
    const auto arguments =
        i == 0 && reply.raw_arguments ? *reply.raw_arguments : call.arguments.dump();
    calls.push_back({{"id", call.id},
                     {"type", "function"},
                     {"function", {{"name", call.name}, {"arguments", arguments}}}});
  }
  return calls;
}

nlohmann::json ollama_tool_calls(const FakeReply& reply) {
  auto calls = nlohmann::json::array();
  for (std::size_t i = 0; i < reply.tool_calls.size(); ++i) {
    const auto& call = reply.tool_calls[i];
    nlohmann::json arguments = call.arguments;
    if (i == 0 && reply.raw_arguments) {
      arguments = *reply.raw_arguments;  // a string where an object belongs
    }
    calls.push_back({{"function", {{"name", call.name}, {"arguments", arguments}}}});
  }
  return calls;
}

std::string ollama_error_body(const FakeReply& reply) {
  const auto parsed = nlohmann::json::parse(reply.error_body, nullptr, false);
  std::string message = reply.error_body;
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_object()) {
    message = parsed["error"].value("message", reply.error_body);
  }
  return nlohmann::json{{"error", message}}.dump();
}

}  // namespace

FakeOpenAi::FakeOpenAi(std::optional<net::ServerTlsOptions> tls)
    : state_(std::make_shared<State>()) {
  net::ServerOptions options;
  options.tls = std::move(tls);
  server_ = std::make_unique<net::HttpServer>(
      options, [this](const net::ServerRequest& request, net::ResponseStream& stream) {
        return handle(request, stream);
      });
  server_->start();
  state_->base_url = server_->base_url();
}

FakeOpenAi::~FakeOpenAi() {
  server_->stop();
}

std::string FakeOpenAi::base_url() const {
  return state_->base_url;
}

void FakeOpenAi::push(FakeReply reply) {
  std::lock_guard lock{state_->mutex};
  state_->queue.push_back(std::move(reply));
}

void FakeOpenAi::set_fallback(FakeReply reply) {
  std::lock_guard lock{state_->mutex};
  state_->fallback = std::move(reply);
}

void FakeOpenAi::set_responder(std::function<FakeReply(const RecordedRequest&)> responder) {
  std::lock_guard lock{state_->mutex};
  state_->responder = std::move(responder);
}

void FakeOpenAi::set_models(std::vector<std::string> models) {
  std::lock_guard lock{state_->mutex};
  state_->models = std::move(models);
}

void FakeOpenAi::refuse_tools(bool refuse) {
  std::lock_guard lock{state_->mutex};
  state_->refuse_tools = refuse;
}

std::vector<RecordedRequest> FakeOpenAi::requests() const {
  std::lock_guard lock{state_->mutex};
  return state_->requests;
}

std::size_t FakeOpenAi::request_count() const {
  std::lock_guard lock{state_->mutex};
  return state_->requests.size();
}

namespace {

// What to send for one request, worked out before any co_await (GCC 12 miscompiles braced
// temporaries that live across a suspension point, so the coroutine only moves these out).
struct Plan {
  int status = 200;
  net::HttpHeaders headers;
  std::string body;                 // a whole response
  std::vector<std::string> chunks;  // a streamed response when non-empty
  std::optional<int> abort_after_chunks;
};

Plan whole(int status, net::HttpHeaders headers, std::string body) {
  Plan plan;
  plan.status = status;
  plan.headers = std::move(headers);
  plan.headers.push_back({"Content-Type", "application/json"});
  plan.body = std::move(body);
  return plan;
}

Plan plan_reply(const RecordedRequest& recorded, const FakeReply& reply) {
  const bool ollama = recorded.path == "/api/chat";
  if (reply.raw_body) {
    return whole(reply.status, reply.headers, *reply.raw_body);
  }
  if (reply.status != 200) {
    return whole(reply.status, reply.headers, ollama ? ollama_error_body(reply) : reply.error_body);
  }
  const auto& request = recorded.body;
  // Ollama streams unless told not to; OpenAI only when asked.
  const bool wants_stream = request.is_object() && request.value("stream", ollama);
  const std::string model =
      request.is_object() ? request.value("model", "fake-model") : std::string{"fake-model"};
  if (!ollama && !wants_stream) {
    nlohmann::json message{{"role", "assistant"},
                           {"content", reply.tool_calls.empty() ? nlohmann::json(reply.content)
                                                                : nlohmann::json(nullptr)}};
    if (!reply.tool_calls.empty()) {
      message["tool_calls"] = openai_tool_calls(reply);
    }
    const nlohmann::json body{
        {"id", "chatcmpl-fake"},
        {"object", "chat.completion"},
        {"model", model},
        {"choices",
         {{{"index", 0},
           {"message", std::move(message)},
           {"finish_reason", reply.tool_calls.empty() ? reply.finish_reason : "tool_calls"}}}},
        {"usage",
         {{"prompt_tokens", reply.prompt_tokens},
          {"completion_tokens", reply.completion_tokens},
          {"total_tokens", reply.prompt_tokens + reply.completion_tokens}}}};
    return whole(200, reply.headers, body.dump());
  }
  if (ollama && !wants_stream) {
    nlohmann::json message{{"role", "assistant"}, {"content", reply.content}};
    if (!reply.tool_calls.empty()) {
      message["tool_calls"] = ollama_tool_calls(reply);
    }
    const nlohmann::json body{{"model", model},
                              {"message", std::move(message)},
                              {"done", true},
                              {"done_reason", "stop"},
                              {"prompt_eval_count", reply.prompt_tokens},
                              {"eval_count", reply.completion_tokens}};
    return whole(200, reply.headers, body.dump());
  }

  Plan plan;
  plan.headers = reply.headers;
  plan.headers.push_back({"Content-Type", ollama ? "application/x-ndjson" : "text/event-stream"});
  plan.abort_after_chunks = reply.abort_after_chunks;
  // Ollama: NDJSON records, the last one done with the counts. OpenAI: SSE chunks, the last one
  // with the finish reason and Groq's x_groq usage, then [DONE].
  const auto ollama_record = [&](const std::string& content, bool done) {
    nlohmann::json record{{"model", model},
                          {"message", {{"role", "assistant"}, {"content", content}}},
                          {"done", done}};
    if (done) {
      record["done_reason"] = "stop";
      record["prompt_eval_count"] = reply.prompt_tokens;
      record["eval_count"] = reply.completion_tokens;
    }
    return record.dump() + "\n";
  };
  const auto openai_chunk = [&](nlohmann::json delta, nlohmann::json finish_reason) {
    nlohmann::json chunk{
        {"id", "chatcmpl-fake"},
        {"object", "chat.completion.chunk"},
        {"model", model},
        {"choices",
         {{{"index", 0}, {"delta", std::move(delta)}, {"finish_reason", finish_reason}}}}};
    if (!finish_reason.is_null()) {
      chunk["x_groq"] = {{"usage",
                          {{"prompt_tokens", reply.prompt_tokens},
                           {"completion_tokens", reply.completion_tokens}}}};
      if (reply.cache_n) {
        chunk["timings"] = {{"cache_n", *reply.cache_n},
                            {"prompt_n", reply.prompt_tokens - *reply.cache_n},
                            {"prompt_ms", 12.5},
                            {"predicted_n", reply.completion_tokens}};
      }
    }
    return "data: " + chunk.dump() + "\n\n";
  };
  const bool include_usage = request.is_object() && request.contains("stream_options") &&
                             request["stream_options"].is_object() &&
                             request["stream_options"].value("include_usage", false);
  const auto usage_chunk = [&] {
    nlohmann::json usage{{"prompt_tokens", reply.prompt_tokens},
                         {"completion_tokens", reply.completion_tokens},
                         {"total_tokens", reply.prompt_tokens + reply.completion_tokens}};
    if (reply.cached_tokens) {
      usage["prompt_tokens_details"] = {{"cached_tokens", *reply.cached_tokens}};
    }
    const nlohmann::json chunk{{"id", "chatcmpl-fake"},
                               {"object", "chat.completion.chunk"},
                               {"model", model},
                               {"choices", nlohmann::json::array()},
                               {"usage", std::move(usage)}};
    return "data: " + chunk.dump() + "\n\n";
  };
  for (const auto& piece : pieces_of(reply.content)) {
    plan.chunks.push_back(ollama ? ollama_record(piece, false)
                                 : openai_chunk({{"content", piece}}, nullptr));
  }
  plan.chunks.push_back(ollama ? ollama_record("", true)
                               : openai_chunk(nlohmann::json::object(), "stop") +
                                     (include_usage ? usage_chunk() : std::string{}) +
                                     "data: [DONE]\n\n");
  return plan;
}

}  // namespace

boost::asio::awaitable<void> FakeOpenAi::handle(const net::ServerRequest& request,
                                                net::ResponseStream& stream) {
  const auto state = state_;  // keeps the state alive for this coroutine
  RecordedRequest recorded{std::string{request.path()}, request.headers,
                           nlohmann::json::parse(request.body, nullptr, false)};
  if (recorded.body.is_discarded()) {
    recorded.body = nullptr;
  }
  Plan plan;
  if (request.method == "GET" && (recorded.path == "/health" || recorded.path == "/v1/models")) {
    // What llama-server answers its health probe, and the model list vLLM and llama-server give.
    nlohmann::json body{{"status", "ok"}};
    if (recorded.path == "/v1/models") {
      nlohmann::json data = nlohmann::json::array();
      std::lock_guard lock{state->mutex};
      for (const auto& model : state->models) {
        data.push_back({{"id", model}, {"object", "model"}, {"owned_by", "fake"}});
      }
      body = {{"object", "list"}, {"data", std::move(data)}};
    }
    plan = whole(200, {}, body.dump());
  } else if (request.method != "POST" ||
             (recorded.path != "/v1/chat/completions" && recorded.path != "/api/chat")) {
    plan = whole(404, {}, R"({"error": {"message": "not found"}})");
  } else {
    FakeReply reply;
    {
      std::lock_guard lock{state->mutex};
      state->requests.push_back(recorded);
      const bool offers_tools = recorded.body.is_object() && recorded.body.contains("tools");
      if (state->refuse_tools && offers_tools) {
        const std::string model = recorded.body.value("model", "fake-model");
        const std::string message =
            "registry.ollama.ai/library/" + model + " does not support tools";
        reply.status = 400;
        reply.error_body = nlohmann::json{{"error",
                                           {{"message", message},
                                            {"type", "invalid_request_error"},
                                            {"param", nullptr},
                                            {"code", nullptr}}}}
                               .dump();
      } else if (state->responder) {
        reply = state->responder(recorded);
      } else if (!state->queue.empty()) {
        reply = std::move(state->queue.front());
        state->queue.pop_front();
      } else {
        reply = state->fallback;
      }
    }
    plan = plan_reply(recorded, reply);
  }

  if (plan.chunks.empty()) {
    co_await stream.respond(plan.status, std::move(plan.headers), std::move(plan.body));
    co_return;
  }
  if (!co_await stream.begin(plan.status, std::move(plan.headers))) {
    co_return;
  }
  for (std::size_t i = 0; i < plan.chunks.size(); ++i) {
    if (plan.abort_after_chunks && static_cast<int>(i) == *plan.abort_after_chunks) {
      stream.abort();
      co_return;
    }
    if (!co_await stream.write(plan.chunks[i])) {
      co_return;
    }
  }
  co_await stream.end();
}

}  // namespace llmgw::fakes
