#include "llmgw/bench/class_report.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "llmgw/bench/bench.hpp"

namespace llmgw::bench {
namespace {

using nlohmann::json;

// A 429 may arrive this much after its class's max_wait: the waiter's timer, the worker's
// queue and the client's thread on two shared cores.
constexpr double kWaitSlackSeconds = 1.0;

const json* find_mode(const json& report, std::string_view name) {
  const auto modes = report.find("modes");
  if (modes == report.end() || !modes->is_array()) {
    return nullptr;
  }
  for (const auto& mode : *modes) {
    if (mode.value("mode", "") == name) {
      return &mode;
    }
  }
  return nullptr;
}

double number_or(const json& object, const json::json_pointer& pointer, double fallback = 0.0) {
  return object.contains(pointer) && object[pointer].is_number() ? object[pointer].get<double>()
                                                                 : fallback;
}

bool class_is_honest(const json& summary) {
  const auto& limit = summary["max_wait_s"];
  const bool in_time = !limit.is_number() || summary["time_to_429_max_s"].get<double>() <=
                                                 limit.get<double>() + kWaitSlackSeconds;
  return summary["rejected_429_without_retry_after"] == 0 && summary["transport_failures"] == 0 &&
         summary["other_failures"] == 0 && in_time;
}

json node_peaks_json(const std::vector<SeedRun>& runs, bool& within_caps) {
  std::map<std::string, NodePeak> peaks;
  for (const auto& run : runs) {
    for (const auto& peak : run.node_peaks) {
      auto& kept = peaks[peak.node];
      kept.node = peak.node;
      kept.peak_in_flight = std::max(kept.peak_in_flight, peak.peak_in_flight);
      kept.cap = peak.cap;
    }
  }
  json out = json::array();
  for (const auto& [node, peak] : peaks) {
    within_caps = within_caps && (peak.cap == 0 || peak.peak_in_flight <= peak.cap);
    out.push_back({{"node", node}, {"peak_in_flight", peak.peak_in_flight}, {"cap", peak.cap}});
  }
  return out;
}

// Output tokens of `request` streamed before `until` (seconds from the flood's start), its tokens
// spread evenly from its first token to its end.
double tokens_before(const RequestRecord& request, double until) {
  if (!request.ok) {
    return 0.0;
  }
  const double first = request.start_s + request.ttft_s;
  const double end = request.start_s + request.latency_s;
  const auto tokens = static_cast<double>(request.output_tokens);
  if (end <= until) {
    return tokens;
  }
  return first >= until ? 0.0 : tokens * (until - first) / (end - first);
}

// The rate each table shows for a class: the flood's rate while the chats ran, else the class's
// own.
double shown_tokens_per_s(const json& summary) {
  return summary.value("window_output_tokens_per_s", summary.value("output_tokens_per_s", 0.0));
}

json summarise_runs(const std::vector<SeedRun>& runs, const ClassWaitLimits& limits) {
  std::vector<const RequestRecord*> interactive;
  std::vector<const RequestRecord*> batch;
  double interactive_wall = 0.0;
  double batch_wall = 0.0;
  double window = 0.0;
  double window_tokens = 0.0;
  for (const auto& run : runs) {
    for (const auto& request : run.run.requests) {
      interactive.push_back(&request);
    }
    for (const auto& request : run.batch.requests) {
      batch.push_back(&request);
      window_tokens += tokens_before(request, run.batch.window_s);
    }
    interactive_wall += run.run.wall_time_s;
    batch_wall += run.batch.wall_time_s;
    window += run.batch.window_s;
  }
  json classes = {{"interactive",
                   summarise_class(interactive, interactive_wall, limits.interactive_max_wait_s)}};
  if (!batch.empty()) {
    // Without classes the flood is sent without the header: the gateway's interactive limits.
    const bool sent_as_batch = runs.front().mode != kModeNoClasses;
    classes["batch"] = summarise_class(
        batch, batch_wall, sent_as_batch ? limits.batch_max_wait_s : limits.interactive_max_wait_s);
    classes["batch"]["window_s"] = window;
    classes["batch"]["window_output_tokens_per_s"] = window > 0.0 ? window_tokens / window : 0.0;
  }
  return classes;
}

std::string cell_ms(double seconds) {
  return fmt::format("{:.1f}", seconds * 1e3);
}

std::string rejections_text(const json& summary) {
  std::string text;
  const json rejected = summary.value("rejected_429", json::object());
  for (const auto& [reason, count] : rejected.items()) {
    text += fmt::format("{}{} {}", text.empty() ? "" : ", ", count.get<std::size_t>(), reason);
  }
  return text.empty() ? "0" : text;
}

std::string peaks_text(const json& mode) {
  std::string text;
  for (const auto& peak : mode.value("node_peaks", json::array())) {
    text += fmt::format("{}{}/{}", text.empty() ? "" : " ",
                        peak["peak_in_flight"].get<std::size_t>(), peak["cap"].get<std::size_t>());
  }
  return text.empty() ? "-" : text;
}

std::string limit_text(const json& summary) {
  const auto& limit = summary["max_wait_s"];
  return limit.is_number() ? fmt::format("{:.1f}", limit.get<double>()) : "?";
}

struct ClassRow {
  std::string mode;
  std::string name;
  const json* summary;
  const json* owner;
};

std::vector<ClassRow> class_rows(const json& report) {
  std::vector<ClassRow> rows;
  const auto modes = report.find("modes");
  if (modes == report.end() || !modes->is_array()) {
    return rows;
  }
  for (const auto& mode : *modes) {
    if (!mode.contains("classes")) {
      continue;
    }
    for (const char* name : {"interactive", "batch"}) {
      if (mode["classes"].contains(name)) {
        rows.push_back({mode.value("mode", ""), name, &mode["classes"][name], &mode});
      }
    }
  }
  return rows;
}

}  // namespace

json summarise_class(const std::vector<const RequestRecord*>& requests, double wall_time_s,
                     std::optional<double> max_wait_s) {
  std::vector<double> ttft;
  std::map<std::string, std::size_t> rejected;
  std::size_t without_retry_after = 0;
  std::size_t transport_failures = 0;
  std::size_t other_failures = 0;
  std::uint64_t output_tokens = 0;
  double ttft_max = 0.0;
  double time_to_429_max = 0.0;
  for (const RequestRecord* request : requests) {
    if (request->ok) {
      ttft.push_back(request->ttft_s);
      ttft_max = std::max(ttft_max, request->ttft_s);
      output_tokens += request->output_tokens;
    } else if (request->status == 429) {
      ++rejected[request->reject_reason.empty() ? "unknown" : request->reject_reason];
      without_retry_after += request->retry_after_s < 0.0 ? 1 : 0;
      time_to_429_max = std::max(time_to_429_max, request->latency_s);
    } else if (request->status == 0) {
      ++transport_failures;
    } else {
      ++other_failures;
    }
  }
  const Percentiles p = percentiles(ttft);
  const auto per_second = [wall_time_s](double count) {
    return wall_time_s > 0.0 ? count / wall_time_s : 0.0;
  };
  return json{{"requests", requests.size()},
              {"completed", ttft.size()},
              {"rejected_429", rejected},
              {"rejected_429_without_retry_after", without_retry_after},
              {"transport_failures", transport_failures},
              {"other_failures", other_failures},
              {"ttft", {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}}},
              {"ttft_max_s", ttft_max},
              {"time_to_429_max_s", time_to_429_max},
              {"max_wait_s", max_wait_s ? json(*max_wait_s) : json(nullptr)},
              {"output_tokens", output_tokens},
              {"output_tokens_per_s", per_second(static_cast<double>(output_tokens))},
              {"requests_per_s", per_second(static_cast<double>(ttft.size()))},
              {"wall_time_s", wall_time_s}};
}

