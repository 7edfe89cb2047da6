#pragma once

// The emulator's KV cache: `num_slots` slots (Ollama's OLLAMA_NUM_PARALLEL), each holding the token
// sequence it last served, plus the bounded queue of requests waiting for a slot
// (OLLAMA_MAX_QUEUE). Pure bookkeeping with no clock and no I/O, so every rule is unit-testable;
// the asynchronous wait around it lives in the server.
//
// A slot is chosen as Ollama's runner chooses it (runner/ollamarunner/cache.go and
// llamarunner/cache.go, InputCache.LoadCacheSlot), by one of its two policies:
// - SlotChoice::longest (Ollama's default, findLongestCacheSlot): the FREE slot whose contents
//   share the longest common prefix with the prompt, the lowest-numbered on a tie, is reused
//   however short that prefix is. Every prompt shares its chat template's first tokens with every
//   other, so a new conversation overwrites a slot that holds another one even when an empty
//   slot exists.
// - SlotChoice::multi_user (OLLAMA_MULTIUSER_CACHE=1, findBestCacheSlot): the slot with the
//   longest common prefix, busy or not, is reused only when it is free and its whole contents are
//   that prefix (reusing it destroys nothing). Otherwise the common prefix is copied into the
//   least recently used free slot (CopyPrefix), which is the one overwritten: a slot holding a
//   longer history survives a request that shares only its system prompt.
// "Recently used" is when a request last took the slot (Ollama's lastUsed, set at load).
//
// Common to both:
// - Only the uncached suffix is evaluated, and at least one token always is:
//   cached = min(common prefix, prompt size - 1). A taken slot holds the cached prefix at once
//   (Ollama truncates it at load), so a busy slot offers only that much to a copy.
// - With no free slot (or earlier waiters still queued, so arrival order is kept) a request
//   waits in a FIFO queue of at most `max_queue` entries; past that it is rejected (Ollama
//   answers 503).
// - Releasing a slot stores the whole served sequence (prompt + generated tokens) in it and hands
//   free slots to the queued requests in arrival order.
//
// Not thread-safe: callers serialise access.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "llmgw/sim/tokenizer.hpp"

namespace llmgw::sim {

// Ollama's two slot policies (see above); `longest` is its default.
enum class SlotChoice { longest, multi_user };

class KvCache {
 public:
  using Ticket = std::uint64_t;

  struct Lease {
    std::size_t slot = 0;
    std::size_t cached_tokens = 0;  // prompt tokens served from the slot's contents
  };

  enum class Admission { granted, queued, rejected };

  struct AdmitResult {
    Admission admission = Admission::rejected;
    Lease lease;  // meaningful when granted
  };

  struct Grant {
    Ticket ticket = 0;
    Lease lease;
  };

  KvCache(std::size_t num_slots, std::size_t max_queue, SlotChoice choice = SlotChoice::longest);

  // Grants a slot now, queues the request under `ticket`, or rejects it (queue full).
  AdmitResult admit(Ticket ticket, const Tokens& prompt);

  // Frees `slot`, which now holds `served` (prompt + generated tokens), and returns the queued
  // requests that got a slot as a result (in arrival order).
  std::vector<Grant> release(std::size_t slot, Tokens served);

  // Removes a queued request (it gave up). False when `ticket` is not queued.
  bool withdraw(Ticket ticket);

  // Empties every free slot (the model was unloaded); busy slots keep what they will store.
  void forget();

  std::size_t num_slots() const noexcept { return slots_.size(); }
  std::size_t busy_slots() const noexcept { return busy_; }
  std::size_t queue_depth() const noexcept { return queue_.size(); }
  std::size_t max_queue() const noexcept { return max_queue_; }
  const Tokens& slot_contents(std::size_t slot) const { return slots_.at(slot).contents; }

 private:
  struct Slot {
    Tokens contents;
    bool busy = false;
    std::uint64_t last_used = 0;
  };
  struct Waiter {
    Ticket ticket;
    Tokens prompt;
  };

  // The slot Ollama would load for `prompt` and the prefix it keeps; nullopt when none is free.
  std::optional<Lease> choose_slot(const Tokens& prompt) const;
  std::optional<Lease> choose_longest(const Tokens& prompt) const;
  std::optional<Lease> choose_multi_user(const Tokens& prompt) const;
  std::optional<Lease> take_slot(const Tokens& prompt);

  std::vector<Slot> slots_;
  std::deque<Waiter> queue_;
  std::size_t max_queue_;
  SlotChoice choice_;
  std::size_t busy_ = 0;
  std::uint64_t clock_ = 0;
};

}  // namespace llmgw::sim
