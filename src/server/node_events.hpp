#pragma once

// Internal: a node's recent health events (failures, ejections, readmissions) with their reasons,
// for /health and the /status page. Bounded: the newest kCapacity distinct events, a repeat of
// the newest one (the same kind and reason) only counts up, so a node failing every request
// keeps one line, not a flood.
//
// Thread safety: every member takes the mutex; add() runs only when something fails or the
// node's state changes, never on a request that goes well.

#include <chrono>
#include <cstddef>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::server::detail {

struct NodeEvent {
  std::chrono::system_clock::time_point first;  // the first of the run
  std::chrono::system_clock::time_point last;   // the latest of the run
  std::string kind;                             // "failure", "ejected", "readmitted"
  std::string reason;
  std::size_t count = 1;  // events in the run
};

class NodeEvents {
 public:
  static constexpr std::size_t kCapacity = 8;

  void add(std::string_view kind, std::string_view reason,
           std::chrono::system_clock::time_point now = std::chrono::system_clock::now());
  // Oldest first.
  std::vector<NodeEvent> recent() const;

 private:
  mutable std::mutex mutex_;
  std::deque<NodeEvent> events_;
};

}  // namespace llmgw::server::detail
