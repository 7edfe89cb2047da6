#pragma once

// Internal to the gateway: shared state, per-node state, per-worker state. Includes Beast, so only
// src/server/*.cpp include it.

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "admission_gate.hpp"
#include "llmgw/config/gateway_config.hpp"
#include "llmgw/metrics/gateway_metrics.hpp"
#include "llmgw/routing/model_catalog.hpp"
#include "llmgw/routing/placement_store.hpp"
#include "llmgw/routing/prompt_store.hpp"
#include "llmgw/routing/router.hpp"
#include "llmgw/routing/session_key.hpp"
#include "llmgw/routing/session_table.hpp"
#include "llmgw/server/node_health.hpp"
#include "node_events.hpp"
#include "upstream_pool.hpp"

namespace llmgw::server::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
namespace ssl = asio::ssl;

// A node's answer to GET /api/version and when it was read (fleet_endpoints.hpp's version cache).
struct NodeVersion {
  std::string version;
  std::chrono::steady_clock::time_point read_at;
};

// One upstream node: its configuration, its routing state (in flight, sessions, the healthy flag
// the router reads) and its health state machine (llmgw/server/node_health.hpp, with a worked
// example). Active checks and proxied requests feed `health`; record_* log every ejection and
// readmission with its reason.
struct UpstreamNode final : routing::NodeState {
  UpstreamNode(const config::NodeConfig& node_config, metrics::NodeMetrics& node_metrics,
               const config::AdmissionConfig& admission_config)
      : NodeState(node_config.name, node_config.weight),
        config(node_config),
        authority(node_config.host + ":" + std::to_string(node_config.port)),
        pool_key((node_config.tls ? "https://" : "http://") + authority),
        metrics(node_metrics),
        admission(node_metrics.admission, node_config, admission_config) {}

  // A failure (what counts: node_health.hpp). `reason` says what failed, for the log.
  void record_failure(NodeHealth::Source source, const OutlierPolicy& policy,
                      std::string_view reason);
  void record_success(NodeHealth::Source source, const OutlierPolicy& policy);

  const config::NodeConfig config;
  const std::string authority;  // Host header value
  const std::string pool_key;   // "http://host:port": the upstream pool's key (TLS never mixes)
  // https:// nodes: the client TLS context of the configuration in force (upstream_tls.*), set at
  // publish; null for http:// nodes. Loaded once per new connection.
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> tls_context;
  metrics::NodeMetrics& metrics;
  NodeHealth health{healthy};
  std::atomic<std::uint64_t> requests{0};
  // The models it holds (catalog.hpp): null until the first fetch, which counts as not current.
  std::atomic<std::shared_ptr<const routing::NodeModels>> models;
  std::atomic<bool> catalog_fetching{false};  // a fetch is running
  std::atomic<bool> catalog_again{false};     // asked for during it: fetch once more after it
  // Its version as its health probe or a fleet /api/version last read it; null when unknown or
  // after a failure (record_failure), so that the fleet's /api/version asks the node again.
  std::atomic<std::shared_ptr<const NodeVersion>> version;
  // nodes[].draining of the configuration in force (a node that stays across a change keeps its
  // object, so this follows the configuration rather than `config`): no new sessions, no unkeyed
  // requests (catalog.hpp's route_model takes it out of the holders).
  std::atomic<bool> draining{false};
  NodeEvents events;  // recent failures, ejections, readmissions with reasons (/health)
  // Called with the node's id when it is ejected (SharedState::on_ejected, set at creation;
  // preheat.hpp's warm on arrival). Null or empty: nothing.
  const std::function<void(const std::string& node)>* on_ejected = nullptr;
  // The same when it is taken back (SharedState::on_readmitted: return preheats).
  const std::function<void(const std::string& node)>* on_readmitted = nullptr;
  // The node's cap and queue (admission_gate.hpp). Its caps follow reloads (configure), not
  // `config`, so a reload that changes only caps keeps the node and its waiters.
  AdmissionGate admission;
};

// The outlier policy of a configuration (thresholds and ejection times of `health`).
OutlierPolicy outlier_policy(const config::HealthConfig& health);

// What the proxy path reads, published as one immutable value: the nodes, their ring, and the
// configuration in force (routing, timeouts, limits, health, log, admin). A config reload or an
// admin change builds a new Snapshot and publishes it; a request keeps the one it started with to
// its end, so it never sees half of a change.
struct Snapshot {
  Snapshot(std::vector<std::shared_ptr<UpstreamNode>> upstreams,
           std::shared_ptr<const config::GatewayConfig> gateway_config,
           std::shared_ptr<routing::SessionTable> session_table, std::uint64_t snapshot_version);

