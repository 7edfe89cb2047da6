#include "llmgw/bench/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "llmgw/bench/class_report.hpp"
#include "report_internal.hpp"

namespace llmgw::bench {
namespace {

using detail::milliseconds;
using detail::number_at;
using detail::object_at;
using nlohmann::json;

json percentiles_json(const std::vector<double>& values) {
  const Percentiles p = percentiles(values);
  return json{{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}};
}

// The statistics every summary has, for one run or for the pooled runs of a mode.
struct Pooled {
  std::vector<double> ttft_s;
  std::vector<double> latency_s;
  std::vector<RequestRecord> requests;
  std::size_t errors = 0;
  std::size_t not_found = 0;  // 404s: the node holds no such model
  std::optional<std::uint64_t> model_loads = 0;
  std::uint64_t output_tokens = 0;
  double wall_time_s = 0.0;
  std::map<std::string, std::size_t> node_requests;
  std::map<std::string, std::size_t> routes;
  // Distinct (seed, session) pairs each node served: its working set of KV caches.
  std::map<std::string, std::set<std::pair<std::uint64_t, std::size_t>>> node_sessions;
  std::map<std::size_t, std::vector<double>> ttft_by_turn;
  std::size_t runs = 0;
  std::optional<CacheCounts> measured_cache = CacheCounts{};

