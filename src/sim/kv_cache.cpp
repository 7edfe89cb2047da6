#include "llmgw/sim/kv_cache.hpp"

#include <algorithm>
#include <utility>

namespace llmgw::sim {

KvCache::KvCache(std::size_t num_slots, std::size_t max_queue)
    : slots_(std::max<std::size_t>(1, num_slots)), max_queue_(max_queue) {}

std::optional<KvCache::Lease> KvCache::take_best_free_slot(const Tokens& prompt) {
  std::optional<std::size_t> best;
  std::size_t best_prefix = 0;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    if (slot.busy) {
      continue;
    }
    const std::size_t prefix = common_prefix(slot.contents, prompt);
    const bool longer = prefix > best_prefix;
    const bool tie_but_older =
        best && prefix == best_prefix && slot.last_used < slots_[*best].last_used;
    if (!best || longer || tie_but_older) {
      best = i;
      best_prefix = prefix;
    }
  }
  if (!best) {
    return std::nullopt;
  }
  Slot& chosen = slots_[*best];
  chosen.busy = true;
  chosen.last_used = ++clock_;
  ++busy_;
  // At least one prompt token is always evaluated, as in llama.cpp's server.
  const std::size_t evaluate_at_least = prompt.empty() ? 0 : 1;
  return Lease{*best, std::min(best_prefix, prompt.size() - evaluate_at_least)};
}

KvCache::AdmitResult KvCache::admit(Ticket ticket, const Tokens& prompt) {
  if (queue_.empty()) {
    if (auto lease = take_best_free_slot(prompt)) {
      return {Admission::granted, *lease};
    }
  }
  if (queue_.size() >= max_queue_) {
    return {Admission::rejected, {}};
  }
  queue_.push_back(Waiter{ticket, prompt});
  return {Admission::queued, {}};
}

std::vector<KvCache::Grant> KvCache::release(std::size_t slot, Tokens served) {
  Slot& released = slots_.at(slot);
  if (released.busy) {
    released.busy = false;
    --busy_;
  }
  released.contents = std::move(served);
  released.last_used = ++clock_;
  std::vector<Grant> grants;
  while (!queue_.empty()) {
    auto lease = take_best_free_slot(queue_.front().prompt);
    if (!lease) {
      break;
    }
    grants.push_back(Grant{queue_.front().ticket, *lease});
    queue_.pop_front();
  }
  return grants;
}

bool KvCache::withdraw(Ticket ticket) {
  const auto it = std::find_if(queue_.begin(), queue_.end(),
                               [ticket](const Waiter& waiter) { return waiter.ticket == ticket; });
  if (it == queue_.end()) {
    return false;
  }
  queue_.erase(it);
  return true;
}

void KvCache::forget() {
  for (Slot& slot : slots_) {
    if (!slot.busy) {
      slot.contents.clear();
    }
  }
}

}  // namespace llmgw::sim
