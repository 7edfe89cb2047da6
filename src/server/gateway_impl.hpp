#pragma once

// Internal to the gateway (gateway.cpp: listeners, client sessions, shutdown; gateway_reload.cpp:
// reloads and signals): the state behind llmgw::server::Gateway.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "catalog.hpp"
#include "dns_discovery.hpp"
#include "gateway_state.hpp"
#include "health_checker.hpp"
#include "llmgw/server/gateway.hpp"
#include "preheat.hpp"
#include "proxy.hpp"
#include "request_reader.hpp"

namespace llmgw::server {

// "bounded by sessions (c = 1.25)": the routing mode, for the start and reload log lines.
std::string describe_routing(const config::RoutingConfig& routing);

struct Gateway::Impl {
  explicit Impl(config::GatewayConfig config) : shared(std::move(config)) {}

  void start();
  void limit_connections_to_open_files(std::size_t worker_count);
  void request_stop();
  void wait();
  void listen_admin(detail::Worker& worker);
  std::string_view listener_refusal(std::string_view path, bool admin_listener) const;
  boost::asio::awaitable<detail::ProxyResult> dispatch(
      detail::Worker& worker, detail::ClientConnection& connection, detail::Request& request,
      const std::string& client_ip, std::chrono::steady_clock::time_point started,
      bool admin_listener);
  boost::asio::awaitable<void> accept_loop(detail::Worker& worker,
                                           boost::asio::ip::tcp::acceptor& acceptor,
                                           bool admin_listener);
  boost::asio::awaitable<void> serve_client(detail::Worker& worker,
                                            boost::asio::ip::tcp::socket socket,
                                            bool admin_listener);
  boost::asio::awaitable<bool> tls_handshake(detail::Worker& worker,
                                             detail::ClientConnection& connection,
                                             const std::string& client_ip);
  boost::asio::awaitable<void> close_client(detail::ClientConnection& connection);
  // listen.tls / admin.listen.tls: contexts from the configured files. At start a failure throws
  // (the loader checked the files, so only a file changed since can fail); on reload it keeps
  // the running context and logs why. Returns what a reload could not apply.
  std::vector<std::string> load_listener_tls(const config::ListenTlsConfig& listen,
                                             const config::ListenTlsConfig& admin, bool at_start);
  boost::asio::awaitable<void> drain();
  void finish_stop();
  std::vector<std::string> reload(config::GatewayConfig next);
  void reload_from(const ConfigLoader& load_config);
  void handle_signals(ConfigLoader load_config);
  void await_signal();

  detail::SharedState shared;
  std::atomic<bool> stop_requested{false};
  std::vector<std::unique_ptr<detail::Worker>> workers;
  boost::asio::io_context control{1};  // health checks, drain timer, signals, reloads
  detail::HealthChecker health_checker{shared, control, stop_requested};
  detail::CatalogRefresher catalog{shared, control, stop_requested};
  detail::Preheater preheater{shared, control};  // planned moves warm their new node (preheat.hpp)
  // Nodes from DNS (discovery.dns): added ones are probed and their catalogs fetched at once.
  detail::DnsDiscovery discovery{shared, control, stop_requested,
                                 [this](const std::vector<std::string>& added) {
                                   health_checker.wake();
                                   for (const auto& id : added) {
                                     detail::request_catalog_refresh(shared, id);
                                   }
                                 }};
  std::optional<boost::asio::signal_set> signals;
  ConfigLoader config_loader;  // for SIGHUP; may be empty
  std::thread control_thread;
  // The listeners' TLS contexts (null: plain HTTP). A reload swaps them; a connection keeps the
  // one it was accepted with.
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> listen_tls;
  std::atomic<std::shared_ptr<boost::asio::ssl::context>> admin_tls;
  std::uint16_t port = 0;
  std::uint16_t admin_port = 0;            // admin.listen's bound port; 0 without one
  std::size_t max_client_connections = 0;  // limits.max_connections, or less for open files
  std::string too_many_connections;        // the 503 message past it
  std::mutex stopped_mutex;
  std::condition_variable stopped_cv;
  bool stopped = false;
  bool running = false;
};

}  // namespace llmgw::server
