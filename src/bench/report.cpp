#include "llmgw/bench/report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

#include "llmgw/bench/class_report.hpp"

namespace llmgw::bench {
namespace {

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

// The member `key` of `object`, or an empty object: a reference, so that `.items()` of the result
// can be iterated (items() of a temporary dangles).
const json& object_at(const json& object, std::string_view key) {
  static const json empty = json::object();
  const auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : empty;
}

double number_at(const json& object, std::string_view key, double fallback = 0.0) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : fallback;
}

std::string milliseconds(double seconds) {
  return fmt::format("{:.1f}", seconds * 1e3);
}

constexpr std::array<std::string_view, 6> kPalette = {"#1f77b4", "#d62728", "#2ca02c",
                                                      "#9467bd", "#ff7f0e", "#8c564b"};

std::string_view colour(std::size_t index) {
  return kPalette[index % kPalette.size()];
}

// Cumulative distribution of TTFT per mode, from the quantiles stored in the report.
std::string ttft_cdf_svg(const json& modes) {
  constexpr double width = 640;
  constexpr double height = 320;
  constexpr double left = 56;
  constexpr double bottom = 40;
  constexpr double top = 16;
  constexpr double right = 140;
  double max_ttft = 0.0;
  for (const auto& mode : modes) {
    for (const auto& value : mode.value("ttft_quantiles", json::array())) {
      max_ttft = std::max(max_ttft, value.get<double>());
    }
  }
  if (max_ttft <= 0.0) {
    max_ttft = 1.0;
  }
  const double plot_w = width - left - right;
  const double plot_h = height - top - bottom;
  std::string svg =
      fmt::format(R"(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" role="img">)"
                  R"(<title>TTFT cumulative distribution</title>)",
                  width, height);
  // Axes and grid.
  for (int i = 0; i <= 4; ++i) {
    const double y = top + plot_h * (1.0 - i / 4.0);
    const double x = left + plot_w * i / 4.0;
    svg +=
        fmt::format(R"(<line x1="{0}" y1="{1:.1f}" x2="{2}" y2="{1:.1f}" stroke="#ddd"/>)"
                    R"(<text x="{3}" y="{4:.1f}" font-size="11" text-anchor="end">{5:.2f}</text>)"
                    R"(<line x1="{6:.1f}" y1="{7}" x2="{6:.1f}" y2="{8}" stroke="#ddd"/>)"
                    R"(<text x="{6:.1f}" y="{9}" font-size="11" text-anchor="middle">{10}</text>)",
                    left, y, left + plot_w, left - 6, y + 4, i / 4.0, x, top, top + plot_h,
                    top + plot_h + 16, milliseconds(max_ttft * i / 4.0));
  }
  svg += fmt::format(R"(<text x="{}" y="{}" font-size="12" text-anchor="middle">TTFT (ms)</text>)"
                     R"svg(<text x="14" y="{}" font-size="12" transform="rotate(-90 14 {})")svg"
                     R"( text-anchor="middle">fraction of requests</text>)",
                     left + plot_w / 2, height - 6, top + plot_h / 2, top + plot_h / 2);
  std::size_t index = 0;
  for (const auto& mode : modes) {
    const auto quantiles = mode.value("ttft_quantiles", json::array());
    std::string points;
    for (std::size_t i = 0; i < quantiles.size(); ++i) {
      const double fraction =
          quantiles.size() > 1 ? static_cast<double>(i) / static_cast<double>(quantiles.size() - 1)
                               : 1.0;
      const double x = left + plot_w * quantiles[i].get<double>() / max_ttft;
      const double y = top + plot_h * (1.0 - fraction);
      points += fmt::format("{:.1f},{:.1f} ", x, y);
    }
    svg += fmt::format(R"(<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>)"
                       R"(<rect x="{}" y="{}" width="12" height="12" fill="{}"/>)"
                       R"(<text x="{}" y="{}" font-size="12">{}</text>)",
                       colour(index), points, width - right + 12,
                       top + 18.0 * static_cast<double>(index), colour(index), width - right + 30,
                       top + 10 + 18.0 * static_cast<double>(index),
                       html_escape(mode.value("mode", "")));
    ++index;
  }
  return svg + "</svg>";
}

