#include "llmgw/sim/ollama_sim.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "llmgw/net/http_server.hpp"
#include "llmgw/sim/protocol.hpp"
#include "llmgw/sim/slot_scheduler.hpp"

namespace llmgw::sim {

namespace {

namespace asio = boost::asio;
// Ordered, so records list their fields in the order Ollama writes them.
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

// The Ollama version the emulator claims; clients only check that it parses.
constexpr std::string_view kOllamaVersion = "0.5.7";
// Ollama's scheduler error when its pending queue is full (server/sched.go, ErrMaxQueue).
constexpr std::string_view kBusyMessage =
    "server busy, please try again.  maximum pending requests exceeded";
// How long a "hang" fault waits: in practice until the server stops.
constexpr auto kHangDuration = std::chrono::hours{24};

constexpr std::string_view kJson = "application/json; charset=utf-8";

std::string model_not_found(std::string_view model) {
  return fmt::format("model \"{}\" not found, try pulling it first", model);
}

// "llama3.2" and "llama3.2:latest" name the same model, as in Ollama.
std::string canonical_model(std::string_view name) {
  std::string canonical{name};
  if (canonical.find(':') == std::string::npos) {
    canonical += ":latest";
  }
  return canonical;
}

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return std::string(64, '0');
  }
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return hex;
}

// "llama3.2:latest" -> "llama", "qwen2.5:0.5b" -> "qwen".
std::string model_family(std::string_view canonical) {
  std::string family;
  for (const char c : canonical) {
    if (!std::isalpha(static_cast<unsigned char>(c))) {
      break;
    }
    family += c;
  }
  return family.empty() ? "llama" : family;
}

// "qwen2.5:0.5b" -> "0.5B"; untagged sizes default to a 3B-class model.
std::string parameter_size(std::string_view canonical) {
  const auto tag = canonical.substr(canonical.find(':') + 1);
  if (tag.size() >= 2 && (tag.back() == 'b' || tag.back() == 'B') &&
      tag.find_first_not_of("0123456789.") == tag.size() - 1) {
    std::string size{tag};
    size.back() = 'B';
    return size;
  }
  return "3.2B";
}

json model_details(std::string_view canonical) {
  const std::string family = model_family(canonical);
  return json{{"parent_model", ""},
              {"format", "gguf"},
              {"family", family},
              {"families", json::array({family})},
              {"parameter_size", parameter_size(canonical)},
              {"quantization_level", "Q4_K_M"}};
}

constexpr std::int64_t kModelSizeBytes = 2'019'393'189;

// Built outside the coroutines: GCC 12 cannot keep an initializer list alive across co_await.
std::string version_json() {
  return json{{"version", kOllamaVersion}}.dump();
}

net::HttpHeaders content_type(std::string_view type) {
  return net::HttpHeaders{{"Content-Type", std::string{type}}};
}

// Low-cardinality endpoint label: known paths verbatim, everything else "other".
std::string_view endpoint_label(std::string_view path) {
  static constexpr std::string_view kKnown[] = {"/",
                                                "/api/version",
                                                "/api/tags",
                                                "/api/ps",
                                                "/api/show",
                                                "/api/generate",
                                                "/api/chat",
                                                "/api/embed",
                                                "/api/embeddings",
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
  return "other";
}

// One unlabelled metric; `builder` is prometheus::BuildCounter() or BuildGauge().
template <typename Builder>
auto& add_metric(Builder builder, prometheus::Registry& registry, const std::string& name,
                 const std::string& help) {
  return builder.Name(name).Help(help).Register(registry).Add({});
}

struct Metrics {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("ollama_sim_requests_total")
          .Help("HTTP requests received, by endpoint")
          .Register(*registry);
  prometheus::Counter& prompt_tokens =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_prompt_tokens_total",
                 "Prompt tokens of generations that got a KV slot");
  prometheus::Counter& cached_prompt_tokens =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_prompt_tokens_cached_total",
                 "Prompt tokens served from a KV slot instead of being evaluated");
  prometheus::Counter& generated_tokens =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_generated_tokens_total",
                 "Output tokens generated");
  prometheus::Counter& connections =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_connections_accepted_total",
                 "TCP connections accepted");
  prometheus::Counter& cancelled =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_requests_cancelled_total",
                 "Generations stopped because the client went away");
  prometheus::Counter& rejected =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_requests_rejected_total",
                 "Requests refused with 503 because the queue was full");
  prometheus::Gauge& slots_busy =
      add_metric(prometheus::BuildGauge(), *registry, "ollama_sim_slots_busy",
                 "KV slots serving a request now");
  prometheus::Gauge& queue_depth =
      add_metric(prometheus::BuildGauge(), *registry, "ollama_sim_queue_depth",
                 "Requests waiting for a KV slot");
};

