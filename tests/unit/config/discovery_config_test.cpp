// discovery.dns: what is refused with which key path and words (bad names, ports, intervals,
// servers), what a configuration with discovery needs (no static node), and the pure rules of
// config/discovered_nodes.hpp: node ids from A/AAAA and SRV records, the merge into the running
// configuration (kept entries, static nodes first and winning), and what a reload carries over.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "llmgw/config/discovered_nodes.hpp"
#include "llmgw/config/gateway_config.hpp"

namespace llmgw::config {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string refusal_of_yaml(const std::string& yaml) {
  try {
    parse_gateway_config(yaml);
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the configuration was accepted:\n" << yaml;
  return {};
}

std::vector<std::string> names_of(const std::vector<NodeConfig>& nodes) {
  std::vector<std::string> names;
  for (const auto& node : nodes) {
    names.push_back(node.name);
  }
  return names;
}

TEST(DiscoveryConfig, ReadsEveryFieldAndNeedsNoStaticNode) {
  const auto config = parse_gateway_config(
      "discovery:\n  dns:\n    name: ollama.default.svc.cluster.local\n    port: 11435\n"
      "    interval_ms: 2500\n    timeout_ms: 700\n    server: \"10.96.0.10:5353\"\n"
      "    api: openai\n    max_in_flight: 8\n");
  const auto& dns = config.discovery.dns;
  EXPECT_EQ(dns.name, "ollama.default.svc.cluster.local");
  EXPECT_FALSE(dns.srv);
  EXPECT_EQ(dns.port, 11435);
  EXPECT_EQ(dns.interval.count(), 2500);
  EXPECT_EQ(dns.timeout.count(), 700);
  EXPECT_EQ(dns.server, "10.96.0.10:5353");
  EXPECT_EQ(dns.api, "openai");
  EXPECT_EQ(dns.max_in_flight, 8U);
  EXPECT_TRUE(config.nodes.empty()) << "the default node was added beside DNS discovery";

  // Without discovery, the default node as before.
  EXPECT_THAT(names_of(parse_gateway_config("workers: 1\n").nodes), ElementsAre("127.0.0.1:11434"));

  const auto from_env =
      load_gateway_config({std::nullopt,
                           {{"LLMGW_DISCOVERY_DNS_NAME", "_ollama._tcp.llm.internal"},
                            {"LLMGW_DISCOVERY_DNS_SRV", "true"}},
                           {}});
  EXPECT_TRUE(from_env.discovery.dns.srv);
  EXPECT_EQ(from_env.discovery.dns.name, "_ollama._tcp.llm.internal");
}

TEST(DiscoveryConfig, RefusesBadNamesPortsIntervalsAndServersNamingTheKey) {
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: \"ollama..svc\"}}\n"),
              HasSubstr("discovery.dns.name: \"ollama..svc\" is not a DNS name: has an empty "
                        "label"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: \"http://ollama:11434\"}}\n"),
              HasSubstr("discovery.dns.name: \"http://ollama:11434\" is not a DNS name: has a "
                        "character other than"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: \"-ollama.svc\"}}\n"),
              HasSubstr("starts or ends with '-'"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: \"" + std::string(64, 'a') + ".svc\"}}\n"),
              HasSubstr("a label longer than 63 bytes"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, port: 0}}\n"),
              HasSubstr("discovery.dns.port: must be 1-65535 (the nodes' port for A/AAAA "
                        "records), got 0"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, port: 70000}}\n"),
              HasSubstr("discovery.dns.port:"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, interval_ms: 20}}\n"),
              HasSubstr("discovery.dns.interval_ms: must be at least 100"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, interval_ms: 0}}\n"),
              HasSubstr("discovery.dns.interval_ms: must be > 0"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, server: dns.internal}}\n"),
              HasSubstr("discovery.dns.server: expected an IP address"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, server: \"10.0.0.1:99999\"}}\n"),
              HasSubstr("discovery.dns.server: port \"99999\" is out of range"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, api: grpc}}\n"),
              HasSubstr("discovery.dns.api: must be one of ollama, openai"));
  EXPECT_THAT(refusal_of_yaml("discovery: {dns: {name: ollama.svc, ttl: 5}}\n"),
              HasSubstr("discovery.dns.ttl: unknown key"));
  // A port of 0 is fine with SRV (the records carry the ports).
  EXPECT_NO_THROW(parse_gateway_config(
      "discovery: {dns: {name: _ollama._tcp.ollama.svc, srv: true, port: 0}}\n"));
}

TEST(DiscoveryConfig, ParsesServerAddresses) {
  std::string problem;
  const auto v4 = parse_dns_server("127.0.0.1:5353", problem);
  ASSERT_TRUE(v4) << problem;
  EXPECT_EQ(v4->address, "127.0.0.1");
  EXPECT_EQ(v4->port, 5353);
  const auto plain = parse_dns_server("10.96.0.10", problem);
  ASSERT_TRUE(plain) << problem;
  EXPECT_EQ(plain->port, 53);
  const auto v6 = parse_dns_server("[fd00::a]:53", problem);
  ASSERT_TRUE(v6) << problem;
  EXPECT_EQ(v6->address, "fd00::a");
  EXPECT_TRUE(parse_dns_server("fd00::a", problem));
  EXPECT_FALSE(parse_dns_server("[fd00::a", problem));
  EXPECT_FALSE(parse_dns_server("127.0.0.1:", problem));
  EXPECT_THAT(problem, HasSubstr("port after ':' is missing"));
}