// Grouped bars: each node's share of the requests per mode, with the even share marked.
std::string node_share_svg(const json& modes) {
  std::vector<std::string> nodes;
  for (const auto& mode : modes) {
    for (const auto& [node, share] : object_at(mode, "node_share").items()) {
      if (std::find(nodes.begin(), nodes.end(), node) == nodes.end()) {
        nodes.push_back(node);
      }
    }
  }
  std::sort(nodes.begin(), nodes.end());
  constexpr double height = 300;
  constexpr double left = 56;
  constexpr double top = 16;
  constexpr double bottom = 56;
  const double group_w = std::max(60.0, 24.0 * static_cast<double>(modes.size()) + 20.0);
  const double width =
      left + group_w * static_cast<double>(std::max<std::size_t>(nodes.size(), 1)) + 150;
  const double plot_h = height - top - bottom;
  double max_share = 0.0;
  for (const auto& mode : modes) {
    for (const auto& [node, share] : object_at(mode, "node_share").items()) {
      max_share = std::max(max_share, share.get<double>());
    }
  }
  max_share = max_share > 0.0 ? std::min(1.0, max_share * 1.15) : 1.0;
  std::string svg = fmt::format(
      R"(<svg xmlns="http://www.w3.org/2000/svg" width="{:.0f}" height="{}" role="img">)"
      R"(<title>Per-node share of requests</title>)",
      width, height);
  for (int i = 0; i <= 4; ++i) {
    const double y = top + plot_h * (1.0 - i / 4.0);
    svg +=
        fmt::format(R"(<line x1="{0}" y1="{1:.1f}" x2="{2:.1f}" y2="{1:.1f}" stroke="#ddd"/>)"
                    R"(<text x="{3}" y="{4:.1f}" font-size="11" text-anchor="end">{5:.0f}%</text>)",
                    left, y, width - 150, left - 6, y + 4, max_share * i / 4.0 * 100.0);
  }
  if (!nodes.empty()) {
    const double even = 1.0 / static_cast<double>(nodes.size());
    const double y = top + plot_h * (1.0 - even / max_share);
    svg += fmt::format(
        R"(<line x1="{0}" y1="{1:.1f}" x2="{2:.1f}" y2="{1:.1f}" stroke="#555")"
        R"( stroke-dasharray="4 3"/><text x="{3:.1f}" y="{4:.1f}" font-size="11">even share</text>)",
        left, y, width - 150, width - 146, y + 4);
  }
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    const double group_x = left + group_w * static_cast<double>(n);
    std::size_t index = 0;
    for (const auto& mode : modes) {
      const auto shares = mode.value("node_share", json::object());
      const double share = number_at(shares, nodes[n]);
      const double bar_h = plot_h * share / max_share;
      svg += fmt::format(R"(<rect x="{:.1f}" y="{:.1f}" width="20" height="{:.1f}" fill="{}">)"
                         R"(<title>{} {}: {:.1f}%</title></rect>)",
                         group_x + 10 + 24.0 * static_cast<double>(index), top + plot_h - bar_h,
                         bar_h, colour(index), html_escape(mode.value("mode", "")),
                         html_escape(nodes[n]), share * 100.0);
      ++index;
    }
    svg += fmt::format(R"(<text x="{:.1f}" y="{}" font-size="11" text-anchor="middle">{}</text>)",
                       group_x + group_w / 2, top + plot_h + 16, html_escape(nodes[n]));
  }
  std::size_t index = 0;
  for (const auto& mode : modes) {
    svg += fmt::format(R"(<rect x="{:.1f}" y="{}" width="12" height="12" fill="{}"/>)"
                       R"(<text x="{:.1f}" y="{}" font-size="12">{}</text>)",
                       width - 130, top + 18.0 * static_cast<double>(index), colour(index),
                       width - 112, top + 10 + 18.0 * static_cast<double>(index),
                       html_escape(mode.value("mode", "")));
    ++index;
  }
  return svg + "</svg>";
}

}  // namespace

