#pragma once

// The interactive reserve of one node (docs/DESIGN.md §2.2): how many of its slots batch requests
// leave free so that a chat turn finds one at once. Slots are not preempted, so without a reserve
// a chat turn that finds its node full of summaries waits for one to end, however first it is in
// line. Pure logic, no clock of its own and no lock: the server's gate
// (src/server/admission_gate.hpp) owns one per node under its mutex.
//
// Rule. The reserve follows the interactive sessions that use the node. A session is *active* on
// the node while it has had an interactive request admitted or queued there within `window`
// (admission.interactive_reserve_idle_ms); requests without a session key count together as one
// session. With A active sessions, batch requests hold at most
//     cap − min(per_session × A, cap − 1)
// of the node's slots (batch always keeps one). So a node without chats gives batch every slot,
// and a node with one chat session keeps one slot for it: the chat's own request sits in that
// slot while it runs, so batch keeps cap − 1 slots whether the chat is running or thinking. A
// new reserve (a node joining, the gateway starting) holds one session's worth for the first
// `window`, so the first turns of chats arriving under a flood find a slot too.
//
// Worked example, cap 4, per_session 1, window 60 s. t = 0: the gate starts (start hold: batch
// may hold 3). Chat sessions s1 and s2 send turns at t = 1 s and 2 s: A = 2, batch holds at most
// 2. s2 goes quiet; at t = 62 s only s1 (which sent its last turn at t = 40 s) is active: batch 3.
// At t = 101 s nothing is active and the start hold is over: batch may hold all 4.
//
// Thread safety: none (the gate's mutex guards it).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

namespace llmgw::admission {

class InteractiveReserve {
 public:
  using Clock = std::chrono::steady_clock;
  // The key shared by interactive requests without a session key.
  static constexpr std::uint64_t kUnkeyed = 0;

  InteractiveReserve(std::size_t per_session, Clock::duration window, Clock::time_point start);

  // A reload: new size and window; the sessions seen so far are kept.
  void configure(std::size_t per_session, Clock::duration window) noexcept;

  // An interactive request of `session` (its ring position; kUnkeyed without a key) was admitted
  // or queued at `now`.
  void touch(std::uint64_t session, Clock::time_point now);

  // Sessions active at `now` (those quiet for `window` are forgotten first).
  std::size_t active_sessions(Clock::time_point now);
  // Slots batch leaves free on a node with `cap` slots (0: no cap, nothing reserved).
  std::size_t reserved(std::size_t cap, Clock::time_point now);
  // The most slots batch may hold at once: cap − reserved (0 = no cap: unlimited).
  std::size_t batch_limit(std::size_t cap, Clock::time_point now) {
    return cap - reserved(cap, now);
  }

 private:
  struct Seen {
    Clock::time_point last;
    std::list<std::uint64_t>::iterator order;
  };
  void expire(Clock::time_point now);

  std::size_t per_session_;
  Clock::duration window_;
  Clock::time_point start_;
  std::list<std::uint64_t> order_;  // least recently touched first
  std::unordered_map<std::uint64_t, Seen> seen_;
};

}  // namespace llmgw::admission
