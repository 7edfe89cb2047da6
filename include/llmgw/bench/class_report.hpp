#pragma once

// The per-class part of `llmgw bench`'s report (issue 11; docs/DESIGN.md §2.2), for runs with a
// batch flood (batch_flood.hpp). Every mode of the report gains
//   "classes": {"interactive": {...}, "batch": {...}}   (summarise_class below)
//   "node_peaks": [{"node", "peak_in_flight", "cap"}]     (the most at once over the seeds)
//   "honest": true when every request completed or got a 429 with Retry-After, none failed in
//             transport or otherwise, no 429 came later than its class's max_wait (+ 1 s of
//             scheduling slack) and no node held more than its cap
// and the report gains "priority_targets" when it has the modes to compare:
//   interactive TTFT p99 under the flood over its unloaded p99 (target <= 2), batch output
//   tokens/s with classes over without (target >= 0.9), and the 429s each class got.
// Batch throughput is read while the chats ran: the flood's class gains "window_s" and
// "window_output_tokens_per_s", the tokens streamed before the chats ended (a request still
// running then counts its tokens up to that moment, spread evenly from its first token to its
// end) over that time. The class's own output_tokens_per_s runs until the last summary ended, so
// it charges a short run (chats served fast) with the flood's draining tail.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/bench/report.hpp"

namespace llmgw::bench {

// The classes' max_wait in the spawned gateways (admission.<class>.max_wait_ms), in seconds;
// nullopt when unknown (a --target gateway).
struct ClassWaitLimits {
  std::optional<double> interactive_max_wait_s;
  std::optional<double> batch_max_wait_s;
};

// One class over its requests: {"requests", "completed", "rejected_429": {reason: n},
// "rejected_429_without_retry_after", "transport_failures", "other_failures",
// "ttft": {p50,p90,p99} (completed requests), "ttft_max_s", "time_to_429_max_s",
// "max_wait_s" (the class's limit, or null), "output_tokens", "output_tokens_per_s",
// "requests_per_s"}. `wall_time_s`: the time the class ran, summed over runs.
nlohmann::json summarise_class(const std::vector<const RequestRecord*>& requests,
                               double wall_time_s, std::optional<double> max_wait_s);

// Adds the fields above to `report` (build_report's), whose modes are in the order of
// runs_by_mode. Modes without a flood get the interactive class only.
void add_class_reports(nlohmann::json& report,
                       const std::vector<std::vector<SeedRun>>& runs_by_mode,
                       const ClassWaitLimits& limits);

// The per-class table printed after the main one; empty when the report has no classes.
std::string render_class_table(const nlohmann::json& report);

// The same as an HTML section (tables only); empty when the report has no classes.
std::string render_class_html(const nlohmann::json& report);

// Every batch request, one CSV row each (requests.csv's columns plus reject_reason and
// retry_after_s); empty when no run had a flood.
std::string render_batch_csv(const std::vector<std::vector<SeedRun>>& runs_by_mode);

}  // namespace llmgw::bench
