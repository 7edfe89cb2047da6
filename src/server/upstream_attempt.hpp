#pragma once

// Internal: one attempt of a proxied request on one node, the second step of the proxy path
// (proxy.hpp: plan -> attempt -> relay -> account). An attempt gets a connection, writes the
// request and reads the response head; it never relays a byte to the client, so whatever it
// returns, the request may still go to another node.
//
// Connections: a pooled one when the pool has a live one (upstream_pool.hpp), else a new one. A
// pooled connection that fails before any response byte arrived was closed by the node while it
// sat idle (keep-alive timeouts race with reuse): the attempt then writes the request again on a
// brand-new connection, once, and the stale one is not the node's fault. Only a failure on a
// brand-new connection says something about the node.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "gateway_state.hpp"
#include "stream.hpp"

namespace llmgw::server::detail {

class UpstreamRequest;  // upstream_request.hpp

namespace http = beast::http;
using Request = http::request<http::string_body>;

enum class AttemptOutcome {
  answered,        // a response head arrived (any status: the caller judges 5xx)
  connect_failed,  // no connection could be made (refused, unreachable, connect timeout)
  timed_out,       // no response head within the attempt's time
  reset,           // a brand-new connection broke before a complete response head
  client_gone,     // the client left while waiting; the node's connection was closed
  no_descriptors,  // the gateway itself ran out of descriptors or buffers: not the node's fault
  shutting_down,   // the drain deadline passed and the node's connection was closed
};

// Whether an outcome is evidence against the node (counts toward its ejection).
constexpr bool counts_against_node(AttemptOutcome outcome) noexcept {
  return outcome == AttemptOutcome::connect_failed || outcome == AttemptOutcome::timed_out ||
         outcome == AttemptOutcome::reset;
}

std::string_view to_string(AttemptOutcome outcome) noexcept;

// A node's addresses (its host may be a name), resolved on the calling coroutine's executor.
// `failure` says what went wrong, for a log line or an error body; empty on success.
struct ResolvedNode {
  tcp::resolver::results_type endpoints;
  beast::error_code error;
  std::string failure;
};
asio::awaitable<ResolvedNode> resolve_node(const UpstreamNode& node);

// A not yet connected stream for the gateway's own calls to `node` (fleet endpoints, health
// checks, the catalog, preheats): TLS with the node's client context for an https:// node.
TimedStream node_stream(const UpstreamNode& node, const asio::any_io_executor& executor);
// The TLS handshake on a connected node_stream, within the stream's expiry: "" when done (or
// not TLS), else what failed ("certificate verify failed: ...").
asio::awaitable<std::string> handshake_with_node(const UpstreamNode& node, TimedStream& stream);

// What an answered attempt hands to the relay: the connection and the parsed response head (body
// bytes that came with it wait in `input`, the request's upstream read buffer).
struct Exchange {
  std::optional<Stream> upstream;
  std::optional<http::response_parser<http::buffer_body>> parser;
  bool replaced_stale = false;  // a pooled connection was found closed and replaced
  std::string failure;          // connect_failed: what failed, when more is known (TLS)
};

// Sends `request` to `node` (its head with the node's Host) and reads the response head within
// `time_left` (connect included). The client is watched meanwhile: if it leaves, the node's
// connection is closed at once (client_gone). Never throws.
asio::awaitable<AttemptOutcome> attempt(Worker& worker, ClientConnection& connection,
                                        UpstreamNode& node, const UpstreamRequest& request,
                                        bool head_request, const config::TimeoutsConfig& timeouts,
                                        std::chrono::milliseconds time_left,
                                        beast::flat_buffer& input, Exchange& out);

}  // namespace llmgw::server::detail