std::string html_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

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

namespace {

// The best mode by `value` (lower or higher is better) and the next best, as indices into modes.
std::pair<std::size_t, std::size_t> best_two(const json& modes,
                                             const std::function<double(const json&)>& value,
                                             bool lower_is_better) {
  std::vector<std::size_t> order(modes.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return lower_is_better ? value(modes[a]) < value(modes[b]) : value(modes[a]) > value(modes[b]);
  });
  return {order[0], order[1]};
}

}  // namespace

std::string render_verdict(const json& report) {
  const json modes = report.value("modes", json::array());
  if (modes.empty()) {
    return "No mode ran.";
  }
  const auto name = [&](std::size_t i) { return html_escape(modes[i].value("mode", "")); };
  const std::size_t seeds = modes[0].value("seeds", std::size_t{0});
  if (modes.size() == 1) {
    return fmt::format("One mode ran ({}) over {} seed{}: nothing to compare it with.", name(0),
                       seeds, seeds == 1 ? "" : "s");
  }
  const auto ttft = [](const json& m) { return number_at(m.value("ttft", json::object()), "p50"); };
  const auto wall = [](const json& m) {
    return number_at(m.value("wall_time_s", json::object()), "mean");
  };
  const auto reuse = [](const json& m) { return number_at(m, "cache_reuse"); };
  const auto times = [](double worse, double better) {
    return better > 0 ? fmt::format("{:.1f}×", worse / better) : std::string{"∞×"};
  };
  const auto [t1, t2] = best_two(modes, ttft, true);
  const auto [w1, w2] = best_two(modes, wall, true);
  const auto [r1, r2] = best_two(modes, reuse, false);
  return fmt::format(
      "Over {} seed{}: <b>{}</b> won on time to first token (p50 {} ms, {} faster than {} at {} "
      "ms), <b>{}</b> on wall time ({:.2f} s against {:.2f} s for {}, {} faster), and <b>{}</b> "
      "on cache reuse ({:.3f} against {:.3f} for {}).",
      seeds, seeds == 1 ? "" : "s", name(t1), milliseconds(ttft(modes[t1])),
      times(ttft(modes[t2]), ttft(modes[t1])), name(t2), milliseconds(ttft(modes[t2])), name(w1),
      wall(modes[w1]), wall(modes[w2]), name(w2), times(wall(modes[w2]), wall(modes[w1])), name(r1),
      reuse(modes[r1]), reuse(modes[r2]), name(r2));
}

