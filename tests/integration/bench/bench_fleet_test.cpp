// The multi-model workload of `llmgw bench` in a CI-sized run: two sims holding one model each,
// sessions spread over both models. Routing by model sends no request to a node without its
// model; the model-blind baseline (catalog off) does, and the report counts those 404s and the
// sims' model loads. Performance is not judged here (bench/RESULTS.md §9 has the figures).

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "llmgw/bench/bench.hpp"
#include "support/bench_options.hpp"

namespace llmgw::bench {
namespace {

using nlohmann::json;

BenchOptions two_model_options() {
  BenchOptions options = testing::quick_bench(8, 2, 20, 4);
  options.modes = {kModeBounded, kModeModelBlind};
  SpawnOptions spawn = testing::quick_sims(0.01, 2, 4);
  spawn.fleet_models = {"llama3.2=2.0", "phi3"};
  spawn.models_per_node = 1;
  spawn.max_loaded_models = 1;
  spawn.load_seconds_per_gb = 1.0;
  options.spawn = spawn;
  return options;
}

TEST(BenchFleet, ModelAwareRoutingGetsNo404sWhereTheBlindOneDoes) {
  const BenchResult result = run_bench(two_model_options());
  const json& workload = result.report["workload"];
  EXPECT_EQ(workload["models"], (json{"llama3.2", "phi3"}));
  EXPECT_EQ(workload["spawn"]["node_models"], (json{{"llama3.2"}, {"phi3"}}));

  const json& aware = result.report["modes"][0];
  const json& blind = result.report["modes"][1];
  ASSERT_EQ(aware["mode"], "bounded");
  ASSERT_EQ(blind["mode"], "model_blind");
  EXPECT_EQ(aware["errors"], 0) << aware.dump();
  EXPECT_EQ(aware["not_found"], 0);
  // Each sim loads its one model once.
  EXPECT_EQ(aware["model_loads"], 2);
  EXPECT_GT(blind["not_found"].get<std::size_t>(), 0U) << blind.dump();
  EXPECT_EQ(blind["errors"], blind["not_found"]);

  // Every request of the model-aware run reached the node holding its model.
  for (const auto& request : result.runs_by_mode[0][0].run.requests) {
    EXPECT_EQ(request.node, request.model == "llama3.2" ? "sim-0" : "sim-1")
        << "session " << request.session;
  }
}

TEST(BenchFleet, RefusesAnUnusableFleet) {
  auto options = two_model_options();
  options.spawn->fleet_models = {"llama3.2=-1"};
  EXPECT_THROW(run_bench(options), std::invalid_argument);
  options = two_model_options();
  options.spawn->fleet_models.clear();
  EXPECT_THROW(run_bench(options), std::invalid_argument);  // models_per_node without models
  options = two_model_options();
  options.spawn->max_loaded_models = 0;
  EXPECT_THROW(run_bench(options), std::invalid_argument);
}

TEST(BenchFleet, SessionsOfTwoModelsDoNotMakeANodeSwapModels) {
  // Both sims hold both models and can keep one loaded, and have been running (sim-0 has
  // llama3.2 loaded, sim-1 phi3): a burst of new sessions of both models must not land both
  // models on one node (each turn there would unload the other model), neither by placement nor
  // by admission spilling a waiting request to the other node.
  auto options = two_model_options();
  options.modes = {kModeBounded};
  options.spawn->models_per_node = 2;
  options.spawn->preload = true;
  const BenchResult result = run_bench(options);
  const json& aware = result.report["modes"][0];
  EXPECT_EQ(aware["errors"], 0) << aware.dump();
  EXPECT_EQ(aware["model_loads"], 0) << aware.dump();
  std::map<std::string, std::set<std::string>> models_by_node;
  for (const auto& request : result.runs_by_mode[0][0].run.requests) {
    models_by_node[request.node].insert(request.model);
  }
  for (const auto& [node, models] : models_by_node) {
    EXPECT_EQ(models.size(), 1U) << node << " served " << ::testing::PrintToString(models);
  }
}

}  // namespace
}  // namespace llmgw::bench
