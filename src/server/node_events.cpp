#include "node_events.hpp"

namespace llmgw::server::detail {

void NodeEvents::add(std::string_view kind, std::string_view reason,
                     std::chrono::system_clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!events_.empty() && events_.back().kind == kind && events_.back().reason == reason) {
    events_.back().last = now;
    ++events_.back().count;
    return;
  }
  events_.push_back(NodeEvent{now, now, std::string{kind}, std::string{reason}, 1});
  if (events_.size() > kCapacity) {
    events_.pop_front();
  }
}

std::vector<NodeEvent> NodeEvents::recent() const {
  std::lock_guard lock(mutex_);
  return {events_.begin(), events_.end()};
}

}  // namespace llmgw::server::detail
