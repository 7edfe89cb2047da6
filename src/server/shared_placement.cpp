#include "shared_placement.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "llmgw/net/url.hpp"

namespace llmgw::server::detail {
namespace {

// The plain ring: the owner among the holders, then the next healthy holders clockwise. A pure
// function of the node set (and health), so every replica routes the session alike.
routing::RoutePlan plain_ring(const Snapshot& snapshot, std::uint64_t position,
                              std::int64_t in_flight, const routing::Eligibility& eligibility) {
  routing::RoutingPolicy policy = snapshot.policy;
  policy.balance_factor = 0;
  return routing::plan_keyed(snapshot.table, position, in_flight, policy, eligibility);
}

// One placement request's answer, handed from the store's thread to the request's worker.
struct PendingPlacement {
  explicit PendingPlacement(const asio::any_io_executor& executor) : timer(executor) {}
  asio::steady_timer timer;  // expires at the timeout; cancelled by the answer
  std::optional<routing::Placement> placement;
  bool answered = false;
};

// Touches a cached placement; forgets it when the store holds another one.
void touch_cached(routing::PlacementStore& store, const Snapshot& snapshot, std::uint64_t position,
                  const routing::Placement& placement) {
  store.touch(position, placement, snapshot.config().routing.session_idle,
              [sessions = snapshot.sessions, position](std::optional<routing::Placement> stored) {
                if (stored) {
                  sessions->forget_unless(position, *stored);
                }
              });
}

// A new connection to the store: every cached placement is written back where Redis lost it.
void write_back_cached(routing::PlacementStore& store, const SharedState& shared) {
  const auto snapshot = shared.current();
  if (!snapshot || !snapshot->sessions) {
    return;
  }
  for (const auto& [position, placement] :
       snapshot->sessions->placements(std::chrono::steady_clock::now())) {
    touch_cached(store, *snapshot, position, placement);
  }
}

}  // namespace

std::unique_ptr<routing::PlacementStore> make_placement_store(const config::GatewayConfig& config,
                                                              SharedState& shared) {
  metrics::GatewayMetrics& metrics = shared.metrics;
  const auto& routing_config = config.routing;
  if (routing_config.placement_store.empty()) {
    return nullptr;
  }
  std::string problem;
  const auto address = config::parse_store_url(routing_config.placement_store, problem);
  if (!address) {  // the loader refuses it; a configuration built in code may not have
    throw config::ConfigError("routing.placement_store: " + problem);
  }
  routing::PlacementStoreOptions options;
  options.endpoint = {
      address->host, address->port, address->database, address->user,
      address->password.empty() ? routing_config.placement_store_password : address->password};
  options.timeout = routing_config.placement_store_timeout;
  metrics.set_placement_store_up(false);
  options.on_availability = [&metrics](bool up) { metrics.set_placement_store_up(up); };
  options.on_ready = [&shared](routing::PlacementStore& store) {
    write_back_cached(store, shared);
  };
  spdlog::info("session placements shared through {} (answers awaited up to {} ms)",
               net::redact_url(routing_config.placement_store), options.timeout.count());
  return std::make_unique<routing::PlacementStore>(std::move(options));
}

std::optional<routing::RoutePlan> cached_shared(SharedState& shared, const Snapshot& snapshot,
                                                std::uint64_t position,
                                                const routing::Eligibility& eligibility,
                                                std::chrono::steady_clock::time_point now) {
  const auto in_flight = shared.total_in_flight.load(std::memory_order_relaxed);
  auto cached = snapshot.sessions->cached_plan(snapshot.table, position, in_flight, snapshot.policy,
                                               now, eligibility);
  if (!cached) {
    return std::nullopt;
  }
  routing::PlacementStore& store = *shared.placement_store;
  if (!cached->plan.empty() && store.available()) {
    // Not awaited: keeps the placement alive in the store (or writes it back after Redis lost
    // it), and forgets the cached one when another replica moved the session meanwhile.
    touch_cached(store, snapshot, position, cached->placement);
  }
  return cached->plan;
}

asio::awaitable<routing::RoutePlan> place_shared(SharedState& shared,
                                                 std::shared_ptr<const Snapshot> snapshot,
                                                 std::uint64_t position,
                                                 routing::Eligibility eligibility,
                                                 std::chrono::steady_clock::time_point now) {
  routing::PlacementStore& store = *shared.placement_store;
  const auto in_flight = shared.total_in_flight.load(std::memory_order_relaxed);
  if (!store.available()) {
    shared.metrics.count_placement_fallback(/*timed_out=*/false);
    co_return plain_ring(*snapshot, position, in_flight, eligibility);
  }
  const auto request = snapshot->sessions->placement_request(snapshot->table, position, in_flight,
                                                             snapshot->policy, eligibility);
  if (request.owner.empty()) {  // no eligible node
    co_return plain_ring(*snapshot, position, in_flight, eligibility);
  }
  auto pending = std::make_shared<PendingPlacement>(co_await asio::this_coro::executor);
  pending->timer.expires_after(store.timeout());
  store.place(request, [pending](std::optional<routing::Placement> placement) {
    asio::post(pending->timer.get_executor(),
               [pending, placement = std::move(placement)]() mutable {
                 pending->placement = std::move(placement);
                 pending->answered = true;
                 pending->timer.cancel();
               });
  });
  co_await pending->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!pending->answered || !pending->placement) {
    shared.metrics.count_placement_fallback(/*timed_out=*/!pending->answered);
    co_return plain_ring(*snapshot, position, in_flight, eligibility);
  }
  co_return snapshot->sessions->adopt(snapshot->table, position, *pending->placement, in_flight,
                                      snapshot->policy, now, eligibility);
}

}  // namespace llmgw::server::detail
