// The emulator's models as a fleet sees them: the inventory, loading and unloading (residency),
// and model management (pull, delete, copy).

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "integration/sim/sim_test_support.hpp"
#include "llmgw/sim/protocol.hpp"
#include "support/wait.hpp"

namespace llmgw::sim {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using testing::get;
using testing::ndjson_records;
using testing::post;
using testing::RunningSim;

constexpr std::uint64_t kGb = 1'000'000'000;

// Two models of 2 GB and 1 GB; a load costs 100 s/GB scaled by 0.001, so 200 ms and 100 ms.
SimOptions fleet_options() {
  SimOptions options = testing::fast_options();
  options.models = {{"llama3.2", 2 * kGb}, {"qwen2.5:0.5b", kGb}};
  options.load_seconds_per_gb = 100.0;
  return options;
}

json chat(net::HttpClient& client, const RunningSim& sim, const std::string& model,
          const std::string& text, const std::string& extra = "") {
  const std::string body = R"({"model":")" + model +
                           R"(","stream":false,"messages":[{"role":"user","content":")" + text +
                           "\"}]" + extra + "}";
  const auto response = post(client, sim.url("/api/chat"), body);
  EXPECT_EQ(response.status, 200) << response.body;
  return json::parse(response.body);
}

// A request gives its model back when its handler ends, which can be just after the client has
// read the reply (as in Ollama): wait, with a bound, until /api/ps shows what the test expects.
bool wait_until_idle(net::HttpClient& client, const RunningSim& sim,
                     const std::function<bool(const json& ps)>& settled) {
  return llmgw::testing::wait_until(
      [&] { return settled(json::parse(get(client, sim.url("/api/ps")).body)["models"]); });
}

std::vector<std::string> loaded_names(net::HttpClient& client, const RunningSim& sim) {
  std::vector<std::string> names;
  const auto ps = json::parse(get(client, sim.url("/api/ps")).body);  // outlives the loop
  for (const auto& model : ps["models"]) {
    names.push_back(model["name"]);
  }
  return names;
}

TEST(OllamaSimModels, TagsListTheInventoryInOllamasShape) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  const auto tags = json::parse(get(client, sim.url("/api/tags")).body);
  ASSERT_EQ(tags["models"].size(), 2u);
  for (const auto& model : tags["models"]) {
    for (const char* key : {"name", "model", "modified_at", "size", "digest", "details"}) {
      EXPECT_TRUE(model.contains(key)) << key << " in " << model;
    }
    for (const char* key : {"format", "family", "parameter_size", "quantization_level"}) {
      EXPECT_TRUE(model["details"][key].is_string()) << key;
    }
    EXPECT_EQ(model["digest"].get<std::string>().size(), 64u);
  }
  const auto& llama =
      tags["models"][0]["name"] == "llama3.2:latest" ? tags["models"][0] : tags["models"][1];
  EXPECT_EQ(llama["size"], 2 * kGb);
  EXPECT_EQ(llama["details"]["family"], "llama");
  EXPECT_TRUE(json::parse(get(client, sim.url("/api/ps")).body)["models"].empty())
      << "nothing is loaded before the first request";
}

TEST(OllamaSimModels, ColdModelPaysItsLoadTimeAndALoadedOneDoesNot) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  const auto cold = chat(client, sim, "llama3.2", "hello");
  EXPECT_GE(cold["load_duration"].get<std::int64_t>(), nanoseconds{milliseconds{190}}.count())
      << "2 GB at 0.1 s/GB";
  const auto warm = chat(client, sim, "llama3.2:latest", "hello again");
  EXPECT_LT(warm["load_duration"].get<std::int64_t>(), nanoseconds{milliseconds{50}}.count())
      << "llama3.2 and llama3.2:latest are one loaded model";
  EXPECT_EQ(sim->stats().model_loads, 1u);

  const auto ps = json::parse(get(client, sim.url("/api/ps")).body);
  ASSERT_EQ(ps["models"].size(), 1u);
  const auto& loaded = ps["models"][0];
  EXPECT_EQ(loaded["name"], "llama3.2:latest");
  EXPECT_EQ(loaded["size"], 2 * kGb);
  EXPECT_EQ(loaded["size_vram"], 2 * kGb);
  EXPECT_EQ(loaded["context_length"], 4096);
  EXPECT_TRUE(loaded["expires_at"].is_string());
  EXPECT_EQ(loaded["details"]["format"], "gguf");
}

