#pragma once

// The queue discipline of one node's admission (docs/DESIGN.md §2.2): which waiting request gets
// the next free slot. Pure logic, no clock of its own and no lock: the server's gate
// (src/server/admission_gate.hpp) owns one per node under its mutex.
//
// Rule. Waiting requests are kept per priority class, each in arrival order. When a slot frees:
//   1. the oldest interactive request goes first;
//   2. unless the oldest batch request has waited at least `batch_aging` (it is *aged*) and
//      arrived before that interactive one: then it goes first. An aged batch request competes
//      with interactive ones by arrival time, so interactive requests that arrive after it can no
//      longer overtake it: a batch request waits at most `batch_aging` plus the interactive
//      requests that were already waiting when it aged (bounded: no starvation);
//   3. with no interactive request waiting, the oldest batch request goes.
// A request whose model is at its per-model cap (the `fits` predicate says no) is passed over
// for this slot and keeps its place; the next in the order above that fits goes instead.
//
// Worked example, batch_aging = 10 s. At t = 0 batch B1 arrives; interactive I1 at t = 2,
// I2 at t = 11. A slot frees at t = 5: I1 (interactive first). Another at t = 12: B1 has waited
// 12 s >= 10 s, so it is aged and competes by arrival: B1 (t = 0) goes before I2 (t = 11).
//
// Thread safety: none (the gate's mutex guards it).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace llmgw::admission {

enum class Priority : std::uint8_t { interactive, batch };
inline constexpr std::size_t kPriorityCount = 2;

std::string_view to_string(Priority priority) noexcept;
// A header value (trimmed, case-insensitive): "interactive" or "batch"; nullopt for anything else.
std::optional<Priority> parse_priority(std::string_view value) noexcept;
// "interactive, batch": the accepted values, for error messages.
std::string_view accepted_priorities() noexcept;

using Clock = std::chrono::steady_clock;

struct QueuedRequest {
  std::uint64_t ticket = 0;  // the caller's handle (unique per queue)
  Priority priority = Priority::interactive;
  Clock::time_point arrived{};
  std::string model;          // for the per-model cap; empty: none known
  std::uint64_t session = 0;  // the session's ring position (the interactive reserve); 0: none
};

class AdmissionQueue {
 public:
  explicit AdmissionQueue(std::chrono::milliseconds batch_aging) : batch_aging_(batch_aging) {}

  void set_batch_aging(std::chrono::milliseconds batch_aging) noexcept {
    batch_aging_ = batch_aging;
  }

  void push(QueuedRequest request);
  // Removes the request with `ticket` (it left, or its wait ended); false when it is not queued.
  bool remove(std::uint64_t ticket);

  // The next request to dispatch at `now` by the rule above, removed from the queue; nullopt when
  // nothing waits or nothing that waits fits.
  using Fits = std::function<bool(const QueuedRequest&)>;
  std::optional<QueuedRequest> pop_next(Clock::time_point now, const Fits& fits);

  std::size_t depth(Priority priority) const noexcept {
    return queues_[static_cast<std::size_t>(priority)].size();
  }
  std::size_t depth() const noexcept { return queues_[0].size() + queues_[1].size(); }
  // How many requests would be dispatched before a new request of `priority` (ignoring aging and
  // model caps): every interactive one for interactive; everything for batch.
  std::size_t ahead_of(Priority priority) const noexcept {
    return priority == Priority::interactive ? depth(Priority::interactive) : depth();
  }

 private:
  std::deque<QueuedRequest>& queue(Priority priority) noexcept {
    return queues_[static_cast<std::size_t>(priority)];
  }

  std::chrono::milliseconds batch_aging_;
  std::deque<QueuedRequest> queues_[kPriorityCount];
};

}  // namespace llmgw::admission
