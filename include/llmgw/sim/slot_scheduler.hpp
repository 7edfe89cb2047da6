#pragma once

// The asynchronous, thread-safe shell around KvCache: a handler coroutine co_awaits a slot, waiting
// in the bounded queue when all slots are busy. A waiter is woken through a one-slot concurrent
// channel, which is safe whatever thread releases the slot and whether the wake comes before or
// after the waiter starts waiting.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "llmgw/sim/kv_cache.hpp"

namespace llmgw::sim {

class SlotScheduler {
 public:
  enum class Outcome { granted, rejected, stopped };

  struct Acquired {
    Outcome outcome = Outcome::stopped;
    KvCache::Lease lease;
  };

  SlotScheduler(std::size_t num_slots, std::size_t max_queue,
                SlotChoice choice = SlotChoice::longest);
  ~SlotScheduler();
  SlotScheduler(const SlotScheduler&) = delete;
  SlotScheduler& operator=(const SlotScheduler&) = delete;

  // A slot for `prompt` (now or after queueing), `rejected` when the queue is full, `stopped` when
  // shutdown() ran first.
  boost::asio::awaitable<Acquired> acquire(const Tokens& prompt);

  // Frees `slot`, which now holds `served`, and wakes the waiters that got a slot.
  void release(std::size_t slot, Tokens served);

  // Wakes every waiter with `stopped` and refuses later requests.
  void shutdown();

  // Empties the free slots: the model was unloaded, so its KV cache is gone.
  void forget();

  std::size_t busy_slots() const;
  // Tokens held in all slots together (what later requests could reuse).
  std::size_t stored_tokens() const;
  std::size_t queue_depth() const;

 private:
  struct Waiter;

  mutable std::mutex mutex_;
  KvCache cache_;
  std::unordered_map<KvCache::Ticket, std::shared_ptr<Waiter>> waiters_;
  KvCache::Ticket next_ticket_ = 1;
  bool stopping_ = false;
};

}  // namespace llmgw::sim
