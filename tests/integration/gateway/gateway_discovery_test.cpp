// DNS discovery (discovery.dns) against a real DNS server the test starts (dnsmasq on an ephemeral
// loopback port): nodes join when their records appear and leave when they go, a leaving node's
// sessions move while the others stay, discovered nodes survive a reload beside static ones, and
// a DNS server that fails (killed, NXDOMAIN) leaves the node set as it was. With SRV records a
// node is its target's name: one that comes back at another address keeps its sessions.

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "llmgw/server/gateway.hpp"
#include "llmgw/sim/ollama_sim.hpp"
#include "support/dns_server.hpp"
#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

constexpr milliseconds kDiscoveryInterval{200};

// Sims on 127.0.0.2, 127.0.0.3, ... that all listen on one port, as pods behind a headless
// Service do: A records give addresses, the port is the configuration's.
struct SimsOnOnePort {
  explicit SimsOnOnePort(std::size_t count) {
    for (int attempt = 0; attempt < 5 && sims.size() < count; ++attempt) {
      sims.clear();
      try {
        for (std::size_t i = 0; i < count; ++i) {
          auto options = fast_sim_options();
          options.host = "127.0.0." + std::to_string(i + 2);
          options.port = port;
          auto sim = std::make_unique<sim::OllamaSim>(options);
          sim->start();
          port = sim->port();
          sims.push_back(std::move(sim));
        }
      } catch (const std::exception&) {
        port = 0;  // the port was taken on another address: pick another
      }
    }
  }

  std::string id(std::size_t index) const {
    return "127.0.0." + std::to_string(index + 2) + ":" + std::to_string(port);
  }
  std::string host(std::size_t index) const { return "127.0.0." + std::to_string(index + 2); }

  std::uint16_t port = 0;
  std::vector<std::unique_ptr<sim::OllamaSim>> sims;
};

config::GatewayConfig discovery_config(const DnsServer& dns, const std::string& name,
                                       std::uint16_t port, bool srv) {
  auto config = test_gateway_config({});
  config.discovery.dns.name = name;
  config.discovery.dns.port = port;
  config.discovery.dns.srv = srv;
  config.discovery.dns.server = dns.address();
  config.discovery.dns.interval = kDiscoveryInterval;
  config.discovery.dns.timeout = milliseconds{300};
  config.admin.token = "discovery-admin";
  config::validate(config);
  return config;
}

std::string gateway_url(const server::Gateway& gateway, std::string_view path) {
  return "http://127.0.0.1:" + std::to_string(gateway.port()) + std::string{path};
}

// The node ids in /health, sorted.
std::set<std::string> health_nodes(net::HttpClient& client, const server::Gateway& gateway) {
  const auto health = get_url(client, gateway_url(gateway, "/health"));
  std::set<std::string> names;
  if (health.body.empty()) {
    return names;
  }
  const auto parsed = json::parse(health.body);
  for (const auto& node : parsed["nodes"]) {
    names.insert(node["name"].get<std::string>());
  }
  return names;
}

bool wait_for_nodes(net::HttpClient& client, const server::Gateway& gateway,
                    const std::set<std::string>& expected) {
  return wait_until([&] { return health_nodes(client, gateway) == expected; }, kWait);
}

// One turn of each session; the node each landed on (every turn must answer 200).
std::map<std::string, std::string> turns(net::HttpClient& client, const server::Gateway& gateway,
                                         const std::vector<std::string>& sessions) {
  std::map<std::string, std::string> nodes;
  for (const auto& session : sessions) {
    const auto exchange = post_json(client, gateway_url(gateway, "/api/generate"),
                                    generate_body("hello from " + session, false), session);
    EXPECT_EQ(exchange.status, 200) << session << ": " << exchange.body;
    nodes[session] = exchange.node;
  }
  return nodes;
}

std::vector<std::string> session_ids(const std::string& prefix, std::size_t count) {
  std::vector<std::string> ids;
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(prefix + std::to_string(i));
  }
  return ids;
}

double discovery_metric(net::HttpClient& client, const server::Gateway& gateway,
                        std::string_view metric, const std::vector<std::string>& labels = {}) {
  return metric_sum(get_url(client, gateway_url(gateway, "/metrics")).body, metric, labels);
}

