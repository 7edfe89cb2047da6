#pragma once

// The gateway daemon (`llmgw serve`): listeners, the proxy path, /health, /metrics, /admin/*,
// the health checker and graceful shutdown. Beast and Asio stay behind the pimpl.
//
// Threads: `workers` threads, each with its own io_context, its own SO_REUSEPORT acceptor on the
// listen port and its own upstream keep-alive pools, so the data path takes no lock. Routing state
// is an immutable snapshot published atomically (DESIGN.md §3).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::server {

class Gateway {
 public:
  // Loads the configuration again for a reload (SIGHUP): the file, the environment and the flags
  // the process started with. Throws config::ConfigError listing every problem.
  using ConfigLoader = std::function<config::GatewayConfig()>;

  explicit Gateway(config::GatewayConfig config);
  ~Gateway();  // stops at once if still running
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds and starts the workers and the health checker. Throws std::runtime_error naming the
  // address when the port cannot be bound.
  void start();
  // The bound port (useful with listen.port = 0).
  std::uint16_t port() const noexcept;
  // The admin listener's bound port (admin.listen), 0 without one.
  std::uint16_t admin_port() const noexcept;

  // Graceful stop: stop accepting, let in-flight requests (streams included) finish within the
  // drain deadline, then close the rest. Safe from any thread; returns at once.
  void request_stop();
  // Blocks until the gateway has fully stopped.
  void wait();
  // Applies `next` to new requests: nodes (those that stay keep their health and counters, as
  // with the admin API), weights, routing (placements are kept unless the balance mode changes),
  // timeouts, limits, health checks, log level and format, admin token, client keys, drain time.
  // Requests in flight finish on the configuration they started with. listen.*, admin.listen.*
  // and workers take a restart:
  // a change there is not applied, and is returned (one line per key) and logged as a warning.
  // `next` must be valid (load_gateway_config validates). Safe from any thread.
  std::vector<std::string> reload(config::GatewayConfig next);

  // From now on: SIGINT or SIGTERM drains and stops; SIGHUP calls `load_config` and reload()s
  // the result, or, when it throws, keeps the running configuration and logs every problem (with
  // its key path) as an error. Call before start(), so that no signal finds the default action
  // (SIGHUP's kills the process). An empty `load_config` makes SIGHUP log that there is nothing
  // to reload.
  void handle_signals(ConfigLoader load_config);
  // start() is assumed; blocks until SIGINT or SIGTERM (see handle_signals, installed here with no
  // loader if it was not called), then drains and returns.
  void run_until_signal();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::server
