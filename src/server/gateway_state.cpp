#include "gateway_state.hpp"

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

namespace llmgw::server::detail {

void UpstreamNode::record_failure(NodeHealth::Source source, const OutlierPolicy& policy,
                                  std::string_view reason) {
  const auto change = health.record_failure(source, policy, std::chrono::steady_clock::now());
  if (change.ejected()) {
    metrics.healthy->Set(0);
    metrics.ejections->Increment();
    spdlog::warn("node {} ejected for {} s (ejection {} in a row): {} ({} failures in a row)", id,
                 change.ejected_for.count() / 1000, change.ejections, reason,
                 policy.unhealthy_threshold);
  }
}

void UpstreamNode::record_success(NodeHealth::Source source, const OutlierPolicy& policy) {
  const auto change = health.record_success(source, policy, std::chrono::steady_clock::now());
  if (change.readmitted()) {
    metrics.healthy->Set(1);
    spdlog::warn("node {} taken back: {} {} succeeded in a row after its ejection time", id,
                 policy.healthy_threshold,
                 source == NodeHealth::Source::check ? "health checks" : "proxied requests");
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

Snapshot::Snapshot(std::vector<std::shared_ptr<UpstreamNode>> upstreams, unsigned virtual_nodes,
                   std::uint64_t snapshot_version)
    : nodes(std::move(upstreams)),
      table(as_node_states(nodes), virtual_nodes),
      version(snapshot_version) {}

const UpstreamNode* Snapshot::find(std::string_view name) const {
  for (const auto& node : nodes) {
    if (node->id == name) {
      return node.get();
    }
  }
  return nullptr;
}

SharedState::SharedState(config::GatewayConfig gateway_config)
    : config(std::move(gateway_config)),
      policy{config.routing.balance_factor, config.routing.max_attempts},
      sessions(config.routing.balance_factor > 0 && config.routing.balance_by == "sessions"
                   ? std::make_unique<routing::SessionTable>(routing::SessionTableOptions{
                         config.routing.session_idle, config.routing.max_sessions})
                   : nullptr),
      key_sources(
          routing::parse_key_sources(config.routing.key_sources, config.routing.session_header)
              .sources) {
  for (const auto& source : key_sources) {
    key_source_counters.push_back(&metrics.key_source_counter(source.label));
  }
  key_source_counters.push_back(&metrics.key_source_counter("none"));
  publish(config.nodes);
}

void SharedState::publish(const std::vector<config::NodeConfig>& nodes) {
  std::lock_guard lock(membership_mutex);
  const auto previous = current();
  std::vector<std::shared_ptr<UpstreamNode>> upstreams;
  upstreams.reserve(nodes.size());
  for (const auto& node_config : nodes) {
    std::shared_ptr<UpstreamNode> existing;
    if (previous) {
      for (const auto& node : previous->nodes) {
        if (node->id == node_config.name && node->config.url == node_config.url &&
            node->config.weight == node_config.weight) {
          existing = node;
        }
      }
    }
    if (!existing) {
      existing = std::make_shared<UpstreamNode>(node_config, metrics.node(node_config.name));
      existing->metrics.healthy->Set(1);
    }
    upstreams.push_back(std::move(existing));
  }
  const auto version = snapshot_version.load(std::memory_order_relaxed) + 1;
  auto next =
      std::make_shared<const Snapshot>(std::move(upstreams), config.routing.virtual_nodes, version);
  for (std::size_t i = 0; i < next->nodes.size(); ++i) {
    next->nodes[i]->metrics.ring_virtual_nodes->Set(
        static_cast<double>(next->table.ring().virtual_nodes_of(i)));
  }
  snapshot.store(std::move(next), std::memory_order_release);
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
