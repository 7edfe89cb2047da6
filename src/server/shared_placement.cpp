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
  // Set when the request stopped waiting and went by the plain ring: where it went.
  std::optional<routing::Placement> used;
};

// The plain ring's node for the plan, as a placement (failover when it is not the owner because
// the owner is unhealthy).
std::optional<routing::Placement> placement_of(const Snapshot& snapshot,
                                               const routing::RoutePlan& plan) {
  if (plan.empty()) {
    return std::nullopt;
  }
  return routing::Placement{snapshot.table.node(plan.first()).id,
                            plan.kind == routing::RouteKind::failover};
}

// A request that went by the plain ring because the store's answer was late: this replica caches
// where it went until the answer settles it (settle_late_answer), so its next turns stay there.
void remember_fallback(const Snapshot& snapshot, std::uint64_t position,
                       const routing::Placement& used, const routing::Eligibility& eligibility,
                       std::chrono::steady_clock::time_point now) {
  snapshot.sessions->adopt(snapshot.table, position, used, 0, snapshot.policy, now, eligibility);
}

// The store answered after the request had gone to `used`. A session the store has just placed
// (new to the fleet) is rewritten to `used`, the node that now has its cache, unless another
// replica moved it meanwhile. A session the store already had stays where it was: this replica
// forgets its fallback, and the next turn goes back to the session's home.
void settle_late_answer(routing::PlacementStore& store, metrics::GatewayMetrics& metrics,
                        const std::shared_ptr<const Snapshot>& snapshot, std::uint64_t position,
                        const routing::Placement& used,
                        const std::optional<routing::Placement>& late, bool placed_now) {
  using Outcome = metrics::GatewayMetrics::LateAnswer;
  if (!late) {
    metrics.count_placement_late_answer(Outcome::lost);
    return;
  }
  if (*late == used) {
    metrics.count_placement_late_answer(Outcome::agreed);
    return;
  }
  if (!placed_now) {
    metrics.count_placement_late_answer(Outcome::superseded);
    snapshot->sessions->forget_unless(position, *late);
    return;
  }
  store.claim(position, used, *late, snapshot->config().routing.session_idle,
              [&metrics, sessions = snapshot->sessions, position,
               used](std::optional<routing::Placement> stored) {
                if (stored && *stored == used) {
                  metrics.count_placement_late_answer(Outcome::claimed);
                  return;
                }
                metrics.count_placement_late_answer(stored ? Outcome::superseded : Outcome::lost);
                if (stored) {
                  sessions->forget_unless(position, *stored);
                }
              });
}

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
    // Not cached: while the store is away every replica routes the session alike; once it is
    // back, the session's stored home (if it had one) takes it again, and a session the store
    // does not know is placed where it went now (note_fallback), where its cache is.
    shared.metrics.count_placement_fallback(/*timed_out=*/false);
    auto plan = plain_ring(*snapshot, position, in_flight, eligibility);
    if (const auto used = placement_of(*snapshot, plan)) {
      store.note_fallback(position, *used, snapshot->config().routing.session_idle);
    }
    co_return plan;
  }
  const auto request = snapshot->sessions->placement_request(snapshot->table, position, in_flight,
                                                             snapshot->policy, eligibility);
  if (request.owner.empty()) {  // no eligible node
    co_return plain_ring(*snapshot, position, in_flight, eligibility);
  }
  auto pending = std::make_shared<PendingPlacement>(co_await asio::this_coro::executor);
  pending->timer.expires_after(store.timeout());
  store.place(request, [pending, &store, &metrics = shared.metrics, snapshot, position](
                           std::optional<routing::Placement> placement, bool placed_now) {
    // Runs on the worker that made the request, so `pending` needs no lock.
    asio::post(pending->timer.get_executor(),
               [pending, &store, &metrics, snapshot, position, placement = std::move(placement),
                placed_now]() mutable {
                 if (pending->used) {
                   settle_late_answer(store, metrics, snapshot, position, *pending->used, placement,
                                      placed_now);
                   return;
                 }
                 pending->placement = std::move(placement);
                 pending->answered = true;
                 pending->timer.cancel();
               });
  });
  co_await pending->timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (!pending->answered || !pending->placement) {
    shared.metrics.count_placement_fallback(/*timed_out=*/!pending->answered);
    auto plan = plain_ring(*snapshot, position, in_flight, eligibility);
    if (const auto used = placement_of(*snapshot, plan)) {
      remember_fallback(*snapshot, position, *used, eligibility, now);
      if (!pending->answered) {
        pending->used = used;  // the answer, when it comes, is settled against it
      }
    }
    co_return plan;
  }
  co_return snapshot->sessions->adopt(snapshot->table, position, *pending->placement, in_flight,
                                      snapshot->policy, now, eligibility);
}

}  // namespace llmgw::server::detail
