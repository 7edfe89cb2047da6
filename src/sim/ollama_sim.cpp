#include "llmgw/sim/ollama_sim.hpp"

#include <fmt/format.h>

#include <stdexcept>

#include "llmgw/sim/protocol.hpp"
#include "llmgw/sim/slot_scheduler.hpp"
#include "ollama_sim_impl.hpp"

namespace llmgw::sim {
namespace detail {

std::string model_not_found(std::string_view model) {
  return fmt::format("model \"{}\" not found, try pulling it first", model);
}

std::string canonical_model(std::string_view name) {
  return canonical_model_name(name);
}

net::HttpHeaders content_type(std::string_view type) {
  return net::HttpHeaders{{"Content-Type", std::string{type}}};
}

}  // namespace detail

using namespace detail;

namespace {

// The Ollama version the emulator claims; clients only check that it parses.
constexpr std::string_view kOllamaVersion = "0.5.7";
// Ollama's scheduler error when its pending queue is full (server/sched.go, ErrMaxQueue).
constexpr std::string_view kBusyMessage =
    "server busy, please try again.  maximum pending requests exceeded";
// How long a "hang" fault waits: in practice until the server stops.
constexpr auto kHangDuration = std::chrono::hours{24};

// Built outside the coroutines: GCC 12 cannot keep an initializer list alive across co_await.
std::string version_json() {
  return json{{"version", kOllamaVersion}}.dump();
}

// llama-server's answer for a path it does not serve.
std::string llama_server_not_found() {
  return json{
      {"error", {{"code", 404}, {"message", "File Not Found"}, {"type", "not_found_error"}}}}
      .dump();
}

// Low-cardinality endpoint label: known paths verbatim, everything else "other".
std::string_view endpoint_label(std::string_view path) {
  static constexpr std::string_view kKnown[] = {"/",
                                                "/health",
                                                "/api/version",
                                                "/api/tags",
                                                "/api/ps",
                                                "/api/show",
                                                "/api/generate",
                                                "/api/chat",
                                                "/api/embed",
                                                "/api/embeddings",
                                                "/api/pull",
                                                "/api/delete",
                                                "/api/copy",
                                                "/v1/embeddings",
                                                "/v1/messages",
                                                "/v1/chat/completions",
                                                "/v1/completions",
                                                "/v1/models",
                                                "/metrics",
                                                "/admin/fault"};
  for (const auto known : kKnown) {
    if (path == known) {
      return known;
    }
  }
  return path.starts_with("/v1/models/") ? "/v1/models/{id}" : "other";
}

// Where a reply stops at the latest: num_predict (max_tokens). With --ignore-eos a reply without
// one (Ollama's num_predict -1) runs until the context holds num_ctx tokens, prompt included: a
// 4096-token context and a 96-token prompt give a 4000-token reply.
std::optional<std::size_t> output_limit(const SimOptions& options, const InferenceRequest& req,
                                        std::size_t prompt_tokens) {
  if (req.limit || !options.output.ignore_eos) {
    return req.limit;
  }
  const std::size_t context = req.num_ctx.value_or(options.default_num_ctx);
  return context > prompt_tokens ? context - prompt_tokens : 0;
}

}  // namespace

std::optional<FaultMode> parse_fault_mode(std::string_view name) {
  static constexpr std::pair<std::string_view, FaultMode> kModes[] = {
      {"none", FaultMode::none},
      {"error500", FaultMode::error500},
      {"hang", FaultMode::hang},
      {"close_mid_stream", FaultMode::close_mid_stream},
      {"error_mid_stream", FaultMode::error_mid_stream},
      {"slow", FaultMode::slow}};
  for (const auto& [text, mode] : kModes) {
    if (text == name) {
      return mode;
    }
  }
  return std::nullopt;
}

std::string_view to_string(FaultMode mode) noexcept {
  switch (mode) {
    case FaultMode::none:
      return "none";
    case FaultMode::error500:
      return "error500";
    case FaultMode::hang:
      return "hang";
    case FaultMode::close_mid_stream:
      return "close_mid_stream";
    case FaultMode::error_mid_stream:
      return "error_mid_stream";
    case FaultMode::slow:
      return "slow";
  }
  return "none";
}

asio::awaitable<void> OllamaSim::Impl::handle(const net::ServerRequest& request,
                                              net::ResponseStream& out) {
  const std::string_view path = request.path();
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  requests.fetch_add(1);
  metrics.requests.Add({{"endpoint", std::string{endpoint_label(path)}}}).Increment();

  if (options.flavor == SimFlavor::llama_server) {
    // llama-server's readiness probe, and its 404 for the paths it does not serve.
    if (get && path == "/health") {
      co_await out.respond(200, content_type(kJson), std::string{R"({"status":"ok"})"});
      co_return;
    }
    if (path.starts_with("/api/") || path == "/") {
      co_await out.respond(404, content_type(kJson), llama_server_not_found());
      co_return;
    }
  }
  if (post && path == "/api/generate") {
    co_await inference(Endpoint::generate, request, out);
  } else if (post && path == "/api/chat") {
    co_await inference(Endpoint::chat, request, out);
  } else if (post && path == "/v1/chat/completions") {
    co_await inference(Endpoint::openai_chat, request, out);
  } else if (post && path == "/v1/completions") {
    co_await inference(Endpoint::openai_completion, request, out);
  } else if (post && path == "/v1/messages") {
    co_await inference(Endpoint::anthropic_messages, request, out);
  } else if (post && path == "/api/embed") {
    co_await embed(request, EmbedApi::embed, out);
  } else if (post && path == "/api/embeddings") {
    co_await embed(request, EmbedApi::legacy, out);
  } else if (post && path == "/v1/embeddings") {
    co_await embed(request, EmbedApi::openai, out);
  } else if (post && path == "/api/pull") {
    co_await pull(request, out);
  } else if (request.method == "DELETE" && path == "/api/delete") {
    co_await remove(request, out);
  } else if (post && path == "/api/copy") {
    co_await copy(request, out);
  } else if (get && path.starts_with("/v1/models/")) {
    co_await openai_model(path.substr(std::string_view{"/v1/models/"}.size()), out);
  } else if (post && path == "/api/show") {
    co_await show(request, out);
  } else if (get && path == "/") {
    co_await out.respond(200, content_type("text/plain; charset=utf-8"),
                         std::string{"Ollama is running"});
  } else if (get && path == "/api/version") {
    co_await out.respond(200, content_type(kJson), version_json());
  } else if (get && path == "/api/tags") {
    co_await out.respond(200, content_type(kJson), tags_json());
  } else if (get && path == "/api/ps") {
    co_await out.respond(200, content_type(kJson), ps_json());
  } else if (get && path == "/v1/models") {
    co_await out.respond(200, content_type(kJson), openai_models_json());
  } else if (get && path == "/metrics") {
    co_await out.respond(200, content_type("text/plain; version=0.0.4; charset=utf-8"),
                         metrics_text());
  } else if ((get || post) && path == "/admin/fault") {
    co_await admin_fault(request, out);
  } else {
    // What Ollama's router (gin) answers for an unknown route.
    co_await out.respond(404, content_type("text/plain"), std::string{"404 page not found"});
  }
}

asio::awaitable<void> OllamaSim::Impl::inference(Endpoint endpoint,
                                                 const net::ServerRequest& request,
                                                 net::ResponseStream& out) {
  const auto arrived = Clock::now();
  inference_requests.fetch_add(1);
  // In progress from here to the return: running, loading or queued, as the node holds it.
  const std::size_t now_in_progress = generations.fetch_add(1) + 1;
  for (auto peak = generations_peak.load();
       peak < now_in_progress && !generations_peak.compare_exchange_weak(peak, now_in_progress);) {
  }
  struct InProgress {
    std::atomic<std::size_t>& count;
    ~InProgress() { count.fetch_sub(1); }
  } in_progress{generations};
  auto respond_error = [&out, endpoint](int status, std::string_view message) {
    return out.respond(status, content_type(kJson), error_body(endpoint, status, message));
  };

  auto parsed = parse_inference_request(endpoint, request.body);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    co_await respond_error(error->status, error->message);
    co_return;
  }
  Generation generation;
  generation.request = std::move(std::get<InferenceRequest>(parsed));
  generation.arrived = arrived;
  const InferenceRequest& req = generation.request;
  if (!has_model(req.model)) {
    co_await respond_error(404, model_not_found(req.model));
    co_return;
  }

