#pragma once

// Internal: the gateway's own paths (/, /health, /metrics, /status, /admin/*), answered without a
// node.

#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <string_view>

#include "gateway_state.hpp"

namespace llmgw::server::detail {

namespace http = beast::http;

// True when `path` is one of the gateway's own paths.
bool is_local_path(std::string_view path) noexcept;

// Probes, scrapes and the status page (/, /health, /metrics, /status) come every few seconds
// from every load balancer, Prometheus and open browser tab: they are not counted in
// llmgw_requests_total and write no access line (unless log.access_log_probes), or they would
// drown the requests.
bool is_probe_path(std::string_view path) noexcept;

http::response<http::string_body> handle_local(SharedState& shared,
                                               const http::request<http::string_body>& request);

}  // namespace llmgw::server::detail
