#pragma once

// Internal: the gateway's open-files budget. Each client connection holds two descriptors while a
// request is proxied (its own and one to a node), the upstream pools hold idle ones, and the
// process needs a few of its own (listeners, epoll, timers, logs). Running out is the gateway's
// problem, never a node's: the soft RLIMIT_NOFILE is raised at start to what the configuration
// needs, client connections are capped at what the limit leaves room for, and a connect that
// fails for want of a descriptor must not count against the node (is_local_resource_error).

#include <boost/system/error_code.hpp>
#include <cstddef>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::server::detail {

// Descriptors for the process itself: listeners, epoll and eventfds per worker, timers, stdio,
// log files, health probes.
constexpr std::size_t kReservedDescriptors = 64;

// Idle upstream connections the pools may hold: workers x nodes x max_idle_upstream_per_node.
std::size_t pooled_descriptors(const config::GatewayConfig& config, std::size_t workers);

// What the configuration needs: two per client connection, the pools, the reserve.
std::size_t descriptors_needed(const config::GatewayConfig& config, std::size_t workers);

struct OpenFilesLimit {
  std::size_t soft = 0;
  std::size_t hard = 0;  // SIZE_MAX for "unlimited"
};

// Raises the soft RLIMIT_NOFILE to `needed` (never lowers it; at most the hard limit) and returns
// the limits in force afterwards.
OpenFilesLimit raise_open_files_limit(std::size_t needed);

// Client connections `soft_limit` descriptors carry with the pools: at most
// limits.max_connections, at least 1. The pools get their configured size but at most a third of
// what the reserve leaves. Worked examples with 2 workers, 3 nodes, max_idle_upstream_per_node 64
// (pools 384): soft limit 1024 -> room 960, pools 320, (960 - 320) / 2 = 320 connections; soft
// limit 256 -> room 192, pools 64, 64 connections (before this cap on the pools: 1).
std::size_t connection_capacity(const config::GatewayConfig& config, std::size_t workers,
                                std::size_t soft_limit);

// True when `ec` says this process ran out of something (descriptors, memory, buffer space, local
// ports), not that the peer failed: such a connect failure must not count against the node.
bool is_local_resource_error(const boost::system::error_code& ec) noexcept;

}  // namespace llmgw::server::detail