void add_class_reports(json& report, const std::vector<std::vector<SeedRun>>& runs_by_mode,
                       const ClassWaitLimits& limits) {
  bool any_flood = false;
  for (const auto& runs : runs_by_mode) {
    for (const auto& run : runs) {
      any_flood = any_flood || !run.batch.requests.empty();
    }
  }
  auto& modes = report["modes"];
  for (std::size_t m = 0; m < runs_by_mode.size() && m < modes.size(); ++m) {
    auto& mode = modes[m];
    mode["classes"] = summarise_runs(runs_by_mode[m], limits);
    bool within_caps = true;
    mode["node_peaks"] = node_peaks_json(runs_by_mode[m], within_caps);
    bool honest = within_caps;
    for (const auto& [name, summary] : mode["classes"].items()) {
      honest = honest && class_is_honest(summary);
    }
    mode["honest"] = honest;
  }
  const json* unloaded = find_mode(report, kModeUnloaded);
  const json* with_classes = find_mode(report, kModeBounded);
  const json* without_classes = find_mode(report, kModeNoClasses);
  if (!any_flood || with_classes == nullptr) {
    return;
  }
  const json::json_pointer interactive_p99("/classes/interactive/ttft/p99");
  const json::json_pointer batch_tokens("/classes/batch/window_output_tokens_per_s");
  json targets = json::object();
  targets["interactive_ttft_p99_s"] = number_or(*with_classes, interactive_p99);
  if (unloaded != nullptr) {
    const double baseline = number_or(*unloaded, interactive_p99);
    targets["interactive_ttft_p99_unloaded_s"] = baseline;
    targets["interactive_p99_over_unloaded"] =
        baseline > 0.0 ? number_or(*with_classes, interactive_p99) / baseline : 0.0;
    if (without_classes != nullptr) {
      targets["interactive_p99_over_unloaded_without_classes"] =
          baseline > 0.0 ? number_or(*without_classes, interactive_p99) / baseline : 0.0;
    }
  }
  if (without_classes != nullptr) {
    const double without = number_or(*without_classes, batch_tokens);
    targets["batch_tokens_per_s_over_without_classes"] =
        without > 0.0 ? number_or(*with_classes, batch_tokens) / without : 0.0;
  }
  std::size_t interactive_429 = 0;
  for (const auto& [reason, count] :
       (*with_classes)["classes"]["interactive"]["rejected_429"].items()) {
    interactive_429 += count.get<std::size_t>();
  }
  targets["interactive_429"] = interactive_429;
  report["priority_targets"] = std::move(targets);
}

