// A CI-sized run of `llmgw bench` in process: two sims, four sessions, two turns, every routing
// mode. It checks that the report is produced and well-formed, and the routing each mode must
// show; it does not judge the performance figures (a shared CI machine cannot).

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>

#include "llmgw/bench/bench.hpp"
#include "support/bench_options.hpp"
#include "support/wait.hpp"

namespace llmgw::bench {
namespace {

using nlohmann::json;

std::string read_file(const std::filesystem::path& path) {
  std::ifstream file(path, std::ios::binary);
  std::ostringstream content;
  content << file.rdbuf();
  return content.str();
}

BenchOptions smoke_options() {
  BenchOptions options = testing::quick_bench(4, 2, 40, 8);
  options.seeds = {1, 2};
  options.spawn = testing::quick_sims(0.01, 4, 8);
  return options;
}

void expect_percentiles(const json& object, const std::string& what) {
  ASSERT_TRUE(object.is_object()) << what;
  for (const char* key : {"p50", "p90", "p99"}) {
    ASSERT_TRUE(object.contains(key) && object[key].is_number()) << what << "." << key;
    EXPECT_GT(object[key].get<double>(), 0.0) << what << "." << key;
  }
  EXPECT_LE(object["p50"].get<double>(), object["p90"].get<double>()) << what;
  EXPECT_LE(object["p90"].get<double>(), object["p99"].get<double>()) << what;
}

std::set<std::string> routes_of(const json& mode) {
  std::set<std::string> routes;
  for (const auto& [route, count] : mode["routes"].items()) {
    routes.insert(route);
  }
  return routes;
}

TEST(BenchSmoke, ReportsEveryModeInTheDocumentedSchema) {
  const std::string out_dir = testing::make_temp_dir("llmgw-bench-smoke");
  const BenchResult result = run_bench(smoke_options());
  write_report_files(result, out_dir);

  const json report = json::parse(read_file(std::filesystem::path(out_dir) / "report.json"));
  ASSERT_TRUE(report["workload"].is_object());
  EXPECT_EQ(report["workload"]["sessions"], 4);
  EXPECT_EQ(report["workload"]["turns"], 2);
  EXPECT_EQ(report["workload"]["spawn"]["sims"], 2);

  const json& modes = report["modes"];
  ASSERT_TRUE(modes.is_array());
  ASSERT_EQ(modes.size(), 4U);
  const std::vector<std::string> expected_modes = {"round_robin", "consistent_hash", "bounded",
                                                   "bounded_requests"};
  for (std::size_t i = 0; i < modes.size(); ++i) {
    const json& mode = modes[i];
    SCOPED_TRACE(expected_modes[i]);
    EXPECT_EQ(mode["mode"], expected_modes[i]);
    expect_percentiles(mode["ttft"], "ttft");
    expect_percentiles(mode["latency"], "latency");
    EXPECT_LE(mode["ttft"]["p50"].get<double>(), mode["latency"]["p50"].get<double>());
    EXPECT_GT(mode["throughput"]["requests_per_s"].get<double>(), 0.0);
    EXPECT_GT(mode["throughput"]["tokens_per_s"].get<double>(), 0.0);
    const double cache_reuse = mode["cache_reuse"].get<double>();
    EXPECT_GE(cache_reuse, 0.0);
    EXPECT_LE(cache_reuse, 1.0);
    EXPECT_EQ(mode["cache_reuse_source"], "sim_metrics");
    EXPECT_EQ(mode["seeds"], 2);
    EXPECT_EQ(mode["requests"], 2 * 4 * 2);
    EXPECT_EQ(mode["errors"], 0);

    const json& shares = mode["node_share"];
    ASSERT_TRUE(shares.is_object());
    EXPECT_EQ(shares.size(), 2U) << shares.dump();
    double total = 0.0;
    for (const auto& [node, share] : shares.items()) {
      EXPECT_TRUE(node == "sim-0" || node == "sim-1") << node;
      total += share.get<double>();
    }
    EXPECT_NEAR(total, 1.0, 1e-9);

    ASSERT_TRUE(mode["per_seed"].is_array());
    ASSERT_EQ(mode["per_seed"].size(), 2U);
    EXPECT_EQ(mode["per_seed"][0]["seed"], 1);
    EXPECT_EQ(mode["per_seed"][1]["seed"], 2);
    EXPECT_GT(mode["per_seed"][0]["wall_time_s"].get<double>(), 0.0);
  }

  // What each mode is: round-robin sends no session id; the plain ring never spills; every keyed
  // session's second turn can reuse its first turn's cache on the node that served it.
  EXPECT_EQ(routes_of(modes[0]), std::set<std::string>{"round_robin"});
  EXPECT_EQ(routes_of(modes[1]), std::set<std::string>{"affinity"});
  for (const std::size_t bounded : {2, 3}) {
    for (const auto& route : routes_of(modes[bounded])) {
      EXPECT_TRUE(route == "affinity" || route == "spill") << route;
    }
  }
  EXPECT_GT(modes[1]["cache_reuse"].get<double>(), 0.0);

  const std::string html = read_file(std::filesystem::path(out_dir) / "report.html");
  EXPECT_NE(html.find("<svg"), std::string::npos);
  EXPECT_NE(html.find("consistent_hash"), std::string::npos);
  // Self-contained: no script, stylesheet or image fetched from anywhere.
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("src="), std::string::npos);

  const std::string csv = read_file(std::filesystem::path(out_dir) / "requests.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 1 + 4 * 2 * 4 * 2);
}

TEST(BenchSmoke, RefusesUnusableOptions) {
  BenchOptions no_target = smoke_options();
  no_target.spawn.reset();
  EXPECT_THROW(run_bench(no_target), std::invalid_argument);

  BenchOptions unknown_mode = smoke_options();
  unknown_mode.modes = {"random"};
  EXPECT_THROW(run_bench(unknown_mode), std::invalid_argument);

  BenchOptions two_modes_on_target = smoke_options();
  two_modes_on_target.spawn.reset();
  two_modes_on_target.target_url = "http://127.0.0.1:1";
  EXPECT_THROW(run_bench(two_modes_on_target), std::invalid_argument);
}

}  // namespace
}  // namespace llmgw::bench
