#pragma once

// Routing policy around the pure ring (DESIGN.md §1–2). The ring says who owns a key; the router
// adds health, bounded loads, failover order and round-robin.
//
// Bounded loads (balance factor c; 0 = plain ring). With N eligible (healthy) nodes and T requests
// in flight through this gateway, node i is full when in_flight_i >= ceil(c × (T + 1) × w_i / W),
// where w_i is its weight and W the eligible nodes' total weight (with equal weights that is the
// DESIGN rule ceil(c × (T + 1) / N)). A keyed request goes to its owner unless the owner is full,
// else to the next distinct node clockwise that is not full; it returns to its owner as soon as the
// owner has room, because the owner is always tried first.
//
// Worked example, c = 1.25, 3 equal nodes, T = 8 in flight (owner a has 5, b 2, c 1):
//   cap = ceil(1.25 × 9 / 3) = 4. a is full (5 >= 4), the walk from the key visits a, c, b:
//   the request goes to c with route "spill". When a drops to 3 the same key goes to a again.
//
// Thread safety: a RoutingTable is immutable apart from the atomics in NodeState, which many
// threads update. plan() takes no lock and allocates nothing.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/routing/hash_ring.hpp"

namespace llmgw::routing {

enum class RouteKind : std::uint8_t {
  affinity,     // the session's ring owner
  round_robin,  // no session key
  failover,     // the owner is unhealthy: next healthy node clockwise (sticky while it is down)
  spill,        // the owner is full under bounded loads: next node clockwise with room
};
inline constexpr std::size_t kRouteKindCount = 4;
std::string_view to_string(RouteKind kind) noexcept;

// Live state of one node, shared by every table that contains it (so a membership change keeps
// the counts of the nodes that stay).
struct NodeState {
  explicit NodeState(std::string node_id, double node_weight = 1.0)
      : id(std::move(node_id)), weight(node_weight) {}
  virtual ~NodeState() = default;
  NodeState(const NodeState&) = delete;
  NodeState& operator=(const NodeState&) = delete;

  const std::string id;
  const double weight;
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> sessions{0};  // live sessions placed here (SessionTable)
  std::atomic<bool> healthy{true};
};

// An immutable routing snapshot: the nodes and their ring.
class RoutingTable {
 public:
  RoutingTable(std::vector<std::shared_ptr<NodeState>> nodes, unsigned virtual_nodes);

  const HashRing& ring() const noexcept { return ring_; }
  const std::vector<std::shared_ptr<NodeState>>& nodes() const noexcept { return nodes_; }
  std::size_t size() const noexcept { return nodes_.size(); }
  NodeState& node(std::size_t index) const { return *nodes_[index]; }

 private:
  std::vector<std::shared_ptr<NodeState>> nodes_;
  HashRing ring_;
};

struct RoutePlan {
  static constexpr std::size_t kMaxCandidates = 8;
  std::array<std::uint32_t, kMaxCandidates> candidates{};  // node indices, in the order to try
  std::size_t count = 0;
  RouteKind kind = RouteKind::round_robin;  // how the first candidate was chosen

  bool empty() const noexcept { return count == 0; }
  std::uint32_t first() const noexcept { return candidates[0]; }
};

struct RoutingPolicy {
  double balance_factor = 1.25;  // 0 = plain ring
  unsigned max_attempts = 3;
};

// Keyed: the owner and then distinct nodes clockwise (healthy with room, then healthy but full,
// then, when no node is healthy, every node: a stale health view must not black-hole traffic).
RoutePlan plan_keyed(const RoutingTable& table, std::uint64_t key_position,
                     std::int64_t total_in_flight, const RoutingPolicy& policy) noexcept;

// Unkeyed: the `ticket`-th healthy node in table order, then the following healthy nodes.
RoutePlan plan_round_robin(const RoutingTable& table, std::uint64_t ticket,
                           const RoutingPolicy& policy) noexcept;

// The bounded-load cap of `node` for the current totals (0 when bounded loads are off).
std::int64_t bounded_load_cap(const RoutingTable& table, std::size_t node,
                              std::int64_t total_in_flight, double balance_factor) noexcept;

// The same cap for any unit of load: ceil(c × (total + 1) × weight / eligible_weight), where total
// counts the units already placed (requests in flight, or live sessions). 0 when c is 0.
std::int64_t load_cap(double balance_factor, std::int64_t total, double weight,
                      double eligible_weight) noexcept;

// The total weight of the healthy nodes.
double eligible_weight(const RoutingTable& table) noexcept;

}  // namespace llmgw::routing
