#include "dns_discovery.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <set>

namespace llmgw::server::detail {
namespace {

constexpr std::chrono::seconds kFailureLogInterval{10};

// The server and timeout a resolver is made with: a reload that changes either makes a new one.
std::string resolver_key(const config::DnsDiscoveryConfig& dns) {
  return dns.server + "|" + std::to_string(dns.timeout.count());
}

std::string servers_csv(const std::string& server) {
  if (server.empty()) {
    return {};
  }
  std::string problem;
  const auto parsed = config::parse_dns_server(server, problem);  // validated at load
  if (!parsed) {
    return server;
  }
  const bool v6 = parsed->address.find(':') != std::string::npos;
  return (v6 ? "[" + parsed->address + "]" : parsed->address) + ":" + std::to_string(parsed->port);
}

std::size_t discovered_count(const Snapshot& snapshot) {
  std::size_t count = 0;
  for (const auto& node : snapshot.config().nodes) {
    count += node.discovered ? 1 : 0;
  }
  return count;
}

std::string names_or_none(const std::vector<std::string>& names) {
  return names.empty() ? std::string{"none"} : fmt::format("{}", fmt::join(names, ", "));
}

// The address a discovered SRV node had (its target may fail to resolve for one round).
std::string previous_address(const config::GatewayConfig& running, const std::string& target,
                             std::uint16_t port) {
  const std::string with_port = target + ":" + std::to_string(port);
  for (const auto& node : running.nodes) {
    if (node.discovered && node.port == port && (node.name == target || node.name == with_port)) {
      return node.host;
    }
  }
  return {};
}

// One SRV resolution: the records, then each target's addresses.
struct SrvRound {
  config::DnsDiscoveryConfig dns;
  std::vector<net::DnsSrvRecord> records;
  std::vector<config::FoundNode> found;
  std::size_t pending = 0;
  net::DnsOutcome first_failure = net::DnsOutcome::ok;
  std::string failure_detail;
};

}  // namespace

DnsDiscovery::DnsDiscovery(SharedState& shared, asio::io_context& control,
                           const std::atomic<bool>& stop_requested,
                           std::function<void(const std::vector<std::string>&)> on_added)
    : shared_(shared),
      control_(control),
      stop_requested_(stop_requested),
      on_added_(std::move(on_added)) {}

DnsDiscovery::~DnsDiscovery() = default;

void DnsDiscovery::start() {
  asio::post(control_, [this] { round(); });
}

void DnsDiscovery::wake() {
  asio::post(control_, [this] {
    if (resolving_) {
      again_ = true;
      return;
    }
    timer_.cancel();
    round();
  });
}

void DnsDiscovery::schedule(std::chrono::milliseconds delay) {
  timer_.expires_after(delay);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) {
      round();
    }
  });
}

bool DnsDiscovery::ensure_resolver(const config::DnsDiscoveryConfig& dns) {
  if (resolver_ && resolver_key_ == resolver_key(dns)) {
    return true;
  }
  resolver_.reset();
  try {
    resolver_ = std::make_unique<net::DnsResolver>(
        control_, net::DnsResolverOptions{servers_csv(dns.server), dns.timeout});
    resolver_key_ = resolver_key(dns);
    return true;
  } catch (const std::runtime_error& e) {
    log_failure(dns, net::DnsOutcome::error, e.what());
    return false;
  }
}

void DnsDiscovery::round() {
  if (stop_requested_.load() || resolving_) {
    return;
  }
  const auto snapshot = shared_.current();
  const config::DnsDiscoveryConfig dns = snapshot->config().discovery.dns;
  if (!dns.enabled()) {
    if (resolver_) {  // a reload turned it off: its nodes went with the reload; wake() resumes
      resolver_.reset();
      shared_.metrics.set_discovered_nodes(0);
    }
    return;
  }
  if (!ensure_resolver(dns)) {
    shared_.metrics.count_discovery_resolution(net::to_string(net::DnsOutcome::error));
    schedule(dns.interval);
    return;
  }
  resolving_ = true;
  if (dns.srv) {
    resolve_srv(dns);
    return;
  }
  resolver_->resolve_addresses(dns.name, [this, dns](net::DnsAddresses answer) {
    std::vector<config::FoundNode> found;
    for (auto& address : answer.addresses) {
      found.push_back({{}, std::move(address), dns.port});
    }
    finish(dns, answer.outcome, answer.detail, found);
  });
}

