// The proxy path (proxy.hpp): plan -> attempt -> relay -> account. Bodies are never read whole
// into memory: the relay moves each piece through a fixed buffer before it reads the next.

#include "proxy.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <functional>
#include <nlohmann/json.hpp>

#include "admission.hpp"
#include "catalog.hpp"
#include "llmgw/net/http_types.hpp"
#include "preheat.hpp"
#include "proxy_account.hpp"
#include "proxy_answers.hpp"
#include "relay.hpp"
#include "request_identity.hpp"
#include "server/as_tuple.hpp"
#include "shared_placement.hpp"
#include "upstream_attempt.hpp"
#include "upstream_request.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using Clock = std::chrono::steady_clock;
using Side = Watchdog::Side;

// Counts a request against a node while it is in flight (bounded loads read these), until the
// client has its last byte (release) or the attempt ends; holds its admission slot as long.
class InFlight {
 public:
  InFlight(SharedState& shared, UpstreamNode& node, AdmissionGate::Permit permit)
      : shared_(shared), node_(node), permit_(std::move(permit)) {
    node_.in_flight.fetch_add(1, std::memory_order_relaxed);
    shared_.total_in_flight.fetch_add(1, std::memory_order_relaxed);
    node_.metrics.in_flight->Increment();
  }
  ~InFlight() { release(false); }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;

  // `completed`: the node's whole answer is in (its time held is a service time to learn from).
  void release(bool completed) noexcept {
    if (std::exchange(released_, true)) {
      return;
    }
    permit_.release(completed);
    node_.in_flight.fetch_sub(1, std::memory_order_relaxed);
    shared_.total_in_flight.fetch_sub(1, std::memory_order_relaxed);
    node_.metrics.in_flight->Decrement();
  }

 private:
  SharedState& shared_;
  UpstreamNode& node_;
  AdmissionGate::Permit permit_;
  bool released_ = false;
};

struct Plan {
  routing::RoutePlan route;
  std::string_view key_source;  // where the session key came from ("none": round-robin)
  ModelRoute model;             // the request's model and the nodes that hold it (catalog.hpp)
  // Set when the placement store must place the session (shared_placement.hpp): its position.
  std::optional<std::uint64_t> shared_position{};
  // A keyed request's ring position (the last-prompt store's key, preheat.hpp).
  std::optional<std::uint64_t> position{};
};

// The request's model and its holders; the body is scanned at most once per request: the key
// cascade's scan when it read the body, else a scan that stops at "model".
ModelRoute model_of(const Snapshot& snapshot, std::string_view path, const std::string& body,
                    std::optional<routing::BodyFields>& fields) {
  if (snapshot.config().catalog.interval.count() == 0 || body.empty() || !is_model_path(path)) {
    return route_model(snapshot, {});  // every node but the draining ones
  }
  if (!fields) {
    fields = routing::scan_body(body, snapshot.config().routing.prefix_bytes, /*model_only=*/true);
  }
  return route_model(snapshot, fields->model);
}

// plan: the session key (the first configured source that answers, routing/session_key.hpp),
// the request's model, then the candidates: the nodes that hold the model, owner (or
// round-robin pick) first.
Plan plan(Worker& worker, const Snapshot& snapshot, const Request& request,
          admission::Priority priority, Clock::time_point started) {
  SharedState& shared = worker.shared;
  const auto header = [&request](std::string_view name) -> std::optional<std::string_view> {
    const auto it = request.find(name);
    if (it == request.end()) {
      return std::nullopt;
    }
    return it->value();
  };
  const std::string_view path = net::target_path(request.target());
  std::optional<routing::BodyFields> fields;
  const auto chosen = routing::choose_key(snapshot.key_sources, header, path, request.body(),
                                          snapshot.config().routing.prefix_bytes, &fields);
  ModelRoute model = model_of(snapshot, path, request.body(), fields);
  if (model.held_nowhere) {
    return {{}, chosen.source, std::move(model)};  // answered 404 without a node
  }
  const routing::Eligibility& eligibility = model.eligibility;
  const auto source_index = static_cast<std::size_t>(
      std::find_if(
          snapshot.key_sources.begin(), snapshot.key_sources.end(),
          [&](const routing::KeySource& source) { return source.label == chosen.source; }) -
      snapshot.key_sources.begin());
  snapshot.key_source_counters[source_index]->Increment();
  if (chosen.key.empty()) {
    auto route = routing::plan_round_robin(
        snapshot.table, shared.round_robin_ticket.fetch_add(1, std::memory_order_relaxed),
        snapshot.policy, eligibility);
    return {route, "none", std::move(model)};
  }
  const auto in_flight = shared.total_in_flight.load(std::memory_order_relaxed);
  const auto position = routing::ring_position(chosen.key);
  if (shared.placement_store && snapshot.sessions) {
    if (auto cached = cached_shared(shared, snapshot, position, eligibility, started)) {
      return {*cached, chosen.source, std::move(model), {}, position};
    }
    return {{}, chosen.source, std::move(model), position, position};
  }
  if (snapshot.sessions) {
    auto route =
        snapshot.sessions->plan(snapshot.table, position, in_flight, snapshot.policy, started,
                                eligibility, priority == admission::Priority::interactive);
    return {route, chosen.source, std::move(model), {}, position};
  }
  auto route =
      routing::plan_keyed(snapshot.table, position, in_flight, snapshot.policy, eligibility);
  lead_with_preheated(shared, snapshot, position, eligibility, route);  // (DESIGN §2.4)
  return {route, chosen.source, std::move(model), {}, position};
}

