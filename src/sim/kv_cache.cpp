#include "llmgw/sim/kv_cache.hpp"

#include <algorithm>
#include <utility>

namespace llmgw::sim {

KvCache::KvCache(std::size_t num_slots, std::size_t max_queue, SlotChoice choice)
    : slots_(std::max<std::size_t>(1, num_slots)), max_queue_(max_queue), choice_(choice) {}

std::optional<KvCache::Lease> KvCache::choose_slot(const Tokens& prompt) const {
  return choice_ == SlotChoice::multi_user ? choose_multi_user(prompt) : choose_longest(prompt);
}

// findLongestCacheSlot: the free slot with the longest common prefix, the first on a tie.
std::optional<KvCache::Lease> KvCache::choose_longest(const Tokens& prompt) const {
  std::optional<Lease> best;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    if (slots_[i].busy) {
      continue;
    }
    const std::size_t prefix = common_prefix(slots_[i].contents, prompt);
    if (!best || prefix > best->cached_tokens) {
      best = Lease{i, prefix};
    }
  }
  return best;
}

// findBestCacheSlot. Worked example, 3 slots: slot 0 holds session A's 3,000-token history
// (loaded last), slot 1 session B's, slot 2 is empty (never used). Session C's first turn shares
// A's 20-token system prompt: the longest prefix is slot 0's 20 tokens, but slot 0 holds more than
// that, so the 20 tokens are copied into the least recently used free slot, slot 2, and A's
// history survives. A's next turn then finds all of slot 0 as its prefix and reuses it.
std::optional<KvCache::Lease> KvCache::choose_multi_user(const Tokens& prompt) const {
  std::size_t longest_slot = 0;
  std::size_t longest = 0;
  std::optional<std::size_t> oldest_free;
  for (std::size_t i = 0; i < slots_.size(); ++i) {
    const Slot& slot = slots_[i];
    const std::size_t prefix = common_prefix(slot.contents, prompt);
    if (i == 0 || prefix > longest) {
      longest = prefix;
      longest_slot = i;
    }
    if (!slot.busy && (!oldest_free || slot.last_used < slots_[*oldest_free].last_used)) {
      oldest_free = i;
    }
  }
  const Slot& candidate = slots_[longest_slot];
  if (!candidate.busy && longest == candidate.contents.size()) {
    return Lease{longest_slot, longest};  // reusing it destroys nothing
  }
  if (!oldest_free) {
    return std::nullopt;
  }
  // The prefix is copied from the longest slot (which keeps its contents) into the oldest free
  // one; take_slot stores it there.
  return Lease{*oldest_free, longest};
}

std::optional<KvCache::Lease> KvCache::take_slot(const Tokens& prompt) {
  auto lease = choose_slot(prompt);
  if (!lease) {
    return std::nullopt;
  }
  // At least one prompt token is always evaluated ("leave one input to sample").
  const std::size_t evaluate_at_least = prompt.empty() ? 0 : 1;
  lease->cached_tokens = std::min(lease->cached_tokens, prompt.size() - evaluate_at_least);
  Slot& chosen = slots_[lease->slot];
  chosen.busy = true;
  chosen.last_used = ++clock_;
  // Ollama keeps only the reused prefix in the slot from now on (slot.Inputs = prompt[:numPast]).
  chosen.contents.assign(prompt.begin(),
                         prompt.begin() + static_cast<std::ptrdiff_t>(lease->cached_tokens));
  ++busy_;
  return lease;
}

KvCache::AdmitResult KvCache::admit(Ticket ticket, const Tokens& prompt) {
  if (queue_.empty()) {
    if (auto lease = take_slot(prompt)) {
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
  std::vector<Grant> grants;
  while (!queue_.empty()) {
    auto lease = take_slot(queue_.front().prompt);
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
