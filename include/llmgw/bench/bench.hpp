#pragma once

// `llmgw bench`: runs the multi-turn workload (workload.hpp) in several routing modes, over several
// session-id seeds, and reports them side by side (report.hpp).
//
// With SpawnOptions, every (mode, seed) pair gets fresh in-process ollama-sim nodes and a fresh
// in-process gateway, so every run starts with cold caches and empty counters:
//   round_robin      the gateway, no session header (it round-robins unkeyed requests)
//   consistent_hash  the gateway with routing.balance_factor = 0 (the plain MD5 ring)
//   bounded          the gateway's default: routing.balance_factor = c (default 1.25) and
//                    routing.balance_by = sessions (sticky session placements, DESIGN.md §2.1)
//   bounded_requests the same c over requests in flight only (routing.balance_by = requests)
// Without it, every run goes to target_url (a running gateway, or one Ollama node) and there is
// exactly one mode, whose name only decides whether the session header is sent (not for
// round_robin); cache reuse is then estimated from prompt_eval_duration.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/bench/batch_flood.hpp"
#include "llmgw/bench/report.hpp"
#include "llmgw/bench/workload.hpp"

namespace llmgw::bench {

// Admission limits of the spawned gateways (admission.<class>.max_queue / max_wait_ms and
// admission.interactive_reserve in config/gateway.yaml); unset: the gateway's defaults.
struct SpawnAdmission {
  std::optional<std::size_t> interactive_max_queue;
  std::optional<std::chrono::milliseconds> interactive_max_wait;
  std::optional<std::size_t> batch_max_queue;
  std::optional<std::chrono::milliseconds> batch_max_wait;
  std::optional<std::size_t> interactive_reserve;
};

struct SpawnOptions {
  std::size_t sims = 4;
  std::size_t num_parallel = 4;  // KV slots per sim (OLLAMA_NUM_PARALLEL)
  bool multiuser_cache = false;  // the sims' OLLAMA_MULTIUSER_CACHE=1 slot policy (README)
  double prefill_tokens_per_s = 2000.0;
  double decode_tokens_per_s = 60.0;
  double time_scale = 0.2;  // < 1 runs the simulated compute faster than real time
  std::size_t min_output_tokens = 16;
  std::size_t max_output_tokens = 64;
  unsigned gateway_workers = 1;
  SpawnAdmission admission;
  // The multi-model fleet. fleet_models: "name" or "name=size_gb" (ollama-sim --model); empty:
  // every sim has its default inventory. Sim i holds models_per_node of them, starting at
  // fleet_models[i % M] and going round: 4 sims, models a b c, 2 per node -> {a,b} {b,c} {c,a}
  // {a,b}. The sessions ask for the fleet's models in turn (WorkloadOptions::models).
  std::vector<std::string> fleet_models;
  std::size_t models_per_node = 0;    // 0 = every fleet model on every sim
  std::size_t max_loaded_models = 3;  // each sim's OLLAMA_MAX_LOADED_MODELS
  // Seconds to load one GB of model (before time_scale); 0 = instant loads (still counted).
  double load_seconds_per_gb = 0.0;
  // Before the run, each sim serves one tiny request for its first fleet model, so the run starts
  // on a fleet that has been running (a model loaded on every node), the same for every mode.
  // What it costs is not counted (the counters are read relative to after it).
  bool preload = false;
};

inline constexpr const char* kModeRoundRobin = "round_robin";
inline constexpr const char* kModeConsistentHash = "consistent_hash";
inline constexpr const char* kModeBounded = "bounded";
inline constexpr const char* kModeBoundedRequests = "bounded_requests";
// `bounded` with admission.warm_wait: never: a session whose node is at its cap spills at once
// instead of waiting when the estimate says a cold prefill elsewhere costs more.
inline constexpr const char* kModeBoundedSpill = "bounded_spill";
// With a batch flood (BenchOptions::flood, batch_flood.hpp), `bounded` sends the flood as
// `X-Request-Priority: batch`; these two are `bounded` too, the flood without the header (every
// request interactive: admission without classes) and no flood at all (the unloaded baseline).
inline constexpr const char* kModeNoClasses = "no_classes";
inline constexpr const char* kModeUnloaded = "unloaded";
// Clients that send no session header: the gateway keys them by the conversation's start
// (routing.key_sources' `prefix`), with bounded placement over sessions.
inline constexpr const char* kModePrefix = "prefix";
// `bounded` with the model catalog off (catalog.interval_ms: 0): candidates ignore the model, as
// the gateway did before it knew models. The baseline of the multi-model workload; its 404s (a
// node without the model) are what it measures, not a failure of the run.
inline constexpr const char* kModeModelBlind = "model_blind";
// `bounded` keyed by a coding agent's own session header (x-claude-code-session-id) instead of
// X-Session-ID, and keyed by the body's prompt_cache_key (OpenAI clients).
inline constexpr const char* kModeAgentHeader = "agent_header";
inline constexpr const char* kModePromptCacheKey = "prompt_cache_key";

struct BenchOptions {
  WorkloadOptions workload;
  std::vector<std::uint64_t> seeds{1, 2, 3};
  std::vector<std::string> modes{kModeRoundRobin, kModeConsistentHash, kModeBounded,
                                 kModeBoundedRequests};
  double balance_factor = 1.25;       // c of the bounded mode
  std::optional<SpawnOptions> spawn;  // start sims and gateways; else use target_url
  std::string target_url;             // "http://host:port" of a running gateway
  // Prefill rate for the cache-reuse estimate from prompt_eval_duration (see report.hpp); by
  // default it is inferred from first turns.
  std::optional<double> prefill_tokens_per_s;
  // Batch clients beside the chats (clients 0: none); the report then has per-class figures
  // (class_report.hpp).
  BatchFloodOptions flood;
};

// What a progress display reads while run_bench works (from another thread).
struct BenchProgress {
  ProgressCounter requests;           // over all runs so far
  std::atomic<std::size_t> total{0};  // requests of all runs
  std::atomic<std::size_t> runs_done{0};
  std::atomic<std::size_t> runs_total{0};

  void set_label(std::string label);
  std::string label() const;

 private:
  mutable std::mutex mutex_;
  std::string label_;
};

struct BenchResult {
  nlohmann::json report;
  std::vector<std::vector<SeedRun>> runs_by_mode;  // in the order of options.modes
};

// Throws std::invalid_argument for unusable options (unknown mode, several modes with a target,
// zero sessions, turns or seeds) and std::runtime_error when a sim or gateway cannot start.
BenchResult run_bench(const BenchOptions& options, BenchProgress* progress = nullptr);

// The "workload" object of the report for these options.
nlohmann::json describe_workload(const BenchOptions& options);

// Writes report.json, report.html, requests.csv (and batch_requests.csv after a flood) into
// `directory` (created if missing). Throws std::runtime_error naming the file that could not be
// written.
void write_report_files(const BenchResult& result, const std::string& directory);

}  // namespace llmgw::bench
