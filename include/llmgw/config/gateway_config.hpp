#pragma once

// The gateway's configuration: parsed from YAML, then overridden by LLMGW_* environment variables,
// then by command-line flags (`--set path=value` and the named flags), then validated strictly.
// Every error names the offending key's path, e.g. "nodes[2].url: not a valid http URL".
//
// Environment names are derived from the key path: upper case, '.' -> '_', prefixed LLMGW_.
//   routing.balance_factor  -> LLMGW_ROUTING_BALANCE_FACTOR
//   listen.port             -> LLMGW_LISTEN_PORT
//   nodes                   -> LLMGW_NODES = "name=http://host:port,http://host2:port" (name
//   optional)

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::config {

struct NodeConfig {
  std::string name;  // stable id on the ring; defaults to "host:port"
  std::string url;   // http://host[:port] or https://host[:port] (no path)
  std::string host;  // parsed from url
  std::uint16_t port = 0;
  bool tls = false;     // parsed from url: https (verified as upstream_tls says)
  double weight = 1.0;  // scales the node's virtual-node count; > 0
  // What the node speaks: "ollama" (catalog from /api/tags and /api/ps, probed on health.path) or
  // "openai" (an OpenAI-compatible server such as llama.cpp's llama-server or vLLM: catalog from
  // /v1/models, probed on /health).
  std::string api = "ollama";
  std::string health_path;  // overrides the probe path; empty: health.path (ollama) or /health
  // Admission (docs/DESIGN.md §2.2): generating requests (not GET or HEAD) in flight to the node
  // through this gateway, all models together; more wait in the gateway's queue. 0 = no cap (and
  // no queue). Default 4: one model per node at OLLAMA_NUM_PARALLEL 4 (see config/gateway.yaml).
  std::size_t max_in_flight = 4;
  // The same per model on the node (Ollama's OLLAMA_NUM_PARALLEL is per loaded model); 0 = only
  // max_in_flight. Needs the model of the request (catalog.interval_ms > 0).
  std::size_t max_in_flight_per_model = 0;
  // Draining (PATCH /admin/nodes/NAME or the config): the node takes no new session and no
  // unkeyed request; its sessions finish the request in flight and move at their next turn (with
  // a preheat of their new node first, docs/DESIGN.md §2.4). It stays in the node list, health
  // checked and counted.
  bool draining = false;
  // Found by DNS discovery (discovery.dns), not written in `nodes`: set by the discoverer, never
  // by a file. A reload keeps such nodes (the file does not list them) while discovery stays on.
  bool discovered = false;

  bool operator==(const NodeConfig&) const = default;
};

// A listener's certificate (listen.tls, admin.listen.tls): with both files the listener speaks
// HTTPS only (TLS 1.2 and later). Read at start and again on SIGHUP: new connections get the new
// certificate, open ones keep theirs. Relative paths are relative to the config file.
struct ListenTlsConfig {
  std::string cert_file;  // PEM: the certificate, then its intermediates
  std::string key_file;   // PEM: its private key, not encrypted

  bool enabled() const { return !cert_file.empty() || !key_file.empty(); }
  bool operator==(const ListenTlsConfig&) const = default;
};

struct ListenConfig {
  std::string address = "0.0.0.0";
  std::uint16_t port = 8000;  // 0 = ephemeral (tests)
  ListenTlsConfig tls;
};

// How the gateway checks https:// nodes (every https node, every path: proxied requests, pooled
// connections, health checks, the catalog, the fleet endpoints, preheats).
struct UpstreamTlsConfig {
  // PEM bundle of the CAs that sign private nodes' certificates, trusted besides the system
  // store. Relative to the config file. Reread on SIGHUP.
  std::string ca_file;
  // No verification of the nodes' certificates or host names at all: anyone on the path can read
  // and change the traffic. For a test bench only; the gateway warns at start.
  bool insecure_skip_verify = false;

  bool operator==(const UpstreamTlsConfig&) const = default;
};

struct RoutingConfig {
  unsigned virtual_nodes = 150;  // per node at weight 1
  std::string session_header = "X-Session-ID";
  // Where the session key comes from, in order (routing/session_key.hpp): comma-separated
  // `header` (session_header), `header:<name>`, `body:prompt_cache_key`, `prefix`.
  std::string key_sources =
      "header,header:x-session-affinity,header:x-claude-code-session-id,header:session-id,"
      "body:prompt_cache_key,prefix";
  // `prefix` keys: bytes of the system prompt, first user message or prompt that count.
  std::size_t prefix_bytes = 1024;
  // Bounded loads: c >= 1, or 0 for the plain ring. DESIGN.md §2.
  double balance_factor = 1.25;
  // What the bounded loads count: "sessions" (placements kept per session,
  // routing/session_table.hpp) or "requests" (in flight; the DESIGN.md §2 rule).
  std::string balance_by = "sessions";
  std::chrono::milliseconds session_idle{300'000};  // a session's placement ends after this idle
  std::size_t max_sessions = 100'000;               // placements remembered (LRU beyond)
  unsigned max_attempts = 3;                        // nodes tried for one request before 502/504
  // Session placements shared by every replica (routing/placement_store.hpp):
  // redis://[[user]:password@]host[:port][/database]; empty: each gateway keeps its own. Takes a
  // restart. May hold a password: never logged (net::redact_url).
  std::string placement_store;
  std::string placement_store_password;       // instead of the URL's (LLMGW_ env var); secret
  std::string placement_store_password_file;  // first line is the password
  // A request waits no longer for its placement; past it (or while the store is down or slow)
  // the plain ring routes it.
  std::chrono::milliseconds placement_store_timeout{20};
};

struct TimeoutsConfig {
  std::chrono::milliseconds connect{2'000};       // TCP connect to a node
  std::chrono::milliseconds first_byte{300'000};  // one attempt: request sent -> response head
  // Request read -> response head, across every retry: retries only start while time is left.
  std::chrono::milliseconds first_byte_total{300'000};
  // Pooled node connections idle longer are closed, not reused. Below the keep-alive timeouts
  // servers commonly use (uvicorn/vLLM and Node.js 5 s), so the gateway closes first.
  std::chrono::milliseconds upstream_idle{4'000};
  std::chrono::milliseconds idle{120'000};          // between two body reads (upstream and client)
  std::chrono::milliseconds total{0};               // whole request; 0 = no limit
  std::chrono::milliseconds client_header{30'000};  // client connection idle -> request head read
};

struct LimitsConfig {
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = 16 * 1024 * 1024;
  // Request bodies held in memory, all connections together; past it new bodies get 503.
  std::size_t max_buffered_body_bytes = 256 * 1024 * 1024;
  std::size_t max_connections = 10'000;  // concurrent client connections, all workers together
  std::size_t max_idle_upstream_per_node = 64;  // pooled keep-alive connections per node per worker
};

struct HealthConfig {
  std::string path = "/api/version";
  std::chrono::milliseconds interval{5'000};
  std::chrono::milliseconds timeout{2'000};
  unsigned unhealthy_threshold = 3;  // consecutive failed checks (or proxied failures) -> ejected
  unsigned healthy_threshold = 2;    // consecutive good checks -> taken back
  // Ejection length: base, doubled on every repeat, capped (server/node_health.hpp).
  std::chrono::milliseconds base_ejection{30'000};
  std::chrono::milliseconds max_ejection{300'000};
};

// The model catalog (server/catalog.hpp): which node holds which model, for routing by model.
struct CatalogConfig {
  // Time between two fetches of every node's models; 0 = no catalog: every node is a candidate
  // for every model (model-blind routing).
  std::chrono::milliseconds interval{10'000};
};

// One priority class's queue per node: at most `max_queue` waiting, each at most `max_wait`.
struct ClassLimits {
  std::size_t max_queue = 64;
  std::chrono::milliseconds max_wait{30'000};
};

// Admission control in front of each node's cap (nodes[].max_in_flight; docs/DESIGN.md §2.2).
struct AdmissionConfig {
  // The request header that names the priority class: interactive (default) or batch.
  std::string priority_header = "X-Request-Priority";
  // A session whose node is at its cap: "estimate" waits for it when the expected wait is shorter
  // than a cold prefill of the history elsewhere; "never" spills to a node with room at once.
  std::string warm_wait = "estimate";
  // A batch request waiting this long competes with interactive ones by arrival time.
  std::chrono::milliseconds batch_aging{10'000};
  // Slots of a node that batch requests leave free per interactive session active there (one
  // with a request within interactive_reserve_idle; batch keeps at least one slot): slots are
  // not preempted, so without it a chat turn waits for a summary to end. A node without active
  // chats gives batch every slot (admission/interactive_reserve.hpp).
  std::size_t interactive_reserve = 1;
  std::chrono::milliseconds interactive_reserve_idle{60'000};
  ClassLimits interactive{64, std::chrono::milliseconds{30'000}};
  ClassLimits batch{256, std::chrono::milliseconds{120'000}};
};

// Cache preheating (docs/DESIGN.md §2.4): when a session must move for a planned reason, its last
// prompt is sent to its new node before its next turn, so that turn finds its history cached.
struct PreheatConfig {
  // Memory for the sessions' last prompts (request bodies), all sessions together; the least
  // recently used go first. 0 = no store, no preheating.
  std::size_t max_bytes = 64 * 1024 * 1024;
  std::size_t max_per_node = 8;  // preheats running or waiting at once for one node
  std::size_t max_total = 64;    // preheats running or waiting at once in the whole gateway
  // A preheat waits at most this long for a slot on its node (it yields to every client
  // request); past it, it is skipped (node busy).
  std::chrono::milliseconds max_wait{10'000};
  std::chrono::milliseconds timeout{120'000};  // one preheat request, connect to last byte
  // Warm on arrival: when a node is ejected, preheat its sessions' failover nodes at once (before
  // their next turns) when the history's cold prefill there, estimated from that node's learned
  // prefill rate, takes at least arrival_min_prefill. Off by default.
  bool warm_on_arrival = false;
  std::chrono::milliseconds arrival_min_prefill{100};
};

struct LogConfig {
  std::string level = "info";   // trace|debug|info|warn|error|off
  std::string format = "text";  // text|json
  bool access_log = true;
  // Also log requests to /, /health, /metrics and /status (probes, scrapes, the status page's
  // own loads); off: they drown the rest.
  bool access_log_probes = false;
};

struct AdminConfig {
  std::string token;       // bearer token for /admin/*; empty disables the admin API
  std::string token_file;  // read the token from this file instead (first line)
  // The admin API's own listener (e.g. 127.0.0.1:9001): with an address, /admin/* is served only
  // there (404 on listen.*), and that listener serves nothing else. Empty address: /admin/* on
  // the main listener. Port 0 = ephemeral (tests). Takes a restart.
  ListenConfig listen{"", 9001, {}};
};

// One inbound client key (auth.keys_file; llmgw/config/client_keys.hpp). The key itself is not
// kept: only its SHA-256, compared in constant time.
struct ClientKey {
  std::string name;                        // the `key` label on llmgw_requests_total; never secret
  std::array<unsigned char, 32> sha256{};  // of the key exactly as the client sends it
  // The priority class of the key's requests that name none (admission.priority_header):
  // "interactive", "batch", or "" (the header's default, interactive).
  std::string priority;
};

// Inbound client keys: off by default (every client may use the nodes). With auth.keys_file, a
// proxied or fleet request needs `Authorization: Bearer <key>` or `x-api-key: <key>`; /, /health,
// /metrics and /status stay open, /admin/* keeps the admin token.
struct AuthConfig {
  std::string keys_file;        // lines `NAME: KEY [interactive|batch]`; reread on SIGHUP
  std::vector<ClientKey> keys;  // read from keys_file by the loader; non-empty = keys required
};

struct StatusConfig {
  // /status (the HTML status page) asks for the admin token (Bearer, or HTTP Basic with the
  // token as password); off: open like /health, as it shows no secrets and no session ids.
  bool require_token = false;
};

// Nodes from DNS (server/dns_discovery.hpp, docs/DESIGN.md §2.5): `name` is re-resolved every
// `interval`; the nodes found join the node set beside the static `nodes`, and leave it when their
// record goes, as if added and removed through the admin API. A failed resolution (timeout,
// SERVFAIL, NXDOMAIN, no records) keeps the last set.
struct DnsDiscoveryConfig {
  std::string name;  // the name to resolve; empty: no DNS discovery
  // false: A/AAAA records of `name`, one node per address at `port`, id "address:port".
  // true: SRV records of `name` (e.g. _ollama._tcp.ollama.default.svc.cluster.local), one node
  // per target at the record's port, id = the target's name (stable across a pod's restarts).
  bool srv = false;
  std::uint16_t port = 11434;  // the nodes' port for A/AAAA records (SRV records carry theirs)
  std::chrono::milliseconds interval{10'000};  // between two resolutions
  std::chrono::milliseconds timeout{2'000};    // one query, retries included
  std::string server;          // "ip" or "ip:port" ("[v6]:port"); empty: the system's (resolv.conf)
  std::string api = "ollama";  // nodes[].api of the discovered nodes
  std::size_t max_in_flight = 4;  // nodes[].max_in_flight of the discovered nodes

  bool enabled() const { return !name.empty(); }
  bool operator==(const DnsDiscoveryConfig&) const = default;
};

struct DiscoveryConfig {
  DnsDiscoveryConfig dns;
};

struct GatewayConfig {
  ListenConfig listen;
  unsigned workers = 0;  // io threads; 0 = number of cores
  // Static nodes, then discovered ones (NodeConfig::discovered). Default: one node at
  // http://127.0.0.1:11434, unless discovery.dns.name is set (then none: DNS finds them).
  std::vector<NodeConfig> nodes;
  UpstreamTlsConfig upstream_tls;
  DiscoveryConfig discovery;
  RoutingConfig routing;
  TimeoutsConfig timeouts;
  LimitsConfig limits;
  HealthConfig health;
  CatalogConfig catalog;
  AdmissionConfig admission;
  PreheatConfig preheat;
  std::chrono::milliseconds drain{30'000};  // shutdown.drain_ms
  LogConfig log;
  AdminConfig admin;
  AuthConfig auth;
  StatusConfig status;
};

// A configuration that cannot be used; what() lists every problem, one per line, each starting with
// the key path. The CLI prints it and exits with code 2.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ConfigSources {
  std::optional<std::string> file;                 // YAML path (--config)
  std::map<std::string, std::string> environment;  // usually the process environment (LLMGW_*)
  std::vector<std::string> overrides;              // "path=value" from flags, applied last
};

// Loads, overrides and validates. Throws ConfigError.
GatewayConfig load_gateway_config(const ConfigSources& sources);

// Parses and validates YAML text (no environment, no overrides). Throws ConfigError.
GatewayConfig parse_gateway_config(const std::string& yaml_text);

// The process environment's LLMGW_* variables.
std::map<std::string, std::string> llmgw_environment();

// Validates a parsed configuration; used by the loaders and by the admin API when nodes change.
// Expects every node resolved (see resolve_node). Throws ConfigError listing every problem.
void validate(const GatewayConfig& config);

// Fills node.host, node.port and node.tls from node.url, and node.name ("host:port") when it is
// empty. Throws ConfigError ("<path>.url: ...") when the url is not http(s)://host[:port][/].
void resolve_node(NodeConfig& node, const std::string& path = "node");

// The path the health checker probes on `node`: nodes[].health_path, else health.path for an
// ollama node and /health for an openai one.
const std::string& health_path_of(const NodeConfig& node, const HealthConfig& health);

// discovery.dns.server ("ip", "ip:port", "[v6]:port"), parsed: the address and port (53 when
// not given), or nullopt with `problem` set.
struct DnsServerAddress {
  std::string address;  // without brackets
  std::uint16_t port = 53;
};
std::optional<DnsServerAddress> parse_dns_server(std::string_view text, std::string& problem);

// routing.placement_store, parsed.
struct StoreAddress {
  std::string host;
  std::uint16_t port = 6379;
  unsigned database = 0;
  std::string user;
  std::string password;  // from the URL (percent-decoded)
};

// Parses redis://[[user]:password@]host[:port][/database]. nullopt with `problem` set (never
// holding the password) for anything else; rediss:// (TLS) is refused with the reason: Debian
// 12's hiredis (0.14) has no TLS.
std::optional<StoreAddress> parse_store_url(std::string_view url, std::string& problem);

// One configurable key, as documented by `llmgw serve --help-config`. Node fields are listed as
// "nodes[i].name" etc.; they have no environment variable of their own (see LLMGW_NODES).
struct ConfigKey {
  std::string path;           // "listen.port"
  std::string type;           // "integer", "port", "milliseconds", "number", "string", ...
  std::string default_value;  // as it would be written in YAML
  std::string env_var;        // "LLMGW_LISTEN_PORT"; empty when there is none
  std::string description;
};

// Every key the loader accepts, in documentation order.
std::vector<ConfigKey> config_keys();

// config_keys() as an aligned text table (key, type, default, environment variable, meaning).
std::string describe_config_keys();

// The environment variable for a key path: "routing.balance_factor" ->
// "LLMGW_ROUTING_BALANCE_FACTOR".
std::string env_var_name(const std::string& path);

}  // namespace llmgw::config
