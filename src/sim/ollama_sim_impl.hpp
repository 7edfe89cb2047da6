// Private to src/sim: OllamaSim::Impl and what its source files share. ollama_sim.cpp routes
// requests and serves inference (generate, chat, OpenAI completions, Anthropic messages);
// ollama_sim_wire.cpp picks each API's record shapes; ollama_sim_models.cpp manages models
// (residency around a request, /api/tags, /api/ps, pull, delete, copy, /v1/models) and
// embeddings; ollama_sim_info.cpp answers /api/show, /metrics and /admin/fault.
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "llmgw/net/http_server.hpp"
#include "llmgw/sim/model_registry.hpp"
#include "llmgw/sim/ollama_sim.hpp"
#include "llmgw/sim/protocol.hpp"
#include "llmgw/sim/slot_scheduler.hpp"

namespace llmgw::sim {
namespace detail {

namespace asio = boost::asio;
// Ordered, so records list their fields in the order Ollama writes them.
using json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

inline constexpr std::string_view kJson = "application/json; charset=utf-8";

std::string model_not_found(std::string_view model);

// "llama3.2" and "llama3.2:latest" name the same model, as in Ollama.
std::string canonical_model(std::string_view name);

net::HttpHeaders content_type(std::string_view type);

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
  prometheus::Gauge& generations =
      add_metric(prometheus::BuildGauge(), *registry, "ollama_sim_generations",
                 "Inference requests in progress now (running, loading or queued)");
  prometheus::Gauge& generations_peak =
      add_metric(prometheus::BuildGauge(), *registry, "ollama_sim_generations_peak",
                 "The most inference requests in progress at once since start");
  prometheus::Counter& model_loads =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_model_loads_total",
                 "Model loads started (cold starts, reloads after a num_ctx change)");
  prometheus::Counter& model_unloads =
      add_metric(prometheus::BuildCounter(), *registry, "ollama_sim_model_unloads_total",
                 "Models unloaded: LRU eviction, keep_alive expiry, keep_alive 0, delete");
  prometheus::Gauge& models_loaded =
      add_metric(prometheus::BuildGauge(), *registry, "ollama_sim_models_loaded",
                 "Models loaded or loading now");
};

// One request's use of a model, from admission to its end: gives the model back (starting its
// keep_alive) however the handler ends. Declared before the SlotLease, so the slot is returned
// first.
class ModelUse {
 public:
  ModelUse(ModelRegistry& registry, std::optional<std::chrono::nanoseconds> keep_alive)
      : registry_(registry), keep_alive_(keep_alive) {}
  ~ModelUse() {
    if (entry_ != 0) {
      registry_.release(entry_, keep_alive_, Clock::now());
    }
  }
  ModelUse(const ModelUse&) = delete;
  ModelUse& operator=(const ModelUse&) = delete;

  void hold(const ModelRegistry::Admit& admitted) {
    entry_ = admitted.entry;
    slots_ = admitted.slots;
  }
  std::uint64_t entry() const noexcept { return entry_; }
  SlotScheduler& slots() const { return *slots_; }

 private:
  ModelRegistry& registry_;
  std::optional<std::chrono::nanoseconds> keep_alive_;
  std::uint64_t entry_ = 0;
  std::shared_ptr<SlotScheduler> slots_;
};

enum class EmbedApi { embed, legacy, openai };

// Holds a KV slot for one generation and gives it back, however the handler ends: normally, on a
// failed write, or destroyed when the server stops. The slot then holds what Ollama's runner
// leaves in it: the prompt and every generated token but the last, which was sampled and never
// decoded (the runner adds a token to the cache when the next batch decodes it). So a preheat cut
// to one token leaves exactly its prompt, and the next turn, which starts with that prompt and
// the reply, finds the whole slot as its prefix (kv_cache.hpp: reused in place).
class SlotLease {
 public:
  SlotLease(SlotScheduler& scheduler, std::size_t slot, std::string prompt)
      : scheduler_(scheduler),
        slot_(slot),
        decoded_bytes_(prompt.size()),
        served_(std::move(prompt)) {}
  ~SlotLease() {
    scheduler_.release(slot_, whole_tokens(std::string_view(served_).substr(0, decoded_bytes_)));
  }
  SlotLease(const SlotLease&) = delete;
  SlotLease& operator=(const SlotLease&) = delete;

  // One generated token's text.
  void append(std::string_view piece) {
    decoded_bytes_ = served_.size();
    served_ += piece;
  }
  // The prompt and everything generated (an /api/generate reply's "context").
  const std::string& served() const noexcept { return served_; }

