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
// Routing by model (DESIGN.md §1.3). A request that names a model may only go to the nodes that
// hold it (`Eligibility::holders`; the rest of the fleet is invisible to it): the ring for a model
// is the global ring walked clockwise skipping the nodes that lack it, so a model added to one
// node moves only the keys of that model that the node now owns, and bounded loads count only the
// holders' weight. Among the holders, the preferred ones (`Eligibility::preferred`: where the
// model is already loaded, or nothing is; server/catalog.hpp) come first: the key's owner is the
// first loaded holder clockwise, and only when every loaded holder is full or down does a request
// go to a holder that must load the model first (seconds to minutes, and it evicts another model).
// When no healthy holder has it loaded, the owner is the first holder clockwise.
//
// Worked example: model m is on disk on a, b and c, loaded on b only; a key's clockwise order is
// a, c, b. Its plan is b (affinity: b is the key's owner for m), then a, c. If b is full, a (it
// loads m). Once a has m loaded too, the key goes to a, its first loaded holder clockwise: the
// key's model cache is then where the model's weights already are. A placed session
// (session_table.hpp) stays on its home while the home holds the model.
//
// Thread safety: a RoutingTable is immutable apart from the atomics in NodeState, which many
// threads update. plan() takes no lock and allocates nothing (with at most 64 nodes).

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
  // Scales the node's share of the ring and of the caps. Atomic so that a weight change
  // (PATCH /admin/nodes/NAME, a reload) keeps the node's live state: the next table's ring is
  // built with the new weight; a table built before keeps its ring but reads the new weight.
  std::atomic<double> weight;
  std::atomic<std::int64_t> in_flight{0};
  std::atomic<std::int64_t> sessions{0};              // live sessions placed here (SessionTable)
  std::atomic<std::int64_t> interactive_sessions{0};  // of those, placed by an interactive request
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

// A set of node indices. Default-constructed: every node. Allocates only beyond 64 nodes.
class NodeMask {
 public:
  NodeMask() = default;  // every node
  // No node yet, out of `size` nodes; add() them.
  explicit NodeMask(std::size_t size);

  void add(std::size_t node);
  bool contains(std::size_t node) const noexcept {
    if (all_) {
      return true;
    }
    if (node < 64) {
      return (small_ >> node) & 1U;
    }
    return node / 64 - 1 < large_.size() && ((large_[node / 64 - 1] >> (node % 64)) & 1U);
  }
  bool all() const noexcept { return all_; }
  bool empty() const noexcept;

 private:
  bool all_ = true;
  std::uint64_t small_ = 0;           // nodes 0..63
  std::vector<std::uint64_t> large_;  // nodes 64.. (rare)
};

// Which nodes may take a request (routing by model; default: all of them, all preferred).
struct Eligibility {
  NodeMask holders;    // the nodes that hold the request's model
  NodeMask preferred;  // of those, where it is loaded: tried first
};

struct RoutingPolicy {
  double balance_factor = 1.25;  // 0 = plain ring
  unsigned max_attempts = 3;
};

// Keyed: the owner and then distinct holders clockwise (healthy with room, then healthy but full,
// then, when no holder is healthy, every holder: a stale health view must not black-hole
// traffic). Preferred holders come before the others in each of those groups.
RoutePlan plan_keyed(const RoutingTable& table, std::uint64_t key_position,
                     std::int64_t total_in_flight, const RoutingPolicy& policy,
                     const Eligibility& eligibility = {}) noexcept;

// `plan` with `node` tried first: moved to the front when it is a candidate, else put there (the
// last candidate dropped when the plan already has policy.max_attempts), the others in their
// order. Its kind is then named as plan_keyed names it: affinity when `node` is the key's owner
// (owner_of), failover when that owner is unhealthy, else spill. For a node the caller chose for
// a reason of its own (server/preheat.hpp: the node a preheat warmed for this key's next turn).
RoutePlan lead_with(const RoutingTable& table, std::uint64_t key_position, RoutePlan plan,
                    std::size_t node, const RoutingPolicy& policy,
                    const Eligibility& eligibility = {}) noexcept;

// The key's owner among the holders: the first preferred holder clockwise when a preferred holder
// is healthy, else the first holder clockwise. nullopt when no node holds the model. An unhealthy
// owner makes the plan a failover, which returns when the owner does.
std::optional<std::size_t> owner_of(const RoutingTable& table, std::uint64_t key_position,
                                    const Eligibility& eligibility = {}) noexcept;

// Unkeyed: the `ticket`-th healthy holder in table order (the `ticket`-th preferred one when a
// healthy holder has the model loaded), then the following healthy holders.
RoutePlan plan_round_robin(const RoutingTable& table, std::uint64_t ticket,
                           const RoutingPolicy& policy,
                           const Eligibility& eligibility = {}) noexcept;

// The bounded-load cap of `node` for the current totals (0 when bounded loads are off).
std::int64_t bounded_load_cap(const RoutingTable& table, std::size_t node,
                              std::int64_t total_in_flight, double balance_factor,
                              const NodeMask& holders = {}) noexcept;

// The same cap for any unit of load: ceil(c × (total + 1) × weight / eligible_weight), where total
// counts the units already placed (requests in flight, or live sessions). 0 when c is 0.
std::int64_t load_cap(double balance_factor, std::int64_t total, double weight,
                      double eligible_weight) noexcept;

// The total weight of the healthy nodes (of `holders`).
double eligible_weight(const RoutingTable& table, const NodeMask& holders = {}) noexcept;

}  // namespace llmgw::routing
