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
  bool failover = false;    // placed away from an unhealthy owner: returns when the owner recovers
  bool interactive = true;  // placed by an interactive request (counted apart for new chats)
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
  ReturnGate may_return;
  std::mutex mutex;
  EntryMap entries;
  std::int64_t interactive_entries = 0;
  std::list<EntryMap::iterator> lru;  // least recently used first

  void erase(EntryMap::iterator it) {
    it->second.home->sessions.fetch_sub(1, std::memory_order_relaxed);
    if (it->second.interactive) {
      it->second.home->interactive_sessions.fetch_sub(1, std::memory_order_relaxed);
      --interactive_entries;
    }
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
              Clock::time_point now, bool interactive = true) {
    while (!lru.empty() && entries.size() >= options.max_sessions) {
      erase(lru.front());
    }
    home->sessions.fetch_add(1, std::memory_order_relaxed);
    if (interactive) {
      home->interactive_sessions.fetch_add(1, std::memory_order_relaxed);
      ++interactive_entries;
    }
    const auto it =
        entries.emplace(key, Entry{std::move(home), now, failover, interactive, {}}).first;
    lru.push_back(it);
    it->second.lru = std::prev(lru.end());
  }

  // The plan of the key's live placement, if it may stay (touched); else nullopt (an entry that
  // may not stay is forgotten). `cached` gets the placement.
  std::optional<RoutePlan> reuse(const Decision& decision, Clock::time_point now, Placement* cached,
                                 bool spill_when_busy);
  // Does the failover placement `entry` end now (its owner is healthy again, may_return agrees)?
  bool returns(const Decision& decision, std::uint64_t key, const Entry& entry) const;
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

void SessionTable::set_return_gate(ReturnGate gate) {
  std::lock_guard lock(impl_->mutex);
  impl_->may_return = std::move(gate);
}

// What one request's placement decision reads: the plain plan (for retries and spills), the key's
// owner among the holders, and the caps.
struct SessionTable::Decision {
  Decision(const RoutingTable& routing_table, std::uint64_t key_position,
           std::int64_t total_in_flight, const RoutingPolicy& routing_policy,
           const Eligibility& node_eligibility)
      : table(routing_table),
        key(key_position),
        in_flight(total_in_flight),
        policy(routing_policy),
        eligibility(node_eligibility),
        base(plan_keyed(table, key, in_flight, policy, eligibility)) {
    if (!base.empty()) {
      healthy_weight = eligible_weight(table, eligibility.holders);
      owner = *owner_of(table, key, eligibility);
      owner_healthy = table.node(owner).healthy.load(std::memory_order_relaxed);
    }
    if (!eligibility.preferred.all()) {
      for (std::size_t i = 0; i < table.size() && !tiered; ++i) {
        tiered = eligibility.preferred.contains(i) && eligibility.holders.contains(i) &&
                 table.node(i).healthy.load(std::memory_order_relaxed);
      }
    }
  }

  // May a new session be placed on `index` while it has room? Routing by model: when the model is
  // loaded (or being served) on some healthy holders, only on those. A session placed on another
  // holder makes that node swap models for every turn it shares with the sessions already there
  // (seconds per load, and the evicted model's KV caches lost), which costs more than an uneven
  // spread of sessions: when every preferred holder is at its fair share, the session goes over
  // the share on one of them (base's first candidate) rather than to a node busy with another
  // model. Worked example: m is loaded on a only and is on disk on a and b, which serves model n;
  // a holds its fair share: the session still goes to a, not to b.
  bool may_take_new(std::size_t index) const {
    return !tiered || eligibility.preferred.contains(index);
  }

  bool below_request_cap(const NodeState& node) const {
    return node.in_flight.load(std::memory_order_relaxed) <
           load_cap(policy.balance_factor, in_flight, node.weight, healthy_weight);
  }

  // Healthy and holding the model: a placement there may stay.
  bool may_keep(std::size_t index) const {
    return eligibility.holders.contains(index) &&
           table.node(index).healthy.load(std::memory_order_relaxed);
  }

