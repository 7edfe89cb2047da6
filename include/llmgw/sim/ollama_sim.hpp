#pragma once

// ollama-sim: an emulated Ollama worker for trying the gateway and running benchmarks without GPUs.
// It speaks Ollama's HTTP API (native NDJSON and OpenAI-compatible SSE), keeps `num_parallel` KV
// slots per model with longest-common-prefix reuse, charges prefill and decode time from a latency
// model, and exposes its own Prometheus metrics and fault switches. Usable in process (tests, the
// benchmark) through OllamaSim, or as the `ollama-sim` executable through run_cli().
//
// Endpoints: GET / /api/version /api/tags /api/ps /v1/models /v1/models/{id} /metrics
// /admin/fault; POST /api/generate /api/chat /api/show /api/embed /api/embeddings /api/pull
// /api/copy /v1/chat/completions /v1/completions /v1/embeddings /v1/messages /admin/fault;
// DELETE /api/delete. Models load, stay loaded and unload as in Ollama's scheduler
// (model_registry.hpp). See DESIGN.md §4.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/sim/generation.hpp"
#include "llmgw/sim/model_registry.hpp"

namespace llmgw::sim {

// Fault switches for tests. They apply to the inference endpoints (generate, chat, /v1/*).
enum class FaultMode {
  none,
  error500,          // answer 500 {"error":...} at once
  hang,              // never answer (until the server stops)
  close_mid_stream,  // close the connection after `after_tokens` tokens (stream:false: at once)
  error_mid_stream,  // send Ollama's {"error":...} record after `after_tokens` tokens, then end
  slow,              // multiply prefill and decode time by `slow_factor`
};

std::optional<FaultMode> parse_fault_mode(std::string_view name);
std::string_view to_string(FaultMode mode) noexcept;

struct FaultConfig {
  FaultMode mode = FaultMode::none;
  double slow_factor = 10.0;
  std::size_t after_tokens = 3;
};

// What the server pretends to be. llama_server: llama.cpp's llama-server as the gateway's
// `nodes[].api: openai` sees it: GET /health answers {"status":"ok"}, the OpenAI paths (/v1/*)
// work, Ollama's /api/* paths answer 404.
enum class SimFlavor { ollama, llama_server };

struct SimOptions {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = ephemeral; read port() after start()
  // The inventory (/api/tags); sizes default from the parameter size in the tag.
  std::vector<ModelSpec> models{"llama3.2", "qwen2.5:0.5b"};
  std::size_t max_loaded_models = 3;  // OLLAMA_MAX_LOADED_MODELS
  // Seconds to load one GB of model, multiplied by latency.time_scale. 0 = instant loads (the
  // default, so a single-model benchmark measures the KV cache alone); loads are counted anyway.
  double load_seconds_per_gb = 0.0;
  // OLLAMA_KEEP_ALIVE: how long an idle model stays loaded (wall time, not scaled); negative =
  // forever.
  std::chrono::nanoseconds keep_alive = std::chrono::minutes{5};
  std::size_t default_num_ctx = 4096;  // OLLAMA_CONTEXT_LENGTH
  bool fail_pull = false;              // /api/pull fails after "pulling manifest" (tests)
  std::size_t num_parallel = 4;        // KV slots per model (OLLAMA_NUM_PARALLEL)
  std::size_t queue_size = 512;  // waiting requests per model beyond the slots (OLLAMA_MAX_QUEUE)
  // OLLAMA_MULTIUSER_CACHE: choose KV slots as Ollama does for many users (kv_cache.hpp); off by
  // default, as in Ollama.
  bool multiuser_cache = false;
  LatencyModel latency;
  OutputLength output;
  std::uint64_t seed = 0;
  std::size_t embedding_dimensions = 384;
  unsigned threads = 1;
  FaultConfig fault;
  // Idle keep-alive connections are closed after this long (ollama-sim --keep-alive-timeout-ms).
  std::chrono::milliseconds keep_alive_timeout{60'000};
  // Close after every streamed response although keep-alive was announced, as llama.cpp's
  // server does (--close-after-stream).
  bool close_after_stream = false;
  SimFlavor flavor = SimFlavor::ollama;  // ollama-sim --flavor
  // Serve HTTPS with this certificate chain and key (PEM; ollama-sim --tls-cert/--tls-key), as an
  // Ollama behind a TLS proxy would; both empty: plain HTTP.
  std::string tls_certificate_file;
  std::string tls_key_file;
};

// Counters since start (all models together).
struct SimStats {
  std::uint64_t requests = 0;              // every HTTP request answered or started
  std::uint64_t prompt_tokens = 0;         // prompt tokens of generations that got a slot
  std::uint64_t cached_prompt_tokens = 0;  // of those, served from a KV slot
  std::uint64_t generated_tokens = 0;
  std::uint64_t connections_accepted = 0;
  std::uint64_t cancelled = 0;  // generations stopped because the client went away
  std::uint64_t rejected = 0;   // 503: queue full
  // Inference requests (generate, chat, /v1/* completions, messages) received; in progress now
  // (running, loading or queued: what the node holds), and the most at once since start.
  std::uint64_t inference_requests = 0;
  std::size_t generations = 0;
  std::size_t generations_peak = 0;
  std::size_t slots_busy = 0;
  std::size_t queue_depth = 0;
  std::uint64_t model_loads = 0;    // loads started (a reload after num_ctx changed counts)
  std::uint64_t model_unloads = 0;  // LRU evictions, keep_alive expiries, explicit unloads
};

// Thread-safe: every member may be called from any thread once constructed.
class OllamaSim {
 public:
  // Throws std::invalid_argument when options.models is empty.
  explicit OllamaSim(SimOptions options);
  ~OllamaSim();  // stops
  OllamaSim(const OllamaSim&) = delete;
  OllamaSim& operator=(const OllamaSim&) = delete;

  // Binds and serves on background threads; throws std::runtime_error when it cannot bind.
  void start();
  // Ends waiting and hanging requests, closes connections, joins. Idempotent.
  void stop();
  // Blocks until stop() has been called.
  void wait();

  std::uint16_t port() const noexcept;
  std::string base_url() const;  // "http://127.0.0.1:PORT" ("https://" with TLS)
  SimStats stats() const;

  void set_fault(FaultConfig fault);
  FaultConfig fault() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The `ollama-sim` command line: parses flags, serves until SIGINT/SIGTERM, returns the exit code
// (0 ok, 1 runtime failure such as a port in use, 2 usage error).
int run_cli(int argc, char** argv);

}  // namespace llmgw::sim