// Holds a KV slot for one generation and gives it back, holding what was served (prompt plus the
// text generated so far), however the handler ends: normally, on a failed write, or destroyed
// when the server stops.
class SlotLease {
 public:
  SlotLease(SlotScheduler& scheduler, std::size_t slot, std::string prompt)
      : scheduler_(scheduler), slot_(slot), served_(std::move(prompt)) {}
  ~SlotLease() { scheduler_.release(slot_, tokenize(served_)); }
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;

  void append(std::string_view piece) { served_ += piece; }
  const std::string& served() const noexcept { return served_; }

 private:
  SlotScheduler& scheduler_;
  std::size_t slot_;
  std::string served_;
};

// Everything a generation needs after it got its slot.
struct Generation {
  InferenceRequest request;
  Completion completion;
  FinalStats stats;
  std::chrono::nanoseconds per_token{0};
  FaultConfig fault;
  Clock::time_point arrived;
  OpenAiIds ids;
};

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

struct OllamaSim::Impl {
  explicit Impl(SimOptions sim_options)
      : options(std::move(sim_options)), active_fault(options.fault) {
    for (const auto& model : options.models) {
      schedulers.try_emplace(canonical_model(model), std::make_unique<SlotScheduler>(
                                                         options.num_parallel, options.queue_size));
    }
    net::ServerOptions server_options;
    server_options.address = options.host;
    server_options.port = options.port;
    server_options.threads = std::max(1u, options.threads);
    server = std::make_unique<net::HttpServer>(
        server_options, [this](const net::ServerRequest& request, net::ResponseStream& out) {
          return handle(request, out);
        });
  }

  asio::awaitable<void> handle(const net::ServerRequest& request, net::ResponseStream& out);
  asio::awaitable<void> inference(Endpoint endpoint, const net::ServerRequest& request,
                                  net::ResponseStream& out);
  asio::awaitable<void> stream_reply(Generation& generation, SlotLease& lease,
                                     net::ResponseStream& out);
  asio::awaitable<void> whole_reply(Generation& generation, SlotLease& lease,
                                    net::ResponseStream& out);
  asio::awaitable<void> embed(const net::ServerRequest& request, bool legacy,
                              net::ResponseStream& out);
  asio::awaitable<void> show(const net::ServerRequest& request, net::ResponseStream& out);
  asio::awaitable<void> admin_fault(const net::ServerRequest& request, net::ResponseStream& out);

  std::string tags_json(bool running) const;
  std::string openai_models_json() const;
  std::string metrics_text();
  std::string fault_json() const;
  SlotScheduler* find_model(std::string_view name) {
    const auto it = schedulers.find(canonical_model(name));
    return it == schedulers.end() ? nullptr : it->second.get();
  }
  FaultConfig current_fault() const {
    std::lock_guard lock(fault_mutex);
    return active_fault;
  }
  void count_cancelled() {
    cancelled.fetch_add(1);
    metrics.cancelled.Increment();
  }