// The request's priority class: the configured header's value; without one, the client key's
// class (auth.keys_file), else interactive; nullopt for a value that names no class (400).
std::optional<admission::Priority> priority_of(const Request& request,
                                               const config::AdmissionConfig& config,
                                               std::string_view key_priority) {
  const auto it = request.find(config.priority_header);
  if (it == request.end()) {
    return key_priority.empty() ? admission::Priority::interactive
                                : admission::parse_priority(key_priority);
  }
  return admission::parse_priority(it->value());
}

// admit, for a request that generates: its slot in `admitted`, or the answer that refuses it
// (429, 503 shutting down; 499 when the client left while queued: nothing was sent to a node).
asio::awaitable<std::optional<ProxyResult>> admit_request(Worker& worker,
                                                          ClientConnection& connection,
                                                          const Snapshot& snapshot,
                                                          const routing::RoutePlan& route_plan,
                                                          const AdmissionRequest& request,
                                                          bool keep_alive, Admission& admitted) {
  const auto idle = snapshot.config().timeouts.idle;
  admitted = co_await admit_first(worker, connection, snapshot, route_plan, request);
  switch (admitted.outcome) {
    case Admission::Outcome::admitted:
      break;
    case Admission::Outcome::rejected:
      co_return co_await answer_rejected(worker, connection, idle, admitted, request.priority,
                                         keep_alive);
    case Admission::Outcome::client_gone:
      co_return ProxyResult{499, false, {}, "none", 0};
    case Admission::Outcome::shutting_down:
      co_return co_await answer_locally(worker, connection, idle, 503, admitted.message, false,
                                        "1");
  }
  co_return std::nullopt;
}

void count_no_eligible(SharedState& shared, admission::Priority priority) {
  shared.metrics.admission()
      .rejected[static_cast<std::size_t>(metrics::AdmissionReject::no_eligible_node)]
               [static_cast<std::size_t>(priority)]
      ->Increment();
}

// What route() decided: the plan, the slot admitted, the order in which to try the candidates.
struct Routed {
  Plan planned;
  admission::Priority priority = admission::Priority::interactive;
  AdmissionRequest admission;
  Admission admitted;
  routing::RouteKind first_route = routing::RouteKind::affinity;
  std::array<std::uint32_t, routing::RoutePlan::kMaxCandidates> order{};
};

