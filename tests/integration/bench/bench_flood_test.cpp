// A CI-sized `llmgw bench` run with a batch flood (issue 11): chats beside closed-loop batch
// clients at 3x the fleet's capacity, with classes, without, and unloaded. It checks what the
// report promises whatever the machine's speed: every request is accounted for (completed, or a
// 429 with Retry-After), chats get no 429 with classes, no node held more than its cap, and the
// files are written. The figures themselves are bench/RESULTS.md's business.

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "llmgw/bench/bench.hpp"
#include "llmgw/bench/class_report.hpp"
#include "support/bench_options.hpp"
#include "support/wait.hpp"

namespace llmgw::bench {
namespace {

using nlohmann::json;

BenchOptions flood_options() {
  BenchOptions options = testing::quick_bench(2, 3, 40, 8);
  options.modes = {kModeBounded, kModeNoClasses, kModeUnloaded};
  SpawnOptions spawn =
      testing::quick_sims(0.05, SpawnOptions{}.min_output_tokens, SpawnOptions{}.max_output_tokens);
  spawn.admission.batch_max_wait = std::chrono::milliseconds{100};
  options.spawn = spawn;
  options.flood.clients = 10;  // 2 chats + 10 = 12 on 4 slots: 3x
  options.flood.prompt_tokens = 200;
  options.flood.output_tokens = 16;
  return options;
}

const json& mode_named(const json& report, const std::string& name) {
  for (const auto& mode : report["modes"]) {
    if (mode["mode"] == name) {
      return mode;
    }
  }
  throw std::runtime_error("no mode " + name);
}

TEST(BenchFlood, AccountsForEveryRequestOfBothClassesAndEveryNodesPeak) {
  const BenchResult result = run_bench(flood_options());
  const json& report = result.report;
  ASSERT_EQ(report["workload"]["batch_flood"]["fleet_capacity"], 4);
  EXPECT_DOUBLE_EQ(report["workload"]["batch_flood"]["offered_over_capacity"].get<double>(), 3.0);

  for (const char* name : {kModeBounded, kModeNoClasses, kModeUnloaded}) {
    const json& mode = mode_named(report, name);
    SCOPED_TRACE(name);
    EXPECT_TRUE(mode["honest"].get<bool>()) << mode["classes"].dump();
    ASSERT_EQ(mode["node_peaks"].size(), 2U);
    for (const auto& peak : mode["node_peaks"]) {
      EXPECT_LE(peak["peak_in_flight"].get<std::size_t>(), peak["cap"].get<std::size_t>()) << peak;
      EXPECT_GE(peak["peak_in_flight"].get<std::size_t>(), 1U) << peak;
    }
    const json& interactive = mode["classes"]["interactive"];
    EXPECT_EQ(interactive["requests"], 6);
    EXPECT_EQ(mode["classes"].contains("batch"), std::string{name} != kModeUnloaded);
  }
  const json& with_classes = mode_named(report, kModeBounded);
  EXPECT_EQ(with_classes["classes"]["interactive"]["completed"], 6)
      << "a chat was refused although batch was there to refuse";
  const json& batch = with_classes["classes"]["batch"];
  EXPECT_GT(batch["requests"].get<std::size_t>(), 0U);
  std::size_t refused = 0;
  for (const auto& [reason, count] : batch["rejected_429"].items()) {
    EXPECT_TRUE(reason == "max_wait" || reason == "queue_full") << reason;
    refused += count.get<std::size_t>();
  }
  EXPECT_EQ(batch["completed"].get<std::size_t>() + refused, batch["requests"].get<std::size_t>());
  EXPECT_DOUBLE_EQ(batch["max_wait_s"].get<double>(), 0.1);
  ASSERT_TRUE(report.contains("priority_targets"));
  EXPECT_EQ(report["priority_targets"]["interactive_429"], 0);

  const std::string out_dir = testing::make_temp_dir("llmgw-bench-flood");
  write_report_files(result, out_dir);
  EXPECT_TRUE(std::filesystem::exists(std::filesystem::path(out_dir) / "batch_requests.csv"));
  EXPECT_NE(render_class_table(report).find("targets: interactive p99"), std::string::npos);
}

}  // namespace
}  // namespace llmgw::bench
