// The key table (the only list of fields) and what is derived from it for users: LLMGW_*
// variable names and --help-config.
#include <algorithm>
#include <array>
#include <cctype>
#include <iomanip>
#include <numeric>
#include <sstream>

#include "gateway_config_internal.hpp"
#include "llmgw/config/gateway_config.hpp"

namespace llmgw::config::detail {

// A member of the root struct as a Target; a macro so that each table row stays one line.
#define LLMGW_FIELD(Root, member) [](Root& root) -> Target { return &root.member; }
#define LLMGW_KEY(path, member, bound, description)                     \
  KeySpec<GatewayConfig> {                                              \
    path, LLMGW_FIELD(GatewayConfig, member), bound, false, description \
  }

const std::vector<KeySpec<GatewayConfig>>& gateway_keys() {
  using enum Bound;
  static const std::vector<KeySpec<GatewayConfig>> keys{
      LLMGW_KEY("listen.address", listen.address, kAny, "IP address to listen on"),
      LLMGW_KEY("listen.port", listen.port, kAny, "TCP port to listen on; 0 = ephemeral"),
      LLMGW_KEY("listen.tls.cert_file", listen.tls.cert_file, kAny,
                "PEM certificate chain: with key_file the listener speaks HTTPS only (TLS 1.2+); "
                "reread on SIGHUP"),
      LLMGW_KEY("listen.tls.key_file", listen.tls.key_file, kAny,
                "PEM private key (unencrypted) of listen.tls.cert_file; reread on SIGHUP"),
      LLMGW_KEY("workers", workers, kAny, "I/O threads; 0 = one per core"),
      LLMGW_KEY("upstream_tls.ca_file", upstream_tls.ca_file, kAny,
                "PEM CA bundle trusted for https:// nodes besides the system store"),
      LLMGW_KEY("upstream_tls.insecure_skip_verify", upstream_tls.insecure_skip_verify, kAny,
                "do not verify https:// nodes' certificates or names (test benches only)"),
      LLMGW_KEY("discovery.dns.name", discovery.dns.name, kAny,
                "DNS name whose records are the nodes (beside `nodes`); empty = no discovery"),
      LLMGW_KEY("discovery.dns.srv", discovery.dns.srv, kAny,
                "the name has SRV records: node = target (its id) at the record's port"),
      LLMGW_KEY("discovery.dns.port", discovery.dns.port, kAny,
                "the nodes' port for A/AAAA records (node id address:port)"),
      LLMGW_KEY("discovery.dns.interval_ms", discovery.dns.interval, kPositive,
                "time between two resolutions (>= 100)"),
      LLMGW_KEY("discovery.dns.timeout_ms", discovery.dns.timeout, kPositive,
                "one resolution's deadline; past it the last set is kept"),
      LLMGW_KEY("discovery.dns.server", discovery.dns.server, kAny,
                "DNS server ip[:port]; empty = the system's (resolv.conf)"),
      LLMGW_KEY("discovery.dns.api", discovery.dns.api, kAny,
                "what the discovered nodes speak: ollama or openai"),
      LLMGW_KEY("discovery.dns.max_in_flight", discovery.dns.max_in_flight, kNonNegative,
                "each discovered node's cap of generating requests; 0 = no cap"),
      LLMGW_KEY("routing.virtual_nodes", routing.virtual_nodes, kPositive,
                "virtual nodes per node on the ring at weight 1"),
      LLMGW_KEY("routing.session_header", routing.session_header, kAny,
                "request header whose value is the session key"),
      LLMGW_KEY("routing.key_sources", routing.key_sources, kAny,
                "session key sources in order: header, header:<name>, body:prompt_cache_key, "
                "prefix"),
      LLMGW_KEY("routing.prefix_bytes", routing.prefix_bytes, kPositive,
                "prefix keys: bytes of the conversation's start that count"),
      LLMGW_KEY("routing.balance_factor", routing.balance_factor, kAny,
                "bounded-load factor c (>= 1); 0 = plain ring"),
      LLMGW_KEY("routing.balance_by", routing.balance_by, kAny,
                "what bounded loads count: sessions (sticky placements) or requests in flight"),
      LLMGW_KEY("routing.session_idle_ms", routing.session_idle, kPositive,
                "balance_by sessions: a session's placement ends after this idle time"),
      LLMGW_KEY("routing.max_sessions", routing.max_sessions, kPositive,
                "balance_by sessions: placements remembered; the least recently used go first"),
      LLMGW_KEY("routing.max_attempts", routing.max_attempts, kPositive,
                "nodes tried for one request before 502/504"),
      KeySpec<GatewayConfig>{
          "routing.placement_store", LLMGW_FIELD(GatewayConfig, routing.placement_store), kAny,
          true,
          "redis://[[user]:password@]host[:port][/db]: session placements shared by every "
          "replica; empty = this gateway's own (restart to change)"},
      KeySpec<GatewayConfig>{"routing.placement_store_password",
                             LLMGW_FIELD(GatewayConfig, routing.placement_store_password), kAny,
                             true, "the placement store's password, instead of the URL's"},
      LLMGW_KEY("routing.placement_store_password_file", routing.placement_store_password_file,
                kAny, "file whose first line is the placement store's password"),
      LLMGW_KEY("routing.placement_store_timeout_ms", routing.placement_store_timeout, kPositive,
                "a new session waits no longer for its placement; then the plain ring decides"),
      LLMGW_KEY("timeouts.connect_ms", timeouts.connect, kPositive, "TCP connect to a node"),
      LLMGW_KEY("timeouts.first_byte_ms", timeouts.first_byte, kPositive,
                "one attempt: request sent -> response head from the node"),
      LLMGW_KEY("timeouts.first_byte_total_ms", timeouts.first_byte_total, kPositive,
                "request read -> response head, across every retry"),
      LLMGW_KEY("timeouts.upstream_idle_ms", timeouts.upstream_idle, kPositive,
                "pooled node connections older than this are closed, not reused"),
      LLMGW_KEY("timeouts.idle_ms", timeouts.idle, kNonNegative,
                "between two body reads; 0 = no limit"),
      LLMGW_KEY("timeouts.total_ms", timeouts.total, kNonNegative, "whole request; 0 = no limit"),
      LLMGW_KEY("timeouts.client_header_ms", timeouts.client_header, kNonNegative,
                "idle client connection -> request head read; 0 = no limit"),
      LLMGW_KEY("limits.max_header_bytes", limits.max_header_bytes, kPositive,
                "request head size; larger -> 431"),
      LLMGW_KEY("limits.max_body_bytes", limits.max_body_bytes, kPositive,
                "request body size; larger -> 413"),
      LLMGW_KEY("limits.max_buffered_body_bytes", limits.max_buffered_body_bytes, kPositive,
                "request bodies held in memory, all connections together; past it -> 503"),
      LLMGW_KEY("limits.max_connections", limits.max_connections, kPositive,
                "concurrent client connections, all workers together"),
      LLMGW_KEY("limits.max_idle_upstream_per_node", limits.max_idle_upstream_per_node, kPositive,
                "pooled keep-alive connections per node per worker"),
      LLMGW_KEY("health.path", health.path, kAny, "path probed on each node"),
      LLMGW_KEY("health.interval_ms", health.interval, kPositive, "time between probes"),
      LLMGW_KEY("health.timeout_ms", health.timeout, kPositive, "one probe's deadline"),
      LLMGW_KEY("health.unhealthy_threshold", health.unhealthy_threshold, kPositive,
                "consecutive failures before a node is ejected"),
      LLMGW_KEY("health.healthy_threshold", health.healthy_threshold, kPositive,
                "consecutive good probes before it is taken back"),
      LLMGW_KEY("health.base_ejection_ms", health.base_ejection, kPositive,
                "first ejection's length; doubles on each repeat"),
      LLMGW_KEY("health.max_ejection_ms", health.max_ejection, kPositive,
                "longest ejection; a node healthy this long starts again from the base"),
      LLMGW_KEY(
          "catalog.interval_ms", catalog.interval, kNonNegative,
          "time between fetches of every node's models; 0 = no catalog (model-blind routing)"),
      LLMGW_KEY("admission.priority_header", admission.priority_header, kAny,
                "request header naming the priority class: interactive (default) or batch"),
      LLMGW_KEY("admission.warm_wait", admission.warm_wait, kAny,
                "a session's node at its cap: estimate (wait when cheaper than a cold prefill "
                "elsewhere) or never (spill at once)"),
      LLMGW_KEY("admission.batch_aging_ms", admission.batch_aging, kNonNegative,
                "a batch request waiting this long competes with interactive ones by arrival"),
      LLMGW_KEY("admission.interactive_reserve", admission.interactive_reserve, kNonNegative,
                "slots of a node batch requests leave free per interactive session active there"),
      LLMGW_KEY("admission.interactive_reserve_idle_ms", admission.interactive_reserve_idle,
                kNonNegative,
                "a session keeps its reserve this long after its last interactive request"),
      LLMGW_KEY("admission.interactive.max_queue", admission.interactive.max_queue, kNonNegative,
                "interactive requests waiting per node; more -> 429"),
      LLMGW_KEY("admission.interactive.max_wait_ms", admission.interactive.max_wait, kNonNegative,
                "longest wait of an interactive request in a queue; then 429"),
      LLMGW_KEY("admission.batch.max_queue", admission.batch.max_queue, kNonNegative,
                "batch requests waiting per node; more -> 429"),
      LLMGW_KEY("admission.batch.max_wait_ms", admission.batch.max_wait, kNonNegative,
                "longest wait of a batch request in a queue; then 429"),
      LLMGW_KEY("preheat.max_bytes", preheat.max_bytes, kNonNegative,
                "memory for the sessions' last prompts (LRU); 0 = no preheating"),
      LLMGW_KEY("preheat.max_per_node", preheat.max_per_node, kPositive,
                "preheats running or queued at once on one node; more are skipped"),
      LLMGW_KEY("preheat.max_total", preheat.max_total, kPositive,
                "preheats running or queued at once in the gateway; more are skipped"),
      LLMGW_KEY("preheat.max_wait_ms", preheat.max_wait, kPositive,
                "a preheat waits no longer for a slot on its node (then skipped: node busy)"),
      LLMGW_KEY("preheat.timeout_ms", preheat.timeout, kPositive,
                "one preheat request, connect to last byte"),
      LLMGW_KEY("preheat.warm_on_arrival", preheat.warm_on_arrival, kAny,
                "preheat an ejected node's sessions' failover nodes at once"),
      LLMGW_KEY("preheat.arrival_min_prefill_ms", preheat.arrival_min_prefill, kNonNegative,
                "warm on arrival only when the history's estimated cold prefill is this long"),
      LLMGW_KEY("shutdown.drain_ms", drain, kNonNegative,
                "after SIGTERM, time in-flight requests get to finish"),
      LLMGW_KEY("log.level", log.level, kAny, "trace, debug, info, warn, error or off"),
      LLMGW_KEY("log.format", log.format, kAny, "text or json"),
      LLMGW_KEY("log.access_log", log.access_log, kAny, "one log line per request"),
      LLMGW_KEY("log.access_log_probes", log.access_log_probes, kAny,
                "access lines for /, /health, /metrics and /status too (probes, scrapes)"),
      KeySpec<GatewayConfig>{"admin.token", LLMGW_FIELD(GatewayConfig, admin.token), kAny, true,
                             "bearer token for /admin/*; empty disables the admin API"},
      LLMGW_KEY("admin.token_file", admin.token_file, kAny,
                "file whose first line is the admin token (instead of admin.token)"),
      LLMGW_KEY("admin.listen.address", admin.listen.address, kAny,
                "serve /admin/* only on this address (404 on listen.*); empty = on listen.*"),
      LLMGW_KEY("admin.listen.port", admin.listen.port, kAny,
                "the admin listener's port (with admin.listen.address); 0 = ephemeral"),
      LLMGW_KEY("admin.listen.tls.cert_file", admin.listen.tls.cert_file, kAny,
                "PEM certificate chain of the admin listener (HTTPS only); reread on SIGHUP"),
      LLMGW_KEY("admin.listen.tls.key_file", admin.listen.tls.key_file, kAny,
                "PEM private key of admin.listen.tls.cert_file"),
      LLMGW_KEY("auth.keys_file", auth.keys_file, kAny,
                "client keys (lines NAME: KEY [interactive|batch]) proxied requests need; empty "
                "= none needed; reread on SIGHUP"),
      LLMGW_KEY("status.require_token", status.require_token, kAny,
                "the /status page asks for the admin token; off: open like /health"),
  };
  return keys;
}

const std::vector<KeySpec<NodeConfig>>& node_keys() {
  static const std::vector<KeySpec<NodeConfig>> keys{
      {"name", LLMGW_FIELD(NodeConfig, name), Bound::kAny, false,
       "stable id on the ring; default host:port"},
      {"url", LLMGW_FIELD(NodeConfig, url), Bound::kAny, false,
       "http://host[:port] or https://host[:port] (required)"},
      {"weight", LLMGW_FIELD(NodeConfig, weight), Bound::kPositive, false,
       "scales the node's virtual-node count"},
      {"api", LLMGW_FIELD(NodeConfig, api), Bound::kAny, false,
       "ollama or openai (llama-server, vLLM: catalog from /v1/models, probed on /health)"},
      {"health_path", LLMGW_FIELD(NodeConfig, health_path), Bound::kAny, false,
       "path probed on this node; default health.path (ollama) or /health (openai)"},
      {"max_in_flight", LLMGW_FIELD(NodeConfig, max_in_flight), Bound::kNonNegative, false,
       "generating requests in flight to the node; more wait in the gateway; 0 = no cap"},
      {"max_in_flight_per_model", LLMGW_FIELD(NodeConfig, max_in_flight_per_model),
       Bound::kNonNegative, false,
       "the same per model on the node (OLLAMA_NUM_PARALLEL); 0 = only max_in_flight"},
      {"draining", LLMGW_FIELD(NodeConfig, draining), Bound::kAny, false,
       "no new sessions; its sessions move (preheated) at their next turn"},
  };
  return keys;
}

#undef LLMGW_KEY
#undef LLMGW_FIELD

// ---------------------------------------------------------------------------------------------
// Small text helpers

std::string trim(std::string_view text) {
  const auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!text.empty() && is_space(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string{text};
}

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string quote_value(std::string_view value) {
  constexpr std::size_t kMaxShown = 80;
  std::string shown{value.substr(0, kMaxShown)};
  if (value.size() > kMaxShown) {
    shown += "...";
  }
  std::ostringstream out;
  out << std::quoted(shown);
  return out.str();
}

std::string format_double(double value) {
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return std::string(buffer.data(), result.ptr);
}

namespace {

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string needle = lower(word);
  const std::size_t allowed = std::max<std::size_t>(2, needle.size() / 4);
  const std::string* best = nullptr;
  std::size_t best_distance = allowed + 1;
  for (const auto& candidate : candidates) {
    const std::size_t distance = edit_distance(needle, lower(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = &candidate;
    }
  }
  return best == nullptr ? std::string{} : " (did you mean " + *best + "?)";
}

}  // namespace llmgw::config::detail

namespace llmgw::config {

std::string env_var_name(const std::string& path) {
  std::string name = "LLMGW_";
  for (const char c : path) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

std::vector<ConfigKey> config_keys() {
  GatewayConfig defaults;
  std::vector<ConfigKey> keys;
  for (const auto& key : detail::gateway_keys()) {
    const detail::Target target = key.target(defaults);
    keys.push_back({key.path, detail::type_name(target), detail::format_value(target),
                    env_var_name(key.path), key.description});
    if (key.path == "workers") {  // the nodes come next in the YAML layout
      keys.push_back({std::string{detail::kNodesPath}, "list", std::string{detail::kDefaultNodeUrl},
                      std::string{detail::kNodesEnv},
                      "nodes behind the gateway; env/--set form: name=url,url,..."});
      NodeConfig node_defaults;
      for (const auto& node_key : detail::node_keys()) {
        const detail::Target node_target = node_key.target(node_defaults);
        const bool has_default = node_key.path == "weight" || node_key.path == "api" ||
                                 node_key.path == "draining" ||
                                 node_key.path.starts_with("max_in_flight");
        keys.push_back({"nodes[i]." + node_key.path, detail::type_name(node_target),
                        has_default ? detail::format_value(node_target) : "", "",
                        node_key.description});
      }
    }
  }
  return keys;
}

std::string describe_config_keys() {
  const auto keys = config_keys();
  std::array<std::size_t, 4> widths{std::string_view{"key"}.size(), 4, 7, 3};
  for (const auto& key : keys) {
    widths[0] = std::max(widths[0], key.path.size());
    widths[1] = std::max(widths[1], key.type.size());
    widths[2] = std::max(widths[2], key.default_value.size());
    widths[3] = std::max(widths[3], key.env_var.size());
  }
  std::ostringstream out;
  const auto row = [&](const std::string& path, const std::string& type, const std::string& value,
                       const std::string& env, const std::string& description) {
    out << std::left << std::setw(static_cast<int>(widths[0] + 2)) << path
        << std::setw(static_cast<int>(widths[1] + 2)) << type
        << std::setw(static_cast<int>(widths[2] + 2)) << value
        << std::setw(static_cast<int>(widths[3] + 2)) << env << description << '\n';
  };
  row("key", "type", "default", "env", "meaning");
  for (const auto& key : keys) {
    row(key.path, key.type, key.default_value, key.env_var.empty() ? "-" : key.env_var,
        key.description);
  }
  out << "\nOverride any key with --set path=value (nodes[i].field for one node). Precedence: "
         "--set > environment > file > default. Durations are milliseconds.\n";
  return out.str();
}

}  // namespace llmgw::config
