// discovery.dns: its validation (names, ports, intervals, server) and the discovered nodes as
// node configurations merged into the running configuration (llmgw/config/discovered_nodes.hpp).
#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "gateway_config_internal.hpp"
#include "llmgw/config/discovered_nodes.hpp"
#include "llmgw/config/gateway_config.hpp"

namespace llmgw::config {
namespace {

constexpr std::chrono::milliseconds kMinInterval{100};
constexpr std::size_t kMaxDnsNameBytes = 253;
constexpr std::size_t kMaxLabelBytes = 63;

// "" when `name` is a DNS name a resolver can ask for: dot-separated labels of letters, digits,
// '-' and '_' (SRV names start with "_service._proto"), 1-63 bytes each, 253 in all, an optional
// final dot. Else the problem.
std::string dns_name_problem(std::string_view name) {
  if (name.ends_with('.')) {
    name.remove_suffix(1);
  }
  if (name.empty()) {
    return "is empty";
  }
  if (name.size() > kMaxDnsNameBytes) {
    return "is longer than 253 bytes";
  }
  std::size_t label_start = 0;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    if (i == name.size() || name[i] == '.') {
      const std::size_t length = i - label_start;
      if (length == 0) {
        return "has an empty label (two dots in a row, or a leading dot)";
      }
      if (length > kMaxLabelBytes) {
        return "has a label longer than 63 bytes";
      }
      if (name[label_start] == '-' || name[i - 1] == '-') {
        return "has a label that starts or ends with '-'";
      }
      label_start = i + 1;
      continue;
    }
    const auto c = static_cast<unsigned char>(name[i]);
    if (std::isalnum(c) == 0 && c != '-' && c != '_') {
      return "has a character other than letters, digits, '-', '_' and '.'";
    }
  }
  return {};
}

std::string bracketed(const std::string& address) {
  return address.find(':') != std::string::npos ? "[" + address + "]" : address;
}

std::string lower_name(std::string name) {
  if (name.ends_with('.')) {
    name.pop_back();
  }
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return name;
}

// A discovered node that stays keeps its running entry (weight, draining); the rest follows the
// records and discovery.dns.
NodeConfig updated(const NodeConfig& running, const NodeConfig& found) {
  NodeConfig node = running;
  node.url = found.url;
  node.host = found.host;
  node.port = found.port;
  node.api = found.api;
  node.max_in_flight = found.max_in_flight;
  node.max_in_flight_per_model = found.max_in_flight_per_model;
  node.health_path = found.health_path;
  node.discovered = true;
  return node;
}

}  // namespace

std::optional<DnsServerAddress> parse_dns_server(std::string_view text, std::string& problem) {
  DnsServerAddress server;
  std::string_view port_text;
  if (text.starts_with('[')) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      problem = "an IPv6 address in brackets needs its ']'";
      return std::nullopt;
    }
    server.address = std::string{text.substr(1, close - 1)};
    const auto rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (!rest.starts_with(':')) {
        problem = "expected ip, ip:port or [ipv6]:port";
        return std::nullopt;
      }
      port_text = rest.substr(1);
      if (port_text.empty()) {
        problem = "the port after ':' is missing";
        return std::nullopt;
      }
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    const auto colon = text.find(':');
    server.address = std::string{text.substr(0, colon)};
    port_text = text.substr(colon + 1);
    if (port_text.empty()) {
      problem = "the port after ':' is missing";
      return std::nullopt;
    }
  } else {
    server.address = std::string{text};  // IPv4, or IPv6 without a port
  }
  if (!detail::is_ip_address(server.address)) {
    problem = "expected an IP address (ip, ip:port or [ipv6]:port), got " +
              detail::quote_value(server.address) + "; a server name would need DNS itself";
    return std::nullopt;
  }
  if (!port_text.empty()) {
    const auto port = detail::parse_number<std::uint32_t>(port_text);
    if (!port || *port == 0 || *port > 65535) {
      problem = "port " + detail::quote_value(port_text) + " is out of range (1-65535)";
      return std::nullopt;
    }
    server.port = static_cast<std::uint16_t>(*port);
  }
  return server;
}