 private:
  SlotScheduler& scheduler_;
  std::size_t slot_;
  std::size_t decoded_bytes_;  // of served_: what the node decoded into the slot
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

// The "details" object of /api/tags, /api/ps and /api/show.
json model_details_json(const ModelInfo& info);

// Each API's shapes for a generation (ollama_sim_wire.cpp).
std::string_view stream_content_type(Endpoint endpoint) noexcept;
std::string error_body(Endpoint endpoint, int status, std::string_view message);
OpenAiIds make_ids(Endpoint endpoint, std::uint64_t number);
// What a stream starts with before its first token (Anthropic's message_start), else "".
std::string stream_head(const Generation& generation);
std::string stream_piece(const Generation& generation, std::string_view piece);
std::string stream_error(Endpoint endpoint, std::string_view message);
// The final record(s); `context` is the served tokens for /api/generate.
std::string stream_tail(const Generation& generation, const Tokens& context);
std::string whole_body(const Generation& generation, std::string_view text, const Tokens& context);

}  // namespace detail

struct OllamaSim::Impl {
  explicit Impl(SimOptions sim_options)
      : options(std::move(sim_options)),
        active_fault(options.fault),
        models(residency_options(options), options.models, started_at) {
    net::ServerOptions server_options;
    server_options.address = options.host;
    server_options.port = options.port;
    server_options.threads = std::max(1u, options.threads);
    server_options.idle_timeout = options.keep_alive_timeout;
    server_options.close_after_streamed_response = options.close_after_stream;
    if (!options.tls_certificate_file.empty() || !options.tls_key_file.empty()) {
      server_options.tls =
          net::ServerTlsOptions{options.tls_certificate_file, options.tls_key_file};
    }
    server = std::make_unique<net::HttpServer>(
        server_options, [this](const net::ServerRequest& request, net::ResponseStream& out) {
          return handle(request, out);
        });
  }

  boost::asio::awaitable<void> handle(const net::ServerRequest& request, net::ResponseStream& out);
  boost::asio::awaitable<void> inference(Endpoint endpoint, const net::ServerRequest& request,
                                         net::ResponseStream& out);
  boost::asio::awaitable<void> stream_reply(detail::Generation& generation,
                                            detail::SlotLease& lease, net::ResponseStream& out);
  boost::asio::awaitable<void> whole_reply(detail::Generation& generation, detail::SlotLease& lease,
                                           net::ResponseStream& out);
  boost::asio::awaitable<void> embed(const net::ServerRequest& request, detail::EmbedApi api,
                                     net::ResponseStream& out);
  // Admits the request's model (waiting for room or a load as Ollama's scheduler would) and
  // answers the requests that end there: unknown model (404), keep_alive 0 unload, load-only.
  // True when the model is ready for a generation held by `use`.
  boost::asio::awaitable<bool> take_model(const InferenceRequest& request, detail::ModelUse& use,
                                          net::ResponseStream& out);
  // The residency loop alone: ready, or false when the model vanished or the server stops.
  enum class Taken { ready, not_found, stopped };
  boost::asio::awaitable<Taken> admit_model(std::string_view model,
                                            std::optional<std::size_t> num_ctx,
                                            detail::ModelUse& use, net::ResponseStream& out);
  boost::asio::awaitable<void> pull(const net::ServerRequest& request, net::ResponseStream& out);
  boost::asio::awaitable<void> remove(const net::ServerRequest& request, net::ResponseStream& out);
  boost::asio::awaitable<void> copy(const net::ServerRequest& request, net::ResponseStream& out);
  boost::asio::awaitable<void> openai_model(std::string_view id, net::ResponseStream& out);
  boost::asio::awaitable<void> show(const net::ServerRequest& request, net::ResponseStream& out);
  boost::asio::awaitable<void> admin_fault(const net::ServerRequest& request,
                                           net::ResponseStream& out);

  std::string tags_json() const;
  std::string ps_json();
  std::string openai_models_json() const;
  std::string metrics_text();
  std::string fault_json() const;
  bool has_model(std::string_view name) const { return models.find(name).has_value(); }
  static ResidencyOptions residency_options(const SimOptions& options);
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
  detail::Metrics metrics;
  std::atomic<std::uint64_t> requests{0};
  std::atomic<std::uint64_t> prompt_tokens{0};
  std::atomic<std::uint64_t> cached_prompt_tokens{0};
  std::atomic<std::uint64_t> generated_tokens{0};
  std::atomic<std::uint64_t> cancelled{0};
  std::atomic<std::uint64_t> rejected{0};
  std::atomic<std::uint64_t> inference_requests{0};
  std::atomic<std::size_t> generations{0};       // inference requests in progress
  std::atomic<std::size_t> generations_peak{0};  // the most at once
  std::atomic<std::uint64_t> next_completion_id{1};
  mutable std::mutex fault_mutex;
  FaultConfig active_fault;
  std::mutex scrape_mutex;
  std::uint64_t connections_reported = 0;
  std::uint64_t loads_reported = 0;
  std::uint64_t unloads_reported = 0;
  std::mutex stop_mutex;
  bool stopped = false;
  // The models and their KV slots outlive the server: handler frames destroyed while the server
  // shuts down still give their slots and models back.
  ModelRegistry models;
  std::unique_ptr<net::HttpServer> server;
};

}  // namespace llmgw::sim
