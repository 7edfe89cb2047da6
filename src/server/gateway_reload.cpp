// Reloads (SIGHUP, Gateway::reload) and signal handling of the gateway: a new configuration
// becomes a new snapshot; what a reload cannot change is reported.

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <sstream>

#include "gateway_impl.hpp"
#include "llmgw/config/discovered_nodes.hpp"
#include "llmgw/net/tls_context.hpp"
#include "llmgw/net/url.hpp"
#include "llmgw/server/logging.hpp"

namespace llmgw::server {

using namespace detail;

std::string describe_routing(const config::RoutingConfig& routing) {
  return routing.balance_factor > 0
             ? fmt::format("bounded by {} (c = {})", routing.balance_by, routing.balance_factor)
             : std::string{"consistent_hash (plain ring)"};
}

namespace {

std::string node_names(const std::vector<std::string>& names) {
  return names.empty() ? std::string{"none"} : fmt::format("{}", fmt::join(names, ", "));
}

// "nodes a, b -> a, c": what a reload did to the node set, for the log.
std::string describe_membership(const Snapshot& before, const Snapshot& after) {
  std::vector<std::string> added;
  std::vector<std::string> removed;
  for (const auto& node : after.nodes) {
    if (before.find(node->id) != node.get()) {
      added.push_back(node->id);  // new, or a new url or weight
    }
  }
  for (const auto& node : before.nodes) {
    if (after.find(node->id) != node.get()) {
      removed.push_back(node->id);
    }
  }
  return fmt::format("{} nodes (added or changed: {}; removed: {})", after.nodes.size(),
                     node_names(added), node_names(removed));
}

// One listener's certificate, (re)loaded into `slot`. "" or what could not be applied.
std::string load_tls(std::atomic<std::shared_ptr<boost::asio::ssl::context>>& slot,
                     const config::ListenTlsConfig& at_start, const config::ListenTlsConfig& next,
                     std::string_view key, bool starting) {
  if (at_start.enabled() != next.enabled()) {
    return fmt::format("{}: turning TLS {} takes a restart; still {}", key,
                       next.enabled() ? "on" : "off", at_start.enabled() ? "HTTPS" : "plain HTTP");
  }
  if (!next.enabled()) {
    return {};
  }
  try {
    slot.store(net::make_server_tls_context(next.cert_file, next.key_file),
               std::memory_order_release);
  } catch (const net::TlsSetupError& e) {
    if (starting) {
      throw std::runtime_error(
          fmt::format("{}.{}: {}", key, e.key ? "key_file" : "cert_file", e.what()));
    }
    // The message names files and the check that failed, never key material.
    spdlog::error("reload: {}: keeping the running certificate: {}", key, e.what());
    return {};
  }
  const std::string described = net::describe_certificate_file(next.cert_file);
  spdlog::info("{}: serving the certificate in {} ({})", key, next.cert_file,
               described.empty() ? "unreadable subject" : described);
  return {};
}

}  // namespace

std::vector<std::string> Gateway::Impl::load_listener_tls(const config::ListenTlsConfig& listen,
                                                          const config::ListenTlsConfig& admin,
                                                          bool at_start) {
  std::vector<std::string> not_applied;
  for (auto line :
       {load_tls(listen_tls, shared.config.listen.tls, listen, "listen.tls", at_start),
        load_tls(admin_tls, shared.config.admin_listen.tls, admin, "admin.listen.tls", at_start)}) {
    if (!line.empty()) {
      not_applied.push_back(std::move(line));
    }
  }
  return not_applied;
}

std::vector<std::string> Gateway::Impl::reload(config::GatewayConfig next) {
  // The listeners and the workers were made at start; a reload cannot move them.
  std::vector<std::string> restart_needed;
  const auto& at_start = shared.config;
  const unsigned next_workers =
      next.workers == 0 ? std::max(1U, std::thread::hardware_concurrency()) : next.workers;
  if (next.listen.address != at_start.listen.address) {
    restart_needed.push_back(fmt::format("listen.address: {} takes a restart; still {}",
                                         next.listen.address, at_start.listen.address));
  }
  if (next.listen.port != at_start.listen.port) {
    restart_needed.push_back(fmt::format("listen.port: {} takes a restart; still {}",
                                         next.listen.port, at_start.listen.port));
  }
  if (next.admin.listen.address != at_start.admin_listen.address ||
      (!next.admin.listen.address.empty() &&
       next.admin.listen.port != at_start.admin_listen.port)) {
    restart_needed.push_back(fmt::format(
        "admin.listen: {}:{} takes a restart; still {}", next.admin.listen.address,
        next.admin.listen.port,
        at_start.admin_listen.address.empty()
            ? std::string{"on listen"}
            : fmt::format("{}:{}", at_start.admin_listen.address, at_start.admin_listen.port)));
  }
  if (next.routing.placement_store != at_start.placement_store) {
    restart_needed.push_back(fmt::format("routing.placement_store: {} takes a restart; still {}",
                                         net::redact_url(next.routing.placement_store),
                                         net::redact_url(at_start.placement_store)));
  }
  if (next_workers != at_start.workers) {
    restart_needed.push_back(
        fmt::format("workers: {} takes a restart; still {}", next_workers, at_start.workers));
  }
  // Certificates are reread: new connections get the new ones, open ones keep theirs.
  for (auto& line : load_listener_tls(next.listen.tls, next.admin.listen.tls, false)) {
    restart_needed.push_back(std::move(line));
  }
  for (const auto& line : restart_needed) {
    spdlog::warn("reload: {}", line);
  }
  const config::LogConfig log = next.log;
  const auto before = shared.current();
  // The file lists the static nodes; the discovered ones stay while discovery does.
  const auto after = shared.update([&next](const config::GatewayConfig& in_force) {
    return std::optional{config::carry_discovered_nodes(std::move(next), in_force)};
  });
  update_logging(log);
  // Probe at once: new nodes get a health state now, and a new interval applies.
  health_checker.wake();
  catalog.wake();
  discovery.wake();
  spdlog::info("configuration reloaded: {}, routing {}, snapshot version {}",
               describe_membership(*before, *after), describe_routing(after->config().routing),
               after->version);
  return restart_needed;
}

void Gateway::Impl::reload_from(const ConfigLoader& load_config) {
  if (!load_config) {
    spdlog::warn("SIGHUP ignored: the gateway was started without a configuration file to reload");
    return;
  }
  config::GatewayConfig next;
  try {
    next = load_config();
  } catch (const config::ConfigError& e) {
    std::vector<std::string> problems;
    std::istringstream lines{e.what()};
    for (std::string line; std::getline(lines, line);) {
      problems.push_back(std::move(line));
    }
    spdlog::error("reload failed: keeping the running configuration (snapshot version {}); {} {}:",
                  shared.current()->version, problems.size(),
                  problems.size() == 1 ? "problem" : "problems");
    for (const auto& problem : problems) {
      spdlog::error("reload: {}", problem);
    }
    return;
  } catch (const std::exception& e) {
    spdlog::error("reload failed: keeping the running configuration: {}", e.what());
    return;
  }
  reload(std::move(next));
}

void Gateway::Impl::handle_signals(ConfigLoader load_config) {
  if (signals) {
    return;
  }
  config_loader = std::move(load_config);
  // Registered now, delivered once the control thread runs (start()).
  signals.emplace(control, SIGINT, SIGTERM, SIGHUP);
  await_signal();
}

void Gateway::Impl::await_signal() {
  signals->async_wait([this](const beast::error_code& ec, int signal) {
    if (ec) {
      return;  // stopping
    }
    if (signal != SIGHUP) {
      spdlog::info("received signal {}", signal);
      request_stop();
    } else if (stop_requested.load()) {
      spdlog::info("received SIGHUP while stopping: ignored");
    } else {
      spdlog::info("received SIGHUP: reloading the configuration");
      reload_from(config_loader);
    }
    await_signal();
  });
}

}  // namespace llmgw::server