std::string render_html(const json& report) {
  const json modes = report.value("modes", json::array());
  std::string html =
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>llmgw bench report</title><style>"
      "body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}"
      "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
      "text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}"
      "code{background:#f4f4f4;padding:1px 4px}"
      // A long value (a JSON list of models, a system prompt) wraps instead of pushing the page
      // wider; wide tables scroll inside their own box.
      "#workload{table-layout:fixed;width:100%}#workload td{text-align:left;"
      "overflow-wrap:anywhere}#workload th{width:14em}.wide{overflow-x:auto;max-width:100%}"
      ".verdict{font-size:1.1em;line-height:1.5}</style></head><body>\n"
      "<h1>llmgw bench</h1>\n<p class=\"verdict\">" +
      render_verdict(report) + "</p>\n<h2>Workload</h2>\n<table id=\"workload\">";
  for (const auto& [key, value] : object_at(report, "workload").items()) {
    html += fmt::format("<tr><th>{}</th><td>{}</td></tr>", html_escape(key),
                        html_escape(value.is_string() ? value.get<std::string>() : value.dump()));
  }
  html +=
      "</table>\n<h2>Comparison (all seeds pooled)</h2>\n<div "
      "class=\"wide\"><table><tr><th>mode</th>"
      "<th>TTFT p50 ms</th><th>TTFT p90 ms</th><th>TTFT p99 ms</th><th>latency p50 ms</th>"
      "<th>latency p99 ms</th><th>req/s</th><th>tokens/s</th><th>wall s (mean)</th>"
      "<th>wall s (min–max)</th><th>cache reuse</th><th>ideal</th><th>node max/mean</th>"
      "<th>errors</th><th>seeds</th></tr>";
  for (const auto& mode : modes) {
    const auto ttft = mode.value("ttft", json::object());
    const auto latency = mode.value("latency", json::object());
    const auto throughput = mode.value("throughput", json::object());
    const auto wall = mode.value("wall_time_s", json::object());
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.2f}</td>"
        "<td>{:.1f}</td><td>{:.2f}</td><td>{:.2f}–{:.2f}</td><td>{:.3f}</td><td>{:.3f}</td>"
        "<td>{:.2f}</td><td>{}</td><td>{}</td></tr>",
        html_escape(mode.value("mode", "")), milliseconds(number_at(ttft, "p50")),
        milliseconds(number_at(ttft, "p90")), milliseconds(number_at(ttft, "p99")),
        milliseconds(number_at(latency, "p50")), milliseconds(number_at(latency, "p99")),
        number_at(throughput, "requests_per_s"), number_at(throughput, "tokens_per_s"),
        number_at(wall, "mean"), number_at(wall, "min"), number_at(wall, "max"),
        number_at(mode, "cache_reuse"), number_at(mode, "cache_reuse_ideal"),
        number_at(mode, "node_share_max_over_mean"), mode.value("errors", 0),
        mode.value("seeds", 0));
  }
  html +=
      "</table></div>\n<h2>Time to first token</h2>\n" + ttft_cdf_svg(modes) +
      "\n<h2>Per-node share of requests</h2>\n" + node_share_svg(modes) +
      "\n<h2>Per seed</h2>\n<p>Where sessions land depends on their ids, so each seed places "
      "them differently; the spread between seeds is part of the result.</p>\n"
      "<div class=\"wide\"><table><tr><th>mode</th><th>seed</th><th>wall s</th><th>TTFT p50 ms</th>"
      "<th>TTFT p99 ms</th><th>req/s</th><th>cache reuse</th><th>node max/mean</th>"
      "<th>node share</th><th>sessions per node</th><th>errors</th></tr>";
  for (const auto& mode : modes) {
    for (const auto& seed : mode.value("per_seed", json::array())) {
      std::string shares;
      for (const auto& [node, share] : object_at(seed, "node_share").items()) {
        shares += fmt::format("{}{} {:.0f}%", shares.empty() ? "" : ", ", html_escape(node),
                              share.get<double>() * 100.0);
      }
      std::string sessions;
      for (const auto& [node, count] : object_at(seed, "sessions_per_node").items()) {
        sessions += fmt::format("{}{:.0f}", sessions.empty() ? "" : " : ", count.get<double>());
      }
      const auto ttft = seed.value("ttft", json::object());
      html += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{:.2f}</td><td>{}</td><td>{}</td><td>{:.2f}</td>"
          "<td>{:.3f}</td><td>{:.2f}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
          html_escape(mode.value("mode", "")), seed.value("seed", std::uint64_t{0}),
          number_at(seed, "wall_time_s"), milliseconds(number_at(ttft, "p50")),
          milliseconds(number_at(ttft, "p99")),
          number_at(seed.value("throughput", json::object()), "requests_per_s"),
          number_at(seed, "cache_reuse"), number_at(seed, "node_share_max_over_mean"), shares,
          sessions, seed.value("errors", 0));
    }
  }
  html += "</table></div>\n" + render_class_html(report);
  html +=
      "<p>Generated by <code>llmgw bench</code>; the same figures are in "
      "<code>report.json</code> and every request in <code>requests.csv</code>.</p>\n"
      "</body></html>\n";
  return html;
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
