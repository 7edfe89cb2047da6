#include "llmgw/bench/report.hpp"

#include <gtest/gtest.h>

#include "llmgw/bench/workload.hpp"

namespace llmgw::bench {
namespace {

RequestRecord record(std::size_t session, std::size_t turn, std::uint64_t prompt,
                     std::uint64_t output, double prompt_eval_s, std::string node = "a") {
  RequestRecord r;
  r.session = session;
  r.turn = turn;
  r.prompt_tokens = prompt;
  r.output_tokens = output;
  r.prompt_eval_duration_s = prompt_eval_s;
  r.ttft_s = 0.1;
  r.latency_s = 0.5;
  r.node = std::move(node);
  r.status = 200;
  r.ok = true;
  return r;
}

TEST(BenchPercentile, InterpolatesBetweenClosestRanks) {
  EXPECT_DOUBLE_EQ(percentile({}, 0.5), 0.0);
  EXPECT_DOUBLE_EQ(percentile({7.0}, 0.99), 7.0);
  // Unsorted input; 0.5 of {1,2,3,4} lies halfway between 2 and 3.
  EXPECT_DOUBLE_EQ(percentile({4.0, 1.0, 3.0, 2.0}, 0.5), 2.5);
  EXPECT_DOUBLE_EQ(percentile({4.0, 1.0, 3.0, 2.0}, 0.0), 1.0);
  EXPECT_DOUBLE_EQ(percentile({4.0, 1.0, 3.0, 2.0}, 1.0), 4.0);
  std::vector<double> hundred;
  for (int i = 1; i <= 101; ++i) {
    hundred.push_back(i);
  }
  const Percentiles p = percentiles(hundred);
  EXPECT_DOUBLE_EQ(p.p50, 51.0);
  EXPECT_DOUBLE_EQ(p.p90, 91.0);
  EXPECT_DOUBLE_EQ(p.p99, 100.0);
}

TEST(BenchCacheEstimate, InfersThePrefillRateFromFirstTurns) {
  // 1000 tokens/s: the first turns evaluated everything; the second turn evaluated 100 of 1200.
  const std::vector<RequestRecord> requests = {
      record(0, 0, 1000, 50, 1.0), record(1, 0, 500, 50, 0.5), record(0, 1, 1200, 50, 0.1)};
  const auto estimate = estimate_cache_reuse(requests, std::nullopt);
  ASSERT_TRUE(estimate.has_value());
  EXPECT_NEAR(*estimate, 1100.0 / 2700.0, 1e-9);
  // A given rate wins: at 500 tokens/s the first turns were half cached too.
  const auto given = estimate_cache_reuse(requests, 500.0);
  ASSERT_TRUE(given.has_value());
  EXPECT_NEAR(*given, (500.0 + 250.0 + 1150.0) / 2700.0, 1e-9);
  EXPECT_FALSE(estimate_cache_reuse({}, std::nullopt).has_value());
}

TEST(BenchCacheEstimate, IdealReuseCountsEachTurnsPredecessor) {
  // Turn 1 could reuse turn 0's prompt + reply (100 + 20); turn 0 has nothing before it.
  const std::vector<RequestRecord> requests = {record(0, 1, 200, 20, 0.0),
                                               record(0, 0, 100, 20, 0.0)};
  EXPECT_NEAR(ideal_cache_reuse(requests), 120.0 / 300.0, 1e-9);
}

TEST(BenchReport, SharesAndSeedsAreAggregated) {
  SeedRun first{"bounded",
                1,
                {{record(0, 0, 10, 5, 0.0, "a"), record(1, 0, 10, 5, 0.0, "a")}, 2.0},
                {"a", "b"},
                CacheCounts{20, 0},
                {},
                {}};
  SeedRun second{"bounded",
                 2,
                 {{record(0, 0, 10, 5, 0.0, "b"), record(1, 0, 10, 5, 0.0, "a")}, 2.0},
                 {"a", "b"},
                 CacheCounts{20, 10},
                 {},
                 {}};
  const auto summary = summarise_mode({first, second}, std::nullopt);
  EXPECT_EQ(summary["mode"], "bounded");
  EXPECT_EQ(summary["seeds"], 2);
  EXPECT_DOUBLE_EQ(summary["node_share"]["a"].get<double>(), 0.75);
  EXPECT_DOUBLE_EQ(summary["node_share"]["b"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(summary["node_share_max_over_mean"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(summary["cache_reuse"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(summary["throughput"]["requests_per_s"].get<double>(), 1.0);
  EXPECT_DOUBLE_EQ(summary["throughput"]["tokens_per_s"].get<double>(), 5.0);
  // Seed 1: sessions 0 and 1 on a; seed 2: session 0 on b, session 1 on a. Mean per run.
  EXPECT_DOUBLE_EQ(summary["sessions_per_node"]["a"].get<double>(), 1.5);
  EXPECT_DOUBLE_EQ(summary["sessions_per_node"]["b"].get<double>(), 0.5);
  // The first seed put everything on one node: its own detail shows that, with b at 0.
  EXPECT_DOUBLE_EQ(summary["per_seed"][0]["node_share"]["b"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(summary["per_seed"][0]["node_share_max_over_mean"].get<double>(), 2.0);
}

// A mode as report.json has it, with only what the verdict reads.
nlohmann::json mode_summary(const std::string& name, double ttft_p50_s, double wall_s,
                            double reuse) {
  return {{"mode", name},
          {"seeds", 3},
          {"ttft", {{"p50", ttft_p50_s}}},
          {"wall_time_s", {{"mean", wall_s}}},
          {"cache_reuse", reuse}};
}

TEST(BenchReport, TheVerdictNamesEachCriterionsWinnerAndItsMargin) {
  const nlohmann::json report{
      {"modes",
       {mode_summary("round_robin", 0.080, 2.50, 0.22), mode_summary("bounded", 0.025, 1.90, 0.82),
        mode_summary("prefix", 0.026, 1.85, 0.80)}}};
  const std::string text = render_verdict(report);
  EXPECT_NE(text.find("Over 3 seeds"), std::string::npos) << text;
  EXPECT_NE(text.find("<b>bounded</b> won on time to first token (p50 25.0 ms, 1.0× faster than "
                      "prefix at 26.0 ms)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("<b>prefix</b> on wall time (1.85 s against 1.90 s for bounded"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("<b>bounded</b> on cache reuse (0.820 against 0.800 for prefix)"),
            std::string::npos)
      << text;
  EXPECT_NE(render_html(report).find("<p class=\"verdict\">" + text), std::string::npos);
  const nlohmann::json one{{"modes", {mode_summary("bounded<x>", 0.025, 1.9, 0.8)}}};
  EXPECT_EQ(render_verdict(one),
            "One mode ran (bounded&lt;x&gt;) over 3 seeds: nothing to compare it with.");
}

TEST(BenchWorkload, SessionIdsAndTextsAreRepeatablePerSeed) {
  EXPECT_EQ(session_ids(7, 3), session_ids(7, 3));
  EXPECT_NE(session_ids(7, 3), session_ids(8, 3));
  EXPECT_EQ(session_ids(7, 3)[0].rfind("bench-7-0-", 0), 0U);
  EXPECT_EQ(filler_text(1, 5, 50).size(), 200U);
  EXPECT_EQ(filler_text(1, 5, 50), filler_text(1, 5, 50));
  EXPECT_NE(filler_text(1, 5, 50), filler_text(1, 6, 50));
}

}  // namespace
}  // namespace llmgw::bench