  SimOptions options;
  const std::chrono::system_clock::time_point started_at = std::chrono::system_clock::now();
  Metrics metrics;
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> prompt_tokens{0};
  std::atomic<std::uint64_t> cached_prompt_tokens{0};
  std::atomic<std::uint64_t> generated_tokens{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> next_completion_id{1};
  mutable std::mutex fault_mutex;
  FaultConfig active_fault;
  std::mutex scrape_mutex;
  std::uint64_t connections_reported = 0;
  std::mutex stop_mutex;
  bool stopped = false;
  // Schedulers outlive the server: handler frames destroyed while the server shuts down still
  // give their slots back.
  std::map<std::string, std::unique_ptr<SlotScheduler>, std::less<>> schedulers;
  std::unique_ptr<net::HttpServer> server;
};

asio::awaitable<void> OllamaSim::Impl::handle(const net::ServerRequest& request,
                                              net::ResponseStream& out) {
  const std::string_view path = request.path();
  const bool get = request.method == "GET" || request.method == "HEAD";
  const bool post = request.method == "POST";
  requests.fetch_add(1);
  metrics.requests.Add({{"endpoint", std::string{endpoint_label(path)}}}).Increment();

  if (post && path == "/api/generate") {
    co_await inference(Endpoint::generate, request, out);
  } else if (post && path == "/api/chat") {
    co_await inference(Endpoint::chat, request, out);
  } else if (post && path == "/v1/chat/completions") {
    co_await inference(Endpoint::openai_chat, request, out);
  } else if (post && path == "/v1/completions") {
    co_await inference(Endpoint::openai_completion, request, out);
  } else if (post && (path == "/api/embed" || path == "/api/embeddings")) {
    co_await embed(request, path == "/api/embeddings", out);
  } else if (post && path == "/api/show") {
    co_await show(request, out);
  } else if (get && path == "/") {
    co_await out.respond(200, content_type("text/plain; charset=utf-8"),
                         std::string{"Ollama is running"});
  } else if (get && path == "/api/version") {
    co_await out.respond(200, content_type(kJson), version_json());
  } else if (get && path == "/api/tags") {
    co_await out.respond(200, content_type(kJson), tags_json(false));
  } else if (get && path == "/api/ps") {
    co_await out.respond(200, content_type(kJson), tags_json(true));
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
  const bool openai = is_openai(endpoint);
  auto respond_error = [&out, openai](int status, std::string_view message) {
    return out.respond(status, content_type(kJson),
                       openai ? openai_error(status, message) : ollama_error(message));
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
  SlotScheduler* scheduler = find_model(req.model);
  if (scheduler == nullptr) {
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
  if (req.load_only) {
    co_await out.respond(200, content_type(kJson),
                         ollama_load_record(endpoint, req.model,
                                            format_created_at(std::chrono::system_clock::now())));
    co_return;
  }

  const Tokens prompt = tokenize(req.prompt);
  const auto acquired = co_await scheduler->acquire(prompt);
  if (acquired.outcome != SlotScheduler::Outcome::granted) {
    if (acquired.outcome == SlotScheduler::Outcome::rejected) {
      rejected.fetch_add(1);
      metrics.rejected.Increment();
    }
    co_await respond_error(503, kBusyMessage);
    co_return;
  }
  SlotLease lease(*scheduler, acquired.lease.slot, req.prompt);

  const std::size_t cached = acquired.lease.cached_tokens;
  prompt_tokens.fetch_add(prompt.size());
  cached_prompt_tokens.fetch_add(cached);
  metrics.prompt_tokens.Increment(static_cast<double>(prompt.size()));
  metrics.cached_prompt_tokens.Increment(static_cast<double>(cached));

  generation.completion =
      plan_completion(options.seed, canonical_model(req.model), prompt, options.output, req.limit);
  const double slow = fault.mode == FaultMode::slow ? fault.slow_factor : 1.0;
  FinalStats& stats = generation.stats;
  stats.done_reason = generation.completion.hit_limit ? "length" : "stop";
  // Ollama's load_duration covers getting a runner, which includes waiting in its queue.
  stats.load_duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - arrived);
  stats.prompt_eval_count = prompt.size();
  stats.cached_tokens = cached;
  stats.prompt_eval_duration = options.latency.prefill(prompt.size() - cached, slow);
  stats.eval_count = generation.completion.pieces.size();
  generation.per_token = options.latency.decode(1, slow);
  stats.eval_duration = generation.per_token * static_cast<std::int64_t>(stats.eval_count);
  if (openai) {
    const auto number = next_completion_id.fetch_add(1);
    generation.ids.id =
        (endpoint == Endpoint::openai_chat ? "chatcmpl-" : "cmpl-") + std::to_string(number);
    generation.ids.created = std::chrono::duration_cast<std::chrono::seconds>(
                                 std::chrono::system_clock::now().time_since_epoch())
                                 .count();
  }

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
  const bool openai = is_openai(endpoint);
  const FaultConfig& fault = generation.fault;
  const auto& pieces = generation.completion.pieces;
  // The fault strikes before token `strike_at` (or before the final record when the reply is
  // shorter).
  const bool faulty =
      fault.mode == FaultMode::close_mid_stream || fault.mode == FaultMode::error_mid_stream;
  const std::size_t strike_at = std::min(fault.after_tokens, pieces.size());

  if (!co_await out.sleep(generation.stats.prompt_eval_duration)) {
    co_return;  // the server is stopping
  }
  const auto headers = content_type(openai ? "text/event-stream" : "application/x-ndjson");
  if (!co_await out.begin(200, headers)) {
    count_cancelled();
    co_return;
  }
  const auto decode_start = Clock::now();
  for (std::size_t i = 0; i <= pieces.size(); ++i) {
    if (faulty && i == strike_at) {
      if (fault.mode == FaultMode::close_mid_stream) {
        out.abort();
        co_return;
      }
      const std::string message = "simulated failure (fault error_mid_stream)";
      const std::string record =
          openai ? "data: " + openai_error(500, message) + "\n\n" : ollama_error(message) + "\n";
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
      co_return;
    }
    lease.append(pieces[i]);
    generated_tokens.fetch_add(1);
    metrics.generated_tokens.Increment();
    const std::string record =
        openai
            ? openai_stream_event(endpoint, generation.ids, req.model, pieces[i], "")
            : ollama_stream_record(endpoint, req.model,
                                   format_created_at(std::chrono::system_clock::now()), pieces[i]);
    if (!co_await out.write(record)) {
      count_cancelled();
      co_return;
    }
  }

  FinalStats& stats = generation.stats;
  stats.total_duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - generation.arrived);
  std::string tail;
  if (openai) {
    tail = openai_stream_event(endpoint, generation.ids, req.model, "", finish_reason(stats));
    if (req.include_usage) {
      tail += openai_usage_event(endpoint, generation.ids, req.model, stats);
    }
    tail += kOpenAiDone;
  } else {
    const Tokens context = tokenize(lease.served());
    tail = ollama_final_record(endpoint, req.model,
                               format_created_at(std::chrono::system_clock::now()), "", stats,
                               req.raw ? nullptr : &context) +
           "\n";
  }
  if (!co_await out.write(tail)) {
    count_cancelled();
    co_return;
  }
  co_await out.end();
}

asio::awaitable<void> OllamaSim::Impl::whole_reply(Generation& generation, SlotLease& lease,
                                                   net::ResponseStream& out) {
  const InferenceRequest& req = generation.request;
  const bool openai = is_openai(req.endpoint);
  FinalStats& stats = generation.stats;
  if (!co_await out.sleep(stats.prompt_eval_duration + stats.eval_duration)) {
    co_return;
  }
  if (generation.fault.mode == FaultMode::error_mid_stream) {
    const std::string message = "simulated failure (fault error_mid_stream)";
    co_await out.respond(500, content_type(kJson),
                         openai ? openai_error(500, message) : ollama_error(message));
    co_return;
  }
  const std::string text = generation.completion.text();
  lease.append(text);
  generated_tokens.fetch_add(stats.eval_count);
  metrics.generated_tokens.Increment(static_cast<double>(stats.eval_count));
  stats.total_duration =
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - generation.arrived);
  std::string body;
  if (openai) {
    body = openai_response(req.endpoint, generation.ids, req.model, text, stats);
  } else {
    const Tokens context = tokenize(lease.served());
    body = ollama_final_record(req.endpoint, req.model,
                               format_created_at(std::chrono::system_clock::now()), text, stats,
                               req.raw ? nullptr : &context);
  }
  if (!co_await out.respond(200, content_type(kJson), std::move(body))) {
    count_cancelled();
  }
}

asio::awaitable<void> OllamaSim::Impl::embed(const net::ServerRequest& request, bool legacy,
                                             net::ResponseStream& out) {
  const auto arrived = Clock::now();
  auto parsed = parse_embed_request(request.body, legacy);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    co_await out.respond(error->status, content_type(kJson), ollama_error(error->message));
    co_return;
  }
  const auto& req = std::get<EmbedRequest>(parsed);
  if (find_model(req.model) == nullptr) {
    co_await out.respond(404, content_type(kJson), ollama_error(model_not_found(req.model)));
    co_return;
  }
  std::size_t tokens = 0;
  json embeddings = json::array();
  for (const auto& input : req.inputs) {
    tokens += count_tokens(input);
    embeddings.push_back(
        embed_text(canonical_model(req.model), input, options.embedding_dimensions));
  }
  // Embedding models evaluate every token; charge prefill time for them.
  if (!co_await out.sleep(options.latency.prefill(tokens))) {
    co_return;
  }
  json body;
  if (legacy) {
    body["embedding"] = embeddings.empty() ? json::array() : embeddings.front();
  } else {
    body =
        json{{"model", req.model},
             {"embeddings", std::move(embeddings)},
             {"total_duration",
              std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - arrived).count()},
             {"load_duration", 0},
             {"prompt_eval_count", tokens}};
  }
  co_await out.respond(200, content_type(kJson), body.dump());
}

