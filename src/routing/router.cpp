#include "llmgw/routing/router.hpp"

#include <algorithm>
#include <cmath>

namespace llmgw::routing {

std::string_view to_string(RouteKind kind) noexcept {
  switch (kind) {
    case RouteKind::affinity:
      return "affinity";
    case RouteKind::round_robin:
      return "round_robin";
    case RouteKind::failover:
      return "failover";
    case RouteKind::spill:
      return "spill";
  }
  return "unknown";
}

namespace {

std::vector<RingMember> members_of(const std::vector<std::shared_ptr<NodeState>>& nodes) {
  std::vector<RingMember> members;
  members.reserve(nodes.size());
  for (const auto& node : nodes) {
    members.push_back({node->id, node->weight});
  }
  return members;
}

struct Eligible {
  std::size_t count = 0;
  double weight = 0.0;
  std::size_t preferred = 0;  // healthy holders where the model is loaded
};

bool is_healthy(const NodeState& node) noexcept {
  return node.healthy.load(std::memory_order_relaxed);
}

Eligible eligible_nodes(const RoutingTable& table, const Eligibility& eligibility) noexcept {
  Eligible eligible;
  for (std::size_t i = 0; i < table.size(); ++i) {
    const NodeState& node = table.node(i);
    if (eligibility.holders.contains(i) && is_healthy(node)) {
      ++eligible.count;
      eligible.weight += node.weight;
      eligible.preferred += eligibility.preferred.contains(i) ? 1 : 0;
    }
  }
  return eligible;
}

// Whether the preferred tier applies: some, not all, nodes are preferred, and one is a healthy
// holder (with none, the tier is empty and the holders' order applies).
bool tiered(const Eligibility& eligibility, const Eligible& eligible) noexcept {
  return !eligibility.preferred.all() && eligible.preferred > 0;
}

std::int64_t cap_for(double weight, const Eligible& eligible, std::int64_t total_in_flight,
                     double balance_factor) noexcept {
  return load_cap(balance_factor, total_in_flight, weight, eligible.weight);
}

// Up to kMaxCandidates node indices, in the order they were added.
struct Group {
  std::array<std::uint32_t, RoutePlan::kMaxCandidates> nodes{};
  std::size_t count = 0;
  void add(std::size_t node) noexcept {
    if (count < nodes.size()) {
      nodes[count++] = static_cast<std::uint32_t>(node);
    }
  }
};

std::size_t attempt_limit(const RoutingPolicy& policy) noexcept {
  return std::clamp<std::size_t>(policy.max_attempts, 1, RoutePlan::kMaxCandidates);
}

void push(RoutePlan& plan, std::size_t node, std::size_t limit) noexcept {
  if (plan.count < limit) {
    plan.candidates[plan.count++] = static_cast<std::uint32_t>(node);
  }
}

}  // namespace

std::int64_t load_cap(double balance_factor, std::int64_t total, double weight,
                      double eligible_weight) noexcept {
  if (balance_factor <= 0.0 || eligible_weight <= 0.0) {
    return 0;
  }
  const double cap = balance_factor * static_cast<double>(total + 1) * (weight / eligible_weight);
  // A tiny epsilon keeps exact products (1.25 × 8 / 2 = 5) from rounding up through float error.
  return static_cast<std::int64_t>(std::ceil(cap - 1e-9));
}

NodeMask::NodeMask(std::size_t size) : all_(false), large_(size > 64 ? (size - 1) / 64 : 0, 0) {}

void NodeMask::add(std::size_t node) {
  if (all_) {
    return;
  }
  if (node < 64) {
    small_ |= std::uint64_t{1} << node;
    return;
  }
  const std::size_t word = node / 64 - 1;
  if (word >= large_.size()) {
    large_.resize(word + 1, 0);
  }
  large_[word] |= std::uint64_t{1} << (node % 64);
}

bool NodeMask::empty() const noexcept {
  return !all_ && small_ == 0 &&
         std::all_of(large_.begin(), large_.end(), [](std::uint64_t word) { return word == 0; });
}

double eligible_weight(const RoutingTable& table, const NodeMask& holders) noexcept {
  return eligible_nodes(table, {holders, {}}).weight;
}

RoutingTable::RoutingTable(std::vector<std::shared_ptr<NodeState>> nodes, unsigned virtual_nodes)
    : nodes_(std::move(nodes)), ring_(members_of(nodes_), virtual_nodes) {}

std::int64_t bounded_load_cap(const RoutingTable& table, std::size_t node,
                              std::int64_t total_in_flight, double balance_factor,
                              const NodeMask& holders) noexcept {
  return cap_for(table.node(node).weight, eligible_nodes(table, {holders, {}}), total_in_flight,
                 balance_factor);
}

std::optional<std::size_t> owner_of(const RoutingTable& table, std::uint64_t key_position,
                                    const Eligibility& eligibility) noexcept {
  const bool use_preferred = tiered(eligibility, eligible_nodes(table, eligibility));
  std::optional<std::size_t> owner;
  table.ring().walk_clockwise(key_position, [&](std::size_t index) {
    if (!eligibility.holders.contains(index)) {
      return true;
    }
    if (use_preferred && !eligibility.preferred.contains(index)) {
      return true;
    }
    owner = index;
    return false;
  });
  return owner;
}

RoutePlan plan_keyed(const RoutingTable& table, std::uint64_t key_position,
                     std::int64_t total_in_flight, const RoutingPolicy& policy,
                     const Eligibility& eligibility) noexcept {
  RoutePlan plan;
  const auto owner = owner_of(table, key_position, eligibility);
  if (!owner) {
    return plan;
  }
  const std::size_t limit = attempt_limit(policy);
  const Eligible eligible = eligible_nodes(table, eligibility);
  const bool use_preferred = tiered(eligibility, eligible);
  const bool bounded = policy.balance_factor > 0.0;

  // Clockwise order of distinct holders, split into: healthy with room, healthy but full,
  // unhealthy; the first two each in two tiers, preferred (tier 0) and not (tier 1).
  std::array<Group, 2> room;
  std::array<Group, 2> full;
  Group down;
  table.ring().walk_clockwise(key_position, [&](std::size_t index) {
    if (!eligibility.holders.contains(index)) {
      return true;
    }
    const NodeState& node = table.node(index);
    const std::size_t tier = use_preferred && !eligibility.preferred.contains(index) ? 1 : 0;
    if (!is_healthy(node)) {
      down.add(index);
    } else if (bounded &&
               node.in_flight.load(std::memory_order_relaxed) >=
                   cap_for(node.weight, eligible, total_in_flight, policy.balance_factor)) {
      full[tier].add(index);
    } else {
      room[tier].add(index);
    }
    // Enough preferred candidates with room end the walk early (the common case).
    return room[0].count < limit;
  });
  // Fill the attempts: room (preferred first), then healthy-but-full, then (only if no holder is
  // healthy) the unhealthy ones, so that a stale health view cannot turn every request into a 502.
  for (const Group* group : {&room[0], &room[1], &full[0], &full[1]}) {
    for (std::size_t i = 0; i < group->count; ++i) {
      push(plan, group->nodes[i], limit);
    }
  }
  if (eligible.count == 0) {
    for (std::size_t i = 0; i < down.count; ++i) {
      push(plan, down.nodes[i], limit);
    }
  }
  if (plan.count == 0) {
    return plan;
  }
  if (plan.first() == *owner) {
    plan.kind = RouteKind::affinity;
  } else if (!is_healthy(table.node(*owner))) {
    plan.kind = RouteKind::failover;
  } else {
    plan.kind = RouteKind::spill;
  }
  return plan;
}

RoutePlan lead_with(const RoutingTable& table, std::uint64_t key_position, RoutePlan plan,
                    std::size_t node, const RoutingPolicy& policy,
                    const Eligibility& eligibility) noexcept {
  const auto lead = static_cast<std::uint32_t>(node);
  const auto end = plan.candidates.begin() + static_cast<std::ptrdiff_t>(plan.count);
  auto at = std::find(plan.candidates.begin(), end, lead);
  if (at == end) {
    plan.count = std::min(plan.count + 1, attempt_limit(policy));
    at = plan.candidates.begin() + static_cast<std::ptrdiff_t>(plan.count - 1);
    *at = lead;  // (replaces the last candidate when the plan was full)
  }
  std::rotate(plan.candidates.begin(), at, at + 1);
  const auto owner = owner_of(table, key_position, eligibility);
  if (owner == node) {
    plan.kind = RouteKind::affinity;
  } else if (owner && !is_healthy(table.node(*owner))) {
    plan.kind = RouteKind::failover;
  } else {
    plan.kind = RouteKind::spill;
  }
  return plan;
}

RoutePlan plan_round_robin(const RoutingTable& table, std::uint64_t ticket,
                           const RoutingPolicy& policy, const Eligibility& eligibility) noexcept {
  RoutePlan plan;
  plan.kind = RouteKind::round_robin;
  const std::size_t size = table.size();
  if (size == 0) {
    return plan;
  }
  const std::size_t limit = attempt_limit(policy);
  const Eligible eligible = eligible_nodes(table, eligibility);
  const auto& holders = eligibility.holders;
  if (eligible.count == 0) {
    // No holder is known to be healthy: try them all in turn rather than refuse outright.
    const std::size_t start = static_cast<std::size_t>(ticket % size);
    for (std::size_t i = 0; i < size; ++i) {
      if (holders.contains((start + i) % size)) {
        push(plan, (start + i) % size, limit);
      }
    }
    return plan;
  }
  // The ticket-th node of the first tier (healthy preferred holders, else healthy holders), then
  // the healthy holders after it, that tier first.
  const bool use_preferred = tiered(eligibility, eligible);
  const auto in_tier = [&](std::size_t index, bool preferred_tier) {
    return holders.contains(index) && is_healthy(table.node(index)) &&
           (!preferred_tier || eligibility.preferred.contains(index));
  };
  std::size_t skip =
      static_cast<std::size_t>(ticket % (use_preferred ? eligible.preferred : eligible.count));
  std::size_t start = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (in_tier(i, use_preferred)) {
      if (skip == 0) {
        start = i;
        break;
      }
      --skip;
    }
  }
  for (const bool preferred_tier : {true, false}) {
    for (std::size_t i = 0; i < size && plan.count < limit; ++i) {
      const std::size_t index = (start + i) % size;
      const bool preferred = use_preferred && eligibility.preferred.contains(index);
      if (in_tier(index, false) && preferred == (preferred_tier && use_preferred)) {
        push(plan, index, limit);
      }
    }
    if (!use_preferred) {
      break;
    }
  }
  return plan;
}

}  // namespace llmgw::routing
