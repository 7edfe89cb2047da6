#include "llmgw/admission/interactive_reserve.hpp"

#include <gtest/gtest.h>

namespace llmgw::admission {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using ReserveClock = InteractiveReserve::Clock;

TEST(InteractiveReserve, FollowsTheActiveSessionsAsInTheWorkedExample) {
  const auto t0 = ReserveClock::now();
  InteractiveReserve reserve(1, seconds{60}, t0);
  // The start hold: one session's worth for the first window.
  EXPECT_EQ(reserve.active_sessions(t0), 0U);
  EXPECT_EQ(reserve.batch_limit(4, t0), 3U);
  reserve.touch(1, t0 + seconds{1});
  reserve.touch(2, t0 + seconds{2});
  EXPECT_EQ(reserve.batch_limit(4, t0 + seconds{2}), 2U);
  reserve.touch(1, t0 + seconds{40});  // s1 keeps talking, s2 goes quiet
  EXPECT_EQ(reserve.active_sessions(t0 + seconds{61}), 2U) << "s2 was last seen 59 s ago";
  EXPECT_EQ(reserve.active_sessions(t0 + seconds{62}), 1U);
  EXPECT_EQ(reserve.batch_limit(4, t0 + seconds{62}), 3U);
  EXPECT_EQ(reserve.batch_limit(4, t0 + seconds{101}), 4U) << "no chat, no start hold";
}

TEST(InteractiveReserve, ATurnOfAKnownSessionDoesNotAddToTheReserve) {
  const auto t0 = ReserveClock::now();
  InteractiveReserve reserve(1, seconds{60}, t0 - seconds{60});  // the start hold is over
  EXPECT_EQ(reserve.reserved(4, t0), 0U);
  for (int turn = 0; turn < 5; ++turn) {
    reserve.touch(42, t0 + milliseconds{100 * turn});
  }
  EXPECT_EQ(reserve.active_sessions(t0 + seconds{1}), 1U);
  EXPECT_EQ(reserve.reserved(4, t0 + seconds{1}), 1U);
  // Requests without a key share one entry.
  reserve.touch(InteractiveReserve::kUnkeyed, t0 + seconds{1});
  reserve.touch(InteractiveReserve::kUnkeyed, t0 + seconds{2});
  EXPECT_EQ(reserve.reserved(4, t0 + seconds{2}), 2U);
}

TEST(InteractiveReserve, BatchAlwaysKeepsOneSlotAndAZeroReserveLeavesItEverySlot) {
  const auto t0 = ReserveClock::now();
  InteractiveReserve reserve(2, seconds{60}, t0);
  for (std::uint64_t session = 1; session <= 5; ++session) {
    reserve.touch(session, t0);
  }
  EXPECT_EQ(reserve.batch_limit(4, t0), 1U) << "5 sessions x 2 slots, capped at cap - 1";
  EXPECT_EQ(reserve.batch_limit(1, t0), 1U) << "a one-slot node keeps it for batch";
  EXPECT_EQ(reserve.reserved(0, t0), 0U) << "no cap: nothing to reserve";
  reserve.configure(0, seconds{60});
  EXPECT_EQ(reserve.batch_limit(4, t0), 4U);
  reserve.configure(1, seconds{1});  // a reload to a shorter window: the sessions expire by it
  EXPECT_EQ(reserve.active_sessions(t0 + seconds{2}), 0U);
}

}  // namespace
}  // namespace llmgw::admission
