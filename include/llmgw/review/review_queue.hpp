#pragma once

// The bounded work queue of `llmgw review-server`.
//
//   - One review at a time per pull request: a PR whose review is running is not started again
//     until it ends.
//   - Newest head wins: a PR waits in the queue at most once; a later event for it replaces the
//     waiting one (counted as superseded) and keeps its place, so a burst of pushes costs one
//     review of the latest head, not one per push.
//   - Bounded: at most max_pending PRs wait; past that, submit() answers `full` and nothing is
//     queued (the server answers 503 and GitHub shows the delivery as failed, to redeliver).
//
// Worked example (one worker): A#1 runs; events A#2, B#1, A#3 arrive. A#3 replaces A#2 in
// place; when A#1 ends the queue holds [A#3, B#1] and runs A#3, then B#1.
//
// Thread-safe. The runner is called on the worker threads; an exception from it is logged and
// counted as a failed review.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "llmgw/review/webhook.hpp"

namespace llmgw::review {

using ReviewRunner = std::function<void(const PullRequestEvent&)>;

class ReviewQueue {
 public:
  ReviewQueue(ReviewRunner runner, std::size_t max_pending, unsigned workers = 1);
  ~ReviewQueue();  // stop()
  ReviewQueue(const ReviewQueue&) = delete;
  ReviewQueue& operator=(const ReviewQueue&) = delete;

  enum class Admission { queued, superseded, full, stopped };
  Admission submit(PullRequestEvent event);

  struct Stats {
    std::size_t pending = 0;
    std::size_t running = 0;
    std::uint64_t completed = 0;  // runner returned
    std::uint64_t failed = 0;     // runner threw
    std::uint64_t superseded = 0;
    std::uint64_t rejected = 0;  // queue full
  };
  Stats stats() const;

  // Waits until nothing is pending or running; false when `timeout` passed first.
  bool wait_idle(std::chrono::milliseconds timeout);

  // Drops what is pending, lets running reviews finish, joins the workers. Idempotent.
  void stop();

 private:
  void work();

  ReviewRunner runner_;
  std::size_t max_pending_;
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, PullRequestEvent> pending_;  // by "owner/repo#n"
  std::deque<std::string> order_;                    // pending keys, oldest first
  std::set<std::string> running_;
  Stats stats_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace llmgw::review
