#include "llmgw/sim/kv_cache.hpp"

#include <gtest/gtest.h>

namespace llmgw::sim {
namespace {

using Admission = KvCache::Admission;

TEST(SimKvCache, ColdPromptIsFullyEvaluated) {
  KvCache cache(2, 4);
  const auto result = cache.admit(1, tokenize("0123456789abcdef"));
  ASSERT_EQ(result.admission, Admission::granted);
  EXPECT_EQ(result.lease.cached_tokens, 0u);
  EXPECT_EQ(cache.busy_slots(), 1u);
}

TEST(SimKvCache, RepeatedPromptReusesAllButOneToken) {
  KvCache cache(1, 4);
  const Tokens prompt = tokenize("0123456789abcdef");  // 4 tokens
  const auto first = cache.admit(1, prompt);
  ASSERT_EQ(first.admission, Admission::granted);
  cache.release(first.lease.slot, prompt);
  const auto second = cache.admit(2, prompt);
  ASSERT_EQ(second.admission, Admission::granted);
  EXPECT_EQ(second.lease.cached_tokens, 3u) << "at least one token is always evaluated";
}

TEST(SimKvCache, ExtendedPromptReusesTheServedSequence) {
  KvCache cache(1, 4);
  const Tokens turn1 = tokenize("aaaabbbb");
  const auto first = cache.admit(1, turn1);
  cache.release(first.lease.slot, tokenize("aaaabbbbccccdddd"));  // prompt + reply
  const auto second = cache.admit(2, tokenize("aaaabbbbccccddddeeee"));
  ASSERT_EQ(second.admission, Admission::granted);
  EXPECT_EQ(second.lease.cached_tokens, 4u);
}

TEST(SimKvCache, PicksTheFreeSlotWithTheLongestCommonPrefix) {
  KvCache cache(3, 4);
  const auto a = cache.admit(1, tokenize("AAAAxxxx"));
  const auto b = cache.admit(2, tokenize("BBBBxxxx"));
  const auto c = cache.admit(3, tokenize("CCCCxxxx"));
  cache.release(a.lease.slot, tokenize("AAAAxxxx"));
  cache.release(b.lease.slot, tokenize("BBBBxxxxyyyy"));
  cache.release(c.lease.slot, tokenize("CCCCxxxx"));
  const auto again = cache.admit(4, tokenize("BBBBxxxxyyyyzzzz"));
  ASSERT_EQ(again.admission, Admission::granted);
  EXPECT_EQ(again.lease.slot, b.lease.slot);
  EXPECT_EQ(again.lease.cached_tokens, 3u);
}

TEST(SimKvCache, WithoutAnySharedPrefixTakesTheLeastRecentlyUsedSlot) {
  KvCache cache(2, 4);
  const auto a = cache.admit(1, tokenize("AAAA"));
  const auto b = cache.admit(2, tokenize("BBBB"));
  cache.release(b.lease.slot, tokenize("BBBB"));  // b released first: least recently used
  cache.release(a.lease.slot, tokenize("AAAA"));
  const auto fresh = cache.admit(3, tokenize("ZZZZ"));
  ASSERT_EQ(fresh.admission, Admission::granted);
  EXPECT_EQ(fresh.lease.slot, b.lease.slot);
  EXPECT_EQ(fresh.lease.cached_tokens, 0u);
  // The other conversation's slot survived the unrelated request.
  const auto back = cache.admit(4, tokenize("AAAAqqqq"));
  EXPECT_EQ(back.lease.slot, a.lease.slot);
  EXPECT_EQ(back.lease.cached_tokens, 1u);
}

TEST(SimKvCache, QueuesBeyondFreeSlotsAndRejectsBeyondTheQueue) {
  KvCache cache(1, 1);
  const auto running = cache.admit(1, tokenize("AAAA"));
  ASSERT_EQ(running.admission, Admission::granted);
  EXPECT_EQ(cache.admit(2, tokenize("BBBB")).admission, Admission::queued);
  EXPECT_EQ(cache.queue_depth(), 1u);
  EXPECT_EQ(cache.admit(3, tokenize("CCCC")).admission, Admission::rejected);
  EXPECT_EQ(cache.queue_depth(), 1u);
}

TEST(SimKvCache, ReleaseHandsTheSlotToTheOldestWaiter) {
  KvCache cache(1, 4);
  const auto running = cache.admit(1, tokenize("AAAA"));
  ASSERT_EQ(cache.admit(2, tokenize("AAAABBBB")).admission, Admission::queued);
  ASSERT_EQ(cache.admit(3, tokenize("CCCC")).admission, Admission::queued);
  const auto grants = cache.release(running.lease.slot, tokenize("AAAAzzzz"));
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].ticket, 2u);
  EXPECT_EQ(grants[0].lease.cached_tokens, 1u);
  EXPECT_EQ(cache.queue_depth(), 1u);
  EXPECT_EQ(cache.busy_slots(), 1u);
}

TEST(SimKvCache, NewArrivalsDoNotOvertakeQueuedRequests) {
  KvCache cache(2, 4);
  const auto a = cache.admit(1, tokenize("AAAA"));
  const auto b = cache.admit(2, tokenize("BBBB"));
  ASSERT_EQ(cache.admit(3, tokenize("CCCC")).admission, Admission::queued);
  const auto grants = cache.release(a.lease.slot, tokenize("AAAA"));
  ASSERT_EQ(grants.size(), 1u);
  EXPECT_EQ(grants[0].ticket, 3u);
  EXPECT_EQ(cache.admit(4, tokenize("DDDD")).admission, Admission::queued);
  (void)b;
}

TEST(SimKvCache, WithdrawnWaiterLeavesTheQueue) {
  KvCache cache(1, 2);
  const auto running = cache.admit(1, tokenize("AAAA"));
  ASSERT_EQ(cache.admit(2, tokenize("BBBB")).admission, Admission::queued);
  EXPECT_TRUE(cache.withdraw(2));
  EXPECT_FALSE(cache.withdraw(2));
  EXPECT_EQ(cache.queue_depth(), 0u);
  EXPECT_TRUE(cache.release(running.lease.slot, tokenize("AAAA")).empty());
  EXPECT_EQ(cache.busy_slots(), 0u);
}

}  // namespace
}  // namespace llmgw::sim
