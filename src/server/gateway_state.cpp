#include "gateway_state.hpp"

#include <fmt/format.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <fstream>

#include "llmgw/config/client_keys.hpp"
#include "llmgw/net/tls_context.hpp"
#include "shared_placement.hpp"

namespace llmgw::server::detail {

void UpstreamNode::record_failure(NodeHealth::Source source, const OutlierPolicy& policy,
                                  std::string_view reason) {
  const auto change = health.record_failure(source, policy, std::chrono::steady_clock::now());
  version.store(nullptr, std::memory_order_release);  // the node may be gone or restarting
  events.add("failure", reason);
  if (change.ejected()) {
    events.add("ejected",
               fmt::format("for {} s after {} failures in a row: {}",
                           change.ejected_for.count() / 1000, policy.unhealthy_threshold, reason));
    metrics.healthy->Set(0);
    metrics.ejections->Increment();
    spdlog::warn("node {} ejected for {} s (ejection {} in a row): {} ({} failures in a row)", id,
                 change.ejected_for.count() / 1000, change.ejections, reason,
                 policy.unhealthy_threshold);
    if (on_ejected != nullptr && *on_ejected) {
      (*on_ejected)(id);
    }
  }
}

void UpstreamNode::record_success(NodeHealth::Source source, const OutlierPolicy& policy) {
  const auto change = health.record_success(source, policy, std::chrono::steady_clock::now());
  if (change.readmitted()) {
    metrics.healthy->Set(1);
    events.add("readmitted", fmt::format("{} {} succeeded in a row", policy.healthy_threshold,
                                         source == NodeHealth::Source::check ? "health checks"
                                                                             : "proxied requests"));
    spdlog::warn("node {} taken back: {} {} succeeded in a row after its ejection time", id,
                 policy.healthy_threshold,
                 source == NodeHealth::Source::check ? "health checks" : "proxied requests");
    if (on_readmitted != nullptr && *on_readmitted) {
      (*on_readmitted)(id);
    }
  }
}

OutlierPolicy outlier_policy(const config::HealthConfig& health) {
  return {health.unhealthy_threshold, health.healthy_threshold, health.base_ejection,
          health.max_ejection};
}

namespace {

std::vector<std::shared_ptr<routing::NodeState>> as_node_states(
    const std::vector<std::shared_ptr<UpstreamNode>>& upstreams) {
  return {upstreams.begin(), upstreams.end()};
}

}  // namespace

Snapshot::Snapshot(std::vector<std::shared_ptr<UpstreamNode>> upstreams,
                   std::shared_ptr<const config::GatewayConfig> gateway_config,
                   std::shared_ptr<routing::SessionTable> session_table,
                   std::uint64_t snapshot_version)
    : nodes(std::move(upstreams)),
      table(as_node_states(nodes), gateway_config->routing.virtual_nodes),
      policy{gateway_config->routing.balance_factor, gateway_config->routing.max_attempts},
      sessions(std::move(session_table)),
      version(snapshot_version),
      config_(std::move(gateway_config)) {}

const UpstreamNode* Snapshot::find(std::string_view name) const {
  for (const auto& node : nodes) {
    if (node->id == name) {
      return node.get();
    }
  }
  return nullptr;
}

namespace {

RestartOnlyConfig restart_only(const config::GatewayConfig& gateway_config) {
  return {gateway_config.listen, gateway_config.admin.listen,
          gateway_config.workers == 0 ? std::max(1U, std::thread::hardware_concurrency())
                                      : gateway_config.workers,
          gateway_config.routing.placement_store};
}

bool places_sessions(const config::RoutingConfig& routing) {
  return routing.balance_factor > 0 && routing.balance_by == "sessions";
}

routing::SessionTableOptions session_options(const config::RoutingConfig& routing) {
  return {routing.session_idle, routing.max_sessions};
}

// The loader resolves admin.token_file already; a configuration built in code may not have.
void resolve_admin_token(config::AdminConfig& admin) {
  if (!admin.token.empty() || admin.token_file.empty()) {
    return;
  }
  std::ifstream file(admin.token_file);
  std::string token;
  std::getline(file, token);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  admin.token = std::move(token);
}

routing::PromptStoreOptions prompt_options(const config::GatewayConfig& gateway_config) {
  return {gateway_config.preheat.max_bytes, gateway_config.routing.session_idle};
}

}  // namespace

SharedState::SharedState(config::GatewayConfig gateway_config)
    : config(restart_only(gateway_config)), prompts(prompt_options(gateway_config)) {
  placement_store = make_placement_store(gateway_config, *this);
  std::lock_guard lock(membership_mutex_);
  publish_locked(std::move(gateway_config));
}

std::shared_ptr<const Snapshot> SharedState::update(const ConfigChange& change) {
  std::shared_ptr<const Snapshot> before;
  std::shared_ptr<const Snapshot> after;
  {
    std::lock_guard lock(membership_mutex_);
    before = current();
    auto next = change(before->config());
    if (!next) {
      return before;
    }
    publish_locked(std::move(*next));
    after = current();
  }
  prompts.set_options(prompt_options(after->config()));
  if (on_published) {
    on_published(std::move(before), after);
  }
  return after;
}

std::shared_ptr<ssl::context> SharedState::upstream_tls_locked(const config::GatewayConfig& next) {
  const bool any_https = std::any_of(next.nodes.begin(), next.nodes.end(),
                                     [](const config::NodeConfig& node) { return node.tls; });
  if (!any_https) {
    return nullptr;
  }
  if (!upstream_tls_context_ || upstream_tls_built_ != next.upstream_tls) {
    try {
      upstream_tls_context_ = net::make_client_tls_context(next.upstream_tls.ca_file,
                                                           !next.upstream_tls.insecure_skip_verify);
    } catch (const net::TlsSetupError& e) {
      throw config::ConfigError(std::string{"upstream_tls.ca_file: "} + e.what());
    }
    upstream_tls_built_ = next.upstream_tls;
  }
  return upstream_tls_context_;
}

void SharedState::publish_locked(config::GatewayConfig next) {
  const auto previous = current();
  // First, as it may throw (a CA file gone since it was validated): nothing is changed then.
  const auto upstream_tls = upstream_tls_locked(next);
  next.listen = config.listen;
  next.admin.listen = config.admin_listen;
  next.workers = config.workers;
  resolve_admin_token(next.admin);
  if (!next.auth.keys_file.empty() && next.auth.keys.empty()) {
    // The loader read it already; a configuration built in code may not have. Throws
    // config::ConfigError: a file that cannot be read never turns keys off.
    next.auth.keys = config::load_client_keys(next.auth.keys_file);
  }
  auto gateway_config = std::make_shared<const config::GatewayConfig>(std::move(next));

  std::vector<std::shared_ptr<UpstreamNode>> upstreams;
  upstreams.reserve(gateway_config->nodes.size());
  for (const auto& node_config : gateway_config->nodes) {
    std::shared_ptr<UpstreamNode> existing;
    if (previous) {
      for (const auto& node : previous->nodes) {
        // Weight and draining are not part of the identity: a node whose weight changes or that
        // drains stays the same node (its in-flight counts, health, queue and sessions).
        if (node->id == node_config.name && node->config.url == node_config.url &&
            node->config.api == node_config.api &&
            node->config.health_path == node_config.health_path) {
          existing = node;
        }
      }
    }
    if (!existing) {
      existing = std::make_shared<UpstreamNode>(node_config, metrics.node(node_config.name),
                                                gateway_config->admission);
      existing->metrics.healthy->Set(1);
      existing->on_ejected = &on_ejected;
      existing->on_readmitted = &on_readmitted;
    } else {
      existing->admission.configure(node_config, gateway_config->admission);
      existing->weight.store(node_config.weight, std::memory_order_relaxed);
    }
    existing->draining.store(node_config.draining, std::memory_order_relaxed);
    existing->tls_context.store(node_config.tls ? upstream_tls : nullptr,
                                std::memory_order_release);
    upstreams.push_back(std::move(existing));
  }

  // Placements survive a change that keeps the balance mode (a new node set, timeouts, ...): they
  // are where the sessions' caches are. A new mode starts from none; the old table gives its
  // session counts back at once, as requests still on the old snapshot only relay.
  const auto& routing = gateway_config->routing;
  std::shared_ptr<routing::SessionTable> sessions;
  if (places_sessions(routing)) {
    if (previous && previous->sessions) {
      sessions = previous->sessions;
      sessions->set_options(session_options(routing));
    } else {
      sessions = std::make_shared<routing::SessionTable>(session_options(routing));
      sessions->set_return_gate(
          [this](std::uint64_t key_position, const routing::NodeState& owner) {
            return !may_return || may_return(key_position, owner);
          });
    }
  } else if (previous && previous->sessions) {
    previous->sessions->clear();
  }

  const auto version = snapshot_version.load(std::memory_order_relaxed) + 1;
  auto built = std::make_shared<Snapshot>(std::move(upstreams), std::move(gateway_config),
                                          std::move(sessions), version);
  // Validated at load: a bad list never reaches here.
  built->key_sources = routing::parse_key_sources(built->config().routing.key_sources,
                                                  built->config().routing.session_header)
                           .sources;
  for (const auto& source : built->key_sources) {
    built->key_source_counters.push_back(&metrics.key_source_counter(source.label));
  }
  built->key_source_counters.push_back(&metrics.key_source_counter("none"));
  for (const auto& key : built->config().auth.keys) {
    built->key_slots.push_back(metrics.key_slot(key.name));
  }
  std::shared_ptr<const Snapshot> snapshot_next = std::move(built);
  for (std::size_t i = 0; i < snapshot_next->nodes.size(); ++i) {
    snapshot_next->nodes[i]->metrics.ring_virtual_nodes->Set(
        static_cast<double>(snapshot_next->table.ring().virtual_nodes_of(i)));
  }
  snapshot.store(std::move(snapshot_next), std::memory_order_release);
  // Workers compare this version before using their cached snapshot.
  snapshot_version.store(version, std::memory_order_release);
}

std::unique_ptr<RelayBuffers> RelayBufferPool::take() {
  if (spare_.empty()) {
    return std::make_unique<RelayBuffers>();
  }
  auto buffers = std::move(spare_.back());
  spare_.pop_back();
  return buffers;
}

void RelayBufferPool::put(std::unique_ptr<RelayBuffers> buffers) {
  if (spare_.size() < kMaxSpare) {
    buffers->upstream_input.clear();
    spare_.push_back(std::move(buffers));
  }
}

}  // namespace llmgw::server::detail