std::string render_class_table(const json& report) {
  const auto rows = class_rows(report);
  if (rows.empty()) {
    return {};
  }
  std::string out =
      fmt::format("\n{:<16} {:<12} {:>8} {:>9} {:>22} {:>10} {:>22} {:>9} {:>18} {:>8} {}\n",
                  "mode", "class", "requests", "completed", "429 (reason)", "transport",
                  "TTFT p50/p99/max ms", "tok/s", "429 max / limit s", "honest", "node peak/cap");
  for (const auto& row : rows) {
    const json& s = *row.summary;
    out += fmt::format(
        "{:<16} {:<12} {:>8} {:>9} {:>22} {:>10} {:>22} {:>9.1f} {:>18} {:>8} {}\n", row.mode,
        row.name, s.value("requests", std::size_t{0}), s.value("completed", std::size_t{0}),
        rejections_text(s), s.value("transport_failures", std::size_t{0}),
        fmt::format("{} / {} / {}", cell_ms(number_or(s, json::json_pointer("/ttft/p50"))),
                    cell_ms(number_or(s, json::json_pointer("/ttft/p99"))),
                    cell_ms(s.value("ttft_max_s", 0.0))),
        shown_tokens_per_s(s),
        fmt::format("{:.2f} / {}", s.value("time_to_429_max_s", 0.0), limit_text(s)),
        row.owner->value("honest", false) ? "yes" : "NO", peaks_text(*row.owner));
  }
  if (report.contains("priority_targets")) {
    const json& t = report["priority_targets"];
    out += fmt::format(
        "batch tok/s: streamed while the chats ran\n"
        "targets: interactive p99 under the flood / unloaded = {:.2f} (<= 2; without classes "
        "{:.2f}), batch tok/s with / without classes = {:.2f} (>= 0.9), interactive 429s = {}\n",
        t.value("interactive_p99_over_unloaded", 0.0),
        t.value("interactive_p99_over_unloaded_without_classes", 0.0),
        t.value("batch_tokens_per_s_over_without_classes", 0.0),
        t.value("interactive_429", std::size_t{0}));
  }
  return out;
}

