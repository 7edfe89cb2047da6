#include "llmgw/bench/class_report.hpp"

#include <gtest/gtest.h>

#include "llmgw/bench/bench.hpp"

namespace llmgw::bench {
namespace {

using nlohmann::json;

RequestRecord completed_request(double ttft_s, std::uint64_t output_tokens) {
  RequestRecord r;
  r.status = 200;
  r.ok = true;
  r.ttft_s = ttft_s;
  r.latency_s = ttft_s + 1.0;
  r.output_tokens = output_tokens;
  return r;
}

RequestRecord refused_request(std::string reason, double after_s, double retry_after_s) {
  RequestRecord r;
  r.status = 429;
  r.error = "queue";
  r.reject_reason = std::move(reason);
  r.latency_s = after_s;
  r.ttft_s = after_s;
  r.retry_after_s = retry_after_s;
  return r;
}

RequestRecord failed_request(int status) {
  RequestRecord r;
  r.status = status;
  r.error = status == 0 ? "connection refused" : "HTTP 502";
  return r;
}

SeedRun flood_run(std::string mode, double interactive_ttft_s, double batch_tokens,
                  std::vector<RequestRecord> batch = {}) {
  SeedRun run;
  run.mode = std::move(mode);
  run.run.wall_time_s = 10.0;
  for (int i = 0; i < 10; ++i) {
    run.run.requests.push_back(completed_request(interactive_ttft_s, 64));
  }
  if (batch_tokens > 0.0) {
    batch.push_back(completed_request(0.5, static_cast<std::uint64_t>(batch_tokens)));
    run.batch.wall_time_s = 10.0;
    run.batch.window_s = 10.0;
  }
  run.batch.requests = std::move(batch);
  run.node_peaks = {{"sim-0", 2, 2}, {"sim-1", 1, 2}};
  return run;
}

TEST(BenchClassReport, CountsEveryOutcomeOfAClassSeparately) {
  const auto ok = completed_request(0.2, 100);
  const auto full = refused_request("queue_full", 0.01, 2);
  const auto late = refused_request("max_wait", 1.4, 1);
  const auto transport = failed_request(0);
  const auto bad_gateway = failed_request(502);
  const json summary = summarise_class({&ok, &full, &late, &transport, &bad_gateway}, 4.0, 1.0);
  EXPECT_EQ(summary["requests"], 5);
  EXPECT_EQ(summary["completed"], 1);
  EXPECT_EQ(summary["rejected_429"]["queue_full"], 1);
  EXPECT_EQ(summary["rejected_429"]["max_wait"], 1);
  EXPECT_EQ(summary["rejected_429_without_retry_after"], 0);
  EXPECT_EQ(summary["transport_failures"], 1);
  EXPECT_EQ(summary["other_failures"], 1);
  EXPECT_DOUBLE_EQ(summary["time_to_429_max_s"].get<double>(), 1.4);
  EXPECT_DOUBLE_EQ(summary["ttft_max_s"].get<double>(), 0.2);
  EXPECT_DOUBLE_EQ(summary["output_tokens_per_s"].get<double>(), 25.0);
  EXPECT_DOUBLE_EQ(summary["max_wait_s"].get<double>(), 1.0);
}

TEST(BenchClassReport, ComparesTheFloodModesAgainstTheTargets) {
  // Interactive p99 0.3 s under the flood with classes, 0.9 s without, 0.2 s unloaded; batch
  // 900 tokens in 10 s with classes, 1000 without; one batch 429 with Retry-After.
  const std::vector<std::vector<SeedRun>> runs = {
      {flood_run(kModeBounded, 0.3, 900, {refused_request("max_wait", 2.0, 3)})},
      {flood_run(kModeNoClasses, 0.9, 1000)},
      {flood_run(kModeUnloaded, 0.2, 0)}};
  json report = {{"modes", json::array({{{"mode", kModeBounded}},
                                        {{"mode", kModeNoClasses}},
                                        {{"mode", kModeUnloaded}}})}};
  add_class_reports(report, runs, {30.0, 2.5});

  const json& with_classes = report["modes"][0];
  EXPECT_TRUE(with_classes["honest"].get<bool>()) << with_classes.dump();
  EXPECT_EQ(with_classes["classes"]["batch"]["rejected_429"]["max_wait"], 1);
  EXPECT_EQ(with_classes["node_peaks"].size(), 2U);
  EXPECT_FALSE(report["modes"][2]["classes"].contains("batch")) << "the unloaded run had none";
  const json& targets = report["priority_targets"];
  EXPECT_NEAR(targets["interactive_p99_over_unloaded"].get<double>(), 1.5, 1e-9);
  EXPECT_NEAR(targets["interactive_p99_over_unloaded_without_classes"].get<double>(), 4.5, 1e-9);
  EXPECT_NEAR(targets["batch_tokens_per_s_over_without_classes"].get<double>(), 0.9, 1e-9);
  EXPECT_EQ(targets["interactive_429"], 0);
  const std::string table = render_class_table(report);
  EXPECT_NE(table.find("1 max_wait"), std::string::npos) << table;
  EXPECT_NE(table.find("targets: interactive p99"), std::string::npos) << table;
  EXPECT_NE(render_class_html(report).find("<h2>Priority classes"), std::string::npos);
}

// A summary of `tokens` tokens sent at `start_s`, its first token 1 s later, its last at `end_s`.
RequestRecord summary_request(double start_s, double end_s, std::uint64_t tokens) {
  RequestRecord r = completed_request(1.0, tokens);
  r.start_s = start_s;
  r.latency_s = end_s - start_s;
  return r;
}

TEST(BenchClassReport, ReadsBatchThroughputWhileTheChatsRanNotOverTheFloodsDrainingTail) {
  // With classes the chats ended at 4 s: two summaries ended before (100 tokens each); one still
  // streamed its 200 tokens from 3 s to 7 s (a quarter before 4 s), and the flood ended at 7 s.
  SeedRun with_classes = flood_run(kModeBounded, 0.1, 0);
  with_classes.batch.requests = {summary_request(0.0, 2.0, 100), summary_request(1.0, 3.5, 100),
                                 summary_request(2.0, 7.0, 200)};
  with_classes.batch.window_s = 4.0;
  with_classes.batch.wall_time_s = 7.0;
  // Without classes the chats ran 10 s; 600 tokens streamed in them, nothing after.
  SeedRun without = flood_run(kModeNoClasses, 0.5, 0);
  without.batch.requests = {summary_request(0.0, 5.0, 300), summary_request(4.0, 10.0, 300)};
  without.batch.window_s = 10.0;
  without.batch.wall_time_s = 10.0;
  json report = {{"modes", json::array({{{"mode", kModeBounded}}, {{"mode", kModeNoClasses}}})}};
  add_class_reports(report, {{with_classes}, {without}}, {30.0, 2.5});

  const json& batch = report["modes"][0]["classes"]["batch"];
  EXPECT_DOUBLE_EQ(batch["window_s"].get<double>(), 4.0);
  EXPECT_DOUBLE_EQ(batch["window_output_tokens_per_s"].get<double>(), (100 + 100 + 50) / 4.0);
  EXPECT_DOUBLE_EQ(batch["output_tokens_per_s"].get<double>(), 400 / 7.0) << "the drained rate";
  EXPECT_NEAR(report["priority_targets"]["batch_tokens_per_s_over_without_classes"].get<double>(),
              62.5 / 60.0, 1e-9);
  EXPECT_NE(render_class_table(report).find("62.5"), std::string::npos)
      << render_class_table(report);
}

TEST(BenchClassReport, ARunIsDishonestWhenA429LacksRetryAfterComesLateOrANodeExceedsItsCap) {
  const auto dishonest = [](SeedRun run) {
    json report = {{"modes", json::array({{{"mode", kModeBounded}}})}};
    add_class_reports(report, {{std::move(run)}}, {30.0, 2.0});
    return !report["modes"][0]["honest"].get<bool>();
  };
  EXPECT_FALSE(dishonest(flood_run(kModeBounded, 0.1, 100)));
  EXPECT_TRUE(dishonest(flood_run(kModeBounded, 0.1, 100, {refused_request("max_wait", 1.0, -1)})))
      << "a 429 without Retry-After";
  EXPECT_TRUE(dishonest(flood_run(kModeBounded, 0.1, 100, {refused_request("max_wait", 9.0, 1)})))
      << "a 429 long past the class's max_wait";
  EXPECT_TRUE(dishonest(flood_run(kModeBounded, 0.1, 100, {failed_request(0)})))
      << "a request lost in transport";
  SeedRun over_cap = flood_run(kModeBounded, 0.1, 100);
  over_cap.node_peaks.push_back({"sim-2", 3, 2});
  EXPECT_TRUE(dishonest(std::move(over_cap))) << "a node held more than its cap";
}

}  // namespace
}  // namespace llmgw::bench
