// The report's figures for the multi-model workload and for servers that report their cache:
// 404s, model loads, and cache reuse read from the answers' usage.

#include <gtest/gtest.h>

#include "llmgw/bench/report.hpp"

namespace llmgw::bench {
namespace {

RequestRecord fleet_record(std::size_t session, std::uint64_t prompt,
                           std::optional<std::uint64_t> cached, int status = 200) {
  RequestRecord r;
  r.session = session;
  r.prompt_tokens = prompt;
  r.output_tokens = 4;
  r.cached_prompt_tokens = cached;
  r.ttft_s = 0.1;
  r.latency_s = 0.2;
  r.node = "a";
  r.status = status;
  r.ok = status == 200;
  r.error = r.ok ? "" : "model \"x\" not found";
  return r;
}

SeedRun fleet_run(std::vector<RequestRecord> requests, std::optional<std::uint64_t> loads) {
  SeedRun run;
  run.mode = "bounded";
  run.seed = 1;
  run.run.requests = std::move(requests);
  run.run.wall_time_s = 1.0;
  run.nodes = {"a"};
  run.model_loads = loads;
  return run;
}

TEST(BenchReportFleet, ReportedCacheReuseIsCachedOverPromptOfTheRequestsThatSaidSo) {
  EXPECT_FALSE(reported_cache_reuse({fleet_record(0, 100, std::nullopt)}).has_value());
  // The one that said nothing and the failed one do not count; a count above the prompt is
  // capped.
  const auto reuse =
      reported_cache_reuse({fleet_record(0, 100, 30), fleet_record(1, 100, std::nullopt),
                            fleet_record(2, 50, 70), fleet_record(3, 100, 100, 404)});
  ASSERT_TRUE(reuse.has_value());
  EXPECT_DOUBLE_EQ(*reuse, 80.0 / 150.0);
}

TEST(BenchReportFleet, SummaryCounts404sAndModelLoadsAndPrefersTheSimsCounters) {
  auto first = fleet_run({fleet_record(0, 100, 50), fleet_record(1, 100, 0, 404)}, 3);
  auto second = fleet_run({fleet_record(0, 100, 50)}, 2);
  auto summary = summarise_mode({first, second}, std::nullopt);
  EXPECT_EQ(summary["not_found"], 1);
  EXPECT_EQ(summary["errors"], 1);
  EXPECT_EQ(summary["model_loads"], 5);
  EXPECT_EQ(summary["per_seed"][0]["model_loads"], 3);
  EXPECT_EQ(summary["cache_reuse_source"], "usage");
  EXPECT_DOUBLE_EQ(summary["cache_reuse"].get<double>(), 0.5);

  // A run whose loads are unknown (a --target run) makes the total unknown.
  summary = summarise_mode({first, fleet_run({}, std::nullopt)}, std::nullopt);
  EXPECT_TRUE(summary["model_loads"].is_null());

  // The sims' own counters win over what the answers said.
  first.measured_cache = CacheCounts{200, 20};
  summary = summarise_mode({first}, std::nullopt);
  EXPECT_EQ(summary["cache_reuse_source"], "sim_metrics");
  EXPECT_DOUBLE_EQ(summary["cache_reuse"].get<double>(), 0.1);
  EXPECT_DOUBLE_EQ(summary["cache_reuse_reported"].get<double>(), 0.5);
}

TEST(BenchReportFleet, TheTableShows404sAndLoadsForAFleetOrWhenThereAre404s) {
  const auto plain = build_report({}, {{fleet_run({fleet_record(0, 100, 1)}, 4)}}, std::nullopt);
  EXPECT_EQ(render_table(plain).find("model loads"), std::string::npos);
  const auto missing =
      build_report({}, {{fleet_run({fleet_record(0, 100, 1, 404)}, 4)}}, std::nullopt);
  EXPECT_NE(render_table(missing).find("model loads"), std::string::npos);
  const nlohmann::json workload{{"spawn", {{"fleet_models", {"a", "b"}}}}};
  const auto fleet =
      build_report(workload, {{fleet_run({fleet_record(0, 100, 1)}, 7)}}, std::nullopt);
  const auto table = render_table(fleet);
  EXPECT_NE(table.find("model loads"), std::string::npos) << table;
  EXPECT_NE(table.find(" 7\n"), std::string::npos) << table;
}

}  // namespace
}  // namespace llmgw::bench