  void add(const SeedRun& seed_run) {
    ++runs;
    for (const auto& node : seed_run.nodes) {
      node_requests.try_emplace(node, 0);
      node_sessions.try_emplace(node);
    }
    for (const auto& request : seed_run.run.requests) {
      requests.push_back(request);
      if (!request.node.empty()) {
        ++node_requests[request.node];
        node_sessions[request.node].insert({seed_run.seed, request.session});
      }
      if (!request.route.empty()) {
        ++routes[request.route];
      }
      if (!request.ok) {
        ++errors;
        not_found += request.status == 404 ? 1 : 0;
        continue;
      }
      ttft_s.push_back(request.ttft_s);
      ttft_by_turn[request.turn].push_back(request.ttft_s);
      latency_s.push_back(request.latency_s);
      output_tokens += request.output_tokens;
    }
    wall_time_s += seed_run.run.wall_time_s;
    if (model_loads && seed_run.model_loads) {
      *model_loads += *seed_run.model_loads;
    } else {
      model_loads.reset();
    }
    if (measured_cache && seed_run.measured_cache) {
      measured_cache->prompt_tokens += seed_run.measured_cache->prompt_tokens;
      measured_cache->cached_prompt_tokens += seed_run.measured_cache->cached_prompt_tokens;
    } else {
      measured_cache.reset();
    }
  }
};

double ratio(double numerator, double denominator) {
  return denominator > 0.0 ? numerator / denominator : 0.0;
}

void fill_common(json& out, const Pooled& pooled, std::optional<double> prefill_tokens_per_s) {
  out["ttft"] = percentiles_json(pooled.ttft_s);
  out["latency"] = percentiles_json(pooled.latency_s);
  const auto ok_requests = static_cast<double>(pooled.ttft_s.size());
  out["throughput"] = {
      {"requests_per_s", ratio(ok_requests, pooled.wall_time_s)},
      {"tokens_per_s", ratio(static_cast<double>(pooled.output_tokens), pooled.wall_time_s)}};
  out["requests"] = pooled.requests.size();
  out["errors"] = pooled.errors;
  out["not_found"] = pooled.not_found;
  out["model_loads"] = pooled.model_loads ? json(*pooled.model_loads) : json(nullptr);
  out["output_tokens"] = pooled.output_tokens;

  const auto estimated = estimate_cache_reuse(pooled.requests, prefill_tokens_per_s);
  const auto reported = reported_cache_reuse(pooled.requests);
  out["cache_reuse_reported"] = reported ? json(*reported) : json(nullptr);
  if (pooled.measured_cache && pooled.measured_cache->prompt_tokens > 0) {
    out["cache_reuse"] = ratio(static_cast<double>(pooled.measured_cache->cached_prompt_tokens),
                               static_cast<double>(pooled.measured_cache->prompt_tokens));
    out["cache_reuse_source"] = "sim_metrics";
  } else if (reported) {
    out["cache_reuse"] = *reported;
    out["cache_reuse_source"] = "usage";
  } else {
    out["cache_reuse"] = estimated.value_or(0.0);
    out["cache_reuse_source"] = estimated ? "prompt_eval_duration" : "none";
  }
  out["cache_reuse_estimated"] = estimated ? json(*estimated) : json(nullptr);
  out["cache_reuse_ideal"] = ideal_cache_reuse(pooled.requests);

  json shares = json::object();
  std::size_t routed = 0;
  for (const auto& [node, count] : pooled.node_requests) {
    routed += count;
  }
  double max_share = 0.0;
  for (const auto& [node, count] : pooled.node_requests) {
    const double share = ratio(static_cast<double>(count), static_cast<double>(routed));
    shares[node] = share;
    max_share = std::max(max_share, share);
  }
  out["node_share"] = shares;
  const auto node_count = static_cast<double>(pooled.node_requests.size());
  out["node_share_max_over_mean"] = node_count > 0 ? max_share * node_count : 0.0;
  out["routes"] = pooled.routes;

  // A node keeps only num_parallel caches: when more distinct sessions than that pass through it,
  // they evict each other (mean over the pooled runs).
  json sessions = json::object();
  for (const auto& [node, keys] : pooled.node_sessions) {
    sessions[node] = ratio(static_cast<double>(keys.size()), static_cast<double>(pooled.runs));
  }
  out["sessions_per_node"] = std::move(sessions);
  json by_turn = json::array();
  for (const auto& [turn, values] : pooled.ttft_by_turn) {
    by_turn.push_back(percentile(values, 0.5));
  }
  out["ttft_p50_by_turn"] = std::move(by_turn);
}

}  // namespace

double percentile(std::vector<double> values, double fraction) {
  if (values.empty()) {
    return 0.0;
  }
  std::sort(values.begin(), values.end());
  const double rank = std::clamp(fraction, 0.0, 1.0) * static_cast<double>(values.size() - 1);
  const auto lower = static_cast<std::size_t>(std::floor(rank));
  const std::size_t upper = std::min(lower + 1, values.size() - 1);
  const double weight = rank - static_cast<double>(lower);
  return values[lower] + (values[upper] - values[lower]) * weight;
}

Percentiles percentiles(const std::vector<double>& values) {
  return {percentile(values, 0.50), percentile(values, 0.90), percentile(values, 0.99)};
}

std::optional<double> estimate_cache_reuse(const std::vector<RequestRecord>& requests,
                                           std::optional<double> prefill_tokens_per_s) {
  std::optional<double> rate = prefill_tokens_per_s;
  if (!rate) {
    std::vector<double> first_turn_rates;
    for (const auto& request : requests) {
      if (request.ok && request.turn == 0 && request.prompt_eval_duration_s > 0.0) {
        first_turn_rates.push_back(static_cast<double>(request.prompt_tokens) /
                                   request.prompt_eval_duration_s);
      }
    }
    if (first_turn_rates.empty()) {
      return std::nullopt;
    }
    rate = percentile(std::move(first_turn_rates), 0.5);
  }
  double prompt = 0.0;
  double cached = 0.0;
  for (const auto& request : requests) {
    if (!request.ok) {
      continue;
    }
    const auto tokens = static_cast<double>(request.prompt_tokens);
    const double evaluated = std::min(tokens, request.prompt_eval_duration_s * *rate);
    prompt += tokens;
    cached += tokens - evaluated;
  }
  if (prompt <= 0.0) {
    return std::nullopt;
  }
  return cached / prompt;
}

std::optional<double> reported_cache_reuse(const std::vector<RequestRecord>& requests) {
  std::uint64_t prompt = 0;
  std::uint64_t cached = 0;
  bool any = false;
  for (const auto& request : requests) {
    if (request.ok && request.cached_prompt_tokens) {
      any = true;
      prompt += request.prompt_tokens;
      cached += std::min(*request.cached_prompt_tokens, request.prompt_tokens);
    }
  }
  if (!any || prompt == 0) {
    return std::nullopt;
  }
  return static_cast<double>(cached) / static_cast<double>(prompt);
}

double ideal_cache_reuse(const std::vector<RequestRecord>& requests) {
  // (session, turn) -> prompt + output tokens, to find each turn's predecessor.
  std::map<std::pair<std::size_t, std::size_t>, const RequestRecord*> by_turn;
  for (const auto& request : requests) {
    by_turn[{request.session, request.turn}] = &request;
  }
  double prompt = 0.0;
  double cacheable = 0.0;
  for (const auto& request : requests) {
    if (!request.ok) {
      continue;
    }
    prompt += static_cast<double>(request.prompt_tokens);
    if (request.turn == 0) {
      continue;
    }
    const auto previous = by_turn.find({request.session, request.turn - 1});
    if (previous != by_turn.end() && previous->second->ok) {
      const auto before = previous->second->prompt_tokens + previous->second->output_tokens;
      cacheable += static_cast<double>(std::min(before, request.prompt_tokens));
    }
  }
  return ratio(cacheable, prompt);
}

json summarise_mode(const std::vector<SeedRun>& runs, std::optional<double> prefill_tokens_per_s) {
  json out = json::object();
  out["mode"] = runs.empty() ? "" : runs.front().mode;
  Pooled pooled;
  json per_seed = json::array();
  std::vector<double> walls;
  for (const auto& seed_run : runs) {
    pooled.add(seed_run);
    Pooled single;
    single.add(seed_run);
    json detail = {{"seed", seed_run.seed}, {"wall_time_s", seed_run.run.wall_time_s}};
    fill_common(detail, single, prefill_tokens_per_s);
    per_seed.push_back(std::move(detail));
    walls.push_back(seed_run.run.wall_time_s);
  }
  fill_common(out, pooled, prefill_tokens_per_s);
  out["seeds"] = runs.size();
  out["wall_time_s"] = {
      {"mean", walls.empty() ? 0.0
                             : std::accumulate(walls.begin(), walls.end(), 0.0) /
                                   static_cast<double>(walls.size())},
      {"min", walls.empty() ? 0.0 : *std::min_element(walls.begin(), walls.end())},
      {"max", walls.empty() ? 0.0 : *std::max_element(walls.begin(), walls.end())}};
  json quantiles = json::array();
  for (int i = 0; i <= 20; ++i) {
    quantiles.push_back(percentile(pooled.ttft_s, i / 20.0));
  }
  out["ttft_quantiles"] = std::move(quantiles);
  out["per_seed"] = std::move(per_seed);
  return out;
}

json build_report(const json& workload, const std::vector<std::vector<SeedRun>>& runs_by_mode,
                  std::optional<double> prefill_tokens_per_s) {
  json modes = json::array();
  for (const auto& runs : runs_by_mode) {
    modes.push_back(summarise_mode(runs, prefill_tokens_per_s));
  }
  return json{{"workload", workload}, {"modes", std::move(modes)}};
}

std::string render_table(const json& report) {
  std::string out = fmt::format("{:<16} {:>26} {:>20} {:>8} {:>9} {:>19} {:>7} {:>7} {:>6}\n",
                                "mode", "TTFT p50/p90/p99 ms", "latency p50/p99 ms", "req/s",
                                "tok/s", "wall s mean [min-max]", "cache", "max/avg", "errors");
  for (const auto& mode : report.value("modes", json::array())) {
    const auto ttft = mode.value("ttft", json::object());
    const auto latency = mode.value("latency", json::object());
    const auto throughput = mode.value("throughput", json::object());
    const auto wall = mode.value("wall_time_s", json::object());
    out += fmt::format(
        "{:<16} {:>26} {:>20} {:>8.2f} {:>9.1f} {:>19} {:>7.2f} {:>7.2f} {:>6}\n",
        mode.value("mode", ""),
        fmt::format("{} / {} / {}", milliseconds(number_at(ttft, "p50")),
                    milliseconds(number_at(ttft, "p90")), milliseconds(number_at(ttft, "p99"))),
        fmt::format("{} / {}", milliseconds(number_at(latency, "p50")),
                    milliseconds(number_at(latency, "p99"))),
        number_at(throughput, "requests_per_s"), number_at(throughput, "tokens_per_s"),
        fmt::format("{:.2f} [{:.2f}-{:.2f}]", number_at(wall, "mean"), number_at(wall, "min"),
                    number_at(wall, "max")),
        number_at(mode, "cache_reuse"), number_at(mode, "node_share_max_over_mean"),
        mode.value("errors", 0));
  }
  // The multi-model workload's figures (with --fleet-models, or when a node answered 404): model
  // loads (the sims' counters) and 404s (a node without the model answered).
  const auto& spawn = object_at(object_at(report, "workload"), "spawn");
  bool fleet = spawn.contains("fleet_models");
  for (const auto& mode : report.value("modes", json::array())) {
    fleet = fleet || mode.value("not_found", std::size_t{0}) > 0;
  }
  if (fleet) {
    out += fmt::format("\n{:<16} {:>12} {:>12}\n", "mode", "404s", "model loads");
    for (const auto& mode : report.value("modes", json::array())) {
      const auto loads = mode.find("model_loads");
      out += fmt::format("{:<16} {:>12} {:>12}\n", mode.value("mode", ""),
                         mode.value("not_found", std::size_t{0}),
                         loads != mode.end() && loads->is_number() ? loads->dump() : "-");
    }
  }
  return out;
}

std::string render_requests_csv(const std::vector<std::vector<SeedRun>>& runs_by_mode) {
  std::string csv =
      "mode,seed,session,turn,start_s,ttft_s,latency_s,prompt_tokens,output_tokens,"
      "prompt_eval_duration_s,node,route,status,ok,model,cached_prompt_tokens\n";
  for (const auto& runs : runs_by_mode) {
    for (const auto& seed_run : runs) {
      for (const auto& r : seed_run.run.requests) {
        csv += fmt::format("{},{},{},{},{:.6f},{:.6f},{:.6f},{},{},{:.6f},{},{},{},{},{},{}\n",
                           seed_run.mode, seed_run.seed, r.session, r.turn, r.start_s, r.ttft_s,
                           r.latency_s, r.prompt_tokens, r.output_tokens, r.prompt_eval_duration_s,
                           r.node, r.route, r.status, r.ok ? 1 : 0, r.model,
                           r.cached_prompt_tokens ? std::to_string(*r.cached_prompt_tokens) : "");
      }
    }
  }
  return csv;
}

}  // namespace llmgw::bench