  // The configuration this snapshot was built from. Its listen and workers fields are the
  // running ones (they take a restart: SharedState::config).
  const config::GatewayConfig& config() const { return *config_; }

  std::vector<std::shared_ptr<UpstreamNode>> nodes;  // same indices as table
  routing::RoutingTable table;
  routing::RoutingPolicy policy;  // from config().routing
  // Session placements (routing.balance_by: sessions with c > 0); null when requests are
  // balanced. Shared by every snapshot while the balance mode stays (SharedState::update).
  std::shared_ptr<routing::SessionTable> sessions;
  // routing.key_sources, parsed (validated at load), each with its decisions counter; the last
  // counter is for requests no source answered ("none").
  std::vector<routing::KeySource> key_sources;
  std::vector<prometheus::Counter*> key_source_counters;
  // The `key` label slot (metrics::GatewayMetrics::key_slot) of each of config().auth.keys.
  std::vector<std::size_t> key_slots;
  std::uint64_t version;

  UpstreamNode& node(std::size_t index) const { return *nodes[index]; }
  const UpstreamNode* find(std::string_view name) const;

 private:
  std::shared_ptr<const config::GatewayConfig> config_;
};

// What only a restart changes: the listeners and the worker threads exist once per process.
struct RestartOnlyConfig {
  config::ListenConfig listen;
  config::ListenConfig admin_listen;  // admin.listen; an empty address: none
  unsigned workers = 1;               // resolved: never 0
  std::string placement_store;        // routing.placement_store (may hold a password)
};

struct SharedState {
  explicit SharedState(config::GatewayConfig gateway_config);

  std::shared_ptr<const Snapshot> current() const {
    return snapshot.load(std::memory_order_acquire);
  }

  // A change of the running configuration (a reload, an admin request): the configuration of the
  // current snapshot in, the next one out, or nullopt for no change.
  using ConfigChange =
      std::function<std::optional<config::GatewayConfig>(const config::GatewayConfig& running)>;
  // Read-modify-publish under membership_mutex, so two changes at once cannot lose one. Nodes
  // that stay (same name, url and weight) keep their live state; the session table stays while
  // the balance mode does. Returns the published snapshot (the current one when `change` returned
  // nullopt). Throws what `change` throws (config::ConfigError); nothing is published then.
  // Control path only: it may read admin.token_file.
  std::shared_ptr<const Snapshot> update(const ConfigChange& change);

  const RestartOnlyConfig config;
  metrics::GatewayMetrics metrics;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot;
  std::atomic<std::uint64_t> snapshot_version{0};
  std::atomic<std::int64_t> total_in_flight{0};
  std::atomic<std::uint64_t> round_robin_ticket{0};
  std::atomic<std::int64_t> client_connections{0};
  std::atomic<std::size_t> buffered_body_bytes{0};  // request bodies held (request_reader.hpp)
  std::atomic<bool> draining{false};
  std::atomic<bool> drain_cut{false};  // the drain deadline passed: streams still open are cut
  // Asks the catalog for a fetch of one node's models ("" = all; catalog.hpp's
  // request_catalog_refresh). Set once by the gateway before its threads start; empty before.
  std::function<void(std::string_view node)> catalog_refresh;
  // routing.placement_store's client (shared_placement.hpp), null without one. Stopped by the
  // gateway once its workers are joined: its answers are posted to their io_contexts.
  std::unique_ptr<routing::PlacementStore> placement_store;
  // The sessions' last prompts (preheat.hpp), bounded by preheat.max_bytes (0: keeps nothing).
  routing::PromptStore prompts;
  // Called by update() after it published a change, outside the membership lock, with the
  // snapshots before and after (preheat.hpp's planned moves). Set once by the gateway before its
  // threads start; empty before.
  std::function<void(std::shared_ptr<const Snapshot> before, std::shared_ptr<const Snapshot> after)>
      on_published;
  // Asked by the session table before a failover session returns to its recovered owner
  // (SessionTableOptions::may_return; preheat.hpp). Set once by the gateway before its threads
  // start; empty: it returns at once.
  std::function<bool(std::uint64_t key_position, const routing::NodeState& owner)> may_return;
  // Called from the thread that ejected a node, with its id (preheat.hpp: warm on arrival). Set
  // once by the gateway before its threads start; empty before.
  std::function<void(const std::string& node)> on_ejected;
  // Called from the thread that took a node back, with its id (preheat.hpp: the failover
  // sessions' return preheats begin at once). Set once before the threads start.
  std::function<void(const std::string& node)> on_readmitted;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