  generation.fault = current_fault();
  const FaultConfig& fault = generation.fault;
  if (fault.mode == FaultMode::error500) {
    co_await respond_error(500, "simulated failure (fault error500)");
    co_return;
  }
  if (fault.mode == FaultMode::hang) {
    (void)co_await out.sleep(kHangDuration);
    out.abort();
    co_return;
  }
  if (fault.mode == FaultMode::close_mid_stream && !req.stream) {
    out.abort();
    co_return;
  }
  ModelUse use(models, req.keep_alive);
  if (!co_await take_model(req, use, out)) {
    co_return;
  }

  const Tokens prompt = tokenize(req.prompt);
  const auto acquired = co_await use.slots().acquire(prompt);
  if (acquired.outcome != SlotScheduler::Outcome::granted) {
    if (acquired.outcome == SlotScheduler::Outcome::rejected) {
      rejected.fetch_add(1);
      metrics.rejected.Increment();
    }
    co_await respond_error(503, kBusyMessage);
    co_return;
  }
  SlotLease lease(use.slots(), acquired.lease.slot, req.prompt);

  const std::size_t cached = acquired.lease.cached_tokens;
  prompt_tokens.fetch_add(prompt.size());
  cached_prompt_tokens.fetch_add(cached);
  metrics.prompt_tokens.Increment(static_cast<double>(prompt.size()));
  metrics.cached_prompt_tokens.Increment(static_cast<double>(cached));

