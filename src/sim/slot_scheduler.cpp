#include "llmgw/sim/slot_scheduler.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

namespace llmgw::sim {

namespace asio = boost::asio;

struct SlotScheduler::Waiter {
  explicit Waiter(const asio::any_io_executor& executor) : wake(executor, 1) {}

  asio::experimental::concurrent_channel<void(boost::system::error_code)> wake;
  // Written under the scheduler's mutex before `wake` is signalled.
  std::optional<KvCache::Lease> lease;
  bool stopped = false;
};

SlotScheduler::SlotScheduler(std::size_t num_slots, std::size_t max_queue, SlotChoice choice)
    : cache_(num_slots, max_queue, choice) {}

SlotScheduler::~SlotScheduler() {
  shutdown();
}

asio::awaitable<SlotScheduler::Acquired> SlotScheduler::acquire(const Tokens& prompt) {
  std::shared_ptr<Waiter> waiter;
  KvCache::Ticket ticket = 0;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      co_return Acquired{Outcome::stopped, {}};
    }
    ticket = next_ticket_++;
    const auto admitted = cache_.admit(ticket, prompt);
    if (admitted.admission == KvCache::Admission::granted) {
      co_return Acquired{Outcome::granted, admitted.lease};
    }
    if (admitted.admission == KvCache::Admission::rejected) {
      co_return Acquired{Outcome::rejected, {}};
    }
    waiter = std::make_shared<Waiter>(co_await asio::this_coro::executor);
    waiters_.emplace(ticket, waiter);
  }
  // If the coroutine is destroyed while it waits (the server stopping), leave no trace: drop out of
  // the queue, or hand back a slot granted but never used.
  struct Abandon {
    SlotScheduler* scheduler;
    KvCache::Ticket ticket;
    std::shared_ptr<Waiter> waiter;
    bool done = false;
    ~Abandon() {
      if (done) {
        return;
      }
      std::optional<KvCache::Lease> unused;
      Tokens kept;  // what the slot holds since it was taken: the reused prefix
      {
        std::lock_guard lock(scheduler->mutex_);
        scheduler->waiters_.erase(ticket);
        scheduler->cache_.withdraw(ticket);
        unused = waiter->lease;
        if (unused) {
          kept = scheduler->cache_.slot_contents(unused->slot);
        }
      }
      if (unused) {
        scheduler->release(unused->slot, std::move(kept));
      }
    }
  } abandon{this, ticket, waiter};

  // Any outcome of the receive (a wake, or the channel closing) leads to the check below.
  (void)co_await waiter->wake.async_receive(asio::as_tuple(asio::use_awaitable));
  std::lock_guard lock(mutex_);
  abandon.done = true;
  waiters_.erase(ticket);
  if (waiter->lease) {
    co_return Acquired{Outcome::granted, *waiter->lease};
  }
  cache_.withdraw(ticket);
  co_return Acquired{Outcome::stopped, {}};
}

void SlotScheduler::release(std::size_t slot, Tokens served) {
  std::lock_guard lock(mutex_);
  auto grants = cache_.release(slot, std::move(served));
  while (!grants.empty()) {
    const auto grant = grants.back();
    grants.pop_back();
    const auto it = waiters_.find(grant.ticket);
    if (it == waiters_.end()) {
      // No one to take it (waiters leave the queue under this lock, so this is defensive): free the
      // slot again, which may grant it to the next waiter.
      auto more = cache_.release(grant.lease.slot, cache_.slot_contents(grant.lease.slot));
      grants.insert(grants.end(), more.begin(), more.end());
      continue;
    }
    it->second->lease = grant.lease;
    it->second->wake.try_send(boost::system::error_code{});
  }
}

void SlotScheduler::shutdown() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  for (auto& [ticket, waiter] : waiters_) {
    if (!waiter->lease) {
      waiter->stopped = true;
      waiter->wake.try_send(boost::system::error_code{});
    }
  }
}

void SlotScheduler::forget() {
  std::lock_guard lock(mutex_);
  cache_.forget();
}

std::size_t SlotScheduler::busy_slots() const {
  std::lock_guard lock(mutex_);
  return cache_.busy_slots();
}

std::size_t SlotScheduler::stored_tokens() const {
  std::lock_guard lock(mutex_);
  std::size_t tokens = 0;
  for (std::size_t slot = 0; slot < cache_.num_slots(); ++slot) {
    tokens += cache_.slot_contents(slot).size();
  }
  return tokens;
}

std::size_t SlotScheduler::queue_depth() const {
  std::lock_guard lock(mutex_);
  return cache_.queue_depth();
}

}  // namespace llmgw::sim
