#pragma once

// Internal: the active health checker. Every health.interval_ms it probes each node of the current
// snapshot with GET on its health path (config::health_path_of: health.path, or /health for an
// openai node) and feeds the outcome to the node's health state machine
// (llmgw/server/node_health.hpp, which owns thresholds and ejection times and has the worked
// example). Runs on the gateway's control io_context.
//
// Thread safety: start() and wake() may be called from any thread; the probes and the loop run on
// the control thread only.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>

#include "gateway_state.hpp"

namespace llmgw::server::detail {

// One GET to a node, off the proxy path (probes, catalog fetches): a fresh connection, closed
// after the answer. `error` says what failed ("" when a response arrived, any status).
struct NodeGetResult {
  std::string error;
  int status = 0;
  std::string body;
};
asio::awaitable<NodeGetResult> get_from_node(asio::io_context& io, const UpstreamNode& node,
                                             const std::string& path,
                                             std::chrono::milliseconds timeout,
                                             std::string_view user_agent);

class HealthChecker {
 public:
  // `stop_requested` ends the loop at its next round.
  HealthChecker(SharedState& shared, asio::io_context& control,
                const std::atomic<bool>& stop_requested)
      : shared_(shared), control_(control), stop_requested_(stop_requested) {}

  // Spawns the loop on the control context (its first round probes at once).
  void start();
  // Starts the next round now (a reload: new nodes get a health state at once, and a new interval
  // applies).
  void wake();

 private:
  asio::awaitable<void> loop();
  asio::awaitable<void> probe(std::shared_ptr<UpstreamNode> node);

  SharedState& shared_;
  asio::io_context& control_;
  const std::atomic<bool>& stop_requested_;
  asio::steady_timer timer_{control_};  // cancelled by wake()
};

}  // namespace llmgw::server::detail