 private:
  void publish_locked(config::GatewayConfig next);
  // The client TLS context for next's https:// nodes (null without any): the one built before
  // while upstream_tls stays the same, else a new one. Throws config::ConfigError.
  std::shared_ptr<ssl::context> upstream_tls_locked(const config::GatewayConfig& next);

  std::mutex membership_mutex_;  // serialises update()
  // Under membership_mutex_: the https:// nodes' context and the settings it was built from.
  std::shared_ptr<ssl::context> upstream_tls_context_;
  config::UpstreamTlsConfig upstream_tls_built_;
};

// The buffers of one proxied request, reused across requests on a worker (RelayBufferPool).
struct RelayBuffers {
  // Capacity of upstream_input, which sets the size of each read from the node: Beast reads at
  // least 512 bytes, else what the buffer has room for. A fresh buffer (512) split a 700-byte
  // response head + body into two reads and two writes to the client; 2 KiB holds a short
  // response whole. Not 16 KiB: that cost a touched page per open stream (5,000 streams: RSS
  // 98.7 MiB against 88.4 MiB with 2 KiB).
  static constexpr std::size_t kReadBytes = 2 * 1024;
  // Relay buffer: the body bytes of one read on their way to the client. A read brings at most
  // kReadBytes (see above; more only after a head longer than that grew the read buffer, and
  // what does not fit is parsed on the next turn of the relay loop), so a larger window is never
  // filled: it was 16 KiB, 16.4 KB of the 31.6 KB of heap per open stream (valgrind massif,
  // bench/RESULTS.md §12).
  static constexpr std::size_t kBodyBytes = kReadBytes;
  // The longest node error body read whole to judge it (proxy.cpp's read_short_body).
  static constexpr std::size_t kShortBodyBytes = 16 * 1024;

  RelayBuffers() { upstream_input.reserve(kReadBytes); }

  beast::flat_buffer upstream_input;  // read from the node, not parsed yet
  std::array<char, kBodyBytes> body;  // response body bytes on their way to the client
};

// Spare RelayBuffers of one worker (no lock: one thread uses it). Without it each request
// allocated its relay buffer (it lived in the coroutine frame) and a fresh read buffer.
class RelayBufferPool {
 public:
  std::unique_ptr<RelayBuffers> take();
  void put(std::unique_ptr<RelayBuffers> buffers);

 private:
  static constexpr std::size_t kMaxSpare = 64;  // what a burst of streams leaves behind is freed
  std::vector<std::unique_ptr<RelayBuffers>> spare_;
};

class Watchdog;

// A client connection as the drain logic and the watchdog see it. Plain sockets or TLS over them
// (stream.hpp): the watchdog keeps the time, so beast::tcp_stream's per-operation timers are not
// needed.
struct ClientConnection {
  Stream* client = nullptr;
  Stream* upstream = nullptr;    // set while a request is being relayed
  Watchdog* watchdog = nullptr;  // the timeouts of both streams (watchdog.hpp)
  // Set while the request waits in a node's admission queue: cancelled when the client leaves
  // (watchdog.hpp) or at the drain deadline, which wakes the waiter (admission_gate.hpp).
  asio::steady_timer* admission_wait = nullptr;
  bool idle = true;             // waiting for the next request head
  bool admin_listener = false;  // accepted on admin.listen
  // The current request's X-Request-ID (request_identity.hpp): every answer carries it.
  std::string request_id;
  // The current request's client key (credentials.hpp): its `key` label slot, and the priority
  // class its requests take when they name none ("" = interactive).
  std::size_t key_slot = metrics::kNoKeySlot;
  std::string key_name;  // for the access log; "" without keys
  std::string key_priority;
};

struct Worker {
  explicit Worker(SharedState& shared_state) : shared(shared_state) {}

  // The routing snapshot, refreshed only when a new one was published (one acquire load).
  // A request copies the pointer: it keeps its snapshot alive across suspensions while later
  // requests on this worker move on to a newer one.
  const std::shared_ptr<const Snapshot>& snapshot() {
    const auto version = shared.snapshot_version.load(std::memory_order_acquire);
    if (!cached || cached_version != version) {
      cached = shared.current();
      cached_version = version;
    }
    return cached;
  }

  SharedState& shared;
  // Before io: coroutine frames still pending when io is destroyed hand their buffers back here.
  RelayBufferPool relay_buffers;
  asio::io_context io{1};
  std::optional<tcp::acceptor> acceptor;
  std::optional<tcp::acceptor> admin_acceptor;  // admin.listen, on the first worker only
  UpstreamPool pool;
  std::unordered_set<ClientConnection*> connections;
  std::shared_ptr<const Snapshot> cached;
  std::uint64_t cached_version = 0;
  std::thread thread;
};

}  // namespace llmgw::server::detail