// plan and admit, and the answers that end a request before any node is asked: 400 (an unknown
// priority class), 404 (no node holds the model), 503 (no eligible node), 429 (admission). A
// coroutine of its own: its frame (the plan's temporaries, those answers) is gone before the
// relay starts, where proxy_request's frame stays for as long as a stream runs.
asio::awaitable<std::optional<ProxyResult>> route(Worker& worker, ClientConnection& connection,
                                                  Request& request,
                                                  const std::shared_ptr<const Snapshot>& snapshot,
                                                  Clock::time_point started, Routed& routed) {
  SharedState& shared = worker.shared;
  const config::GatewayConfig& config = snapshot->config();
  const auto idle = config.timeouts.idle;
  const bool keep_alive = request.keep_alive();
  const auto priority = priority_of(request, config.admission, connection.key_priority);
  if (!priority) {
    co_return co_await answer_refused(
        worker, connection, idle, 400, "unknown_priority",
        config.admission.priority_header + ": unknown priority class \"" +
            std::string{request[config.admission.priority_header]} +
            "\"; accepted values: " + std::string{admission::accepted_priorities()},
        keep_alive);
  }
  routed.priority = *priority;
  Plan& planned = routed.planned;
  planned = plan(worker, *snapshot, request, *priority, started);
  if (planned.shared_position) {
    planned.route = co_await place_shared(shared, snapshot, *planned.shared_position,
                                          planned.model.eligibility, started);
  }
  const routing::RoutePlan& route_plan = planned.route;
  if (planned.model.held_nowhere) {
    // No node holds the model: the answer a node would give, without asking one.
    auto response = json_error(404, {}, keep_alive);
    response.body() =
        model_not_found_body(net::target_path(request.target()), planned.model.requested);
    response.prepare_payload();
    co_return co_await send_local_answer(worker, connection, idle, std::move(response));
  }
  if (route_plan.empty()) {
    count_no_eligible(shared, *priority);
    co_return co_await answer_refused(worker, connection, idle, 503, "no_eligible_node",
                                      "no node can take the request", keep_alive);
  }
  // A preheat of this session still running on its node (preheat.hpp): the turn goes where it is
  // warm, or waits for the preheat.
  const auto wait_for = planned.position
                            ? meet_running_preheat(shared, *snapshot, *planned.position,
                                                   planned.model.eligibility, planned.route)
                            : std::nullopt;
  if (wait_for && !co_await await_running_preheat(
                      shared, connection, *planned.position, snapshot->node(route_plan.first()),
                      *wait_for, planned.model.model, started + config.timeouts.first_byte_total)) {
    co_return ProxyResult{499, false, {}, "none", 0};  // left while its node was being warmed
  }

  // admit: a slot on the first candidate, on another with room, or after a wait in a queue.
  routed.admission =
      AdmissionRequest{*priority,
                       planned.model.model,
                       request.body().size(),
                       planned.key_source != "none",
                       started + config.timeouts.first_byte_total,
                       planned.position.value_or(admission::InteractiveReserve::kUnkeyed)};
  const bool generates =
      request.method() != http::verb::get && request.method() != http::verb::head;
  if (generates) {
    if (auto refused = co_await admit_request(worker, connection, *snapshot, route_plan,
                                              routed.admission, keep_alive, routed.admitted)) {
      co_return refused;
    }
  }
  routed.first_route = routed.admitted.spilled && routed.admission.keyed ? routing::RouteKind::spill
                                                                         : route_plan.kind;
  shared.metrics.count_routing_decision(routed.first_route);
  // The admitted candidate first, then the others in the plan's order.
  routed.order = route_plan.candidates;
  const auto first = routed.order.begin() + static_cast<std::ptrdiff_t>(routed.admitted.candidate);
  std::rotate(routed.order.begin(), first, first + 1);
  co_return std::nullopt;
}

// A slot for a retry on plan candidate `node_index` (a node index, found in the plan), or why
// there is none (`failure`; `client_gone` when the client left while it waited).
asio::awaitable<AdmissionGate::Permit> admit_retry(Worker& worker, ClientConnection& connection,
                                                   const Snapshot& snapshot, const Routed& routed,
                                                   std::uint32_t node_index, std::string& failure,
                                                   bool& client_gone) {
  const auto& candidates = routed.planned.route.candidates;
  const auto candidate = static_cast<std::size_t>(
      std::find(candidates.begin(), candidates.end(), node_index) - candidates.begin());
  auto retry = co_await admit_on(worker, connection, snapshot, routed.planned.route, candidate,
                                 routed.admission);
  client_gone = retry.outcome == Admission::Outcome::client_gone;
  if (retry.outcome != Admission::Outcome::admitted) {
    failure = retry.message;
  }
  co_return std::move(retry.permit);
}

// Why no node's response reached the client.
struct Unanswered {
  bool any_timeout = false;
  std::string last_failure = "no node could be reached";
  int stop_status = 0;  // 503 at once: the gateway is shutting down or out of descriptors
};

