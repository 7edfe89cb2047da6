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
};

Eligible eligible_nodes(const RoutingTable& table) noexcept {
  Eligible eligible;
  for (const auto& node : table.nodes()) {
    if (node->healthy.load(std::memory_order_relaxed)) {
      ++eligible.count;
      eligible.weight += node->weight;
    }
  }
  return eligible;
}

std::int64_t cap_for(double weight, const Eligible& eligible, std::int64_t total_in_flight,
                     double balance_factor) noexcept {
  return load_cap(balance_factor, total_in_flight, weight, eligible.weight);
}

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

double eligible_weight(const RoutingTable& table) noexcept {
  return eligible_nodes(table).weight;
}

RoutingTable::RoutingTable(std::vector<std::shared_ptr<NodeState>> nodes, unsigned virtual_nodes)
    : nodes_(std::move(nodes)), ring_(members_of(nodes_), virtual_nodes) {}

std::int64_t bounded_load_cap(const RoutingTable& table, std::size_t node,
                              std::int64_t total_in_flight, double balance_factor) noexcept {
  return cap_for(table.node(node).weight, eligible_nodes(table), total_in_flight, balance_factor);
}

RoutePlan plan_keyed(const RoutingTable& table, std::uint64_t key_position,
                     std::int64_t total_in_flight, const RoutingPolicy& policy) noexcept {
  RoutePlan plan;
  if (table.size() == 0) {
    return plan;
  }
  const std::size_t limit = attempt_limit(policy);
  const Eligible eligible = eligible_nodes(table);
  const bool bounded = policy.balance_factor > 0.0;

  // Clockwise order of distinct nodes, split into: healthy with room, healthy but full, unhealthy.
  std::array<std::uint32_t, RoutePlan::kMaxCandidates> full{};
  std::size_t full_count = 0;
  std::array<std::uint32_t, RoutePlan::kMaxCandidates> down{};
  std::size_t down_count = 0;
  bool owner_seen = false;
  bool owner_healthy = true;
  std::size_t owner = 0;

  table.ring().walk_clockwise(key_position, [&](std::size_t index) {
    const NodeState& node = table.node(index);
    if (!owner_seen) {
      owner_seen = true;
      owner = index;
      owner_healthy = node.healthy.load(std::memory_order_relaxed);
    }
    if (!node.healthy.load(std::memory_order_relaxed)) {
      if (down_count < down.size()) {
        down[down_count++] = static_cast<std::uint32_t>(index);
      }
    } else if (bounded &&
               node.in_flight.load(std::memory_order_relaxed) >=
                   cap_for(node.weight, eligible, total_in_flight, policy.balance_factor)) {
      if (full_count < full.size()) {
        full[full_count++] = static_cast<std::uint32_t>(index);
      }
    } else {
      push(plan, index, limit);
    }
    return plan.count < limit;
  });

  // Fill the remaining attempts: healthy-but-full nodes, then (only if nothing is healthy) the
  // unhealthy ones, so that a stale health view cannot turn every request into a 502.
  for (std::size_t i = 0; i < full_count; ++i) {
    push(plan, full[i], limit);
  }
  if (eligible.count == 0) {
    for (std::size_t i = 0; i < down_count; ++i) {
      push(plan, down[i], limit);
    }
  }
  if (plan.count == 0) {
    return plan;
  }
  if (plan.first() == owner) {
    plan.kind = RouteKind::affinity;
  } else if (!owner_healthy) {
    plan.kind = RouteKind::failover;
  } else {
    plan.kind = RouteKind::spill;
  }
  return plan;
}

RoutePlan plan_round_robin(const RoutingTable& table, std::uint64_t ticket,
                           const RoutingPolicy& policy) noexcept {
  RoutePlan plan;
  plan.kind = RouteKind::round_robin;
  const std::size_t size = table.size();
  if (size == 0) {
    return plan;
  }
  const std::size_t limit = attempt_limit(policy);
  const std::size_t healthy = eligible_nodes(table).count;
  if (healthy == 0) {
    // Nothing is known to be healthy: try them all in turn rather than refuse outright.
    const std::size_t start = static_cast<std::size_t>(ticket % size);
    for (std::size_t i = 0; i < size; ++i) {
      push(plan, (start + i) % size, limit);
    }
    return plan;
  }
  // The ticket-th healthy node, then the healthy ones after it.
  std::size_t skip = static_cast<std::size_t>(ticket % healthy);
  std::size_t start = 0;
  for (std::size_t i = 0; i < size; ++i) {
    if (table.node(i).healthy.load(std::memory_order_relaxed)) {
      if (skip == 0) {
        start = i;
        break;
      }
      --skip;
    }
  }
  for (std::size_t i = 0; i < size && plan.count < limit; ++i) {
    const std::size_t index = (start + i) % size;
    if (table.node(index).healthy.load(std::memory_order_relaxed)) {
      push(plan, index, limit);
    }
  }
  return plan;
}

}  // namespace llmgw::routing
