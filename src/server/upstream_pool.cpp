#include "upstream_pool.hpp"

#include <algorithm>

#include "llmgw/net/http_types.hpp"

namespace llmgw::server::detail {

std::optional<Stream> UpstreamPool::take(const std::string& key, Clock::duration max_idle_age,
                                         Clock::time_point now) {
  const auto it = idle_.find(key);
  if (it == idle_.end()) {
    return std::nullopt;
  }
  auto& idle = it->second;
  // The oldest sit at the front: drop the ones past their age first, in one sweep.
  const auto fresh = std::find_if(idle.begin(), idle.end(), [&](const Idle& entry) {
    return now - entry.since < max_idle_age;
  });
  discarded_ += static_cast<std::uint64_t>(fresh - idle.begin());
  idle.erase(idle.begin(), fresh);  // closes them
  while (!idle.empty()) {
    Idle entry = std::move(idle.back());
    idle.pop_back();
    // Over TLS too: a node that closes sends close_notify, and nothing else may come unasked.
    if (!net::peer_closed_or_sent(entry.stream.socket().native_handle())) {
      return std::optional<Stream>{std::move(entry.stream)};
    }
    ++discarded_;
  }
  return std::nullopt;
}

void UpstreamPool::put(const std::string& key, Stream stream, std::size_t max_idle,
                       Clock::time_point now) {
  auto& idle = idle_[key];
  if (idle.size() < max_idle) {
    idle.push_back({std::move(stream), now});
  }
}

void UpstreamPool::clear() {
  idle_.clear();
}

std::size_t UpstreamPool::idle_count(const std::string& key) const {
  const auto it = idle_.find(key);
  return it == idle_.end() ? 0 : it->second.size();
}

}  // namespace llmgw::server::detail