  // The nodes a new placement tries, in order: the owner, then the holders clockwise, those
  // where the model is loaded (preferred) before the others. Every holder is in the order: with
  // the catalog on, the eligibility is never `all()`, and taking base's order instead (capped at
  // max_attempts candidates) left the fourth of 4 nodes out, so that a session whose three
  // candidates held their share went over it on its owner (4 chats on 4 nodes shared a node in
  // 57 of 200 key sets; bench/RESULTS.md §6.1.1).
  std::vector<std::size_t> new_placement_order() const {
    std::vector<std::size_t> order;
    if (eligibility.holders.contains(owner)) {
      order.push_back(owner);
    }
    const auto add = [&order](std::size_t index) {
      if (std::find(order.begin(), order.end(), index) == order.end()) {
        order.push_back(index);
      }
    };
    std::vector<std::size_t> not_preferred;
    table.ring().walk_clockwise(key, [&](std::size_t index) {
      if (!eligibility.holders.contains(index)) {
        return true;
      }
      if (eligibility.preferred.contains(index)) {
        add(index);
      } else {
        not_preferred.push_back(index);
      }
      return true;
    });
    for (const std::size_t index : not_preferred) {
      add(index);
    }
    return order;
  }

  RouteKind kind_of(std::size_t home, bool failover) const {
    return home == owner ? RouteKind::affinity : failover ? RouteKind::failover : RouteKind::spill;
  }

  const RoutingTable& table;
  std::uint64_t key;
  std::int64_t in_flight;
  const RoutingPolicy& policy;
  const Eligibility& eligibility;
  RoutePlan base;
  double healthy_weight = 0;
  std::size_t owner = 0;
  bool owner_healthy = true;
  bool tiered = false;  // the model's preferred holders (router.hpp) include a healthy one
};

bool SessionTable::Impl::returns(const Decision& decision, std::uint64_t key,
                                 const Entry& entry) const {
  return entry.failover && decision.owner_healthy &&
         (!may_return || may_return(key, decision.table.node(decision.owner)));
}

std::optional<RoutePlan> SessionTable::Impl::reuse(const Decision& decision, Clock::time_point now,
                                                   Placement* cached, bool spill_when_busy) {
  const auto it = entries.find(decision.key);
  if (it == entries.end()) {
    return std::nullopt;
  }
  const Entry& entry = it->second;
  const auto home = index_of(decision.table, entry.home.get());
  const bool keep = home && decision.may_keep(*home) && !returns(decision, decision.key, entry);
  if (!keep) {
    erase(it);
    return std::nullopt;
  }
  touch(it, now);
  if (cached != nullptr) {
    *cached = Placement{entry.home->id, entry.failover};
  }
  // A home may always serve one request per session placed on it; beyond that (a session
  // sending several requests at once) the request cap applies, for that request only. Not with
  // shared placements: a replica sees only its own share of a node's requests and sessions, so
  // the cap it computes says nothing about the node (two replicas spilled 5 % of follow-up
  // turns on it at 8 concurrent sessions).
  const std::int64_t own = entry.home->sessions.load(std::memory_order_relaxed);
  // Not to a node that would have to swap models for it (may_take_new): the wait is cheaper.
  if (spill_when_busy && !decision.below_request_cap(*entry.home) &&
      entry.home->in_flight.load(std::memory_order_relaxed) >= own &&
      decision.may_take_new(decision.base.first())) {
    return decision.base;
  }
  return lead_with(decision.base, *home, decision.kind_of(*home, entry.failover), decision.policy);
}

RoutePlan SessionTable::plan(const RoutingTable& table, std::uint64_t key_position,
                             std::int64_t total_in_flight, const RoutingPolicy& policy,
                             Clock::time_point now, const Eligibility& eligibility,
                             bool interactive) {
  const Decision decision(table, key_position, total_in_flight, policy, eligibility);
  if (decision.base.empty()) {
    return decision.base;
  }
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  if (auto reused = impl_->reuse(decision, now, nullptr, /*spill_when_busy=*/true)) {
    return *reused;
  }

  // A new placement: the first node of the order below both caps. The fair share counts the
  // sessions of the request's class (interactive) or all of them (batch).
  const auto live =
      interactive ? impl_->interactive_entries : static_cast<std::int64_t>(impl_->entries.size());
  const auto fits = [&](std::size_t index) {
    const NodeState& node = table.node(index);
    const auto& placed = interactive ? node.interactive_sessions : node.sessions;
    return node.healthy.load(std::memory_order_relaxed) &&
           placed.load(std::memory_order_relaxed) <
               load_cap(kSessionBalance, live, node.weight, decision.healthy_weight) &&
           decision.below_request_cap(node) && decision.may_take_new(index);
  };
  const auto order = decision.new_placement_order();
  const auto chosen = std::find_if(order.begin(), order.end(), fits);
  std::size_t home = chosen != order.end() ? *chosen : decision.base.first();
  if (!decision.may_take_new(home)) {
    // base's first is a holder that must swap models (every preferred one is full of requests):
    // the session still goes to a preferred one, the first in order, and waits there.
    const auto preferred = std::find_if(order.begin(), order.end(), [&](std::size_t index) {
      return decision.may_take_new(index) && decision.may_keep(index);
    });
    home = preferred != order.end() ? *preferred : home;
  }
  const bool failover = !decision.owner_healthy && home != decision.owner;
  impl_->insert(key_position, table.nodes()[home], failover, now, interactive);
  return lead_with(decision.base, home, decision.kind_of(home, failover), policy);
}

