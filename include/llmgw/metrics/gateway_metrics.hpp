#pragma once

// The gateway's Prometheus metrics (DESIGN.md §5), on prometheus-cpp's registry.
// Labels stay low-cardinality: node, route kind, status class, error kind. Never a session id or
// a raw path. The exposition also carries llmgw_build_info and Prometheus' standard process_*
// metrics (process_metrics.hpp).
//
// Thread safety: children are created on the control path (node added) and then only incremented
// from the data path (prometheus-cpp counters and gauges are atomics).

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "llmgw/admission/admission_queue.hpp"
#include "llmgw/routing/router.hpp"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
template <typename T>
class Family;
}  // namespace prometheus

namespace llmgw::metrics {

// Status classes as label values: index 0 = "1xx" ... 4 = "5xx".
inline constexpr std::size_t kStatusClassCount = 5;
std::size_t status_class_index(int status) noexcept;

enum class UpstreamError : std::uint8_t {
  connect,            // could not connect
  timeout,            // no response head within timeouts.first_byte, or idle between chunks
  status_5xx,         // the node answered 5xx before any byte was relayed
  broken_stream,      // the node's connection broke mid-response
  client_disconnect,  // the client went away; the upstream request was cancelled
  stale_connection,   // a pooled connection the node had closed; retried on a fresh one (not
                      // counted against the node)
};
inline constexpr std::size_t kUpstreamErrorCount = 6;
std::string_view to_string(UpstreamError kind) noexcept;

// How a request's admission ended without a slot (docs/DESIGN.md §2.2). queue_full and max_wait
// are 429s, no_eligible_node a 503; client_gone: the client left while queued (nothing was sent);
// shutting_down: the drain deadline passed while it waited.
enum class AdmissionReject : std::uint8_t {
  queue_full,
  max_wait,
  no_eligible_node,
  client_gone,
  shutting_down,
};
inline constexpr std::size_t kAdmissionRejectCount = 5;
std::string_view to_string(AdmissionReject reason) noexcept;

// Gateway-wide admission children, by priority class (index: admission::Priority).
struct AdmissionMetrics {
  using PerClass = std::array<prometheus::Counter*, admission::kPriorityCount>;
  // Time from joining a queue to leaving it (dispatched or not).
  std::array<prometheus::Histogram*, admission::kPriorityCount> wait_seconds{};
  PerClass dispatched_at_once{};  // a slot was free
  PerClass dispatched_queued{};   // after a wait
  std::array<PerClass, kAdmissionRejectCount> rejected{};
  prometheus::Counter* warm_waited = nullptr;   // waited for the session's node
  prometheus::Counter* warm_spilled = nullptr;  // went to a node with room
  // The warm-wait estimate's two sides, at each decision that had both inputs.
  prometheus::Histogram* estimated_wait_seconds = nullptr;
  prometheus::Histogram* estimated_cold_prefill_seconds = nullptr;
};

// Why a planned move's preheat was not sent (server/preheat.hpp).
enum class PreheatSkip : std::uint8_t {
  no_prompt,      // the session's last prompt is not kept (store cap, too large, never seen)
  no_model,       // the new node does not hold the session's model (or its catalog never answered)
  node_busy,      // no slot on the new node within preheat.max_wait_ms (client requests go first)
  cap,            // preheat.max_per_node or preheat.max_total preheats already running or queued
  other_replica,  // routing.placement_store: another replica claimed it (or the store is away)
  not_worth,      // warm on arrival: the cold prefill it saves is below arrival_min_prefill_ms
};
inline constexpr std::size_t kPreheatSkipCount = 6;
std::string_view to_string(PreheatSkip reason) noexcept;

// Cache preheating (server/preheat.hpp): what was sent, what it cost, what was skipped.
struct PreheatMetrics {
  prometheus::Counter* sent = nullptr;       // requests sent to a node
  prometheus::Counter* completed = nullptr;  // the node answered 2xx
  prometheus::Counter* failed = nullptr;     // anything else (the client never notices)
  std::array<prometheus::Counter*, kPreheatSkipCount> skipped{};
  prometheus::Counter* prompt_tokens = nullptr;        // the preheats' prompts, as nodes count them
  prometheus::Counter* prompt_eval_seconds = nullptr;  // the nodes' prefill time for them
  prometheus::Gauge* store_sessions = nullptr;         // sessions whose last prompt is kept
  prometheus::Gauge* store_bytes = nullptr;            // what they cost (preheat.max_bytes)
};

// Per-node admission children.
struct NodeAdmissionMetrics {
  std::array<prometheus::Gauge*, admission::kPriorityCount> queue_depth{};
  prometheus::Gauge* max_in_flight = nullptr;              // the cap (0: none)
  prometheus::Gauge* admitted = nullptr;                   // generating requests holding a slot
  prometheus::Gauge* service_seconds = nullptr;            // recent service time (estimate input)
  prometheus::Gauge* prefill_seconds_per_token = nullptr;  // cold prefill cost (estimate input)
  prometheus::Gauge* cache_reuse = nullptr;  // affinity turns' cached share (estimate input)
};

// The `key` label of llmgw_requests_total (auth.keys_file's key names): a slot per name, given on
// the control path (GatewayMetrics::key_slot) and carried by each request. Slot 0 is "none" (no
// key: auth off, or refused); a process names at most kKeyLabelSlots - 2 keys over its life (a
// reload may rename them), later names count under "other", so the label stays bounded.
inline constexpr std::size_t kKeyLabelSlots = 256;
inline constexpr std::size_t kNoKeySlot = 0;

// llmgw_requests_total children of one node and key: by route kind and status class.
using RequestCounters =
    std::array<std::array<prometheus::Counter*, kStatusClassCount>, routing::kRouteKindCount>;

// Per-node children, resolved once so the data path never looks up a label set.
struct NodeMetrics {
  std::string node_id;
  // By key slot; slot 0 made with the node, the others at a key's first request through the node
  // (GatewayMetrics::count_request), then read without a lock.
  std::array<std::atomic<const RequestCounters*>, kKeyLabelSlots> requests{};
  std::array<prometheus::Counter*, kUpstreamErrorCount> errors{};
  prometheus::Gauge* in_flight = nullptr;
  prometheus::Gauge* sessions = nullptr;  // set from the session table when /metrics is read
  prometheus::Gauge* ring_virtual_nodes = nullptr;
  prometheus::Gauge* healthy = nullptr;
  prometheus::Gauge* models = nullptr;         // in the node's catalog entry (server/catalog.hpp)
  prometheus::Gauge* models_loaded = nullptr;  // of those, loaded
  prometheus::Counter* ejections = nullptr;
  // By route kind. Time to first byte holds only requests that generate (not GET or HEAD: a
  // /api/tags answer says nothing about prefill).
  std::array<prometheus::Histogram*, routing::kRouteKindCount> request_duration{};
  std::array<prometheus::Histogram*, routing::kRouteKindCount> time_to_first_byte{};
  prometheus::Counter* prompt_tokens = nullptr;
  prometheus::Counter* completion_tokens = nullptr;
  prometheus::Counter* prompt_eval_seconds = nullptr;
  prometheus::Counter* bytes_relayed = nullptr;
  NodeAdmissionMetrics admission;
};

class GatewayMetrics {
 public:
  GatewayMetrics();
  ~GatewayMetrics();
  GatewayMetrics(const GatewayMetrics&) = delete;
  GatewayMetrics& operator=(const GatewayMetrics&) = delete;