std::vector<NodeConfig> discovered_node_configs(const DnsDiscoveryConfig& dns,
                                                const std::vector<FoundNode>& found) {
  // SRV targets listed with more than one port need the port in their id.
  std::map<std::string, std::set<std::uint16_t>> ports_of_target;
  for (const auto& record : found) {
    if (!record.target.empty()) {
      ports_of_target[lower_name(record.target)].insert(record.port);
    }
  }
  std::map<std::string, NodeConfig> by_id;
  for (const auto& record : found) {
    NodeConfig node;
    node.url = "http://" + bracketed(record.address) + ":" + std::to_string(record.port);
    if (!record.target.empty()) {
      const std::string target = lower_name(record.target);
      node.name =
          ports_of_target[target].size() > 1 ? target + ":" + std::to_string(record.port) : target;
    }
    try {
      resolve_node(node);  // host, port; id "address:port" for A/AAAA
    } catch (const ConfigError&) {
      continue;  // not an address the resolver should give; never a node
    }
    node.api = dns.api;
    node.max_in_flight = dns.max_in_flight;
    node.discovered = true;
    by_id.emplace(node.name, std::move(node));
  }
  std::vector<NodeConfig> nodes;
  nodes.reserve(by_id.size());
  for (auto& [id, node] : by_id) {
    nodes.push_back(std::move(node));
  }
  return nodes;
}

std::vector<NodeConfig> discovered_nodes(const GatewayConfig& config) {
  std::vector<NodeConfig> nodes;
  std::copy_if(config.nodes.begin(), config.nodes.end(), std::back_inserter(nodes),
               [](const NodeConfig& node) { return node.discovered; });
  return nodes;
}

DiscoveryMerge with_discovered_nodes(const GatewayConfig& running,
                                     const std::vector<NodeConfig>& discovered) {
  DiscoveryMerge merge;
  GatewayConfig next = running;
  std::erase_if(next.nodes, [](const NodeConfig& node) { return node.discovered; });
  std::set<std::string> static_ids;
  std::set<std::string> static_urls;
  for (const auto& node : next.nodes) {
    static_ids.insert(node.name);
    static_urls.insert(bracketed(node.host) + ":" + std::to_string(node.port));
  }
  for (const auto& found : discovered) {
    if (static_ids.contains(found.name)) {
      merge.left_out.push_back(found.name + ": a static node (nodes[]) has this name");
      continue;
    }
    if (static_urls.contains(bracketed(found.host) + ":" + std::to_string(found.port))) {
      merge.left_out.push_back(found.name + ": a static node (nodes[]) has this address");
      continue;
    }
    const auto kept = std::find_if(
        running.nodes.begin(), running.nodes.end(),
        [&](const NodeConfig& node) { return node.discovered && node.name == found.name; });
    next.nodes.push_back(kept == running.nodes.end() ? found : updated(*kept, found));
  }
  if (next.nodes != running.nodes) {
    merge.next = std::move(next);
  }
  return merge;
}

GatewayConfig carry_discovered_nodes(GatewayConfig next, const GatewayConfig& running) {
  if (!next.discovery.dns.enabled()) {
    return next;
  }
  // The running discovered nodes, as the new discovery.dns would have made them.
  std::vector<NodeConfig> carried = discovered_nodes(running);
  for (auto& node : carried) {
    node.api = next.discovery.dns.api;
    node.max_in_flight = next.discovery.dns.max_in_flight;
  }
  auto merged = with_discovered_nodes(next, carried);
  return merged.next ? std::move(*merged.next) : std::move(next);
}

}  // namespace llmgw::config

namespace llmgw::config::detail {

void validate_discovery(const GatewayConfig& config, Problems& problems) {
  const DnsDiscoveryConfig& dns = config.discovery.dns;
  if (!dns.enabled()) {
    return;
  }
  if (const std::string problem = dns_name_problem(dns.name); !problem.empty()) {
    problems.add("discovery.dns.name", quote_value(dns.name) + " is not a DNS name: " + problem);
  }
  if (!dns.srv && dns.port == 0) {
    problems.add("discovery.dns.port",
                 "must be 1-65535 (the nodes' port for A/AAAA records), got 0");
  }
  if (dns.interval < kMinInterval) {
    problems.add("discovery.dns.interval_ms",
                 "must be at least 100 (a resolution takes a round trip), got " +
                     std::to_string(dns.interval.count()));
  }
  if (!dns.server.empty()) {
    std::string problem;
    if (!parse_dns_server(dns.server, problem)) {
      problems.add("discovery.dns.server", problem);
    }
  }
  check_one_of("discovery.dns.api", dns.api, {"ollama", "openai"}, problems);
}

}  // namespace llmgw::config::detail