TEST(OllamaSimModels, MaxLoadedModelsUnloadsTheIdleOneAndItsKvCache) {
  SimOptions options = fleet_options();
  options.max_loaded_models = 1;
  RunningSim sim(options);
  net::HttpClient client;
  chat(client, sim, "llama3.2", "a long shared question about the sea and the sky");
  chat(client, sim, "qwen2.5:0.5b", "something else");
  EXPECT_EQ(loaded_names(client, sim), std::vector<std::string>{"qwen2.5:0.5b"});
  const auto cached_before = sim->stats().cached_prompt_tokens;
  const auto again =
      chat(client, sim, "llama3.2", "a long shared question about the sea and the sky");
  EXPECT_GE(again["load_duration"].get<std::int64_t>(), nanoseconds{milliseconds{190}}.count())
      << "evicted, so loaded again";
  EXPECT_EQ(sim->stats().cached_prompt_tokens, cached_before)
      << "the unload dropped the model's KV slots";
  EXPECT_EQ(sim->stats().model_loads, 3u);
  EXPECT_EQ(sim->stats().model_unloads, 2u);

  const auto metrics = get(client, sim.url("/metrics")).body;
  EXPECT_NE(metrics.find("ollama_sim_model_loads_total 3"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("ollama_sim_model_unloads_total 2"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("ollama_sim_models_loaded 1"), std::string::npos) << metrics;
}

TEST(OllamaSimModels, EmptyGenerateWithKeepAliveZeroUnloads) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  const auto load = post(client, sim.url("/api/generate"), R"({"model":"llama3.2"})");
  ASSERT_EQ(load.status, 200);
  EXPECT_EQ(json::parse(load.body)["done_reason"], "load");
  EXPECT_EQ(loaded_names(client, sim), std::vector<std::string>{"llama3.2:latest"});
  const auto unload =
      post(client, sim.url("/api/generate"), R"({"model":"llama3.2","keep_alive":0})");
  ASSERT_EQ(unload.status, 200);
  const auto record = json::parse(unload.body);
  EXPECT_EQ(record["done_reason"], "unload");
  EXPECT_EQ(record["done"], true);
  EXPECT_TRUE(loaded_names(client, sim).empty());
  EXPECT_EQ(sim->stats().model_unloads, 1u);
}

TEST(OllamaSimModels, KeepAliveDecidesExpiresAt) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  chat(client, sim, "llama3.2", "hi", R"(,"keep_alive":-1)");
  auto year = [](const json& ps) {
    return ps.size() == 1 ? ps[0]["expires_at"].get<std::string>().substr(0, 4) : std::string{};
  };
  EXPECT_TRUE(wait_until_idle(client, sim, [&](const json& ps) { return year(ps) > "2100"; }))
      << "keep_alive -1: kept forever";
  // expires_at has format_created_at's fixed-width format, so strings compare as times.
  const auto before = std::chrono::system_clock::now();
  chat(client, sim, "llama3.2", "hi", R"(,"keep_alive":"1h")");
  ASSERT_TRUE(wait_until_idle(client, sim, [&](const json& ps) { return year(ps) < "2100"; }));
  const auto after = std::chrono::system_clock::now();
  const auto expires = json::parse(get(client, sim.url("/api/ps")).body)["models"][0]["expires_at"];
  EXPECT_GE(expires.get<std::string>(), format_created_at(before + std::chrono::hours{1}));
  EXPECT_LE(expires.get<std::string>(), format_created_at(after + std::chrono::hours{1}));
}

TEST(OllamaSimModels, KeepAliveZeroOnARequestUnloadsAfterIt) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  chat(client, sim, "llama3.2", "hi", R"(,"keep_alive":"0s")");
  EXPECT_TRUE(wait_until_idle(client, sim, [](const json& ps) { return ps.empty(); }))
      << "unloaded once the request ended";
  const auto bad = post(client, sim.url("/api/chat"),
                        R"({"model":"llama3.2","keep_alive":"soon","messages":[]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(json::parse(bad.body)["error"], "time: invalid duration \"soon\"");
}

TEST(OllamaSimModels, ADifferentNumCtxReloadsTheModel) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  chat(client, sim, "llama3.2", "hi");
  chat(client, sim, "llama3.2", "hi", R"(,"options":{"num_ctx":8192})");
  EXPECT_EQ(sim->stats().model_loads, 2u);
  const auto ps = json::parse(get(client, sim.url("/api/ps")).body);
  EXPECT_EQ(ps["models"][0]["context_length"], 8192);
  chat(client, sim, "llama3.2", "hi", R"(,"options":{"num_ctx":8192})");
  EXPECT_EQ(sim->stats().model_loads, 2u) << "same num_ctx: no reload";
}

