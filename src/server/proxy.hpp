#pragma once

// Internal: the proxy path of one request, and the JSON error responses the gateway sends.
//
// The path reads in five steps, each a function of its own (Envoy's router / upstream request /
// stream split):
//   plan     which nodes, in which order (routing::RoutePlan from the snapshot and the key)
//   admit    a slot on a node under its cap, or a wait in its queue, or a 429 (admission.hpp)
//   attempt  one node: a connection, the request, the response head (upstream_attempt.hpp)
//   relay    the head and the body to the client as they arrive (relay.hpp)
//   account  metrics, the node's health, the connection back to the pool (account_* below)
// Retries happen only between attempts, inside one deadline (timeouts.first_byte_total_ms): once
// the relay has written a byte, the answer is that node's.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "gateway_state.hpp"
#include "upstream_request.hpp"

namespace llmgw::server::detail {

namespace http = beast::http;
using Request = http::request<http::string_body>;

struct ProxyResult {
  int status = 0;        // 499: the client left before the response head (nginx's convention)
  bool reusable = true;  // the client connection may serve another request
  std::string node;      // empty when no node answered
  std::string_view route = "none";
  std::uint64_t bytes = 0;  // response body bytes relayed
};

// Routes `request`, relays the chosen node's response to `client` as it arrives, retries before
// the first byte on the next candidate, and records metrics. Never throws.
asio::awaitable<ProxyResult> proxy_request(Worker& worker, ClientConnection& connection,
                                           Request& request, const std::string& client_ip,
                                           std::chrono::steady_clock::time_point started);

// {"error": message} with the given status.
http::response<http::string_body> json_error(int status, const std::string& message,
                                             bool keep_alive);

// Writes an answer the gateway made itself (no node's response relayed): counted as unrouted,
// under the client's idle timeout, with the request's X-Request-ID. `node` names the node it
// speaks for, if any.
asio::awaitable<ProxyResult> send_local_answer(Worker& worker, ClientConnection& connection,
                                               std::chrono::milliseconds idle_timeout,
                                               http::response<http::string_body> response,
                                               std::string node = {});

}  // namespace llmgw::server::detail