  generation.completion =
      plan_completion(options.seed, canonical_model(req.model), prompt, options.output,
                      output_limit(options, req, prompt.size()));
  const double slow = fault.mode == FaultMode::slow ? fault.slow_factor : 1.0;
  FinalStats& stats = generation.stats;
  stats.done_reason = generation.completion.hit_limit ? "length" : "stop";
  // Ollama's load_duration covers getting a runner: loading the model, waiting in its queue.
  stats.load_duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - arrived);
  stats.prompt_eval_count = prompt.size();
  stats.cached_tokens = cached;
  stats.prompt_eval_duration = options.latency.prefill(prompt.size() - cached, slow);
  stats.eval_count = generation.completion.pieces.size();
  generation.per_token = options.latency.decode(1, slow);
  stats.eval_duration = generation.per_token * static_cast<std::int64_t>(stats.eval_count);
  generation.ids = make_ids(endpoint, next_completion_id.fetch_add(1));

  if (req.stream) {
    co_await stream_reply(generation, lease, out);
  } else {
    co_await whole_reply(generation, lease, out);
  }
}

asio::awaitable<void> OllamaSim::Impl::stream_reply(Generation& generation, SlotLease& lease,
                                                    net::ResponseStream& out) {
  const InferenceRequest& req = generation.request;
  const Endpoint endpoint = req.endpoint;
  const FaultConfig& fault = generation.fault;
  const auto& pieces = generation.completion.pieces;
  // The fault strikes before token `strike_at` (or before the final record when the reply is
  // shorter).
  const bool faulty =
      fault.mode == FaultMode::close_mid_stream || fault.mode == FaultMode::error_mid_stream;
  const std::size_t strike_at = std::min(fault.after_tokens, pieces.size());

  if (!co_await out.sleep(generation.stats.prompt_eval_duration)) {
    if (out.peer_gone()) {
      count_cancelled();
    }
    co_return;  // the server is stopping, or the client left
  }
  const auto headers = content_type(stream_content_type(endpoint));
  if (!co_await out.begin(200, headers)) {
    count_cancelled();
    co_return;
  }
  if (const std::string head = stream_head(generation); !head.empty()) {
    if (!co_await out.write(head)) {
      count_cancelled();
      co_return;
    }
  }
  const auto decode_start = Clock::now();
  for (std::size_t i = 0; i <= pieces.size(); ++i) {
    if (faulty && i == strike_at) {
      if (fault.mode == FaultMode::close_mid_stream) {
        out.abort();
        co_return;
      }
      const std::string message = "simulated failure (fault error_mid_stream)";
      const std::string record = stream_error(endpoint, message);
      if (co_await out.write(record)) {
        co_await out.end();
      }
      co_return;
    }
    if (i == pieces.size()) {
      break;
    }
    // Tokens leave on a fixed schedule from the end of prefill, so timer overshoot does not add up.
    const auto due = decode_start + generation.per_token * static_cast<std::int64_t>(i + 1);
    const auto now = Clock::now();
    if (due > now && !co_await out.sleep(due - now)) {
      if (out.peer_gone()) {
        count_cancelled();
      }
      co_return;
    }
    lease.append(pieces[i]);
    generated_tokens.fetch_add(1);
    metrics.generated_tokens.Increment();
    const std::string record = stream_piece(generation, pieces[i]);
    if (!co_await out.write(record)) {
      count_cancelled();
      co_return;
    }
  }

  FinalStats& stats = generation.stats;
  stats.total_duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - generation.arrived);
  const std::string tail = stream_tail(generation, tokenize(lease.served()));
  if (!co_await out.write(tail)) {
    count_cancelled();
    co_return;
  }
  co_await out.end();
}