TEST(OllamaSimModels, PullStreamsOllamasProgressThenTheModelIsListed) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  const auto response = post(client, sim.url("/api/pull"), R"({"model":"mistral:7b"})");
  ASSERT_EQ(response.status, 200);
  const auto records = ndjson_records(response.body);
  ASSERT_GE(records.size(), 5u);
  EXPECT_EQ(records.front()["status"], "pulling manifest");
  const auto& progress = records[1];
  EXPECT_EQ(progress["status"].get<std::string>().rfind("pulling ", 0), 0u);
  EXPECT_EQ(progress["digest"].get<std::string>().rfind("sha256:", 0), 0u);
  EXPECT_TRUE(progress["total"].is_number_unsigned());
  EXPECT_TRUE(progress["completed"].is_number_unsigned());
  EXPECT_EQ(records[records.size() - 4]["completed"], records[records.size() - 4]["total"]);
  EXPECT_EQ(records[records.size() - 3]["status"], "verifying sha256 digest");
  EXPECT_EQ(records[records.size() - 2]["status"], "writing manifest");
  EXPECT_EQ(records.back()["status"], "success");
  EXPECT_NE(get(client, sim.url("/api/tags")).body.find("mistral:7b"), std::string::npos);
  EXPECT_EQ(chat(client, sim, "mistral:7b", "hi")["done"], true);

  const auto whole = post(client, sim.url("/api/pull"), R"({"model":"phi3","stream":false})");
  EXPECT_EQ(whole.status, 200);
  EXPECT_EQ(json::parse(whole.body), json::parse(R"({"status":"success"})"));
}

TEST(OllamaSimModels, FailPullEndsTheStreamWithAnErrorAndAddsNothing) {
  SimOptions options = fleet_options();
  options.fail_pull = true;
  RunningSim sim(options);
  net::HttpClient client;
  const auto streamed = post(client, sim.url("/api/pull"), R"({"model":"mistral"})");
  const auto records = ndjson_records(streamed.body);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0]["status"], "pulling manifest");
  EXPECT_TRUE(records[1]["error"].is_string());
  const auto whole = post(client, sim.url("/api/pull"), R"({"model":"mistral","stream":false})");
  EXPECT_EQ(whole.status, 500);
  EXPECT_TRUE(json::parse(whole.body)["error"].is_string());
  EXPECT_EQ(get(client, sim.url("/api/tags")).body.find("mistral"), std::string::npos);
}

TEST(OllamaSimModels, DeleteAndCopy) {
  RunningSim sim(fleet_options());
  net::HttpClient client;
  const auto copied =
      post(client, sim.url("/api/copy"), R"({"source":"llama3.2","destination":"my-llama"})");
  EXPECT_EQ(copied.status, 200);
  const auto tags = json::parse(get(client, sim.url("/api/tags")).body)["models"];
  std::map<std::string, std::string> digests;
  for (const auto& model : tags) {
    digests[model["name"]] = model["digest"];
  }
  ASSERT_EQ(digests.count("my-llama:latest"), 1u);
  EXPECT_EQ(digests["my-llama:latest"], digests["llama3.2:latest"]);
  const auto missing_copy =
      post(client, sim.url("/api/copy"), R"({"source":"nope","destination":"x"})");
  EXPECT_EQ(missing_copy.status, 404);
  EXPECT_EQ(json::parse(missing_copy.body)["error"], "model \"nope\" not found");

  net::ClientRequest remove{"DELETE", sim.url("/api/delete"), {}, R"({"model":"my-llama"})"};
  EXPECT_EQ(client.send(remove).status, 200);
  const auto again = client.send(remove);
  EXPECT_EQ(again.status, 404);
  EXPECT_EQ(json::parse(again.body)["error"], "model 'my-llama' not found");
  EXPECT_EQ(chat(client, sim, "llama3.2", "still here")["done"], true);
  const auto gone = post(client, sim.url("/api/chat"),
                         R"({"model":"my-llama","messages":[{"role":"user","content":"hi"}]})");
  EXPECT_EQ(gone.status, 404);
  EXPECT_EQ(json::parse(gone.body)["error"], "model \"my-llama\" not found, try pulling it first");
}

}  // namespace
}  // namespace llmgw::sim
