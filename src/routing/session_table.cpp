#include "llmgw/routing/session_table.hpp"

#include <algorithm>
#include <functional>
#include <iterator>
#include <list>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace llmgw::routing {
namespace {

// Keyed by the session's ring position (the first 8 bytes of its MD5), not by the header value: a
// client cannot grow the table's memory with long session ids (a header may hold 16 KiB), and two
// ids with the same position have the same owner on the ring anyway.
struct Entry;
using EntryMap = std::unordered_map<std::uint64_t, Entry>;

struct Entry {
  std::shared_ptr<NodeState> home;
  SessionTable::Clock::time_point last_used;
  bool failover = false;  // placed away from an unhealthy owner: returns when the owner recovers
  std::list<EntryMap::iterator>::iterator lru;
};

std::optional<std::size_t> index_of(const RoutingTable& table, const NodeState* node) noexcept {
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (&table.node(i) == node) {
      return i;
    }
  }
  return std::nullopt;
}

// `first`, then base's candidates other than `first`, up to base's attempt limit.
RoutePlan lead_with(const RoutePlan& base, std::size_t first, RouteKind kind,
                    const RoutingPolicy& policy) {
  const std::size_t limit =
      std::clamp<std::size_t>(policy.max_attempts, 1, RoutePlan::kMaxCandidates);
  RoutePlan plan;
  plan.kind = kind;
  plan.candidates[plan.count++] = static_cast<std::uint32_t>(first);
  for (std::size_t i = 0; i < base.count && plan.count < limit; ++i) {
    if (base.candidates[i] != first) {
      plan.candidates[plan.count++] = base.candidates[i];
    }
  }
  return plan;
}

// Sessions are spread evenly: a node takes a new session only while it holds fewer than its fair
// share rounded up. Any slack above that only costs cache (a node holding more sessions than its
// KV slots evicts them in turn), while a placement away from the owner costs nothing once made.
constexpr double kSessionBalance = 1.0;

}  // namespace

struct SessionTable::Impl {
  explicit Impl(SessionTableOptions table_options) : options(table_options) {}

  SessionTableOptions options;
  std::mutex mutex;
  EntryMap entries;
  std::list<EntryMap::iterator> lru;  // least recently used first

  void erase(EntryMap::iterator it) {
    it->second.home->sessions.fetch_sub(1, std::memory_order_relaxed);
    lru.erase(it->second.lru);
    entries.erase(it);
  }

  void expire(Clock::time_point now) {
    while (!lru.empty() && now - lru.front()->second.last_used >= options.idle_timeout) {
      erase(lru.front());
    }
  }

  void touch(EntryMap::iterator it, Clock::time_point now) {
    it->second.last_used = now;
    lru.splice(lru.end(), lru, it->second.lru);
  }

  void insert(std::uint64_t key, std::shared_ptr<NodeState> home, bool failover,
              Clock::time_point now) {
    while (!lru.empty() && entries.size() >= options.max_sessions) {
      erase(lru.front());
    }
    home->sessions.fetch_add(1, std::memory_order_relaxed);
    const auto it = entries.emplace(key, Entry{std::move(home), now, failover, {}}).first;
    lru.push_back(it);
    it->second.lru = std::prev(lru.end());
  }
};

SessionTable::SessionTable(SessionTableOptions options) : impl_(std::make_unique<Impl>(options)) {}

SessionTable::~SessionTable() {
  clear();  // give the counts back: the nodes may outlive the table
}

void SessionTable::clear() {
  std::lock_guard lock(impl_->mutex);
  while (!impl_->lru.empty()) {
    impl_->erase(impl_->lru.front());
  }
}

void SessionTable::set_options(SessionTableOptions options) {
  std::lock_guard lock(impl_->mutex);
  impl_->options = options;
}

RoutePlan SessionTable::plan(const RoutingTable& table, std::uint64_t key_position,
                             std::int64_t total_in_flight, const RoutingPolicy& policy,
                             Clock::time_point now, const Eligibility& eligibility) {
  const RoutePlan base = plan_keyed(table, key_position, total_in_flight, policy, eligibility);
  if (base.empty()) {
    return base;
  }
  const double c = policy.balance_factor;
  const double healthy_weight = eligible_weight(table, eligibility.holders);
  const std::size_t owner = *owner_of(table, key_position, eligibility);
  const bool owner_healthy = table.node(owner).healthy.load(std::memory_order_relaxed);
  const auto below_request_cap = [&](const NodeState& node) {
    return node.in_flight.load(std::memory_order_relaxed) <
           load_cap(c, total_in_flight, node.weight, healthy_weight);
  };

  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);

  if (const auto it = impl_->entries.find(key_position); it != impl_->entries.end()) {
    const Entry& entry = it->second;
    const auto home = index_of(table, entry.home.get());
    const bool keep = home && eligibility.holders.contains(*home) &&
                      entry.home->healthy.load(std::memory_order_relaxed) &&
                      !(entry.failover && owner_healthy);
    if (keep) {
      impl_->touch(it, now);
      // A home may always serve one request per session placed on it; beyond that (a session
      // sending several requests at once) the request cap applies, for that request only.
      const std::int64_t own = entry.home->sessions.load(std::memory_order_relaxed);
      if (!below_request_cap(*entry.home) &&
          entry.home->in_flight.load(std::memory_order_relaxed) >= own) {
        return base;
      }
      const RouteKind kind = *home == owner   ? RouteKind::affinity
                             : entry.failover ? RouteKind::failover
                                              : RouteKind::spill;
      return lead_with(base, *home, kind, policy);
    }
    impl_->erase(it);
  }

  // A new placement: the owner, else the first holder clockwise below both caps (one where the
  // model is loaded first: the order of base, which has the owner first).
  const auto live = static_cast<std::int64_t>(impl_->entries.size());
  std::optional<std::size_t> chosen;
  const auto fits = [&](std::size_t index) {
    const NodeState& node = table.node(index);
    return node.healthy.load(std::memory_order_relaxed) &&
           node.sessions.load(std::memory_order_relaxed) <
               load_cap(kSessionBalance, live, node.weight, healthy_weight) &&
           below_request_cap(node);
  };
  if (fits(owner) && eligibility.holders.contains(owner)) {
    chosen = owner;
  } else if (eligibility.preferred.all()) {
    table.ring().walk_clockwise(key_position, [&](std::size_t index) {
      if (eligibility.holders.contains(index) && fits(index)) {
        chosen = index;
        return false;
      }
      return true;
    });
  } else {
    for (std::size_t i = 0; i < base.count && !chosen; ++i) {
      if (fits(base.candidates[i])) {
        chosen = base.candidates[i];
      }
    }
  }
  const std::size_t home = chosen.value_or(base.first());
  impl_->insert(key_position, table.nodes()[home], !owner_healthy && home != owner, now);
  const RouteKind kind = home == owner    ? RouteKind::affinity
                         : !owner_healthy ? RouteKind::failover
                                          : RouteKind::spill;
  return lead_with(base, home, kind, policy);
}

std::size_t SessionTable::live_sessions(Clock::time_point now) {
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  return impl_->entries.size();
}

std::string SessionTable::home_of(std::uint64_t key_position, Clock::time_point now) {
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  const auto it = impl_->entries.find(key_position);
  return it == impl_->entries.end() ? std::string{} : it->second.home->id;
}

}  // namespace llmgw::routing
