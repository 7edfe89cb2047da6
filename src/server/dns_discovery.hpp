#pragma once

// Internal: DNS discovery (discovery.dns; docs/DESIGN.md §2.5). Every discovery.dns.interval_ms it
// resolves discovery.dns.name (A/AAAA, or SRV and then each target's A/AAAA) with net::DnsResolver
// on the control io_context, turns the records into node configurations
// (config/discovered_nodes.hpp: ids, merging, static nodes first) and publishes the result through
// SharedState::update, as the admin API and a reload do: a node that appears is added, one whose
// record is gone is removed (its sessions are placed afresh, the preheater warms their new nodes),
// the others keep their state and sessions. An unchanged answer publishes nothing.
//
// A resolution that fails (timeout, SERVFAIL, REFUSED, an unreachable server, NXDOMAIN) or finds
// no node keeps the last node set: DNS never empties the fleet, a transient failure of the server
// must not take every node away, and a name that really is gone is an operator's change, made by
// a reload (discovery.dns.name) rather than inferred from one answer. Each outcome is counted
// (llmgw_discovery_resolutions_total{outcome}); failures are logged at most once per 10 s with the
// number left out, and the recovery once.
//
// Thread safety: start() and wake() may be called from any thread; everything else runs on the
// control thread.

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "gateway_state.hpp"
#include "llmgw/config/discovered_nodes.hpp"
#include "llmgw/net/dns_resolver.hpp"

namespace llmgw::server::detail {

class DnsDiscovery {
 public:
  // `on_added` runs on the control thread after a publish that added nodes, with their ids (the
  // gateway probes them and asks for their catalogs at once).
  DnsDiscovery(SharedState& shared, asio::io_context& control,
               const std::atomic<bool>& stop_requested,
               std::function<void(const std::vector<std::string>& added)> on_added);
  ~DnsDiscovery();
  DnsDiscovery(const DnsDiscovery&) = delete;
  DnsDiscovery& operator=(const DnsDiscovery&) = delete;

  // Resolves at once, then every interval (nothing without discovery.dns.name).
  void start();
  // Resolves again now with the configuration in force (after a reload).
  void wake();

 private:
  void round();
  void resolve_srv(const config::DnsDiscoveryConfig& dns);
  void finish(const config::DnsDiscoveryConfig& dns, net::DnsOutcome outcome,
              const std::string& detail, const std::vector<config::FoundNode>& found);
  void publish(const config::DnsDiscoveryConfig& dns, const std::vector<config::FoundNode>& found);
  void log_failure(const config::DnsDiscoveryConfig& dns, net::DnsOutcome outcome,
                   const std::string& detail);
  bool ensure_resolver(const config::DnsDiscoveryConfig& dns);
  void schedule(std::chrono::milliseconds delay);

  SharedState& shared_;
  asio::io_context& control_;
  const std::atomic<bool>& stop_requested_;
  std::function<void(const std::vector<std::string>&)> on_added_;
  asio::steady_timer timer_{control_};
  std::unique_ptr<net::DnsResolver> resolver_;
  std::string resolver_key_;  // the server and timeout resolver_ was made with
  bool resolving_ = false;
  bool again_ = false;  // woken during a resolution: resolve again when it ends
  // Failures since the last success, and the rate limit of their log lines.
  std::size_t failures_ = 0;
  std::size_t unlogged_failures_ = 0;
  std::chrono::steady_clock::time_point last_failure_log_{};
  std::string left_out_;  // the last "left out" warning, so it is not repeated every round
};

}  // namespace llmgw::server::detail
