#pragma once

// Internal: the plan step of a keyed request when session placements are shared through
// routing.placement_store (routing/placement_store.hpp; docs/DESIGN.md §2.3).
//
// - A session this replica has a usable cached placement for is routed from the cache at once
//   (no round trip); a touch is sent to the store without waiting for it.
// - Otherwise the store places it (or returns the placement another replica made), and the
//   request waits for the answer at most routing.placement_store_timeout_ms.
// - While the store is unavailable (down, or slow: net/redis_client.hpp) the request is not
//   held at all, and past the timeout it is not held longer: the plain ring routes it (the owner,
//   then the next healthy node clockwise: the same node in every replica), and
//   llmgw_placement_store_fallbacks_total counts it.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "gateway_state.hpp"
#include "llmgw/routing/placement_store.hpp"

namespace llmgw::server::detail {

// The store named by `config` (routing.placement_store), or null without one. Its availability
// feeds shared.metrics; on each new connection it gets shared's cached placements back.
std::unique_ptr<routing::PlacementStore> make_placement_store(const config::GatewayConfig& config,
                                                              SharedState& shared);

// The cached plan of the session at `position`, or nullopt when the store must be asked
// (place_shared). Sends the touch for a cached plan.
std::optional<routing::RoutePlan> cached_shared(SharedState& shared, const Snapshot& snapshot,
                                                std::uint64_t position,
                                                const routing::Eligibility& eligibility,
                                                std::chrono::steady_clock::time_point now);

// The plan from the store's placement, or the plain ring's when the store cannot answer in time.
asio::awaitable<routing::RoutePlan> place_shared(SharedState& shared,
                                                 std::shared_ptr<const Snapshot> snapshot,
                                                 std::uint64_t position,
                                                 routing::Eligibility eligibility,
                                                 std::chrono::steady_clock::time_point now);

}  // namespace llmgw::server::detail
