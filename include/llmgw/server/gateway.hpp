#pragma once

// The gateway daemon (`llmgw serve`): listeners, the proxy path, /health, /metrics, /admin/*,
// the health checker and graceful shutdown. Beast and Asio stay behind the pimpl.
//
// Threads: `workers` threads, each with its own io_context, its own SO_REUSEPORT acceptor on the
// listen port and its own upstream keep-alive pools, so the data path takes no lock. Routing state
// is an immutable snapshot published atomically (DESIGN.md §3).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::server {

class Gateway {
 public:
  explicit Gateway(config::GatewayConfig config);
  ~Gateway();  // stops at once if still running
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // Binds and starts the workers and the health checker. Throws std::runtime_error naming the
  // address when the port cannot be bound.
  void start();
  // The bound port (useful with listen.port = 0).
  std::uint16_t port() const noexcept;

  // Graceful stop: stop accepting, let in-flight requests (streams included) finish within the
  // drain deadline, then close the rest. Safe from any thread; returns at once.
  void request_stop();
  // Blocks until the gateway has fully stopped.
  void wait();
  // start() is assumed; blocks until SIGINT or SIGTERM, then drains and returns.
  void run_until_signal();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::server
