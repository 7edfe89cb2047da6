// The warm-wait estimate and Retry-After: their inputs as NodeTimings learns them, and the
// worked example of wait_estimate.hpp.

#include "llmgw/admission/wait_estimate.hpp"

#include <gtest/gtest.h>

namespace llmgw::admission {
namespace {

using std::chrono::duration;

TEST(NodeTimings, ServiceTimeIsAnAverageThatFollowsRecentRequests) {
  NodeTimings timings;
  EXPECT_FALSE(timings.service_seconds());
  timings.observe_service(duration<double>{2.0});
  EXPECT_DOUBLE_EQ(*timings.service_seconds(), 2.0);
  timings.observe_service(duration<double>{4.0});
  EXPECT_DOUBLE_EQ(*timings.service_seconds(), 0.8 * 2.0 + 0.2 * 4.0);
  for (int i = 0; i < 60; ++i) {
    timings.observe_service(duration<double>{1.0});
  }
  EXPECT_NEAR(*timings.service_seconds(), 1.0, 1e-3);
}

TEST(NodeTimings, ColdPrefillRateIsTheSlowestRecentSampleAsWarmPromptsLookFast) {
  NodeTimings timings;
  EXPECT_FALSE(timings.prefill_seconds_per_token());
  timings.observe_prefill(10, 1.0);    // too short to say anything: ignored
  timings.observe_prefill(1000, 0.0);  // nothing evaluated (all cached): ignored
  EXPECT_FALSE(timings.prefill_seconds_per_token());
  timings.observe_prefill(2000, 1.0);   // cold: 0.5 ms per token
  timings.observe_prefill(2000, 0.05);  // mostly cached
  EXPECT_DOUBLE_EQ(*timings.prefill_seconds_per_token(), 0.0005);
  // 32 newer warm samples push the cold one out of the window.
  for (std::size_t i = 0; i < NodeTimings::kPrefillSamples; ++i) {
    timings.observe_prefill(1000, 0.01);
  }
  EXPECT_DOUBLE_EQ(*timings.prefill_seconds_per_token(), 0.00001);
}

TEST(WarmWait, TheWorkedExampleWaitsForALongHistoryAndSpillsAShortOne) {
  // Node a at its cap of 4, 2 requests ahead, 2 s service: expected wait 1.5 s. Node b prefills
  // 0.5 ms per token.
  WarmWaitInputs inputs{2, 4, 2.0, estimate_tokens(60'000), 0.0005, std::nullopt};
  EXPECT_EQ(inputs.history_tokens, 15'000U);
  auto decision = decide_warm_wait(inputs);
  EXPECT_TRUE(decision.estimated);
  EXPECT_DOUBLE_EQ(decision.expected_wait_seconds, 1.5);
  EXPECT_DOUBLE_EQ(decision.cold_prefill_seconds, 7.5);
  EXPECT_TRUE(decision.wait);

  // Node a reused 80 % of its affinity turns' prompts: the wait saves 6 s, still worth it.
  inputs.cache_reuse = 0.8;
  decision = decide_warm_wait(inputs);
  EXPECT_DOUBLE_EQ(decision.saved_seconds, 6.0);
  EXPECT_TRUE(decision.wait);
  // A node that reused 10 %: its slots evict their sessions between turns; waiting saves 0.75 s.
  inputs.cache_reuse = 0.1;
  EXPECT_FALSE(decide_warm_wait(inputs).wait);

  inputs.cache_reuse.reset();
  inputs.history_tokens = estimate_tokens(4'000);  // 1,000 tokens: 0.5 s cold
  decision = decide_warm_wait(inputs);
  EXPECT_DOUBLE_EQ(decision.cold_prefill_seconds, 0.5);
  EXPECT_FALSE(decision.wait);
}

TEST(NodeTimings, CacheReuseIsTheTokenWeightedShareOfAffinityPromptsServedFromCache) {
  NodeTimings timings;
  timings.observe_prefill(1000, 0.5, true);  // no cold rate yet: says nothing about reuse
  EXPECT_FALSE(timings.cache_reuse());
  timings.observe_prefill(1000, 0.5);  // cold rate 0.5 ms per token (not an affinity turn)
  EXPECT_FALSE(timings.cache_reuse());
  // A 2,000-token history with 1,800 tokens cached (200 evaluated at 0.5 ms): 0.9.
  timings.observe_prefill(2000, 0.1, true);
  EXPECT_NEAR(*timings.cache_reuse(), 0.9, 1e-9);
  // A 1,000-token prompt evaluated whole: cold. Weighted by tokens, with the past decayed by 0.9:
  // (0.9 × 1,800 + 0) / (0.9 × 2,000 + 1,000).
  timings.observe_prefill(1000, 0.5, true);
  EXPECT_NEAR(*timings.cache_reuse(), 1620.0 / 2800.0, 1e-9);
  // A prompt served entirely from cache (nothing evaluated) counts as reused.
  timings.observe_prefill(1000, 0.0, true);
  EXPECT_NEAR(*timings.cache_reuse(), (0.9 * 1620.0 + 1000.0) / (0.9 * 2800.0 + 1000.0), 1e-9);
  // Many evicted turns bring it to nearly none.
  for (int i = 0; i < 60; ++i) {
    timings.observe_prefill(1500, 0.75, true);
  }
  EXPECT_LT(*timings.cache_reuse(), 0.01);
}

TEST(WarmWait, WithoutEitherInputItSpillsAsTheGatewayDidBefore) {
  EXPECT_FALSE(decide_warm_wait({0, 4, std::nullopt, 100'000, 0.001, std::nullopt}).wait);
  EXPECT_FALSE(decide_warm_wait({0, 4, 1.0, 100'000, std::nullopt, std::nullopt}).wait);
  EXPECT_FALSE(
      decide_warm_wait({0, 4, std::nullopt, 100'000, std::nullopt, std::nullopt}).estimated);
}

TEST(RetryAfter, IsTheTimeTheQueueAheadTakesToDrainRoundedUp) {
  // 9 ahead + this one, 4 slots, 2 s each: 10 × 2 / 4 = 5 s.
  EXPECT_EQ(retry_after_seconds(9, 4, 2.0), 5U);
  // 0.3 s of work still says 1 (Retry-After is whole seconds; 0 would invite a hot loop).
  EXPECT_EQ(retry_after_seconds(0, 4, 1.2), 1U);
  EXPECT_EQ(retry_after_seconds(10, 4, 2.0), 6U);  // 5.5 rounds up
  EXPECT_EQ(retry_after_seconds(5, 1, std::nullopt), 1U) << "nothing observed yet";
  EXPECT_EQ(retry_after_seconds(1'000'000, 1, 100.0, 3600), 3600U) << "bounded";
}

}  // namespace
}  // namespace llmgw::admission
