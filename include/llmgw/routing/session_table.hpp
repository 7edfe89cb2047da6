#pragma once

// Bounded loads over sessions (routing.balance_by: sessions; docs/DESIGN.md §2.1).
//
// Bounded loads over requests (router.hpp) caps what a node is computing, but a KV cache is held
// per session, between turns too. A session spilled for one request returns to its owner on the
// next, so it leaves caches on two or three nodes and an owner that owns more sessions than it has
// slots keeps evicting them. This table places sessions instead, and remembers the placement:
//
// - A session without a live placement goes to its ring owner unless the owner already holds
//   ceil(c × (S + 1) × w / W) live sessions (S: live sessions of this gateway, w / W: the node's
//   share of the healthy weight), else to the next distinct node clockwise below that cap (and
//   below the request cap of router.hpp). That node becomes the session's home. A session placed
//   by an interactive request counts only interactive sessions (S and the node's count): batch
//   sessions (a flood of one-shot summaries, each keyed by its own prefix) would otherwise raise
//   the fair share until chats pile onto their owners and share one node's interactive reserve
//   (docs/DESIGN.md §2.2). Without batch sessions both counts are the same.
// - Every later turn goes to the home while the home is healthy and in the table: the cache is
//   there. A home may always serve one request per session placed on it; a request finding its
//   home both at the request cap (router.hpp) and with at least that many requests in flight (a
//   session sending several at once) spills for that request only; the home stays.
// - A placement ends after `idle_timeout` without a request (Ollama unloads an idle model after its
//   keep_alive, 5 min by default, and the cache with it), when the home leaves the table or turns
//   unhealthy, or when a failover placement's owner is healthy again (DESIGN: failover returns).
//   The next turn is then placed afresh, owner first. A request for a model its home does not
//   hold (routing by model, router.hpp) is placed afresh among the holders; the placement moves.
// - At most `max_sessions` placements are kept; beyond that the least recently used is forgotten.
//   A placement is keyed by the session's ring position (64 bits of its MD5), not by its id, so
//   each costs about 100 bytes however long the id: the default 100,000 bound ~10 MB.
//
// Placements are per gateway: two replicas may place a spilled session differently, and a restart
// forgets them (each session then costs one cold prefill). A session that its owner has room for
// is placed on its owner by every replica, as in the plain ring. With a placement store
// (placement_store.hpp, routing.placement_store) the table is this replica's cache of the shared
// placements: cached_plan() answers from it, placement_request() says what the store needs to
// place a session, adopt() records what the store answered.
//
// Thread safety: every member function may be called from any thread; one mutex guards the table.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "llmgw/routing/placement_store.hpp"
#include "llmgw/routing/router.hpp"

namespace llmgw::routing {

struct SessionTableOptions {
  std::chrono::milliseconds idle_timeout{300'000};
  std::size_t max_sessions = 100'000;
};

// Asked, under the table's lock, before a failover placement ends because its owner is healthy
// again: false keeps the session where it is for this request (the gateway warms the owner first,
// server/preheat.hpp). Must not call into the table.
using ReturnGate = std::function<bool(std::uint64_t key_position, const NodeState& owner)>;

// A plan answered from the table's cache, with the placement it came from.
struct CachedRoute {
  RoutePlan plan;
  Placement placement;
};

class SessionTable {
 public:
  using Clock = std::chrono::steady_clock;

  explicit SessionTable(SessionTableOptions options);
  ~SessionTable();
  SessionTable(const SessionTable&) = delete;
  SessionTable& operator=(const SessionTable&) = delete;

  // The plan for one request of the session at ring position `key_position` (ring_position() of
  // its id; placements are keyed by it), recording or refreshing its placement.
  // policy.balance_factor must be > 0. The candidates after the first are those of plan_keyed,
  // for retries. With a model (`eligibility`, router.hpp): a placement is kept only while its
  // home holds the model, and a new one goes to the key's owner among the holders (a loaded one
  // first), else the next holder clockwise below the caps, which count the holders' weight only.
  // `interactive`: the request's priority class (a new placement's fair share counts its class).
  RoutePlan plan(const RoutingTable& table, std::uint64_t key_position,
                 std::int64_t total_in_flight, const RoutingPolicy& policy, Clock::time_point now,
                 const Eligibility& eligibility = {}, bool interactive = true);

  // Shared placements: the plan of a live cached placement that may stay (as plan() keeps one,
  // but always led by its home: this replica's request cap is no measure of the node), or nullopt
  // (an entry that may not stay is forgotten: ask the store). With no eligible node, an empty plan.
  std::optional<CachedRoute> cached_plan(const RoutingTable& table, std::uint64_t key_position,
                                         std::int64_t total_in_flight, const RoutingPolicy& policy,
                                         Clock::time_point now,
                                         const Eligibility& eligibility = {});

  // What the store needs to place the session as plan() would: every node, in plan()'s order
  // for a new placement, with this replica's view of its health and request cap.
  PlacementRequest placement_request(const RoutingTable& table, std::uint64_t key_position,
                                     std::int64_t total_in_flight, const RoutingPolicy& policy,
                                     const Eligibility& eligibility = {}) const;

  // Records the store's placement of the session (replacing a cached one) and returns the plan
  // it leads; the plain plan when its home is not in `table`.
  RoutePlan adopt(const RoutingTable& table, std::uint64_t key_position, const Placement& placement,
                  std::int64_t total_in_flight, const RoutingPolicy& policy, Clock::time_point now,
                  const Eligibility& eligibility = {});

  // Forgets the cached placement of the session if it is not `placement` (the store's).
  void forget_unless(std::uint64_t key_position, const Placement& placement);

  // Every live placement (to write them back to a store that lost them).
  std::vector<std::pair<std::uint64_t, Placement>> placements(Clock::time_point now);

  // Live placements (expired ones are dropped first).
  std::size_t live_sessions(Clock::time_point now);

  // The id of the node the session at `key_position` is placed on, or "" without a live placement.
  std::string home_of(std::uint64_t key_position, Clock::time_point now);

  // New limits for a running table (a config reload): placements are kept; a shorter idle
  // timeout applies from the next call, a lower max_sessions from the next new placement.
  void set_options(SessionTableOptions options);

  // The gate failover placements ask before they return (unset, the default: at once).
  void set_return_gate(ReturnGate gate);

  // Forgets every placement and gives the nodes' session counts back (the table is retired).
  void clear();

 private:
  struct Decision;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::routing