  // Children for `node` (created on first call; the same object afterwards). A removed node's
  // series stay (frozen) and are reused if it comes back: requests still in flight may hold them,
  // and prometheus-cpp frees a child on removal.
  NodeMetrics& node(const std::string& node_id);

  AdmissionMetrics& admission() noexcept;
  PreheatMetrics& preheat() noexcept;

  void count_routing_decision(routing::RouteKind kind) noexcept;
  // The key label slot of a client key's name (control path; the same slot for the same name).
  std::size_t key_slot(const std::string& key_name);
  // One relayed answer of `node` to a client of key slot `key_slot`.
  void count_request(NodeMetrics& node, std::size_t key_slot, routing::RouteKind route,
                     int status) noexcept;
  // The counter of routing decisions whose session key came from `source` (a configured key
  // source's label, or "none"). Control path: resolve once, increment on the data path.
  prometheus::Counter& key_source_counter(const std::string& source);
  // A request answered without a node (local endpoints, 4xx from limits, 401 without a valid
  // key, 502 with no node), by the key slot of its client.
  void count_unrouted(int status, std::size_t key_slot = kNoKeySlot) noexcept;
  void set_client_connections(double value) noexcept;
  // llmgw_tls_handshake_failures_total: a client's TLS handshake failed (listen.tls).
  void count_tls_handshake_failure() noexcept;
  // Shared placements (routing.placement_store): a session routed by the plain ring because the
  // store was unavailable (not asked) or did not answer within its timeout.
  void count_placement_fallback(bool timed_out) noexcept;
  // What became of a placement the store answered after its request had gone by the plain
  // ring: agreed (it was the node used), claimed (the store now records the node used),
  // superseded (another replica had moved the session meanwhile), lost (no answer, an error).
  enum class LateAnswer : std::uint8_t { agreed, claimed, superseded, lost };
  void count_placement_late_answer(LateAnswer outcome) noexcept;
  // The store's availability; the series exists only with a store.
  void set_placement_store_up(bool up);
  // DNS discovery (discovery.dns): one resolution's outcome (net::to_string(DnsOutcome): ok,
  // nxdomain, no_records, servfail, refused, timeout, unreachable, error), and the discovered
  // nodes in the node set. Control path only; the series exist only with discovery.
  void count_discovery_resolution(std::string_view outcome);
  void set_discovered_nodes(std::size_t count);

  // Prometheus text exposition format 0.0.4: the registry's families, then the process metrics
  // read from /proc now.
  std::string serialize() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::metrics
