#include "llmgw/routing/prompt_store.hpp"

#include <iterator>
#include <list>
#include <mutex>
#include <unordered_map>

namespace llmgw::routing {
namespace {

struct PromptEntry;
using PromptMap = std::unordered_map<std::uint64_t, PromptEntry>;

struct PromptEntry {
  StoredPrompt prompt;
  PromptStore::Clock::time_point last_used;
  std::size_t bytes = 0;
  std::list<PromptMap::iterator>::iterator lru;
};

std::size_t cost_of(const StoredPrompt& prompt) {
  return PromptStore::kEntryOverheadBytes + prompt.path.size() + prompt.node.size() +
         prompt.preheat_node.size() + prompt.failed_node.size() +
         (prompt.body ? prompt.body->size() : 0);
}

}  // namespace

struct PromptStore::Impl {
  explicit Impl(PromptStoreOptions store_options) : options(store_options) {}

  PromptStoreOptions options;
  mutable std::mutex mutex;
  PromptMap entries;
  std::list<PromptMap::iterator> lru;  // least recently used first
  std::size_t bytes = 0;
  std::size_t evictions = 0;

  void erase(PromptMap::iterator it) {
    bytes -= it->second.bytes;
    lru.erase(it->second.lru);
    entries.erase(it);
  }

  void expire(Clock::time_point now) {
    while (!lru.empty() && now - lru.front()->second.last_used >= options.idle_timeout) {
      erase(lru.front());
    }
  }

  void make_room(std::size_t needed) {
    while (!lru.empty() && bytes + needed > options.max_bytes) {
      erase(lru.front());
      ++evictions;
    }
  }

  // The live entry of `key`, or end().
  PromptMap::iterator live(std::uint64_t key, Clock::time_point now) {
    expire(now);
    return entries.find(key);
  }

  void recount(PromptEntry& entry) {
    bytes -= entry.bytes;
    entry.bytes = cost_of(entry.prompt);
    bytes += entry.bytes;
  }
};

PromptStore::PromptStore(PromptStoreOptions options) : impl_(std::make_unique<Impl>(options)) {}

PromptStore::~PromptStore() = default;

void PromptStore::remember(std::uint64_t key_position, std::string path, std::string body,
                           std::string node, Clock::time_point now) {
  StoredPrompt prompt{std::move(path), std::make_shared<const std::string>(std::move(body)),
                      std::move(node), {},
                      false,           {}};
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  if (const auto it = impl_->entries.find(key_position); it != impl_->entries.end()) {
    // A turn served elsewhere than a preheat's node leaves the preheat standing: it is still for
    // the session's next turn there (a failover session's turn while its owner is warmed).
    const StoredPrompt& before = it->second.prompt;
    if (!before.preheat_node.empty() && before.preheat_node != prompt.node) {
      prompt.preheat_node = before.preheat_node;
      prompt.preheated = before.preheated;
    }
    if (!before.failed_node.empty() && before.failed_node != prompt.node) {
      prompt.failed_node = before.failed_node;
    }
    impl_->erase(it);
  }
  const std::size_t cost = cost_of(prompt);
  if (cost > impl_->options.max_bytes) {
    return;  // larger than the whole budget: not kept (the older entry is stale, and gone)
  }
  impl_->make_room(cost);
  const auto it =
      impl_->entries.emplace(key_position, PromptEntry{std::move(prompt), now, cost, {}}).first;
  impl_->lru.push_back(it);
  it->second.lru = std::prev(impl_->lru.end());
  impl_->bytes += cost;
}

std::optional<StoredPrompt> PromptStore::find(std::uint64_t key_position, Clock::time_point now) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->live(key_position, now);
  if (it == impl_->entries.end()) {
    return std::nullopt;
  }
  return it->second.prompt;
}

std::vector<std::pair<std::uint64_t, StoredPrompt>> PromptStore::live(Clock::time_point now) {
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  std::vector<std::pair<std::uint64_t, StoredPrompt>> out;
  out.reserve(impl_->lru.size());
  for (const auto& it : impl_->lru) {
    out.emplace_back(it->first, it->second.prompt);
  }
  return out;
}

bool PromptStore::begin_preheat(std::uint64_t key_position, const std::string& node) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->entries.find(key_position);
  if (it == impl_->entries.end() || it->second.prompt.preheat_node == node) {
    return false;
  }
  it->second.prompt.preheat_node = node;
  it->second.prompt.preheated = false;
  it->second.prompt.failed_node.clear();
  impl_->recount(it->second);
  return true;
}

ReturnPreheat PromptStore::return_preheat(std::uint64_t key_position, const std::string& node) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->entries.find(key_position);
  if (it == impl_->entries.end()) {
    return ReturnPreheat::no_prompt;
  }
  StoredPrompt& prompt = it->second.prompt;
  if (prompt.preheat_node == node) {
    return prompt.preheated ? ReturnPreheat::completed : ReturnPreheat::pending;
  }
  if (prompt.failed_node == node) {
    return ReturnPreheat::failed;
  }
  prompt.preheat_node = node;
  prompt.preheated = false;
  prompt.failed_node.clear();
  impl_->recount(it->second);
  return ReturnPreheat::started;
}

void PromptStore::end_preheat(std::uint64_t key_position, const std::string& node, bool completed) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->entries.find(key_position);
  if (it == impl_->entries.end() || it->second.prompt.preheat_node != node) {
    return;  // the session had a turn meanwhile, or another preheat replaced this one
  }
  if (completed) {
    it->second.prompt.preheated = true;
  } else {
    it->second.prompt.preheat_node.clear();
    it->second.prompt.failed_node = node;
    impl_->recount(it->second);
  }
}

std::string PromptStore::preheat_target(std::uint64_t key_position) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->entries.find(key_position);
  return it == impl_->entries.end() ? std::string{} : it->second.prompt.preheat_node;
}

std::optional<PromptStore::RunningPreheat> PromptStore::running_preheat(std::uint64_t key_position,
                                                                        const std::string& node) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->entries.find(key_position);
  if (it == impl_->entries.end() || it->second.prompt.preheated ||
      it->second.prompt.preheat_node != node || !it->second.prompt.body) {
    return std::nullopt;
  }
  return RunningPreheat{it->second.prompt.body->size(), it->second.prompt.node};
}

bool PromptStore::preheated_on(std::uint64_t key_position, const std::string& node) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->entries.find(key_position);
  return it != impl_->entries.end() && it->second.prompt.preheated &&
         it->second.prompt.preheat_node == node;
}

void PromptStore::erase(std::uint64_t key_position) {
  std::lock_guard lock(impl_->mutex);
  if (const auto it = impl_->entries.find(key_position); it != impl_->entries.end()) {
    impl_->erase(it);
  }
}

std::size_t PromptStore::size(Clock::time_point now) {
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  return impl_->entries.size();
}

std::size_t PromptStore::bytes() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->bytes;
}

std::size_t PromptStore::evictions() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->evictions;
}

void PromptStore::set_options(PromptStoreOptions options) {
  std::lock_guard lock(impl_->mutex);
  impl_->options = options;
  impl_->make_room(0);
}

}  // namespace llmgw::routing
