#include "llmgw/review/review_queue.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace llmgw::review {
namespace {

std::string key_of(const PullRequestEvent& event) {
  return event.repo.full_name() + "#" + std::to_string(event.number);
}

}  // namespace

ReviewQueue::ReviewQueue(ReviewRunner runner, std::size_t max_pending, unsigned workers)
    : runner_(std::move(runner)), max_pending_(std::max<std::size_t>(1, max_pending)) {
  for (unsigned i = 0; i < std::max(1U, workers); ++i) {
    workers_.emplace_back([this] { work(); });
  }
}

ReviewQueue::~ReviewQueue() {
  stop();
}

ReviewQueue::Admission ReviewQueue::submit(PullRequestEvent event) {
  const auto key = key_of(event);
  std::lock_guard lock{mutex_};
  if (stopping_) {
    return Admission::stopped;
  }
  if (const auto it = pending_.find(key); it != pending_.end()) {
    it->second = std::move(event);  // newest head wins, in the older one's place
    ++stats_.superseded;
    return Admission::superseded;
  }
  if (pending_.size() >= max_pending_) {
    ++stats_.rejected;
    return Admission::full;
  }
  pending_.emplace(key, std::move(event));
  order_.push_back(key);
  changed_.notify_all();
  return Admission::queued;
}

ReviewQueue::Stats ReviewQueue::stats() const {
  std::lock_guard lock{mutex_};
  auto stats = stats_;
  stats.pending = pending_.size();
  stats.running = running_.size();
  return stats;
}

bool ReviewQueue::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock{mutex_};
  return changed_.wait_for(lock, timeout, [this] { return pending_.empty() && running_.empty(); });
}

void ReviewQueue::stop() {
  {
    std::lock_guard lock{mutex_};
    if (stopping_ && workers_.empty()) {
      return;
    }
    stopping_ = true;
    pending_.clear();
    order_.clear();
    changed_.notify_all();
  }
  for (auto& worker : workers_) {
    if (worker.joinable()) {
      worker.join();
    }
  }
  std::lock_guard lock{mutex_};
  workers_.clear();
}

void ReviewQueue::work() {
  std::unique_lock lock{mutex_};
  while (true) {
    // The oldest pending PR that is not being reviewed right now.
    auto next = order_.end();
    changed_.wait(lock, [&] {
      next = std::find_if(order_.begin(), order_.end(),
                          [&](const std::string& key) { return !running_.contains(key); });
      return stopping_ || next != order_.end();
    });
    if (stopping_) {
      return;
    }
    const auto key = *next;
    order_.erase(next);
    auto event = std::move(pending_.at(key));
    pending_.erase(key);
    running_.insert(key);
    lock.unlock();
    bool ok = true;
    try {
      runner_(event);
    } catch (const std::exception& e) {
      ok = false;
      spdlog::error("review of {} at {} failed: {}", key, event.head_sha.substr(0, 12), e.what());
    }
    lock.lock();
    running_.erase(key);
    ++(ok ? stats_.completed : stats_.failed);
    changed_.notify_all();
  }
}

}  // namespace llmgw::review
