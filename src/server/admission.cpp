#include "admission.hpp"

#include <prometheus/counter.h>
#include <prometheus/histogram.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>
#include <nlohmann/json.hpp>

#include "catalog.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using Clock = std::chrono::steady_clock;
using admission::Priority;
using metrics::AdmissionReject;

std::size_t class_index(Priority priority) {
  return static_cast<std::size_t>(priority);
}

const config::ClassLimits& limits_of(const config::AdmissionConfig& config, Priority priority) {
  return priority == Priority::batch ? config.batch : config.interactive;
}

std::string class_key(Priority priority, std::string_view field) {
  return "admission." + std::string{admission::to_string(priority)} + "." + std::string{field};
}

void count_rejected(metrics::AdmissionMetrics& metrics, Priority priority, AdmissionReject reason) {
  metrics.rejected[static_cast<std::size_t>(reason)][class_index(priority)]->Increment();
}

Admission admitted_at_once(metrics::AdmissionMetrics& metrics, Priority priority,
                           std::size_t candidate, bool spilled, AdmissionGate::Permit permit) {
  metrics.dispatched_at_once[class_index(priority)]->Increment();
  Admission result;
  result.outcome = Admission::Outcome::admitted;
  result.candidate = candidate;
  result.spilled = spilled;
  result.permit = std::move(permit);
  return result;
}

// A 429 from `node`'s queue, with the Retry-After its drain rate gives.
Admission rejection(const UpstreamNode& node, Priority priority, AdmissionReject reason,
                    std::string limit, const std::string& what) {
  const auto view = node.admission.view(priority, {});
  Admission result;
  result.reason = reason;
  result.limit = std::move(limit);
  result.node = node.id;
  result.retry_after_seconds =
      admission::retry_after_seconds(view.ahead, view.cap, view.service_seconds);
  result.message = "node " + node.id + " is at its cap of " + std::to_string(view.cap) +
                   " requests in flight and " + what + " (" + result.limit + "); retry after " +
                   std::to_string(result.retry_after_seconds) + " s";
  return result;
}

Admission queue_full(const UpstreamNode& node, Priority priority, std::size_t max_queue) {
  return rejection(node, priority, AdmissionReject::queue_full, class_key(priority, "max_queue"),
                   "its " + std::string{admission::to_string(priority)} + " queue is full (" +
                       std::to_string(max_queue) + " waiting)");
}

// Whether a keyed request should wait for its (full) first candidate rather than go to `room`.
bool wait_for_warm_node(Worker& worker, const config::AdmissionConfig& config,
                        const UpstreamNode& warm, const UpstreamNode& room,
                        const AdmissionRequest& request) {
  auto& metrics = worker.shared.metrics.admission();
  bool wait = false;
  if (config.warm_wait == "estimate") {
    const auto warm_view = warm.admission.view(request.priority, request.model);
    const auto room_view = room.admission.view(request.priority, request.model);
    const auto decision =
        admission::decide_warm_wait({warm_view.ahead, warm_view.cap, warm_view.service_seconds,
                                     admission::estimate_tokens(request.body_bytes),
                                     room_view.prefill_seconds_per_token, warm_view.cache_reuse});
    if (decision.estimated) {
      metrics.estimated_wait_seconds->Observe(decision.expected_wait_seconds);
      metrics.estimated_cold_prefill_seconds->Observe(decision.cold_prefill_seconds);
    }
    wait = decision.wait;
  }
  (wait ? metrics.warm_waited : metrics.warm_spilled)->Increment();
  return wait;
}

}  // namespace

asio::awaitable<Admission> admit_on(Worker& worker, ClientConnection& connection,
                                    const Snapshot& snapshot, const routing::RoutePlan& plan,
                                    std::size_t candidate, const AdmissionRequest& request) {
  auto& metrics = worker.shared.metrics.admission();
  const auto& config = snapshot.config().admission;
  const auto& limits = limits_of(config, request.priority);
  UpstreamNode& node = snapshot.node(plan.candidates[candidate]);
  const auto class_deadline = Clock::now() + limits.max_wait;
  const bool class_bound = class_deadline <= request.deadline;
  auto waited = co_await node.admission.admit(
      worker.io, connection, worker.shared.drain_cut, request.priority, request.model,
      request.session, limits.max_queue, std::min(class_deadline, request.deadline));
  if (waited.queued) {
    metrics.wait_seconds[class_index(request.priority)]->Observe(
        std::chrono::duration<double>(waited.waited_for).count());
  }
  Admission result;
  switch (waited.outcome) {
    case AdmissionGate::Outcome::admitted:
      (waited.queued ? metrics.dispatched_queued
                     : metrics.dispatched_at_once)[class_index(request.priority)]
          ->Increment();
      result.outcome = Admission::Outcome::admitted;
      result.candidate = candidate;
      result.spilled = candidate != 0;
      result.permit = std::move(waited.permit);
      co_return result;
    case AdmissionGate::Outcome::queue_full:
      result = queue_full(node, request.priority, limits.max_queue);
      break;
    case AdmissionGate::Outcome::timed_out: {
      const auto waited_ms =
          std::chrono::duration_cast<std::chrono::milliseconds>(waited.waited_for).count();
      result = rejection(
          node, request.priority, AdmissionReject::max_wait,
          class_bound ? class_key(request.priority, "max_wait_ms") : "timeouts.first_byte_total_ms",
          "no slot was free after " + std::to_string(waited_ms) + " ms");
      break;
    }
    case AdmissionGate::Outcome::client_gone:
      result.outcome = Admission::Outcome::client_gone;
      result.reason = AdmissionReject::client_gone;
      break;
    case AdmissionGate::Outcome::shutting_down:
      result.outcome = Admission::Outcome::shutting_down;
      result.reason = AdmissionReject::shutting_down;
      result.message = "the gateway is shutting down";
      break;
  }
  count_rejected(metrics, request.priority, result.reason);
  co_return result;
}

