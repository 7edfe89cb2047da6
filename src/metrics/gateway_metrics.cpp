#include "llmgw/metrics/gateway_metrics.hpp"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <iterator>
#include <map>
#include <mutex>
#include <vector>

#include "llmgw/metrics/process_metrics.hpp"
#include "llmgw/version.hpp"

namespace llmgw::metrics {
namespace {

constexpr std::array<std::string_view, kStatusClassCount> kStatusClasses{"1xx", "2xx", "3xx", "4xx",
                                                                         "5xx"};

// LLM requests range from a few ms (embeddings, cached short prompts) to minutes (long decodes).
const prometheus::Histogram::BucketBoundaries kDurationBuckets{
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600};
// First token: prefill of a few tokens (ms) up to long uncached prompts (tens of seconds).
const prometheus::Histogram::BucketBoundaries kFirstByteBuckets{
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60};

std::string compiler() {
#if defined(__clang__)
  return "clang " __clang_version__;
#elif defined(__GNUC__)
  return "gcc " __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

std::size_t status_class_index(int status) noexcept {
  if (status < 100 || status > 599) {
    return 4;
  }
  return static_cast<std::size_t>(status / 100 - 1);
}

std::string_view to_string(UpstreamError kind) noexcept {
  switch (kind) {
    case UpstreamError::connect:
      return "connect";
    case UpstreamError::timeout:
      return "timeout";
    case UpstreamError::status_5xx:
      return "status_5xx";
    case UpstreamError::broken_stream:
      return "broken_stream";
    case UpstreamError::client_disconnect:
      return "client_disconnect";
    case UpstreamError::stale_connection:
      return "stale_connection";
  }
  return "unknown";
}

std::string_view to_string(AdmissionReject reason) noexcept {
  switch (reason) {
    case AdmissionReject::queue_full:
      return "queue_full";
    case AdmissionReject::max_wait:
      return "max_wait";
    case AdmissionReject::no_eligible_node:
      return "no_eligible_node";
    case AdmissionReject::client_gone:
      return "client_gone";
    case AdmissionReject::shutting_down:
      return "shutting_down";
  }
  return "unknown";
}

std::string_view to_string(PreheatSkip reason) noexcept {
  switch (reason) {
    case PreheatSkip::no_prompt:
      return "no_prompt";
    case PreheatSkip::no_model:
      return "no_model";
    case PreheatSkip::node_busy:
      return "node_busy";
    case PreheatSkip::cap:
      return "cap";
    case PreheatSkip::other_replica:
      return "other_replica";
    case PreheatSkip::not_worth:
      return "not_worth";
  }
  return "unknown";
}

struct GatewayMetrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  prometheus::Family<prometheus::Counter>& requests =
      prometheus::BuildCounter()
          .Name("llmgw_requests_total")
          .Help("Requests answered, by node, route kind and status class")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& duration =
      prometheus::BuildHistogram()
          .Name("llmgw_request_duration_seconds")
          .Help("Time from the request head to the last response byte, by node and route kind")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& first_byte =
      prometheus::BuildHistogram()
          .Name("llmgw_time_to_first_byte_seconds")
          .Help(
              "Time from the request head to the first response body byte relayed (first token), "
              "by node and route kind; requests other than GET and HEAD")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& in_flight =
      prometheus::BuildGauge()
          .Name("llmgw_upstream_in_flight")
          .Help("Requests in flight to each node through this gateway")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& sessions =
      prometheus::BuildGauge()
          .Name("llmgw_upstream_sessions")
          .Help("Live sessions placed on each node (routing.balance_by: sessions)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& errors = prometheus::BuildCounter()
                                                        .Name("llmgw_upstream_errors_total")
                                                        .Help("Upstream failures by node and kind")
                                                        .Register(*registry);
  prometheus::Family<prometheus::Counter>& decisions = prometheus::BuildCounter()
                                                           .Name("llmgw_routing_decisions_total")
                                                           .Help("Routing decisions by route kind")
                                                           .Register(*registry);
  prometheus::Family<prometheus::Counter>& key_sources =
      prometheus::BuildCounter()
          .Name("llmgw_routing_key_sources_total")
          .Help(
              "Routing decisions by where the session key came from (header:<name>, "
              "body:prompt_cache_key, prefix, none)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& vnodes =
      prometheus::BuildGauge()
          .Name("llmgw_ring_virtual_nodes")
          .Help("Virtual nodes each node holds on the ring")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& healthy =
      prometheus::BuildGauge()
          .Name("llmgw_upstream_healthy")
          .Help("1 when the node is taking traffic, 0 when ejected")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& models =
      prometheus::BuildGauge()
          .Name("llmgw_node_models")
          .Help("Models each node holds, as its last catalog fetch listed them")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& models_loaded =
      prometheus::BuildGauge()
          .Name("llmgw_node_models_loaded")
          .Help("Models loaded on each node (ollama: /api/ps; openai: every listed model)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& ejections =
      prometheus::BuildCounter()
          .Name("llmgw_upstream_ejections_total")
          .Help("Times each node was ejected by health checks or failed requests")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& prompt_tokens =
      prometheus::BuildCounter()
          .Name("llmgw_prompt_tokens_total")
          .Help("Prompt tokens reported by the nodes' final records")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& completion_tokens =
      prometheus::BuildCounter()
          .Name("llmgw_completion_tokens_total")
          .Help("Generated tokens reported by the nodes' final records")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& prompt_eval =
      prometheus::BuildCounter()
          .Name("llmgw_prompt_eval_seconds_total")
          .Help("Prompt evaluation time reported by the nodes (prompt_eval_duration)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& bytes =
      prometheus::BuildCounter()
          .Name("llmgw_response_bytes_total")
          .Help("Response body bytes relayed to clients, per node")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& connections = prometheus::BuildGauge()
                                                           .Name("llmgw_client_connections")
                                                           .Help("Open client connections")
                                                           .Register(*registry);
  prometheus::Family<prometheus::Counter>& tls_handshake_failures =
      prometheus::BuildCounter()
          .Name("llmgw_tls_handshake_failures_total")
          .Help("Client connections closed because their TLS handshake failed or timed out")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& build_info =
      prometheus::BuildGauge()
          .Name("llmgw_build_info")
          .Help("Always 1; the labels say which build of llmgw is running")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& queue_depth =
      prometheus::BuildGauge()
          .Name("llmgw_admission_queue_depth")
          .Help("Requests waiting in the gateway for a slot on each node, by priority class")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& max_in_flight =
      prometheus::BuildGauge()
          .Name("llmgw_admission_max_in_flight")
          .Help("Each node's cap on generating requests in flight (nodes[].max_in_flight; 0: none)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& admitted =
      prometheus::BuildGauge()
          .Name("llmgw_admission_in_flight")
          .Help("Generating requests holding one of each node's admission slots")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& service =
      prometheus::BuildGauge()
          .Name("llmgw_admission_service_seconds")
          .Help("Each node's recent service time per request (average; warm-wait estimate input)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& prefill_rate =
      prometheus::BuildGauge()
          .Name("llmgw_admission_prefill_seconds_per_token")
          .Help("Each node's prefill time per uncached prompt token (warm-wait estimate input)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& cache_reuse =
      prometheus::BuildGauge()
          .Name("llmgw_admission_cache_reuse")
          .Help(
              "Share of each node's recent interactive affinity-routed prompt tokens served "
              "from its KV cache (warm-wait estimate input)")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& wait =
      prometheus::BuildHistogram()
          .Name("llmgw_admission_wait_seconds")
          .Help("Time requests waited in an admission queue, by priority class")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& dispatched =
      prometheus::BuildCounter()
          .Name("llmgw_admission_dispatched_total")
          .Help("Requests given a slot, by priority class and whether they waited")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& rejected =
      prometheus::BuildCounter()
          .Name("llmgw_admission_rejected_total")
          .Help("Requests that got no slot, by priority class and reason")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& warm_wait =
      prometheus::BuildCounter()
          .Name("llmgw_admission_warm_wait_total")
          .Help("A session's node at its cap: waited for it, or spilled to a node with room")
          .Register(*registry);
  prometheus::Family<prometheus::Histogram>& estimates =
      prometheus::BuildHistogram()
          .Name("llmgw_admission_estimate_seconds")
          .Help("Warm-wait estimates: expected wait on the session's node, cold prefill elsewhere")
          .Register(*registry);
  ProcessCollector process;
  AdmissionMetrics admission;

  std::array<prometheus::Counter*, routing::kRouteKindCount> decision_counters{};
  prometheus::Family<prometheus::Counter>& placement_fallbacks =
      prometheus::BuildCounter()
          .Name("llmgw_placement_store_fallbacks_total")
          .Help(
              "Sessions routed by the plain ring without the placement store, by reason: "
              "unavailable (down or slow: not asked) or timeout (no answer in time)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& placement_late =
      prometheus::BuildCounter()
          .Name("llmgw_placement_store_late_answers_total")
          .Help(
              "Placements answered after their request went by the plain ring, by outcome: "
              "agreed (the node used), claimed (the store now records the node used), "
              "superseded (another replica moved the session), lost (no answer)")
          .Register(*registry);
  std::array<prometheus::Counter*, 4> late_answers{};
  prometheus::Family<prometheus::Gauge>& placement_up =
      prometheus::BuildGauge()
          .Name("llmgw_placement_store_up")
          .Help("1 while the placement store (routing.placement_store) answers in time")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& discovery_resolutions =
      prometheus::BuildCounter()
          .Name("llmgw_discovery_resolutions_total")
          .Help(
              "DNS discovery resolutions by outcome: ok, nxdomain, no_records, servfail, refused, "
              "timeout, unreachable, error (every outcome but ok keeps the last node set)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& discovery_nodes =
      prometheus::BuildGauge()
          .Name("llmgw_discovery_nodes")
          .Help("Nodes found by DNS discovery (discovery.dns) in the node set")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& preheats =
      prometheus::BuildCounter()
          .Name("llmgw_preheats_total")
          .Help("Cache preheats of a session's new node, by outcome: sent, completed, failed")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& preheats_skipped =
      prometheus::BuildCounter()
          .Name("llmgw_preheats_skipped_total")
          .Help(
              "Planned moves whose preheat was not sent, by reason: no_prompt, no_model, "
              "node_busy, cap, other_replica, not_worth")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& preheat_tokens =
      prometheus::BuildCounter()
          .Name("llmgw_preheat_prompt_tokens_total")
          .Help("Prompt tokens of completed preheats, as the nodes count them (the whole prompt)")
          .Register(*registry);
  prometheus::Family<prometheus::Counter>& preheat_eval =
      prometheus::BuildCounter()
          .Name("llmgw_preheat_prompt_eval_seconds_total")
          .Help("Time the nodes spent evaluating the preheats' prompts (the uncached part)")
          .Register(*registry);
  prometheus::Family<prometheus::Gauge>& preheat_store =
      prometheus::BuildGauge()
          .Name("llmgw_preheat_store")
          .Help("The last-prompt store: sessions kept and bytes they cost (preheat.max_bytes)")
          .Register(*registry);
  PreheatMetrics preheat;
  using StatusCounters = std::array<prometheus::Counter*, kStatusClassCount>;
  std::array<std::atomic<const StatusCounters*>, kKeyLabelSlots> unrouted{};  // by key slot
  prometheus::Gauge* connection_gauge = nullptr;
  prometheus::Counter* tls_handshake_failure_counter = nullptr;
  prometheus::Counter* fallback_unavailable = nullptr;
  prometheus::Counter* fallback_timeout = nullptr;
  prometheus::Gauge* placement_up_gauge = nullptr;
  prometheus::Gauge* discovery_nodes_gauge = nullptr;
  std::map<std::string, prometheus::Counter*, std::less<>> discovery_outcomes;

  std::mutex mutex;  // guards nodes, key_names and the stores below
  std::map<std::string, std::unique_ptr<NodeMetrics>, std::less<>> nodes;
  std::vector<std::string> key_names{"none"};                      // by slot
  std::vector<std::unique_ptr<RequestCounters>> request_counters;  // what NodeMetrics point to
  std::vector<std::unique_ptr<StatusCounters>> unrouted_counters;  // what unrouted points to

  // Creates the children of (node, key slot); under `mutex`.
  const RequestCounters* make_requests(const std::string& node_id, std::size_t slot) {
    auto counters = std::make_unique<RequestCounters>();
    for (std::size_t k = 0; k < routing::kRouteKindCount; ++k) {
      for (std::size_t c = 0; c < kStatusClassCount; ++c) {
        (*counters)[k][c] = &requests.Add(
            {{"node", node_id},
             {"route", std::string{routing::to_string(static_cast<routing::RouteKind>(k))}},
             {"code", std::string{kStatusClasses[c]}},
             {"key", key_names[slot]}});
      }
    }
    request_counters.push_back(std::move(counters));
    return request_counters.back().get();
  }

  const StatusCounters* make_unrouted(std::size_t slot) {
    auto counters = std::make_unique<StatusCounters>();
    for (std::size_t c = 0; c < kStatusClassCount; ++c) {
      (*counters)[c] = &requests.Add({{"node", "none"},
                                      {"route", "none"},
                                      {"code", std::string{kStatusClasses[c]}},
                                      {"key", key_names[slot]}});
    }
    unrouted_counters.push_back(std::move(counters));
    return unrouted_counters.back().get();
  }
};

GatewayMetrics::GatewayMetrics() : impl_(std::make_unique<Impl>()) {
  for (std::size_t k = 0; k < routing::kRouteKindCount; ++k) {
    impl_->decision_counters[k] = &impl_->decisions.Add(
        {{"route", std::string{routing::to_string(static_cast<routing::RouteKind>(k))}}});
  }
  impl_->unrouted[kNoKeySlot].store(impl_->make_unrouted(kNoKeySlot));
  impl_->connection_gauge = &impl_->connections.Add({});
  impl_->tls_handshake_failure_counter = &impl_->tls_handshake_failures.Add({});
  AdmissionMetrics& admission = impl_->admission;
  for (std::size_t p = 0; p < admission::kPriorityCount; ++p) {
    const std::string priority{admission::to_string(static_cast<admission::Priority>(p))};
    admission.wait_seconds[p] = &impl_->wait.Add({{"class", priority}}, kFirstByteBuckets);
    admission.dispatched_at_once[p] =
        &impl_->dispatched.Add({{"class", priority}, {"waited", "false"}});
    admission.dispatched_queued[p] =
        &impl_->dispatched.Add({{"class", priority}, {"waited", "true"}});
    for (std::size_t r = 0; r < kAdmissionRejectCount; ++r) {
      admission.rejected[r][p] = &impl_->rejected.Add(
          {{"class", priority},
           {"reason", std::string{to_string(static_cast<AdmissionReject>(r))}}});
    }
  }
  admission.warm_waited = &impl_->warm_wait.Add({{"decision", "waited"}});
  admission.warm_spilled = &impl_->warm_wait.Add({{"decision", "spilled"}});
  admission.estimated_wait_seconds =
      &impl_->estimates.Add({{"side", "expected_wait"}}, kFirstByteBuckets);
  admission.estimated_cold_prefill_seconds =
      &impl_->estimates.Add({{"side", "cold_prefill"}}, kFirstByteBuckets);
  impl_->fallback_unavailable = &impl_->placement_fallbacks.Add({{"reason", "unavailable"}});
  impl_->fallback_timeout = &impl_->placement_fallbacks.Add({{"reason", "timeout"}});
  constexpr std::array<const char*, 4> kLateOutcomes{"agreed", "claimed", "superseded", "lost"};
  for (std::size_t i = 0; i < kLateOutcomes.size(); ++i) {
    impl_->late_answers[i] = &impl_->placement_late.Add({{"outcome", kLateOutcomes[i]}});
  }
  PreheatMetrics& preheat = impl_->preheat;
  preheat.sent = &impl_->preheats.Add({{"outcome", "sent"}});
  preheat.completed = &impl_->preheats.Add({{"outcome", "completed"}});
  preheat.failed = &impl_->preheats.Add({{"outcome", "failed"}});
  for (std::size_t r = 0; r < kPreheatSkipCount; ++r) {
    preheat.skipped[r] = &impl_->preheats_skipped.Add(
        {{"reason", std::string{to_string(static_cast<PreheatSkip>(r))}}});
  }
  preheat.prompt_tokens = &impl_->preheat_tokens.Add({});
  preheat.prompt_eval_seconds = &impl_->preheat_eval.Add({});
  preheat.store_sessions = &impl_->preheat_store.Add({{"measure", "sessions"}});
  preheat.store_bytes = &impl_->preheat_store.Add({{"measure", "bytes"}});
  impl_->build_info.Add({{"version", std::string{kVersion}}, {"compiler", compiler()}}).Set(1);
}

GatewayMetrics::~GatewayMetrics() = default;

NodeMetrics& GatewayMetrics::node(const std::string& node_id) {
  std::lock_guard lock(impl_->mutex);
  auto& slot = impl_->nodes[node_id];
  if (slot) {
    return *slot;
  }
  slot = std::make_unique<NodeMetrics>();
  NodeMetrics& m = *slot;
  m.node_id = node_id;
  const prometheus::Labels node_label{{"node", node_id}};
  m.requests[kNoKeySlot].store(impl_->make_requests(node_id, kNoKeySlot));
  for (std::size_t e = 0; e < kUpstreamErrorCount; ++e) {
    m.errors[e] = &impl_->errors.Add(
        {{"node", node_id}, {"kind", std::string{to_string(static_cast<UpstreamError>(e))}}});
  }
  m.in_flight = &impl_->in_flight.Add(node_label);
  m.sessions = &impl_->sessions.Add(node_label);
  m.ring_virtual_nodes = &impl_->vnodes.Add(node_label);
  m.healthy = &impl_->healthy.Add(node_label);
  m.healthy->Set(1);
  m.models = &impl_->models.Add(node_label);
  m.models_loaded = &impl_->models_loaded.Add(node_label);
  m.ejections = &impl_->ejections.Add(node_label);
  for (std::size_t k = 0; k < routing::kRouteKindCount; ++k) {
    const prometheus::Labels labels{
        {"node", node_id},
        {"route", std::string{routing::to_string(static_cast<routing::RouteKind>(k))}}};
    m.request_duration[k] = &impl_->duration.Add(labels, kDurationBuckets);
    m.time_to_first_byte[k] = &impl_->first_byte.Add(labels, kFirstByteBuckets);
  }
  m.prompt_tokens = &impl_->prompt_tokens.Add(node_label);
  m.completion_tokens = &impl_->completion_tokens.Add(node_label);
  m.prompt_eval_seconds = &impl_->prompt_eval.Add(node_label);
  m.bytes_relayed = &impl_->bytes.Add(node_label);
  for (std::size_t p = 0; p < admission::kPriorityCount; ++p) {
    m.admission.queue_depth[p] = &impl_->queue_depth.Add(
        {{"node", node_id},
         {"class", std::string{admission::to_string(static_cast<admission::Priority>(p))}}});
  }
  m.admission.max_in_flight = &impl_->max_in_flight.Add(node_label);
  m.admission.admitted = &impl_->admitted.Add(node_label);
  m.admission.service_seconds = &impl_->service.Add(node_label);
  m.admission.prefill_seconds_per_token = &impl_->prefill_rate.Add(node_label);
  m.admission.cache_reuse = &impl_->cache_reuse.Add(node_label);
  return m;
}

AdmissionMetrics& GatewayMetrics::admission() noexcept {
  return impl_->admission;
}

PreheatMetrics& GatewayMetrics::preheat() noexcept {
  return impl_->preheat;
}

void GatewayMetrics::count_routing_decision(routing::RouteKind kind) noexcept {
  impl_->decision_counters[static_cast<std::size_t>(kind)]->Increment();
}

prometheus::Counter& GatewayMetrics::key_source_counter(const std::string& source) {
  std::lock_guard lock(impl_->mutex);
  return impl_->key_sources.Add({{"source", source}});
}

std::size_t GatewayMetrics::key_slot(const std::string& key_name) {
  std::lock_guard lock(impl_->mutex);
  auto& names = impl_->key_names;
  if (const auto it = std::find(names.begin(), names.end(), key_name); it != names.end()) {
    return static_cast<std::size_t>(it - names.begin());
  }
  if (names.size() + 1 < kKeyLabelSlots) {
    names.push_back(key_name);
    return names.size() - 1;
  }
  names.resize(kKeyLabelSlots, "other");  // full: every later name shares the last slot
  return kKeyLabelSlots - 1;
}

void GatewayMetrics::count_request(NodeMetrics& node, std::size_t key_slot,
                                   routing::RouteKind route, int status) noexcept {
  const std::size_t slot = key_slot < kKeyLabelSlots ? key_slot : kNoKeySlot;
  const RequestCounters* counters = node.requests[slot].load(std::memory_order_acquire);
  if (counters == nullptr) {
    try {
      std::lock_guard lock(impl_->mutex);
      counters = node.requests[slot].load(std::memory_order_acquire);
      if (counters == nullptr) {
        counters = impl_->make_requests(node.node_id, slot);
        node.requests[slot].store(counters, std::memory_order_release);
      }
    } catch (...) {
      counters = node.requests[kNoKeySlot].load(std::memory_order_acquire);  // out of memory
    }
  }
  (*counters)[static_cast<std::size_t>(route)][status_class_index(status)]->Increment();
}

void GatewayMetrics::count_unrouted(int status, std::size_t key_slot) noexcept {
  const std::size_t slot = key_slot < kKeyLabelSlots ? key_slot : kNoKeySlot;
  const Impl::StatusCounters* counters = impl_->unrouted[slot].load(std::memory_order_acquire);
  if (counters == nullptr) {
    try {
      std::lock_guard lock(impl_->mutex);
      counters = impl_->unrouted[slot].load(std::memory_order_acquire);
      if (counters == nullptr) {
        counters = impl_->make_unrouted(slot);
        impl_->unrouted[slot].store(counters, std::memory_order_release);
      }
    } catch (...) {
      counters = impl_->unrouted[kNoKeySlot].load(std::memory_order_acquire);
    }
  }
  (*counters)[status_class_index(status)]->Increment();
}

void GatewayMetrics::count_placement_fallback(bool timed_out) noexcept {
  (timed_out ? impl_->fallback_timeout : impl_->fallback_unavailable)->Increment();
}

void GatewayMetrics::count_placement_late_answer(LateAnswer outcome) noexcept {
  impl_->late_answers[static_cast<std::size_t>(outcome)]->Increment();
}

void GatewayMetrics::set_placement_store_up(bool up) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->placement_up_gauge == nullptr) {
    impl_->placement_up_gauge = &impl_->placement_up.Add({});
  }
  impl_->placement_up_gauge->Set(up ? 1 : 0);
}

void GatewayMetrics::count_discovery_resolution(std::string_view outcome) {
  std::lock_guard lock(impl_->mutex);
  auto it = impl_->discovery_outcomes.find(outcome);
  if (it == impl_->discovery_outcomes.end()) {
    it = impl_->discovery_outcomes
             .emplace(std::string{outcome},
                      &impl_->discovery_resolutions.Add({{"outcome", std::string{outcome}}}))
             .first;
  }
  it->second->Increment();
}

void GatewayMetrics::set_discovered_nodes(std::size_t count) {
  std::lock_guard lock(impl_->mutex);
  if (impl_->discovery_nodes_gauge == nullptr) {
    impl_->discovery_nodes_gauge = &impl_->discovery_nodes.Add({});
  }
  impl_->discovery_nodes_gauge->Set(static_cast<double>(count));
}

void GatewayMetrics::set_client_connections(double value) noexcept {
  impl_->connection_gauge->Set(value);
}

void GatewayMetrics::count_tls_handshake_failure() noexcept {
  impl_->tls_handshake_failure_counter->Increment();
}

std::string GatewayMetrics::serialize() const {
  auto families = impl_->registry->Collect();
  auto process = impl_->process.Collect();
  families.insert(families.end(), std::make_move_iterator(process.begin()),
                  std::make_move_iterator(process.end()));
  return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace llmgw::metrics
