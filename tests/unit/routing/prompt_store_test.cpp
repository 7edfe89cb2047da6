#include "llmgw/routing/prompt_store.hpp"

#include <gtest/gtest.h>

#include <string>

namespace llmgw::routing {
namespace {

using namespace std::chrono_literals;
using Clock = PromptStore::Clock;

constexpr std::size_t kBody = 1000;
// One entry of a kBody-byte body on path "/api/chat" served by "node-a".
constexpr std::size_t kEntryCost =
    PromptStore::kEntryOverheadBytes + kBody + std::string_view{"/api/chat"}.size() + 6;

std::string body_of(char fill) {
  return std::string(kBody, fill);
}

TEST(PromptStore, KeepsTheLastBodyOfEachSessionAndReplacesItOnTheNextTurn) {
  PromptStore store({.max_bytes = 1'000'000, .idle_timeout = 60s});
  const auto now = Clock::now();
  store.remember(1, "/api/chat", body_of('a'), "node-a", now);
  store.remember(1, "/api/chat", body_of('b'), "node-b", now + 1s);
  const auto kept = store.find(1, now + 2s);
  ASSERT_TRUE(kept);
  EXPECT_EQ(*kept->body, body_of('b'));
  EXPECT_EQ(kept->node, "node-b");
  EXPECT_EQ(store.size(now + 2s), 1U);
  EXPECT_EQ(store.bytes(), kEntryCost);
  EXPECT_FALSE(store.find(2, now));
}

TEST(PromptStore, TheCapEvictsTheLeastRecentlyUsedSessionFirst) {
  PromptStore store({.max_bytes = 3 * kEntryCost, .idle_timeout = 60s});
  const auto now = Clock::now();
  store.remember(1, "/api/chat", body_of('1'), "node-a", now);
  store.remember(2, "/api/chat", body_of('2'), "node-a", now + 1ms);
  store.remember(3, "/api/chat", body_of('3'), "node-a", now + 2ms);
  store.remember(1, "/api/chat", body_of('1'), "node-a", now + 3ms);  // 1 used again: 2 is oldest
  store.remember(4, "/api/chat", body_of('4'), "node-a", now + 4ms);
  EXPECT_FALSE(store.find(2, now + 5ms)) << "the least recently used session was kept";
  EXPECT_TRUE(store.find(1, now + 5ms));
  EXPECT_TRUE(store.find(3, now + 5ms));
  EXPECT_TRUE(store.find(4, now + 5ms));
  EXPECT_LE(store.bytes(), 3 * kEntryCost);
  EXPECT_EQ(store.evictions(), 1U);
}

TEST(PromptStore, ABodyLargerThanTheWholeBudgetIsNotKeptAndDropsTheStaleOne) {
  PromptStore store({.max_bytes = 2 * kEntryCost, .idle_timeout = 60s});
  const auto now = Clock::now();
  store.remember(1, "/api/chat", body_of('1'), "node-a", now);
  store.remember(2, "/api/chat", body_of('2'), "node-a", now);
  store.remember(1, "/api/chat", std::string(3 * kEntryCost, 'x'), "node-a", now);
  EXPECT_FALSE(store.find(1, now)) << "a stale prompt would warm the wrong history";
  EXPECT_TRUE(store.find(2, now)) << "an oversized body evicted another session";
}

TEST(PromptStore, AnEntryEndsWithItsSessionsIdleTime) {
  PromptStore store({.max_bytes = 1'000'000, .idle_timeout = 10s});
  const auto now = Clock::now();
  store.remember(1, "/api/chat", body_of('1'), "node-a", now);
  store.remember(2, "/api/chat", body_of('2'), "node-a", now + 5s);
  EXPECT_EQ(store.size(now + 9s), 2U);
  EXPECT_EQ(store.size(now + 10s), 1U);
  EXPECT_FALSE(store.find(1, now + 10s));
  EXPECT_EQ(store.live(now + 15s).size(), 0U);
  EXPECT_EQ(store.bytes(), 0U);
}

TEST(PromptStore, APreheatIsSentOncePerTargetAndItsMarkEndsWithTheNextTurn) {
  PromptStore store({.max_bytes = 1'000'000, .idle_timeout = 60s});
  const auto now = Clock::now();
  EXPECT_FALSE(store.begin_preheat(1, "node-b")) << "nothing kept, nothing to send";
  store.remember(1, "/api/chat", body_of('1'), "node-a", now);
  EXPECT_EQ(store.preheat_target(1), "");
  EXPECT_TRUE(store.begin_preheat(1, "node-b"));
  EXPECT_FALSE(store.begin_preheat(1, "node-b")) << "a second preheat to the same node";
  EXPECT_FALSE(store.preheated_on(1, "node-b")) << "not completed yet";
  EXPECT_EQ(store.preheat_target(1), "node-b") << "pending";
  store.end_preheat(1, "node-b", true);
  EXPECT_TRUE(store.preheated_on(1, "node-b"));
  EXPECT_FALSE(store.preheated_on(1, "node-c"));
  EXPECT_EQ(store.preheat_target(1), "node-b") << "completed";
  store.remember(1, "/api/chat", body_of('2'), "node-b", now + 1s);  // the turn landed
  EXPECT_FALSE(store.preheated_on(1, "node-b")) << "only the first turn after a preheat";
  EXPECT_EQ(store.preheat_target(1), "");

  EXPECT_TRUE(store.begin_preheat(1, "node-c"));
  store.end_preheat(1, "node-c", false);
  EXPECT_FALSE(store.preheated_on(1, "node-c"));
  EXPECT_EQ(store.preheat_target(1), "") << "failed";
  EXPECT_TRUE(store.begin_preheat(1, "node-c")) << "a failed preheat may be tried again";
}

// The return gate's states (server/preheat.hpp): the first ask begins the preheat, later asks see
// it pending, then completed or failed; nothing kept means no wait at all.
TEST(PromptStore, AReturnPreheatIsBegunOnceAndReportsHowItEnded) {
  PromptStore store({.max_bytes = 1'000'000, .idle_timeout = 60s});
  const auto now = Clock::now();
  EXPECT_EQ(store.return_preheat(1, "node-a"), ReturnPreheat::no_prompt);
  store.remember(1, "/api/chat", body_of('1'), "node-b", now);
  EXPECT_EQ(store.return_preheat(1, "node-a"), ReturnPreheat::started);
  EXPECT_EQ(store.return_preheat(1, "node-a"), ReturnPreheat::pending);
  store.end_preheat(1, "node-a", true);
  EXPECT_EQ(store.return_preheat(1, "node-a"), ReturnPreheat::completed);
  EXPECT_TRUE(store.preheated_on(1, "node-a"));

  store.remember(2, "/api/chat", body_of('2'), "node-b", now);
  EXPECT_EQ(store.return_preheat(2, "node-a"), ReturnPreheat::started);
  store.end_preheat(2, "node-a", false);
  EXPECT_EQ(store.return_preheat(2, "node-a"), ReturnPreheat::failed) << "returns at once";
  EXPECT_FALSE(store.preheated_on(2, "node-a"));
}

TEST(PromptStore, ALowerCapAppliesAtOnce) {
  PromptStore store({.max_bytes = 10 * kEntryCost, .idle_timeout = 60s});
  const auto now = Clock::now();
  for (std::uint64_t key = 0; key < 10; ++key) {
    store.remember(key, "/api/chat", body_of('k'), "node-a", now + std::chrono::milliseconds(key));
  }
  store.set_options({.max_bytes = 4 * kEntryCost, .idle_timeout = 60s});
  EXPECT_EQ(store.size(now), 4U);
  EXPECT_TRUE(store.find(9, now));
  EXPECT_FALSE(store.find(5, now));
}

}  // namespace
}  // namespace llmgw::routing
