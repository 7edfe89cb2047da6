#pragma once

// Nodes found by DNS discovery (discovery.dns) as node configurations, and how they join the
// running configuration: pure functions, so the discoverer (server/dns_discovery.hpp), a reload and
// the unit tests share one rule.
//
// Identity. A node's id is its place on the ring, so it must not change while the node stays:
// - A/AAAA records: one node per address, id "address:port" (IPv6 bracketed), as a static node
//   written as http://address:port would have. A pod that comes back with a new address is a new
//   node.
// - SRV records: one node per target, id = the target's name without its final dot ("ollama-0.
//   ollama.default.svc.cluster.local"), at the target's address and the record's port. A pod that
//   comes back under its name (a StatefulSet behind a headless Service) keeps its id, hence its
//   ring position and its sessions, even at a new address. A target listed with two ports gives
//   two nodes, "target:port" each.
//
// Merging. The running configuration's discovered nodes (NodeConfig::discovered) are replaced by
// the ones found. A node found again keeps its running entry (its weight and draining flag, as an
// admin PATCH left them), with the address found and discovery.dns' api and max_in_flight. A
// found node whose id or address is a static node's is left out: the file wins.
//
// Example: nodes [a (static)], discovered [10.0.0.1:11434 (weight 2 by PATCH), 10.0.0.2:11434];
// records now 10.0.0.1, 10.0.0.3 -> nodes [a, 10.0.0.1:11434 (weight 2), 10.0.0.3:11434].

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::config {

// One node as DNS gave it.
struct FoundNode {
  std::string target;   // SRV: the target's name; A/AAAA: empty
  std::string address;  // IPv4 or IPv6 text, no brackets
  std::uint16_t port = 0;
};

// The node configurations for `found` under `dns` (ids as above), sorted by id, duplicates
// (same id) dropped.
std::vector<NodeConfig> discovered_node_configs(const DnsDiscoveryConfig& dns,
                                                const std::vector<FoundNode>& found);

struct DiscoveryMerge {
  std::optional<GatewayConfig> next;  // nullopt: the node set is unchanged
  std::vector<std::string> left_out;  // found nodes colliding with a static one ("id: reason")
};

// `running` with its discovered nodes replaced by `discovered` (from discovered_node_configs).
DiscoveryMerge with_discovered_nodes(const GatewayConfig& running,
                                     const std::vector<NodeConfig>& discovered);

// A reloaded configuration (`next`, from the file: static nodes only) with the discovered nodes of
// `running` carried over while `next` still has DNS discovery, re-templated by its discovery.dns;
// without it, none. The discoverer resolves again right after a reload.
GatewayConfig carry_discovered_nodes(GatewayConfig next, const GatewayConfig& running);

// The discovered nodes of `config`.
std::vector<NodeConfig> discovered_nodes(const GatewayConfig& config);

}  // namespace llmgw::config