void DnsDiscovery::resolve_srv(const config::DnsDiscoveryConfig& dns) {
  resolver_->resolve_srv(dns.name, [this, dns](net::DnsSrvRecords answer) {
    if (answer.outcome != net::DnsOutcome::ok || answer.records.empty()) {
      finish(dns, answer.outcome, answer.detail, {});
      return;
    }
    auto srv_round = std::make_shared<SrvRound>();
    srv_round->dns = dns;
    srv_round->records = std::move(answer.records);
    srv_round->pending = srv_round->records.size();
    for (const auto& record : srv_round->records) {
      resolver_->resolve_addresses(
          record.target, [this, srv_round, record](net::DnsAddresses addresses) {
            std::string address =
                addresses.addresses.empty() ? std::string{} : addresses.addresses.front();
            if (address.empty()) {
              // A target that does not resolve this time keeps the address it had, if any.
              address = previous_address(shared_.current()->config(), record.target, record.port);
              if (srv_round->first_failure == net::DnsOutcome::ok) {
                srv_round->first_failure = addresses.outcome;
                srv_round->failure_detail = record.target + ": " + addresses.detail;
              }
            }
            if (!address.empty()) {
              srv_round->found.push_back({record.target, std::move(address), record.port});
            }
            if (--srv_round->pending == 0) {
              const bool any = !srv_round->found.empty();
              finish(srv_round->dns, any ? net::DnsOutcome::ok : srv_round->first_failure,
                     srv_round->failure_detail, srv_round->found);
            }
          });
    }
  });
}

void DnsDiscovery::finish(const config::DnsDiscoveryConfig& dns, net::DnsOutcome outcome,
                          const std::string& detail, const std::vector<config::FoundNode>& found) {
  resolving_ = false;
  if (outcome == net::DnsOutcome::ok && found.empty()) {
    outcome = net::DnsOutcome::no_records;
  }
  shared_.metrics.count_discovery_resolution(net::to_string(outcome));
  if (outcome == net::DnsOutcome::ok) {
    if (failures_ > 0) {
      spdlog::info("DNS discovery: {} resolves again after {} failed resolutions", dns.name,
                   failures_);
    }
    failures_ = 0;
    unlogged_failures_ = 0;
    publish(dns, found);
  } else {
    log_failure(dns, outcome, detail);
  }
  shared_.metrics.set_discovered_nodes(discovered_count(*shared_.current()));
  if (stop_requested_.load()) {
    return;
  }
  if (again_) {
    again_ = false;
    round();
    return;
  }
  schedule(dns.interval);
}

void DnsDiscovery::publish(const config::DnsDiscoveryConfig& dns,
                           const std::vector<config::FoundNode>& found) {
  const auto discovered = config::discovered_node_configs(dns, found);
  std::vector<std::string> left_out;
  bool changed = false;
  const auto before = shared_.current();
  const auto after = shared_.update(
      [&](const config::GatewayConfig& running) -> std::optional<config::GatewayConfig> {
        if (!(running.discovery.dns == dns)) {
          return std::nullopt;  // a reload changed discovery meanwhile: its own round follows
        }
        auto merge = config::with_discovered_nodes(running, discovered);
        left_out = std::move(merge.left_out);
        changed = merge.next.has_value();
        return std::move(merge.next);
      });
  if (const std::string line = names_or_none(left_out); !left_out.empty() && line != left_out_) {
    spdlog::warn("DNS discovery: {}: left out {}", dns.name, line);
    left_out_ = line;
  } else if (left_out.empty()) {
    left_out_.clear();
  }
  if (!changed) {
    return;
  }
  std::vector<std::string> added;
  std::vector<std::string> removed;
  std::vector<std::string> readdressed;  // the same id at a new address (a pod restarted)
  for (const auto& node : after->nodes) {
    if (const auto* was = before->find(node->id); was == nullptr) {
      added.push_back(node->id);
    } else if (was->config.url != node->config.url) {
      readdressed.push_back(node->id);
    }
  }
  for (const auto& node : before->nodes) {
    if (after->find(node->id) == nullptr) {
      removed.push_back(node->id);
    }
  }
  spdlog::info(
      "DNS discovery: {}: {} discovered nodes (added: {}; removed: {}; new address: {}), "
      "snapshot {}",
      dns.name, discovered_count(*after), names_or_none(added), names_or_none(removed),
      names_or_none(readdressed), after->version);
  if (!added.empty() && on_added_) {
    on_added_(added);
  }
}

void DnsDiscovery::log_failure(const config::DnsDiscoveryConfig& dns, net::DnsOutcome outcome,
                               const std::string& detail) {
  ++failures_;
  const auto now = std::chrono::steady_clock::now();
  if (failures_ > 1 && now - last_failure_log_ < kFailureLogInterval) {
    ++unlogged_failures_;
    return;
  }
  const auto kept = discovered_count(*shared_.current());
  spdlog::warn(
      "DNS discovery: resolving {} ({}) failed: {}{}; keeping the {} discovered nodes found "
      "before{}",
      dns.name, dns.srv ? "SRV" : "A/AAAA", net::to_string(outcome),
      detail.empty() ? std::string{} : " (" + detail + ")", kept,
      unlogged_failures_ > 0 ? fmt::format(" ({} more failures not logged)", unlogged_failures_)
                             : std::string{});
  unlogged_failures_ = 0;
  last_failure_log_ = now;
}

}  // namespace llmgw::server::detail
