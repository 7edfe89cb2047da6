#include "llmgw/sim/model_registry.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace llmgw::sim {
namespace {

using namespace std::chrono_literals;
using ModelAdmission = ModelRegistry::Admission;
using TimePoint = ModelRegistry::TimePoint;

const auto kModified = std::chrono::system_clock::time_point{} + 1000h;

ResidencyOptions one_loaded() {
  ResidencyOptions options;
  options.max_loaded_models = 1;
  options.load_time_per_gb = 1s;
  options.default_keep_alive = 5min;
  options.num_parallel = 2;
  return options;
}

// A fake clock: every test starts at an arbitrary steady time and moves it by hand.
struct Fixture {
  explicit Fixture(ResidencyOptions options = one_loaded(),
                   std::vector<ModelSpec> models = {{"a", 2'000'000'000}, {"b", 1'000'000'000}})
      : registry(options, models, kModified) {}

  // Admits `name` and finishes its load if it needs one; returns what admit() said.
  ModelRegistry::Admit use(std::string_view name, std::optional<std::size_t> num_ctx = {}) {
    auto admitted = registry.admit(name, num_ctx, now);
    if (admitted.admission == ModelAdmission::load) {
      now += admitted.load_time;
      registry.loaded(admitted.entry, now);
    }
    return admitted;
  }
  std::vector<std::string> loaded_names() {
    std::vector<std::string> names;
    for (const auto& model : registry.loaded(now)) {
      names.push_back(model.info.name);
    }
    return names;
  }