// The answer when no node produced a response head. With every candidate ejected (the router
// offered them only because none was healthy), no eligible node exists: 503, retry once a health
// check may have taken one back. Otherwise eligible nodes failed: 502 or 504.
asio::awaitable<ProxyResult> answer_unanswered(Worker& worker, ClientConnection& connection,
                                               const Snapshot& snapshot, const Routed& routed,
                                               const Unanswered& why, bool keep_alive) {
  const auto& config = snapshot.config();
  const auto idle = config.timeouts.idle;
  if (why.stop_status != 0) {
    co_return co_await answer_locally(worker, connection, idle, why.stop_status, why.last_failure,
                                      false, "1");
  }
  const auto& route_plan = routed.planned.route;
  const bool none_eligible =
      std::none_of(route_plan.candidates.begin(),
                   route_plan.candidates.begin() + static_cast<std::ptrdiff_t>(route_plan.count),
                   [&](std::uint32_t index) { return snapshot.node(index).healthy.load(); });
  if (none_eligible && !why.any_timeout) {
    count_no_eligible(worker.shared, routed.priority);
    const auto interval_s = (config.health.interval.count() + 999) / 1000;
    co_return co_await answer_refused(
        worker, connection, idle, 503, "no_eligible_node",
        "no eligible node: every node that could take the request is ejected (" + why.last_failure +
            ")",
        keep_alive, std::to_string(std::max<std::int64_t>(1, interval_s)));
  }
  co_return co_await answer_locally(worker, connection, idle, why.any_timeout ? 504 : 502,
                                    why.last_failure, keep_alive);
}

// What a 404 from a node means for a request that names a model (its body read whole when it is
// short): "model not found" from a node the catalog placed the model on corrects the catalog and
// sends the request to the next holder (no byte has reached the client yet).
enum class NotFound { relay, next_candidate, answered };
asio::awaitable<NotFound> judge_not_found(Worker& worker, ClientConnection& connection,
                                          Exchange& exchange, RelayBuffers& buffers,
                                          UpstreamNode& node, const std::string& model,
                                          bool last_candidate, bool keep_alive,
                                          std::chrono::milliseconds idle, ProxyResult& answered,
                                          std::string& failure) {
  auto body = co_await read_short_body(connection, exchange, buffers, idle);
  if (!body) {
    co_return NotFound::relay;
  }
  connection.upstream = nullptr;
  const bool missing = routing::says_model_not_found(body->text);
  if (missing) {
    forget_model(worker.shared, node, model);
  }
  if (missing && !last_candidate) {
    failure = "node " + node.id + " does not hold model " + model;
    co_return NotFound::next_candidate;
  }
  answered =
      co_await answer_with_body(worker, connection, idle, 404, std::move(*body), keep_alive, node);
  co_return NotFound::answered;
}

}  // namespace