asio::awaitable<void> OllamaSim::Impl::show(const net::ServerRequest& request,
                                            net::ResponseStream& out) {
  auto parsed = parse_model_field(request.body);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    co_await out.respond(error->status, content_type(kJson), ollama_error(error->message));
    co_return;
  }
  const auto& name = std::get<std::string>(parsed);
  if (find_model(name) == nullptr) {
    co_await out.respond(404, content_type(kJson), ollama_error(model_not_found(name)));
    co_return;
  }
  const std::string canonical = canonical_model(name);
  const std::string family = model_family(canonical);
  const std::string tmpl =
      "{{ range .Messages }}<|{{ .Role }}|>\n{{ .Content }}\n{{ end }}<|assistant|>\n";
  json body{{"modelfile", fmt::format("# Modelfile generated by \"ollama show\"\nFROM {}\nTEMPLATE "
                                      "\"\"\"{}\"\"\"\nPARAMETER num_ctx 8192\n",
                                      canonical, tmpl)},
            {"parameters", "num_ctx                        8192"},
            {"template", tmpl},
            {"details", model_details(canonical)},
            {"model_info",
             {{"general.architecture", family},
              {"general.parameter_count", 3'212'749'888},
              {family + ".context_length", 8192},
              {family + ".embedding_length", options.embedding_dimensions}}},
            {"capabilities", json::array({"completion"})},
            {"modified_at", format_created_at(started_at)}};
  co_await out.respond(200, content_type(kJson), body.dump());
}