  TimePoint now = TimePoint{} + 100h;
  ModelRegistry registry;
};

TEST(SimModelRegistry, FirstUseLoadsForATimeProportionalToTheSizeThenIsReady) {
  Fixture f;
  const auto first = f.use("a");
  EXPECT_EQ(first.admission, ModelAdmission::load);
  EXPECT_EQ(first.load_time, 2s) << "2 GB at 1 s/GB";
  f.registry.release(first.entry, std::nullopt, f.now);
  const auto second = f.use("a:latest");
  EXPECT_EQ(second.admission, ModelAdmission::ready) << "a and a:latest are one model";
  EXPECT_EQ(second.load_time, 0s);
  EXPECT_EQ(f.registry.loads(), 1u);
}

TEST(SimModelRegistry, UnknownModelIsNotFound) {
  Fixture f;
  EXPECT_EQ(f.registry.admit("missing", std::nullopt, f.now).admission, ModelAdmission::not_found);
}

TEST(SimModelRegistry, ARequestDuringTheLoadWaitsForIt) {
  Fixture f;
  const auto loader = f.registry.admit("a", std::nullopt, f.now);
  ASSERT_EQ(loader.admission, ModelAdmission::load);
  EXPECT_EQ(f.registry.admit("a", std::nullopt, f.now).admission, ModelAdmission::wait);
  f.registry.loaded(loader.entry, f.now + loader.load_time);
  EXPECT_EQ(f.registry.admit("a", std::nullopt, f.now).admission, ModelAdmission::ready);
  EXPECT_EQ(f.registry.loads(), 1u) << "loaded once, not per request";
}

TEST(SimModelRegistry, MaxLoadedUnloadsTheLeastRecentlyUsedIdleModel) {
  ResidencyOptions options = one_loaded();
  options.max_loaded_models = 2;
  Fixture f(options, {"a", "b", "c"});
  f.registry.release(f.use("a").entry, std::nullopt, f.now);
  f.now += 1s;
  f.registry.release(f.use("b").entry, std::nullopt, f.now);
  f.now += 1s;
  f.registry.release(f.use("a").entry, std::nullopt, f.now);  // a is now the most recent
  f.now += 1s;
  const auto c = f.use("c");
  EXPECT_EQ(c.admission, ModelAdmission::load);
  EXPECT_EQ(f.loaded_names(), (std::vector<std::string>{"a:latest", "c:latest"}))
      << "b was the least recently used";
  EXPECT_EQ(f.registry.unloads(), 1u);
}

TEST(SimModelRegistry, WhenEveryLoadedModelIsBusyANewModelWaits) {
  Fixture f;
  const auto a = f.use("a");
  EXPECT_EQ(f.registry.admit("b", std::nullopt, f.now).admission, ModelAdmission::wait);
  f.registry.release(a.entry, std::nullopt, f.now);
  EXPECT_EQ(f.registry.admit("b", std::nullopt, f.now).admission, ModelAdmission::load);
  EXPECT_EQ(f.loaded_names(), (std::vector<std::string>{"b:latest"}));
}

TEST(SimModelRegistry, KeepAliveExpiresAnIdleModel) {
  Fixture f;
  f.registry.release(f.use("a").entry, 10s, f.now);
  const auto shown = f.registry.loaded(f.now);
  ASSERT_EQ(shown.size(), 1u);
  ASSERT_TRUE(shown[0].expires_at.has_value());
  EXPECT_EQ(*shown[0].expires_at, f.now + 10s);
  f.now += 9s;
  EXPECT_EQ(f.loaded_names().size(), 1u);
  f.now += 1s;
  EXPECT_TRUE(f.loaded_names().empty()) << "expired 10 s after its last request";
  EXPECT_EQ(f.registry.unloads(), 1u);
}

TEST(SimModelRegistry, DefaultKeepAliveAppliesWithoutARequestValue) {
  Fixture f;
  f.registry.release(f.use("a").entry, std::nullopt, f.now);
  f.now += 5min - 1ns;
  EXPECT_EQ(f.loaded_names().size(), 1u);
  f.now += 1ns;
  EXPECT_TRUE(f.loaded_names().empty());
}

TEST(SimModelRegistry, NegativeKeepAliveKeepsTheModelForeverAndZeroUnloadsAtOnce) {
  Fixture f;
  f.registry.release(f.use("a").entry, -1s, f.now);
  f.now += 1000h;
  ASSERT_EQ(f.registry.loaded(f.now).size(), 1u);
  EXPECT_FALSE(f.registry.loaded(f.now)[0].expires_at.has_value());
  f.registry.release(f.use("a").entry, 0s, f.now);
  EXPECT_TRUE(f.loaded_names().empty()) << "keep_alive 0 unloads when the request ends";
}

TEST(SimModelRegistry, UnloadOfABusyModelWaitsForItsRequests) {
  Fixture f;
  const auto a = f.use("a");
  EXPECT_TRUE(f.registry.unload("a", f.now));
  EXPECT_EQ(f.loaded_names().size(), 1u) << "still serving";
  f.registry.release(a.entry, std::nullopt, f.now);
  EXPECT_TRUE(f.loaded_names().empty());
  EXPECT_FALSE(f.registry.unload("missing", f.now));
}

TEST(SimModelRegistry, ADifferentNumCtxReloadsOnceIdle) {
  ResidencyOptions options = one_loaded();
  options.default_num_ctx = 4096;
  Fixture f(options);
  const auto first = f.use("a");
  EXPECT_EQ(f.registry.loaded(f.now)[0].num_ctx, 4096u);
  EXPECT_EQ(f.registry.admit("a", 8192, f.now).admission, ModelAdmission::wait)
      << "busy with the old context size";
  f.registry.release(first.entry, std::nullopt, f.now);
  const auto bigger = f.use("a", 8192);
  EXPECT_EQ(bigger.admission, ModelAdmission::load);
  EXPECT_EQ(f.registry.loaded(f.now)[0].num_ctx, 8192u);
  EXPECT_EQ(f.registry.loads(), 2u);
  EXPECT_EQ(f.registry.unloads(), 1u);
  f.registry.release(bigger.entry, std::nullopt, f.now);
  EXPECT_EQ(f.use("a", 8192).admission, ModelAdmission::ready) << "same size: no reload";
}

TEST(SimModelRegistry, AnUnfinishedLoadLeavesTheModelUnloaded) {
  Fixture f;
  const auto loader = f.registry.admit("a", std::nullopt, f.now);
  f.registry.release(loader.entry, std::nullopt, f.now);  // the server stopped mid-load
  EXPECT_TRUE(f.loaded_names().empty());
  EXPECT_EQ(f.registry.admit("a", std::nullopt, f.now).admission, ModelAdmission::load);
}

TEST(SimModelRegistry, UnloadingDropsTheModelsKvSlots) {
  Fixture f;
  const auto a = f.use("a");
  a.slots->release(0, tokenize("a conversation that was cached"));
  EXPECT_GT(a.slots->stored_tokens(), 0u);
  f.registry.release(a.entry, 0s, f.now);
  // A fresh admission after the unload sees empty slots: nothing is served from cache.
  const auto again = f.use("a");
  EXPECT_EQ(again.admission, ModelAdmission::load);
  EXPECT_EQ(a.slots.get(), again.slots.get());
  EXPECT_EQ(again.slots->stored_tokens(), 0u);
}

TEST(SimModelRegistry, PullDeleteAndCopyChangeTheInventory) {
  Fixture f;
  f.registry.add(describe_model("qwen2.5:0.5b", std::nullopt, kModified));
  ASSERT_TRUE(f.registry.find("qwen2.5:0.5b").has_value());
  EXPECT_EQ(f.registry.find("qwen2.5:0.5b")->size_bytes, 300'000'000u) << "0.5B at 0.6 B/param";
  EXPECT_EQ(f.registry.find("qwen2.5:0.5b")->parameter_size, "0.5B");

  EXPECT_TRUE(f.registry.copy("a", "mine", kModified + 1h));
  const auto copy = f.registry.find("mine");
  ASSERT_TRUE(copy.has_value());
  EXPECT_EQ(copy->digest, f.registry.find("a")->digest);
  EXPECT_EQ(copy->size_bytes, 2'000'000'000u);
  EXPECT_FALSE(f.registry.copy("missing", "x", kModified));

  const auto a = f.use("a");
  EXPECT_TRUE(f.registry.remove("a", f.now));
  EXPECT_FALSE(f.registry.find("a").has_value());
  EXPECT_TRUE(f.loaded_names().empty());
  f.registry.release(a.entry, std::nullopt, f.now);  // a request that outlived the delete
  EXPECT_FALSE(f.registry.remove("a", f.now));
  EXPECT_EQ(f.registry.inventory().size(), 3u);  // b, mine, qwen2.5:0.5b
}

TEST(SimModelSpec, ParsesNamesWithOptionalSizes) {
  const auto plain = parse_model_spec("qwen2.5:0.5b");
  ASSERT_TRUE(std::holds_alternative<ModelSpec>(plain));
  EXPECT_EQ(std::get<ModelSpec>(plain).name, "qwen2.5:0.5b");
  EXPECT_FALSE(std::get<ModelSpec>(plain).size_bytes.has_value());
  const auto sized = parse_model_spec("llama3.2=2.5");
  ASSERT_TRUE(std::holds_alternative<ModelSpec>(sized));
  EXPECT_EQ(std::get<ModelSpec>(sized).size_bytes, 2'500'000'000u);
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_model_spec("x=abc")));
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_model_spec("x=-1")));
  EXPECT_TRUE(std::holds_alternative<std::string>(parse_model_spec("=2")));
}

TEST(SimGoDuration, ParsesOllamasKeepAliveStrings) {
  EXPECT_EQ(parse_go_duration("5m"), std::chrono::nanoseconds{5min});
  EXPECT_EQ(parse_go_duration("1h30m"), std::chrono::nanoseconds{90min});
  EXPECT_EQ(parse_go_duration("250ms"), std::chrono::nanoseconds{250ms});
  EXPECT_EQ(parse_go_duration("1.5s"), std::chrono::nanoseconds{1500ms});
  EXPECT_EQ(parse_go_duration("-1m"), std::chrono::nanoseconds{-1min});
  EXPECT_EQ(parse_go_duration("0"), std::chrono::nanoseconds{0});
  EXPECT_FALSE(parse_go_duration("10").has_value()) << "a number needs a unit";
  EXPECT_FALSE(parse_go_duration("").has_value());
  EXPECT_FALSE(parse_go_duration("5 minutes").has_value());
  EXPECT_FALSE(parse_go_duration("m").has_value());
}

}  // namespace
}  // namespace llmgw::sim
