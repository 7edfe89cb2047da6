#pragma once

// Turning workload runs into the benchmark's report: percentiles, throughput, cache reuse and
// per-node share per routing mode, aggregated over seeds with the per-seed detail beside it; and
// rendering that report as a text table, a self-contained HTML page and a CSV of every request.
//
// The JSON report is a stable interface (bench/README.md documents every field):
//   {"workload": {...},
//    "modes": [{"mode": "bounded", "ttft": {"p50","p90","p99"}, "latency": {...},
//               "throughput": {"requests_per_s","tokens_per_s"}, "cache_reuse": 0..1,
//               "node_share": {node: fraction}, "seeds": n, ..., "per_seed": [...]}]}
// Times are in seconds.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/bench/batch_flood.hpp"
#include "llmgw/bench/workload.hpp"

namespace llmgw::bench {

struct Percentiles {
  double p50 = 0.0;
  double p90 = 0.0;
  double p99 = 0.0;
};

// The `fraction` (0..1) quantile, interpolating linearly between the closest ranks (NumPy's
// default). 0 for an empty sample.
double percentile(std::vector<double> values, double fraction);
Percentiles percentiles(const std::vector<double>& values);

// Prompt tokens a node evaluated and how many of them came from its KV cache.
struct CacheCounts {
  std::uint64_t prompt_tokens = 0;
  std::uint64_t cached_prompt_tokens = 0;
};

// One run of the workload in one routing mode with one session-id seed.
struct SeedRun {
  std::string mode;
  std::uint64_t seed = 0;
  WorkloadRun run;
  std::vector<std::string> nodes;             // every node behind the gateway, when known
  std::optional<CacheCounts> measured_cache;  // the sims' own counters, when the bench started them
  // The batch flood that ran beside the chats (batch_flood.hpp; empty without one) and the
  // spawned nodes' own peaks of requests in progress against their caps.
  WorkloadRun batch;
  std::vector<NodePeak> node_peaks;
  std::optional<std::uint64_t> model_loads{};  // the sims' model loads, when the bench started them
};

// Cache reuse from what the servers said in their answers (OpenAI-compatible usage, llama.cpp's
// timings): cached over prompt tokens of the ok requests that reported a cached count; nullopt
// when none did (Ollama's native API).
std::optional<double> reported_cache_reuse(const std::vector<RequestRecord>& requests);

// Cache reuse estimated from Ollama's final records, for nodes whose counters we cannot read:
// a request evaluated about prompt_eval_duration × rate tokens, the rest came from the cache.
// rate is prefill_tokens_per_s when given, else the median prompt_eval_count /
// prompt_eval_duration of first turns (which, without a shared system prompt, have nothing cached).
// nullopt when there is nothing to estimate from.
std::optional<double> estimate_cache_reuse(const std::vector<RequestRecord>& requests,
                                           std::optional<double> prefill_tokens_per_s);

// The best reuse this workload allows: every turn after the first finds its whole previous
// prompt and reply cached.
double ideal_cache_reuse(const std::vector<RequestRecord>& requests);

// Summary of one mode over its seeds (`runs` all have the same mode).
nlohmann::json summarise_mode(const std::vector<SeedRun>& runs,
                              std::optional<double> prefill_tokens_per_s);

// {"workload": workload, "modes": [summaries in the given order]}.
nlohmann::json build_report(const nlohmann::json& workload,
                            const std::vector<std::vector<SeedRun>>& runs_by_mode,
                            std::optional<double> prefill_tokens_per_s);

// The comparison table printed on stdout.
std::string render_table(const nlohmann::json& report);

// One paragraph for the top of report.html: which mode won on time to first token (p50), wall
// time (mean) and cache reuse, by how much against the next best, over how many seeds.
std::string render_verdict(const nlohmann::json& report);

// A self-contained HTML page (inline CSS and SVG charts, no external assets).
std::string render_html(const nlohmann::json& report);

// `text` with & < > " replaced by HTML entities.
std::string html_escape(std::string_view text);

// Every request of every run, one CSV row each, with a header row.
std::string render_requests_csv(const std::vector<std::vector<SeedRun>>& runs_by_mode);

}  // namespace llmgw::bench