std::string hosts_of(const SimsOnOnePort& sims, const std::vector<std::size_t>& indices) {
  std::string hosts;
  for (const auto index : indices) {
    hosts += sims.host(index) + " sims.test\n";
  }
  return hosts;
}

TEST(GatewayDiscovery, NodesFollowTheRecordsAndSessionsOfOthersStayPut) {
  if (!DnsServer::installed()) {
    GTEST_SKIP() << DnsServer::kBinary
                 << " is missing (scripts/install-deps installs dnsmasq-base)";
  }
  SimsOnOnePort sims(3);
  ASSERT_EQ(sims.sims.size(), 3U) << "could not start three sims on one port";
  DnsServer dns(hosts_of(sims, {0, 1}));
  server::Gateway gateway(discovery_config(dns, "sims.test", sims.port, false));
  gateway.start();
  net::HttpClient client;

  // Two records, two nodes; both serve sessions.
  ASSERT_TRUE(wait_for_nodes(client, gateway, {sims.id(0), sims.id(1)}))
      << "the two A records did not become nodes";
  const auto sessions = session_ids("first-", 24);
  const auto placed = turns(client, gateway, sessions);
  std::set<std::string> used;
  for (const auto& [session, node] : placed) {
    used.insert(node);
  }
  EXPECT_EQ(used, (std::set<std::string>{sims.id(0), sims.id(1)}));

  // A third record: a node within a few intervals, and new sessions reach it.
  dns.set_hosts(hosts_of(sims, {0, 1, 2}));
  ASSERT_TRUE(wait_for_nodes(client, gateway, {sims.id(0), sims.id(1), sims.id(2)}))
      << "the third record did not become a node";
  const auto later = turns(client, gateway, session_ids("second-", 24));
  EXPECT_TRUE(std::any_of(later.begin(), later.end(), [&](const auto& entry) {
    return entry.second == sims.id(2);
  })) << "no new session reached the discovered third node";
  // The first sessions did not move when a node joined.
  EXPECT_EQ(turns(client, gateway, sessions), placed);

  // A discovered node leaves with its record, not through the admin API.
  const auto refused = [&] {
    net::HttpHeaders headers{{"Authorization", "Bearer discovery-admin"}};
    net::ClientRequest request;
    request.method = "DELETE";
    request.url = gateway_url(gateway, "/admin/nodes/" + sims.id(1));
    request.headers = headers;
    return client.send(request);
  }();
  EXPECT_EQ(refused.status, 409);
  EXPECT_NE(refused.body.find("DNS discovery"), std::string::npos) << refused.body;

  // Its record goes: its sessions move, every other session stays on its node.
  dns.set_hosts(hosts_of(sims, {0, 2}));
  ASSERT_TRUE(wait_for_nodes(client, gateway, {sims.id(0), sims.id(2)}))
      << "the node whose record went is still there";
  const auto after_removal = turns(client, gateway, sessions);
  std::size_t moved = 0;
  for (const auto& [session, node] : placed) {
    if (node == sims.id(1)) {
      EXPECT_NE(after_removal.at(session), sims.id(1));
      ++moved;
    } else {
      EXPECT_EQ(after_removal.at(session), node) << session << " moved without a reason";
    }
  }
  EXPECT_GT(moved, 0U);

  // A reload of a file without them keeps the discovered nodes, beside a static one.
  sim::OllamaSim static_sim(fast_sim_options());
  static_sim.start();
  auto reloaded = discovery_config(dns, "sims.test", sims.port, false);
  reloaded.nodes.push_back(test_node("static", static_sim.base_url()));
  gateway.reload(reloaded);
  EXPECT_EQ(health_nodes(client, gateway),
            (std::set<std::string>{"static", sims.id(0), sims.id(2)}));
  const auto after_reload = turns(client, gateway, sessions);
  EXPECT_EQ(after_reload, after_removal) << "a reload moved sessions of discovered nodes";

  // The DNS server dies: the node set is kept and requests keep working.
  const double failures_before =
      discovery_metric(client, gateway, "llmgw_discovery_resolutions_total") -
      discovery_metric(client, gateway, "llmgw_discovery_resolutions_total", {"outcome=\"ok\""});
  dns.stop();
  ASSERT_TRUE(wait_until(
      [&] {
        const double failures =
            discovery_metric(client, gateway, "llmgw_discovery_resolutions_total") -
            discovery_metric(client, gateway, "llmgw_discovery_resolutions_total",
                             {"outcome=\"ok\""});
        return failures >= failures_before + 3;
      },
      kWait))
      << "no failed resolution counted with the DNS server gone";
  EXPECT_EQ(health_nodes(client, gateway),
            (std::set<std::string>{"static", sims.id(0), sims.id(2)}));
  EXPECT_EQ(turns(client, gateway, sessions), after_removal);
  EXPECT_EQ(discovery_metric(client, gateway, "llmgw_discovery_nodes"), 2.0);

  // Back: resolutions succeed again and the set follows the records.
  dns.start();
  dns.set_hosts(hosts_of(sims, {0, 1, 2}));
  EXPECT_TRUE(wait_for_nodes(client, gateway, {"static", sims.id(0), sims.id(1), sims.id(2)}));
}

