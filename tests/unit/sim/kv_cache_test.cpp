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
  const auto a = cache.admit(1, tokenize("AAAAbody"));
  const auto b = cache.admit(2, tokenize("BBBBbody"));
  const auto c = cache.admit(3, tokenize("CCCCbody"));
  cache.release(a.lease.slot, tokenize("AAAAbody"));
  cache.release(b.lease.slot, tokenize("BBBBbodyyyyy"));
  cache.release(c.lease.slot, tokenize("CCCCbody"));
  const auto again = cache.admit(4, tokenize("BBBBbodyyyyyzzzz"));
  ASSERT_EQ(again.admission, Admission::granted);
  EXPECT_EQ(again.lease.slot, b.lease.slot);
  EXPECT_EQ(again.lease.cached_tokens, 3u);
}

// Ollama's default (findLongestCacheSlot): the free slot with the longest common prefix is
// reused however short the prefix, the first slot on a tie, so an unrelated prompt overwrites the
// first slot's conversation although slot 1 holds nothing it could share either.
TEST(SimKvCache, DefaultPolicyReusesTheFirstSlotOnATieAsOllamaDoes) {
  KvCache cache(2, 4);
  const auto a = cache.admit(1, tokenize("AAAA"));
  const auto b = cache.admit(2, tokenize("BBBB"));
  ASSERT_EQ(a.lease.slot, 0u);
  cache.release(b.lease.slot, tokenize("BBBB"));
  cache.release(a.lease.slot, tokenize("AAAA"));
  const auto fresh = cache.admit(3, tokenize("ZZZZ"));
  ASSERT_EQ(fresh.admission, Admission::granted);
  EXPECT_EQ(fresh.lease.slot, 0u);
  EXPECT_EQ(fresh.lease.cached_tokens, 0u);
}

// Ollama's default again: a prompt sharing only a system prompt with a slot that holds a long
// history takes that slot (its prefix beats the empty slot's zero) and truncates the history.
TEST(SimKvCache, DefaultPolicyOverwritesALongHistorySharingOnlyTheSystemPrompt) {
  KvCache cache(2, 4);
  const Tokens history = tokenize("SYSTEMPRhistoryAhistoryAhistoryAhistoryA");
  const auto a = cache.admit(1, history);
  cache.release(a.lease.slot, history);
  const auto other = cache.admit(2, tokenize("SYSTEMPRsession-B"));
  ASSERT_EQ(other.admission, Admission::granted);
  EXPECT_EQ(other.lease.slot, a.lease.slot);
  EXPECT_EQ(other.lease.cached_tokens, 2u);
  cache.release(other.lease.slot, tokenize("SYSTEMPRsession-B"));
  const auto back = cache.admit(3, tokenize("SYSTEMPRhistoryAhistoryAhistoryAhistoryAnext"));
  EXPECT_EQ(back.lease.cached_tokens, 2u) << "session A's history is gone";
}

// OLLAMA_MULTIUSER_CACHE=1 (findBestCacheSlot): the slot with the longest prefix holds more than
// the prefix, so the prefix is copied into the least recently used free slot instead (CopyPrefix)
// and the longer history survives. This is what keeps a preheated slot for its session.
TEST(SimKvCache, MultiUserPolicyKeepsAPreheatedHistoryFromAPromptSharingOnlyTheSystemPrompt) {
  KvCache cache(2, 4, SlotChoice::multi_user);
  const Tokens preheated = tokenize("SYSTEMPRhistoryAhistoryAhistoryAhistoryA");
  const auto warm = cache.admit(1, preheated);
  ASSERT_EQ(warm.lease.slot, 0u);
  cache.release(warm.lease.slot, preheated);
  const auto other = cache.admit(2, tokenize("SYSTEMPRsession-B"));
  ASSERT_EQ(other.admission, Admission::granted);
  EXPECT_EQ(other.lease.slot, 1u) << "the empty slot gets a copy of the shared prefix";
  EXPECT_EQ(other.lease.cached_tokens, 2u) << "the system prompt is still reused";
  cache.release(other.lease.slot, tokenize("SYSTEMPRsession-B"));
  const auto next_turn = cache.admit(3, tokenize("SYSTEMPRhistoryAhistoryAhistoryAhistoryAnext"));
  EXPECT_EQ(next_turn.lease.slot, 0u);
  EXPECT_EQ(next_turn.lease.cached_tokens, preheated.size());
}

// findBestCacheSlot reuses the longest slot in place when all it holds is the prefix: the next
// turn of a conversation extends its own slot, whatever the slots' ages.
TEST(SimKvCache, MultiUserPolicyExtendsASlotWhoseWholeContentsArePrefix) {
  KvCache cache(3, 4, SlotChoice::multi_user);
  const auto a = cache.admit(1, tokenize("AAAAbody"));
  const auto b = cache.admit(2, tokenize("BBBBbody"));
  cache.release(a.lease.slot, tokenize("AAAAbody"));
  cache.release(b.lease.slot, tokenize("BBBBbody"));
  const auto again = cache.admit(3, tokenize("BBBBbodyyyyy"));
  EXPECT_EQ(again.lease.slot, b.lease.slot);
  EXPECT_EQ(again.lease.cached_tokens, 2u);
}

// findBestCacheSlot overwrites the least recently used free slot (by when a request last took
// it), never the most recently loaded one.
TEST(SimKvCache, MultiUserPolicyEvictsTheLeastRecentlyLoadedFreeSlot) {
  KvCache cache(2, 4, SlotChoice::multi_user);
  const auto a = cache.admit(1, tokenize("AAAA"));
  const auto b = cache.admit(2, tokenize("BBBB"));  // loaded after a
  cache.release(b.lease.slot, tokenize("BBBB"));
  cache.release(a.lease.slot, tokenize("AAAA"));
  const auto fresh = cache.admit(3, tokenize("ZZZZ"));
  EXPECT_EQ(fresh.lease.slot, a.lease.slot);
  const auto back = cache.admit(4, tokenize("BBBBqqqq"));
  EXPECT_EQ(back.lease.slot, b.lease.slot);
  EXPECT_EQ(back.lease.cached_tokens, 1u);
}

// A busy slot can lend its prefix (as loaded) to a copy, and a prompt finding no free slot waits.
TEST(SimKvCache, MultiUserPolicyCopiesFromABusySlotAndQueuesWhenNoneIsFree) {
  KvCache cache(2, 4, SlotChoice::multi_user);
  const Tokens history = tokenize("AAAABBBBCCCC");
  const auto first = cache.admit(1, history);
  cache.release(first.lease.slot, history);
  const auto extended = cache.admit(2, tokenize("AAAABBBBCCCCDDDD"));  // takes slot 0, 3 cached
  ASSERT_EQ(extended.lease.slot, first.lease.slot);
  const auto sibling = cache.admit(3, tokenize("AAAABBBBEEEE"));
  ASSERT_EQ(sibling.admission, Admission::granted);
  EXPECT_NE(sibling.lease.slot, extended.lease.slot);
  EXPECT_EQ(sibling.lease.cached_tokens, 2u) << "copied from the busy slot";
  EXPECT_EQ(cache.admit(4, tokenize("FFFF")).admission, Admission::queued);
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