asio::awaitable<void> OllamaSim::Impl::whole_reply(Generation& generation, SlotLease& lease,
                                                   net::ResponseStream& out) {
  const InferenceRequest& req = generation.request;
  FinalStats& stats = generation.stats;
  if (!co_await out.sleep(stats.prompt_eval_duration + stats.eval_duration)) {
    if (out.peer_gone()) {
      count_cancelled();
    }
    co_return;
  }
  if (generation.fault.mode == FaultMode::error_mid_stream) {
    const std::string message = "simulated failure (fault error_mid_stream)";
    // Built before the co_await: GCC 12 destroys the temporary of a ?: inside a co_await
    // expression twice (ASan: double free on every non-streamed request under this fault).
    std::string body = error_body(req.endpoint, 500, message);
    co_await out.respond(500, content_type(kJson), std::move(body));
    co_return;
  }
  const std::string text = generation.completion.text();
  for (const auto& piece : generation.completion.pieces) {
    lease.append(piece);
  }
  generated_tokens.fetch_add(stats.eval_count);
  metrics.generated_tokens.Increment(static_cast<double>(stats.eval_count));
  stats.total_duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - generation.arrived);
  std::string body = whole_body(generation, text, tokenize(lease.served()));
  if (!co_await out.respond(200, content_type(kJson), std::move(body))) {
    count_cancelled();
  }
}

namespace {

SimOptions validated(SimOptions options) {
  if (options.models.empty()) {
    throw std::invalid_argument("ollama-sim needs at least one model");
  }
  return options;
}

}  // namespace

OllamaSim::OllamaSim(SimOptions options)
    : impl_(std::make_unique<Impl>(validated(std::move(options)))) {}

OllamaSim::~OllamaSim() {
  stop();
}

void OllamaSim::start() {
  impl_->server->start();
}

void OllamaSim::stop() {
  {
    std::lock_guard lock(impl_->stop_mutex);
    if (impl_->stopped) {
      return;
    }
    impl_->stopped = true;
  }
  // Queued requests give up first (they answer 503), then the server closes what is left; a
  // hanging request's sleep ends when the server stops.
  impl_->models.shutdown();
  impl_->server->stop();
}

void OllamaSim::wait() {
  impl_->server->wait();
}

std::uint16_t OllamaSim::port() const noexcept {
  return impl_->server->port();
}

std::string OllamaSim::base_url() const {
  return impl_->server->base_url();
}

SimStats OllamaSim::stats() const {
  SimStats stats;
  stats.requests = impl_->requests.load();
  stats.prompt_tokens = impl_->prompt_tokens.load();
  stats.cached_prompt_tokens = impl_->cached_prompt_tokens.load();
  stats.generated_tokens = impl_->generated_tokens.load();
  stats.connections_accepted = impl_->server->connections_accepted();
  stats.cancelled = impl_->cancelled.load();
  stats.rejected = impl_->rejected.load();
  stats.inference_requests = impl_->inference_requests.load();
  stats.generations = impl_->generations.load();
  stats.generations_peak = impl_->generations_peak.load();
  stats.slots_busy = impl_->models.busy_slots();
  stats.queue_depth = impl_->models.queue_depth();
  stats.model_loads = impl_->models.loads();
  stats.model_unloads = impl_->models.unloads();
  return stats;
}

void OllamaSim::set_fault(FaultConfig fault) {
  std::lock_guard lock(impl_->fault_mutex);
  impl_->active_fault = fault;
}

FaultConfig OllamaSim::fault() const {
  return impl_->current_fault();
}

}  // namespace llmgw::sim