asio::awaitable<ProxyResult> proxy_request(Worker& worker, ClientConnection& connection,
                                           Request& request, const std::string& client_ip,
                                           Clock::time_point started) {
  SharedState& shared = worker.shared;
  // The request's snapshot: its nodes and its configuration, to the end (a reload applies to the
  // requests that start after it).
  const std::shared_ptr<const Snapshot> snapshot = worker.snapshot();
  const config::GatewayConfig& config = snapshot->config();
  const auto& timeouts = config.timeouts;
  const bool client_keep_alive = request.keep_alive();
  const bool head_request = request.method() == http::verb::head;
  const bool client_accepts_chunks = request.version() >= 11;
  // Requests that generate take an admission slot on their node (admission.hpp); metadata calls
  // (GET, HEAD) do not.
  const bool generates = request.method() != http::verb::get && !head_request;

  Routed routed;
  if (auto answered = co_await route(worker, connection, request, snapshot, started, routed)) {
    co_return std::move(*answered);
  }
  const UpstreamRequest upstream_request{request, client_ip};
  const routing::RoutePlan& route_plan = routed.planned.route;
  const auto deadline = started + timeouts.first_byte_total;

  // The relay buffers go back to the worker on every way out of this coroutine.
  struct Lease {
    RelayBufferPool& pool;
    std::unique_ptr<RelayBuffers> buffers;
    ~Lease() { pool.put(std::move(buffers)); }
  } lease{worker.relay_buffers, worker.relay_buffers.take()};
  RelayBuffers& buffers = *lease.buffers;

  Unanswered why;
  for (std::size_t index = 0; index < route_plan.count; ++index) {
    const auto time_left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (time_left.count() <= 0) {
      why.any_timeout = true;
      why.last_failure = "no node answered within timeouts.first_byte_total_ms (" +
                         std::to_string(timeouts.first_byte_total.count()) + " ms)";
      break;
    }
    if (shared.drain_cut.load(std::memory_order_relaxed)) {
      why.stop_status = 503;
      why.last_failure = "the gateway is shutting down";
      break;
    }
    AdmissionGate::Permit permit = std::move(routed.admitted.permit);
    if (generates && index > 0) {
      bool client_gone = false;
      permit = co_await admit_retry(worker, connection, *snapshot, routed, routed.order[index],
                                    why.last_failure, client_gone);
      if (client_gone) {
        co_return ProxyResult{499, false, {}, "none", 0};
      }
      if (!permit.held()) {
        continue;
      }
    }
    UpstreamNode& node = snapshot->node(routed.order[index]);
    const routing::RouteKind route = index == 0 ? routed.first_route : routing::RouteKind::failover;
    InFlight in_flight(shared, node, std::move(permit));
    node.requests.fetch_add(1, std::memory_order_relaxed);

    // attempt
    Exchange exchange;
    const auto attempt_time = std::min(timeouts.first_byte, time_left);
    const auto outcome = co_await attempt(worker, connection, node, upstream_request, head_request,
                                          timeouts, attempt_time, buffers.upstream_input, exchange);
    const int status = exchange.parser && outcome == AttemptOutcome::answered
                           ? static_cast<int>(exchange.parser->get().result_int())
                           : 0;
    const bool retry_5xx = status >= 500 && index + 1 < route_plan.count;
    const std::string& model = routed.planned.model.model;
    if (status == 404 && !model.empty() && !head_request) {
      ProxyResult answered;
      const auto verdict = co_await judge_not_found(
          worker, connection, exchange, buffers, node, model, index + 1 == route_plan.count,
          client_keep_alive, timeouts.idle, answered, why.last_failure);
      if (verdict == NotFound::next_candidate) {
        continue;
      }
      if (verdict == NotFound::answered) {
        co_return answered;
      }
    }
    if (outcome != AttemptOutcome::answered || retry_5xx) {
      connection.upstream = nullptr;
      why.last_failure =
          account_failed_attempt(config, node, outcome, attempt_time, status, exchange.failure);
      why.any_timeout = why.any_timeout || outcome == AttemptOutcome::timed_out;
      if (outcome == AttemptOutcome::client_gone) {
        co_return ProxyResult{499, false, node.id, routing::to_string(route), 0};
      }
      if (outcome == AttemptOutcome::no_descriptors || outcome == AttemptOutcome::shutting_down) {
        why.stop_status = 503;
        break;
      }
      continue;
    }

    // relay
    RelayRequest relay_request;
    relay_request.config = &config;
    relay_request.route = route;
    relay_request.key_source = routed.planned.key_source;
    relay_request.head_request = head_request;
    relay_request.client_keep_alive = client_keep_alive;
    relay_request.client_accepts_chunks = client_accepts_chunks;
    relay_request.started = started;
    const auto& position = routed.planned.position;
    relay_request.preheated = position && lands_preheated(shared, *position, node);
    relay_request.scan_usage = UsageScanner::reports_usage(net::target_path(request.target()));
    // A 2xx for a model: it is loaded there now. Noted before the slot is released, so that no
    // request of another model finds the node idle in between (catalog.hpp's takes_without_swap)
    // and makes it swap.
    const bool loads_model = !model.empty() && status >= 200 && status < 300 &&
                             net::target_path(request.target()) != "/api/show";
    const auto upstream_complete = [&in_flight, &node, &model, loads_model] {
      if (loads_model) {
        note_loaded(node, model);
      }
      in_flight.release(true);
    };
    // By reference: the lambda (32 bytes) lives in this frame across the relay, and a
    // std::function holds a reference_wrapper without allocating.
    relay_request.on_upstream_complete = std::cref(upstream_complete);
    auto relayed = co_await relay(worker, connection, node, exchange, lease.buffers, relay_request);
    // account
    const bool succeeded = relayed.status >= 200 && relayed.status < 300;
    if (loads_model && succeeded) {
      note_loaded(node, model);  // also when the answer did not complete
    }
    if (position && succeeded && relayed.end == RelayEnd::complete) {
      remember_turn(shared, *snapshot, *position, net::target_path(request.target()),
                    request.body(), node);  // the next turn starts with it (preheat.hpp)
    }
    co_return account_relayed(worker, config, node, connection.key_slot, route, generates,
                              routed.priority, exchange, relayed, started);
  }
  co_return co_await answer_unanswered(worker, connection, *snapshot, routed, why,
                                       client_keep_alive);
}

}  // namespace llmgw::server::detail