std::string render_class_html(const json& report) {
  const auto rows = class_rows(report);
  if (rows.empty()) {
    return {};
  }
  std::string html =
      "<h2>Priority classes and overload honesty</h2>\n<table><tr><th>mode</th><th>class</th>"
      "<th>requests</th><th>completed</th><th>429 (reason)</th><th>429 without Retry-After</th>"
      "<th>transport failures</th><th>TTFT p50 ms</th><th>TTFT p99 ms</th><th>TTFT max ms</th>"
      "<th>tokens/s</th><th>429 max s</th><th>max_wait s</th><th>honest</th>"
      "<th>node peak / cap</th></tr>";
  for (const auto& row : rows) {
    const json& s = *row.summary;
    html += fmt::format(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
        "<td>{}</td><td>{}</td><td>{}</td><td>{:.1f}</td><td>{:.2f}</td><td>{}</td><td>{}</td>"
        "<td>{}</td></tr>",
        html_escape(row.mode), row.name, s.value("requests", std::size_t{0}),
        s.value("completed", std::size_t{0}), rejections_text(s),
        s.value("rejected_429_without_retry_after", std::size_t{0}),
        s.value("transport_failures", std::size_t{0}),
        cell_ms(number_or(s, json::json_pointer("/ttft/p50"))),
        cell_ms(number_or(s, json::json_pointer("/ttft/p99"))), cell_ms(s.value("ttft_max_s", 0.0)),
        shown_tokens_per_s(s), s.value("time_to_429_max_s", 0.0), limit_text(s),
        row.owner->value("honest", false) ? "yes" : "no", peaks_text(*row.owner));
  }
  html +=
      "</table>\n<p>Batch tokens/s: the tokens streamed while the chats ran (the requests "
      "still running when they ended count up to that moment).</p>\n";
  if (report.contains("priority_targets")) {
    html += "<p>Targets: <code>" + html_escape(report["priority_targets"].dump()) + "</code></p>\n";
  }
  return html;
}

std::string render_batch_csv(const std::vector<std::vector<SeedRun>>& runs_by_mode) {
  std::string csv;
  for (const auto& runs : runs_by_mode) {
    for (const auto& seed_run : runs) {
      for (const auto& r : seed_run.batch.requests) {
        csv +=
            fmt::format("{},{},{},{},{:.6f},{:.6f},{:.6f},{},{},{:.6f},{},{},{},{},{},{}\n",
                        seed_run.mode, seed_run.seed, r.session, r.turn, r.start_s, r.ttft_s,
                        r.latency_s, r.prompt_tokens, r.output_tokens, r.prompt_eval_duration_s,
                        r.node, r.route, r.status, r.ok ? 1 : 0, r.reject_reason, r.retry_after_s);
      }
    }
  }
  if (csv.empty()) {
    return csv;
  }
  return "mode,seed,client,request,start_s,ttft_s,latency_s,prompt_tokens,output_tokens,"
         "prompt_eval_duration_s,node,route,status,ok,reject_reason,retry_after_s\n" +
         csv;
}

}  // namespace llmgw::bench