std::optional<CachedRoute> SessionTable::cached_plan(
    const RoutingTable& table, std::uint64_t key_position, std::int64_t total_in_flight,
    const RoutingPolicy& policy, Clock::time_point now, const Eligibility& eligibility) {
  const Decision decision(table, key_position, total_in_flight, policy, eligibility);
  if (decision.base.empty()) {
    return CachedRoute{decision.base, {}};
  }
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  CachedRoute cached;
  if (auto reused = impl_->reuse(decision, now, &cached.placement, /*spill_when_busy=*/false)) {
    cached.plan = *reused;
    return cached;
  }
  return std::nullopt;
}

PlacementRequest SessionTable::placement_request(const RoutingTable& table,
                                                 std::uint64_t key_position,
                                                 std::int64_t total_in_flight,
                                                 const RoutingPolicy& policy,
                                                 const Eligibility& eligibility) const {
  const Decision decision(table, key_position, total_in_flight, policy, eligibility);
  PlacementRequest request;
  request.key_position = key_position;
  if (decision.base.empty()) {
    return request;
  }
  request.owner = table.node(decision.owner).id;
  request.owner_healthy = decision.owner_healthy;
  request.fallback = table.node(decision.base.first()).id;
  request.healthy_weight = decision.healthy_weight;
  {
    std::lock_guard lock(impl_->mutex);
    request.idle = impl_->options.idle_timeout;
  }
  auto order = decision.new_placement_order();
  const std::size_t candidates = order.size();
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (std::find(order.begin(), order.end(), i) == order.end()) {
      order.push_back(i);
    }
  }
  for (std::size_t position = 0; position < order.size(); ++position) {
    const std::size_t index = order[position];
    const NodeState& node = table.node(index);
    const bool keep = decision.may_keep(index);
    request.nodes.push_back({node.id, node.weight, keep,
                             keep && position < candidates && decision.below_request_cap(node) &&
                                 decision.may_take_new(index)});
  }
  return request;
}

RoutePlan SessionTable::adopt(const RoutingTable& table, std::uint64_t key_position,
                              const Placement& placement, std::int64_t total_in_flight,
                              const RoutingPolicy& policy, Clock::time_point now,
                              const Eligibility& eligibility) {
  const Decision decision(table, key_position, total_in_flight, policy, eligibility);
  std::optional<std::size_t> home;
  for (std::size_t i = 0; i < table.size(); ++i) {
    if (table.node(i).id == placement.home) {
      home = i;
    }
  }
  if (decision.base.empty() || !home) {
    return decision.base;
  }
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  if (const auto it = impl_->entries.find(key_position); it != impl_->entries.end()) {
    impl_->erase(it);
  }
  impl_->insert(key_position, table.nodes()[*home], placement.failover, now);
  return lead_with(decision.base, *home, decision.kind_of(*home, placement.failover), policy);
}

void SessionTable::forget_unless(std::uint64_t key_position, const Placement& placement) {
  std::lock_guard lock(impl_->mutex);
  const auto it = impl_->entries.find(key_position);
  if (it != impl_->entries.end() &&
      (it->second.home->id != placement.home || it->second.failover != placement.failover)) {
    impl_->erase(it);
  }
}

std::vector<std::pair<std::uint64_t, Placement>> SessionTable::placements(Clock::time_point now) {
  std::lock_guard lock(impl_->mutex);
  impl_->expire(now);
  std::vector<std::pair<std::uint64_t, Placement>> all;
  all.reserve(impl_->entries.size());
  for (const auto& [position, entry] : impl_->entries) {
    all.emplace_back(position, Placement{entry.home->id, entry.failover});
  }
  return all;
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