TEST(GatewayDiscovery, SrvTargetIsTheNodeSoARestartedPodKeepsItsSessions) {
  if (!DnsServer::installed()) {
    GTEST_SKIP() << DnsServer::kBinary
                 << " is missing (scripts/install-deps installs dnsmasq-base)";
  }
  auto sim_a = std::make_unique<sim::OllamaSim>(fast_sim_options());
  auto sim_b = std::make_unique<sim::OllamaSim>(fast_sim_options());
  sim_a->start();
  sim_b->start();
  const auto srv = [](std::string_view target, std::uint16_t port) {
    return "_ollama._tcp.sims.test," + std::string{target} + "," + std::to_string(port);
  };
  const std::string hosts = "127.0.0.1 sim-a.sims.test\n127.0.0.1 sim-b.sims.test\n";
  DnsServer dns(hosts,
                {srv("sim-a.sims.test", sim_a->port()), srv("sim-b.sims.test", sim_b->port())});
  server::Gateway gateway(discovery_config(dns, "_ollama._tcp.sims.test", 0, true));
  gateway.start();
  net::HttpClient client;
  ASSERT_TRUE(wait_for_nodes(client, gateway, {"sim-a.sims.test", "sim-b.sims.test"}))
      << "the SRV targets did not become nodes named after them";
  const auto sessions = session_ids("srv-", 24);
  const auto placed = turns(client, gateway, sessions);
  ASSERT_TRUE(std::any_of(placed.begin(), placed.end(),
                          [](const auto& entry) { return entry.second == "sim-b.sims.test"; }));

  // sim-b's pod restarts at another port under its name: a new address, the same node.
  const auto old_b_port = sim_b->port();
  sim_b.reset();
  sim_b = std::make_unique<sim::OllamaSim>(fast_sim_options());
  sim_b->start();
  ASSERT_NE(sim_b->port(), old_b_port);
  dns.set_srv({srv("sim-a.sims.test", sim_a->port()), srv("sim-b.sims.test", sim_b->port())});
  const std::string new_b_url = "http://127.0.0.1:" + std::to_string(sim_b->port());
  ASSERT_TRUE(wait_until(
      [&] {
        const auto health = get_url(client, gateway_url(gateway, "/health"));
        const auto parsed = json::parse(health.body, nullptr, false);
        if (parsed.is_discarded()) {
          return false;
        }
        for (const auto& node : parsed["nodes"]) {
          if (node["name"] == "sim-b.sims.test") {
            return node["url"] == new_b_url && node["source"] == "dns";
          }
        }
        return false;
      },
      kWait))
      << "sim-b.sims.test did not move to its new address";
  EXPECT_EQ(turns(client, gateway, sessions), placed)
      << "sessions left a node that came back under its name";

  // NXDOMAIN (the SRV name is gone): counted, the node set kept.
  dns.set_srv({});
  ASSERT_TRUE(wait_until(
      [&] {
        return discovery_metric(client, gateway, "llmgw_discovery_resolutions_total",
                                {"outcome=\"nxdomain\""}) >= 2;
      },
      kWait))
      << "no NXDOMAIN counted";
  EXPECT_EQ(health_nodes(client, gateway),
            (std::set<std::string>{"sim-a.sims.test", "sim-b.sims.test"}));
  EXPECT_EQ(turns(client, gateway, sessions), placed);
}

}  // namespace
}  // namespace llmgw::testing