TEST(DiscoveredNodes, IdsComeFromAddressesOrSrvTargets) {
  DnsDiscoveryConfig dns;
  dns.port = 11434;
  dns.api = "openai";
  dns.max_in_flight = 2;
  const auto a_records = discovered_node_configs(
      dns, {{{}, "10.0.0.2", 11434}, {{}, "fd00::1", 11434}, {{}, "10.0.0.2", 11434}});
  EXPECT_THAT(names_of(a_records), ElementsAre("10.0.0.2:11434", "[fd00::1]:11434"));
  EXPECT_EQ(a_records[1].url, "http://[fd00::1]:11434");
  EXPECT_TRUE(a_records[0].discovered);
  EXPECT_EQ(a_records[0].api, "openai");
  EXPECT_EQ(a_records[0].max_in_flight, 2U);

  // SRV: the target is the node (final dot and case dropped); a target with two ports is two.
  const auto srv = discovered_node_configs(dns, {{"Ollama-0.ollama.svc.", "10.0.0.7", 8080},
                                                 {"ollama-1.ollama.svc", "10.0.0.8", 8080},
                                                 {"ollama-1.ollama.svc", "10.0.0.8", 8081}});
  EXPECT_THAT(names_of(srv), ElementsAre("ollama-0.ollama.svc", "ollama-1.ollama.svc:8080",
                                         "ollama-1.ollama.svc:8081"));
  EXPECT_EQ(srv[0].url, "http://10.0.0.7:8080");
}

GatewayConfig running_with(const std::vector<NodeConfig>& discovered) {
  GatewayConfig config;
  NodeConfig fixed;
  fixed.url = "http://10.0.0.1:11434";
  fixed.name = "fixed";
  resolve_node(fixed);
  config.nodes.push_back(fixed);
  config.discovery.dns.name = "ollama.svc";
  config.nodes.insert(config.nodes.end(), discovered.begin(), discovered.end());
  return config;
}

TEST(DiscoveredNodes, MergeKeepsRunningEntriesAndLetsStaticNodesWin) {
  DnsDiscoveryConfig dns;
  auto first = discovered_node_configs(dns, {{{}, "10.0.0.2", 11434}, {{}, "10.0.0.3", 11434}});
  first[0].weight = 2.0;  // as an admin PATCH left it
  first[0].draining = true;
  const auto running = running_with(first);

  // Same records: nothing to publish.
  EXPECT_FALSE(
      with_discovered_nodes(
          running, discovered_node_configs(dns, {{{}, "10.0.0.3", 11434}, {{}, "10.0.0.2", 11434}}))
          .next);

  // 10.0.0.3 goes, 10.0.0.4 comes, 10.0.0.1 (the static node's address) is left out.
  const auto merged = with_discovered_nodes(
      running,
      discovered_node_configs(
          dns, {{{}, "10.0.0.2", 11434}, {{}, "10.0.0.4", 11434}, {{}, "10.0.0.1", 11434}}));
  ASSERT_TRUE(merged.next);
  EXPECT_THAT(names_of(merged.next->nodes),
              ElementsAre("fixed", "10.0.0.2:11434", "10.0.0.4:11434"));
  EXPECT_EQ(merged.next->nodes[1].weight, 2.0);
  EXPECT_TRUE(merged.next->nodes[1].draining);
  EXPECT_FALSE(merged.next->nodes[2].draining);
  ASSERT_EQ(merged.left_out.size(), 1U);
  EXPECT_THAT(merged.left_out[0], HasSubstr("10.0.0.1:11434: a static node"));
  EXPECT_NO_THROW(validate(*merged.next));
}

TEST(DiscoveredNodes, AReloadCarriesThemWhileDiscoveryStays) {
  DnsDiscoveryConfig dns;
  const auto running = running_with(
      discovered_node_configs(dns, {{{}, "10.0.0.2", 11434}, {{}, "10.0.0.3", 11434}}));
  GatewayConfig from_file;
  NodeConfig other;
  other.url = "http://10.0.0.9:11434";
  resolve_node(other);
  from_file.nodes.push_back(other);
  from_file.discovery.dns.name = "ollama.svc";
  from_file.discovery.dns.api = "openai";
  const auto carried = carry_discovered_nodes(from_file, running);
  EXPECT_THAT(names_of(carried.nodes),
              ElementsAre("10.0.0.9:11434", "10.0.0.2:11434", "10.0.0.3:11434"));
  EXPECT_EQ(carried.nodes[1].api, "openai");

  from_file.discovery.dns.name.clear();  // discovery turned off: its nodes go
  EXPECT_THAT(names_of(carry_discovered_nodes(from_file, running).nodes),
              ElementsAre("10.0.0.9:11434"));
}

}  // namespace
}  // namespace llmgw::config