asio::awaitable<void> OllamaSim::Impl::admin_fault(const net::ServerRequest& request,
                                                   net::ResponseStream& out) {
  if (request.method == "POST") {
    const json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
    if (!body.is_object() || !body.contains("mode") || !body["mode"].is_string()) {
      co_await out.respond(400, content_type(kJson),
                           ollama_error("expected {\"mode\":\"none|error500|hang|"
                                        "close_mid_stream|error_mid_stream|slow\"}"));
      co_return;
    }
    const auto mode = parse_fault_mode(body["mode"].get<std::string>());
    const auto slow_factor = body.find("slow_factor");
    const auto after_tokens = body.find("after_tokens");
    const bool slow_ok =
        slow_factor == body.end() || (slow_factor->is_number() && slow_factor->get<double>() > 0.0);
    const bool after_ok = after_tokens == body.end() || after_tokens->is_number_unsigned();
    if (!mode || !slow_ok || !after_ok) {
      co_await out.respond(400, content_type(kJson), ollama_error("invalid fault settings"));
      co_return;
    }
    FaultConfig updated;
    updated.mode = *mode;
    if (slow_factor != body.end()) {
      updated.slow_factor = slow_factor->get<double>();
    }
    if (after_tokens != body.end()) {
      updated.after_tokens = after_tokens->get<std::size_t>();
    }
    std::lock_guard lock(fault_mutex);
    active_fault = updated;
  }
  co_await out.respond(200, content_type(kJson), fault_json());
}