asio::awaitable<Admission> admit_first(Worker& worker, ClientConnection& connection,
                                       const Snapshot& snapshot, const routing::RoutePlan& plan,
                                       const AdmissionRequest& request) {
  auto& metrics = worker.shared.metrics.admission();
  const auto& config = snapshot.config().admission;
  UpstreamNode& first = snapshot.node(plan.first());
  if (auto permit = first.admission.try_admit(request.model, request.priority, request.session);
      permit.held()) {
    co_return admitted_at_once(metrics, request.priority, 0, false, std::move(permit));
  }
  // The first candidate is full. Another with room? Not for a keyed request on the plain ring
  // (routing.balance_factor 0): its user chose strict affinity, so it waits for its node.
  const bool strict_affinity = request.keyed && snapshot.policy.balance_factor <= 0.0;
  bool wait_for_first = strict_affinity;
  for (std::size_t i = 1; i < plan.count && !strict_affinity; ++i) {
    UpstreamNode& other = snapshot.node(plan.candidates[i]);
    // Not to a holder busy with other models: the spill would make it load this one (seconds,
    // evicting another model and its caches), which costs more than the wait.
    if (!other.healthy.load(std::memory_order_relaxed) ||
        !other.admission.view(request.priority, request.model).room ||
        !takes_without_swap(other, request.model)) {
      continue;
    }
    wait_for_first = request.keyed && wait_for_warm_node(worker, config, first, other, request);
    if (!wait_for_first) {
      if (auto permit = other.admission.try_admit(request.model, request.priority, request.session);
          permit.held()) {
        co_return admitted_at_once(metrics, request.priority, i, true, std::move(permit));
      }
    }
    break;  // taken meanwhile, or waiting is cheaper: queue
  }
  // Wait: in the first candidate's queue whose class has space, the first candidate's first.
  const auto max_queue = limits_of(config, request.priority).max_queue;
  for (std::size_t i = 0; i < plan.count; ++i) {
    const UpstreamNode& node = snapshot.node(plan.candidates[i]);
    if ((i == 0 || !wait_for_first) &&
        node.admission.view(request.priority, request.model).queued[class_index(request.priority)] <
            max_queue) {
      co_return co_await admit_on(worker, connection, snapshot, plan, i, request);
    }
  }
  count_rejected(metrics, request.priority, AdmissionReject::queue_full);
  co_return queue_full(first, request.priority, max_queue);
}

asio::awaitable<ProxyResult> answer_rejected(Worker& worker, ClientConnection& connection,
                                             std::chrono::milliseconds idle_timeout,
                                             const Admission& rejected, Priority priority,
                                             bool keep_alive) {
  const std::string reason{metrics::to_string(rejected.reason)};
  auto response = json_error(429, rejected.message, keep_alive);
  response.body() = nlohmann::json{{"error", rejected.message},
                                   {"reason", reason},
                                   {"class", admission::to_string(priority)},
                                   {"limit", rejected.limit},
                                   {"retry_after_seconds", rejected.retry_after_seconds},
                                   {"node", rejected.node}}
                        .dump() +
                    "\n";
  response.set(http::field::retry_after, std::to_string(rejected.retry_after_seconds));
  response.set("X-Gateway-Reject-Reason", reason);
  response.set("X-Gateway-Node", rejected.node);
  response.prepare_payload();
  co_return co_await send_local_answer(worker, connection, idle_timeout, std::move(response),
                                       rejected.node);
}

asio::awaitable<ProxyResult> answer_refused(Worker& worker, ClientConnection& connection,
                                            std::chrono::milliseconds idle_timeout, int status,
                                            std::string_view reason, const std::string& message,
                                            bool keep_alive, std::string_view retry_after) {
  auto response = json_error(status, message, keep_alive);
  response.set("X-Gateway-Reject-Reason", reason);
  if (!retry_after.empty()) {
    response.set(http::field::retry_after, retry_after);
  }
  co_return co_await send_local_answer(worker, connection, idle_timeout, std::move(response));
}

}  // namespace llmgw::server::detail
