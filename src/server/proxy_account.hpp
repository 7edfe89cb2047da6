#pragma once

// Internal: the proxy path's last step (proxy.hpp: route -> attempt -> relay -> account). What an
// attempt or a relayed response tells about its node goes into the node's error and latency
// metrics, its health (only for what is the node's fault), the learned prefill rate and the pool.

#include <chrono>
#include <cstddef>
#include <string>

#include "llmgw/admission/admission_queue.hpp"
#include "proxy.hpp"
#include "relay.hpp"
#include "upstream_attempt.hpp"

namespace llmgw::server::detail {

// account, for an attempt that produced no response to relay: the error metric, the node's
// health, and the message the client gets if no other node answers. `detail`: what failed inside
// a connect (a TLS check), else empty.
std::string account_failed_attempt(const config::GatewayConfig& config, UpstreamNode& node,
                                   AttemptOutcome outcome, std::chrono::milliseconds time_allowed,
                                   int status, const std::string& detail);

// account, for a relayed response: the node's connection back to the worker's pool when it can
// be reused, health, usage and latency metrics, the request counter. `generates`: the request was
// not a GET or HEAD (its first byte times a prefill). An interactive request routed to its
// session's node also tells the node's cache reuse (the warm-wait estimate's input; batch
// prompts, new documents each, would read as evictions).
ProxyResult account_relayed(Worker& worker, const config::GatewayConfig& config, UpstreamNode& node,
                            std::size_t key_slot, routing::RouteKind route, bool generates,
                            admission::Priority priority, Exchange& exchange, RelayResult& relayed,
                            std::chrono::steady_clock::time_point started);

}  // namespace llmgw::server::detail