std::string OllamaSim::Impl::fault_json() const {
  const FaultConfig current = current_fault();
  return json{{"mode", to_string(current.mode)},
              {"slow_factor", current.slow_factor},
              {"after_tokens", current.after_tokens}}
      .dump();
}

std::string OllamaSim::Impl::tags_json(bool running) const {
  json models = json::array();
  const std::string modified_at = format_created_at(started_at);
  const std::string expires_at =
      format_created_at(std::chrono::system_clock::now() + std::chrono::minutes{5});
  for (const auto& [canonical, scheduler] : schedulers) {
    json entry{{"name", canonical},
               {"model", canonical},
               {"size", kModelSizeBytes},
               {"digest", sha256_hex(canonical)},
               {"details", model_details(canonical)}};
    if (running) {
      entry["expires_at"] = expires_at;
      entry["size_vram"] = kModelSizeBytes;
    } else {
      entry["modified_at"] = modified_at;
    }
    models.push_back(std::move(entry));
  }
  return json{{"models", std::move(models)}}.dump();
}

std::string OllamaSim::Impl::openai_models_json() const {
  const auto created =
      std::chrono::duration_cast<std::chrono::seconds>(started_at.time_since_epoch()).count();
  json data = json::array();
  for (const auto& [canonical, scheduler] : schedulers) {
    data.push_back(json{
        {"id", canonical}, {"object", "model"}, {"created", created}, {"owned_by", "library"}});
  }
  return json{{"object", "list"}, {"data", std::move(data)}}.dump();
}

std::string OllamaSim::Impl::metrics_text() {
  std::lock_guard lock(scrape_mutex);
  // Counters that live elsewhere are brought up to date at scrape time.
  const std::uint64_t accepted = server->connections_accepted();
  if (accepted > connections_reported) {
    metrics.connections.Increment(static_cast<double>(accepted - connections_reported));
    connections_reported = accepted;
  }
  std::size_t busy = 0;
  std::size_t queued = 0;
  for (const auto& [name, scheduler] : schedulers) {
    busy += scheduler->busy_slots();
    queued += scheduler->queue_depth();
  }
  metrics.slots_busy.Set(static_cast<double>(busy));
  metrics.queue_depth.Set(static_cast<double>(queued));
  return prometheus::TextSerializer{}.Serialize(metrics.registry->Collect());
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
  for (auto& [name, scheduler] : impl_->schedulers) {
    scheduler->shutdown();
  }
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
  for (const auto& [name, scheduler] : impl_->schedulers) {
    stats.slots_busy += scheduler->busy_slots();
    stats.queue_depth += scheduler->queue_depth();
  }
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
