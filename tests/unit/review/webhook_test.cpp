#include "llmgw/review/webhook.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <nlohmann/json.hpp>

#include "llmgw/review/review_queue.hpp"

namespace llmgw::review {
namespace {

using std::chrono::seconds;

// GitHub's documented example: secret "It's a Secret to Everybody", payload "Hello, World!".
TEST(WebhookSignature, MatchesGithubsDocumentedExample) {
  EXPECT_EQ(webhook_signature("It's a Secret to Everybody", "Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
}

TEST(WebhookSignature, OnlyTheExactSignatureVerifies) {
  const std::string body = R"({"action": "opened"})";
  const auto good = webhook_signature("s3cret", body);
  EXPECT_TRUE(verify_webhook_signature("s3cret", body, good));
  EXPECT_FALSE(verify_webhook_signature("s3cret", body + " ", good));
  EXPECT_FALSE(verify_webhook_signature("other", body, good));
  EXPECT_FALSE(verify_webhook_signature("s3cret", body, std::nullopt));
  EXPECT_FALSE(verify_webhook_signature("s3cret", body, good.substr(0, good.size() - 1)));
  EXPECT_FALSE(verify_webhook_signature("s3cret", body, "sha1=" + good.substr(7)));
  EXPECT_FALSE(verify_webhook_signature("", body, webhook_signature("", body)))
      << "an empty secret never verifies";
}

std::string event_body(std::string action, std::string state = "open") {
  return nlohmann::json{
      {"action", action},
      {"number", 42},
      {"pull_request", {{"number", 42}, {"state", state}, {"head", {{"sha", "abc123"}}}}},
      {"repository", {{"full_name", "acme/widgets"}}}}
      .dump();
}

TEST(WebhookEvent, OpenedSynchronizeAndReopenedAskForAReview) {
  for (const auto* action : {"opened", "synchronize", "reopened"}) {
    const auto event = review_request_from("pull_request", event_body(action));
    ASSERT_TRUE(event) << action;
    EXPECT_EQ(event->repo.full_name(), "acme/widgets");
    EXPECT_EQ(event->number, 42);
    EXPECT_EQ(event->head_sha, "abc123");
  }
  EXPECT_FALSE(review_request_from("pull_request", event_body("closed", "closed")));
  EXPECT_FALSE(review_request_from("pull_request", event_body("labeled")));
  EXPECT_FALSE(review_request_from("issues", event_body("opened")));
  EXPECT_FALSE(review_request_from("pull_request", "not json"));
  EXPECT_FALSE(review_request_from("pull_request", R"({"action": "opened", "number": null})"));
}

PullRequestEvent event_for(int number, std::string head) {
  return {{"acme", "widgets"}, number, std::move(head), "synchronize"};
}

// The runner blocks on the first review until released, so that later events queue up.
struct Gate {
  std::mutex mutex;
  std::condition_variable changed;
  bool open = false;
  bool first_started = false;
  std::vector<std::string> ran;

  void run(const PullRequestEvent& event) {
    std::unique_lock lock{mutex};
    ran.push_back(std::to_string(event.number) + "@" + event.head_sha);
    first_started = true;
    changed.notify_all();
    changed.wait_for(lock, seconds{10}, [&] { return open; });
  }
  void wait_started() {
    std::unique_lock lock{mutex};
    ASSERT_TRUE(changed.wait_for(lock, seconds{10}, [&] { return first_started; }));
  }
  void release() {
    std::lock_guard lock{mutex};
    open = true;
    changed.notify_all();
  }
};

TEST(ReviewQueue, OneReviewPerPullRequestAtATimeAndTheNewestHeadWins) {
  Gate gate;
  ReviewQueue queue{[&](const PullRequestEvent& e) { gate.run(e); }, 8};
  EXPECT_EQ(queue.submit(event_for(1, "a")), ReviewQueue::Admission::queued);
  gate.wait_started();
  EXPECT_EQ(queue.submit(event_for(1, "b")), ReviewQueue::Admission::queued);
  EXPECT_EQ(queue.submit(event_for(2, "x")), ReviewQueue::Admission::queued);
  EXPECT_EQ(queue.submit(event_for(1, "c")), ReviewQueue::Admission::superseded);
  gate.release();
  ASSERT_TRUE(queue.wait_idle(seconds{10}));
  EXPECT_EQ(gate.ran, (std::vector<std::string>{"1@a", "1@c", "2@x"}));
  const auto stats = queue.stats();
  EXPECT_EQ(stats.completed, 3u);
  EXPECT_EQ(stats.superseded, 1u);
}

TEST(ReviewQueue, IsBoundedAndCountsFailures) {
  Gate gate;
  ReviewQueue queue{[&](const PullRequestEvent& e) {
                      gate.run(e);
                      if (e.number == 2) {
                        throw std::runtime_error("model down");
                      }
                    },
                    1};
  queue.submit(event_for(1, "a"));
  gate.wait_started();
  EXPECT_EQ(queue.submit(event_for(2, "a")), ReviewQueue::Admission::queued);
  EXPECT_EQ(queue.submit(event_for(3, "a")), ReviewQueue::Admission::full);
  gate.release();
  ASSERT_TRUE(queue.wait_idle(seconds{10}));
  const auto stats = queue.stats();
  EXPECT_EQ(stats.completed, 1u);
  EXPECT_EQ(stats.failed, 1u);
  EXPECT_EQ(stats.rejected, 1u);
}

}  // namespace
}  // namespace llmgw::review
