#pragma once

// Internal: one access-log line per request (log.access_log), text or JSON (log.format), with the
// request's id and trace id, and the client key's name when auth.keys_file is set (never the
// key); probes and scrapes only with log.access_log_probes.

#include <chrono>
#include <string>

#include "llmgw/config/gateway_config.hpp"
#include "proxy.hpp"
#include "request_identity.hpp"

namespace llmgw::server::detail {

void access_log(const config::LogConfig& log, const std::string& client_ip, const Request& request,
                const RequestIdentity& identity, std::string_view key_name,
                const ProxyResult& result, std::chrono::steady_clock::time_point started);

}  // namespace llmgw::server::detail
