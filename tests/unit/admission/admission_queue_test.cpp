// The queue discipline of a node's admission: interactive first, FIFO within a class, aged batch
// requests by arrival, per-model caps passed over without losing a place.

#include "llmgw/admission/admission_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace llmgw::admission {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr auto kAging = seconds{10};
const Clock::time_point kT0{};

QueuedRequest request(std::uint64_t ticket, Priority priority, Clock::time_point arrived,
                      std::string model = "m") {
  return {ticket, priority, arrived, std::move(model)};
}

// Pops everything at `now`, in dispatch order.
std::vector<std::uint64_t> drain(AdmissionQueue& queue, Clock::time_point now) {
  std::vector<std::uint64_t> order;
  while (auto next = queue.pop_next(now, {})) {
    order.push_back(next->ticket);
  }
  return order;
}

TEST(PriorityClass, ParsesTheTwoClassesCaseInsensitivelyAndRefusesTheRest) {
  EXPECT_EQ(parse_priority("interactive"), Priority::interactive);
  EXPECT_EQ(parse_priority(" Batch "), Priority::batch);
  EXPECT_EQ(parse_priority("BATCH"), Priority::batch);
  EXPECT_FALSE(parse_priority("urgent"));
  EXPECT_FALSE(parse_priority(""));
  EXPECT_FALSE(parse_priority("batchy"));
  EXPECT_EQ(accepted_priorities(), "interactive, batch");
}

TEST(AdmissionQueue, InteractiveGoesBeforeEveryBatchRequestThatHasNotAged) {
  AdmissionQueue queue(kAging);
  queue.push(request(1, Priority::batch, kT0));
  queue.push(request(2, Priority::batch, kT0 + seconds{1}));
  queue.push(request(3, Priority::interactive, kT0 + seconds{2}));
  queue.push(request(4, Priority::interactive, kT0 + seconds{3}));
  EXPECT_EQ(queue.depth(Priority::batch), 2U);
  EXPECT_EQ(queue.depth(Priority::interactive), 2U);
  EXPECT_EQ(queue.ahead_of(Priority::interactive), 2U);
  EXPECT_EQ(queue.ahead_of(Priority::batch), 4U);
  // At t = 5 s nothing has waited 10 s: interactive first, then batch, each in arrival order.
  EXPECT_EQ(drain(queue, kT0 + seconds{5}), (std::vector<std::uint64_t>{3, 4, 1, 2}));
  EXPECT_EQ(queue.depth(), 0U);
  EXPECT_FALSE(queue.pop_next(kT0, {}));
}

TEST(AdmissionQueue, AnAgedBatchRequestGoesBeforeInteractiveRequestsThatArrivedAfterIt) {
  // The worked example of admission_queue.hpp.
  AdmissionQueue queue(kAging);
  queue.push(request(1, Priority::batch, kT0));                      // B1
  queue.push(request(2, Priority::interactive, kT0 + seconds{2}));   // I1
  EXPECT_EQ(queue.pop_next(kT0 + seconds{5}, {})->ticket, 2U);       // I1: B1 not aged yet
  queue.push(request(3, Priority::interactive, kT0 + seconds{11}));  // I2
  EXPECT_EQ(queue.pop_next(kT0 + seconds{12}, {})->ticket, 1U);      // B1 aged, arrived first
  EXPECT_EQ(queue.pop_next(kT0 + seconds{12}, {})->ticket, 3U);
}

TEST(AdmissionQueue, AnAgedBatchRequestStillWaitsForInteractiveRequestsOlderThanIt) {
  AdmissionQueue queue(kAging);
  queue.push(request(1, Priority::interactive, kT0));
  queue.push(request(2, Priority::batch, kT0 + seconds{1}));
  EXPECT_EQ(drain(queue, kT0 + seconds{60}), (std::vector<std::uint64_t>{1, 2}));
}

TEST(AdmissionQueue, BatchIsNotStarvedByAStreamOfInteractiveRequests) {
  // One slot frees every second and a new interactive request arrives every second: without
  // aging the batch request would wait forever. With 10 s aging it goes at the first slot after
  // it aged, ahead of every interactive request that arrived after it.
  AdmissionQueue queue(kAging);
  queue.push(request(1000, Priority::batch, kT0));
  std::uint64_t ticket = 1;
  std::optional<int> batch_served_at;
  for (int second = 0; second < 30 && !batch_served_at; ++second) {
    queue.push(request(ticket++, Priority::interactive, kT0 + seconds{second}));
    const auto next = queue.pop_next(kT0 + seconds{second} + milliseconds{500}, {});
    ASSERT_TRUE(next);
    if (next->ticket == 1000) {
      batch_served_at = second;
    }
  }
  ASSERT_TRUE(batch_served_at) << "the batch request starved";
  EXPECT_EQ(*batch_served_at, 10);
}

TEST(AdmissionQueue, ARequestWhoseModelIsAtItsCapKeepsItsPlaceWhileOthersPass) {
  AdmissionQueue queue(kAging);
  queue.push(request(1, Priority::interactive, kT0, "busy"));
  queue.push(request(2, Priority::interactive, kT0 + seconds{1}, "free"));
  queue.push(request(3, Priority::batch, kT0 + seconds{2}, "free"));
  const auto fits = [](const QueuedRequest& r) { return r.model != "busy"; };
  EXPECT_EQ(queue.pop_next(kT0 + seconds{3}, fits)->ticket, 2U);
  EXPECT_EQ(queue.pop_next(kT0 + seconds{3}, fits)->ticket, 3U);
  EXPECT_FALSE(queue.pop_next(kT0 + seconds{3}, fits)) << "only the busy model's request is left";
  EXPECT_EQ(queue.pop_next(kT0 + seconds{3}, {})->ticket, 1U) << "it kept its place";
}

TEST(AdmissionQueue, RemoveTakesOutExactlyTheRequestThatLeft) {
  AdmissionQueue queue(kAging);
  queue.push(request(1, Priority::interactive, kT0));
  queue.push(request(2, Priority::interactive, kT0));
  queue.push(request(3, Priority::batch, kT0));
  EXPECT_TRUE(queue.remove(2));
  EXPECT_FALSE(queue.remove(2));
  EXPECT_TRUE(queue.remove(3));
  EXPECT_EQ(drain(queue, kT0), (std::vector<std::uint64_t>{1}));
}

}  // namespace
}  // namespace llmgw::admission
