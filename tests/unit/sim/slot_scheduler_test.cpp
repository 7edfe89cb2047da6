#include "llmgw/sim/slot_scheduler.hpp"

#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <optional>
#include <vector>

namespace llmgw::sim {
namespace {

namespace asio = boost::asio;
using Outcome = SlotScheduler::Outcome;

// Runs acquire() as a coroutine on `io` and records its result when it completes.
void spawn_acquire(asio::io_context& io, SlotScheduler& scheduler, Tokens prompt,
                   std::optional<SlotScheduler::Acquired>& result) {
  asio::co_spawn(
      io,
      [&scheduler, &result, prompt]() -> asio::awaitable<void> {
        result = co_await scheduler.acquire(prompt);
      },
      asio::detached);
}

TEST(SimSlotScheduler, WaiterGetsTheSlotWhenItIsReleased) {
  asio::io_context io;
  SlotScheduler scheduler(1, 4);
  std::optional<SlotScheduler::Acquired> first;
  std::optional<SlotScheduler::Acquired> second;
  spawn_acquire(io, scheduler, tokenize("AAAA"), first);
  spawn_acquire(io, scheduler, tokenize("AAAABBBB"), second);
  io.poll();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->outcome, Outcome::granted);
  EXPECT_FALSE(second.has_value()) << "no free slot: it waits";
  EXPECT_EQ(scheduler.queue_depth(), 1u);

  scheduler.release(first->lease.slot, tokenize("AAAAzzzz"));
  io.restart();
  io.poll();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->outcome, Outcome::granted);
  EXPECT_EQ(second->lease.cached_tokens, 1u);
  EXPECT_EQ(scheduler.busy_slots(), 1u);
}

TEST(SimSlotScheduler, FullQueueRejectsAndShutdownReleasesWaiters) {
  asio::io_context io;
  SlotScheduler scheduler(1, 1);
  std::optional<SlotScheduler::Acquired> running;
  std::optional<SlotScheduler::Acquired> queued;
  std::optional<SlotScheduler::Acquired> refused;
  spawn_acquire(io, scheduler, tokenize("A"), running);
  spawn_acquire(io, scheduler, tokenize("B"), queued);
  spawn_acquire(io, scheduler, tokenize("C"), refused);
  io.poll();
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->outcome, Outcome::rejected);
  EXPECT_FALSE(queued.has_value());

  scheduler.shutdown();
  io.restart();
  io.poll();
  ASSERT_TRUE(queued.has_value());
  EXPECT_EQ(queued->outcome, Outcome::stopped);
  EXPECT_EQ(scheduler.queue_depth(), 0u);
}

TEST(SimSlotScheduler, ReleaseFromAnotherThreadWakesTheWaiter) {
  asio::io_context io;
  SlotScheduler scheduler(1, 1);
  std::optional<SlotScheduler::Acquired> first;
  std::optional<SlotScheduler::Acquired> second;
  spawn_acquire(io, scheduler, tokenize("A"), first);
  spawn_acquire(io, scheduler, tokenize("B"), second);
  io.poll();
  ASSERT_TRUE(first.has_value());
  std::thread releaser([&] { scheduler.release(first->lease.slot, tokenize("A")); });
  releaser.join();
  io.restart();
  io.poll();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->outcome, Outcome::granted);
}

}  // namespace
}  // namespace llmgw::sim
