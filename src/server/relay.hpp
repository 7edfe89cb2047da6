#pragma once

// Internal: the third step of the proxy path (proxy.hpp: plan -> attempt -> relay -> account).
// Relays an answered exchange to the client: the response head (hop-by-hop fields removed, the
// gateway's headers added), then the body piece by piece as the node sends it (Beast's relay
// example: one fixed buffer, read_some then write, never the whole body in memory).
//
// A stream that breaks after its first byte cannot be retried: it ends with an error record in
// the stream's own format (NDJSON or SSE) and the terminal chunk, so a keep-alive client can send
// its next request on the same connection. Only a response that announced its length, or a
// client too old for chunks, loses its connection with the break.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "llmgw/server/usage_scanner.hpp"
#include "upstream_attempt.hpp"

namespace llmgw::server::detail {

struct RelayRequest {
  const config::GatewayConfig* config = nullptr;  // the request's snapshot's (never null)
  routing::RouteKind route = routing::RouteKind::affinity;
  std::string_view key_source = "none";  // X-Gateway-Key-Source
  bool head_request = false;
  bool client_keep_alive = true;
  bool client_accepts_chunks = true;  // HTTP/1.1 or later (RFC 9112 §7: not to HTTP/1.0)
  bool preheated = false;  // the node was preheated for this turn: X-Gateway-Preheated: true
  bool scan_usage = true;  // the answer may carry token usage (UsageScanner::reports_usage)
  std::chrono::steady_clock::time_point started;
  // Called once the node's last byte is in, just before the client's last write: the request
  // stops counting as in flight when the client has its answer, not after the bookkeeping.
  std::function<void()> on_upstream_complete;
};

enum class RelayEnd {
  complete,         // the whole response reached the client
  client_gone,      // a write to the client failed; the node's connection was closed
  upstream_broken,  // the node's connection broke or stalled mid-body
  total_timeout,    // timeouts.total passed
  shutdown,         // cut at the drain deadline
};

struct RelayResult {
  RelayEnd end = RelayEnd::complete;
  int status = 0;
  std::uint64_t bytes = 0;         // body bytes that reached the client
  bool client_reusable = false;    // the client connection may serve another request
  bool upstream_reusable = false;  // the node's connection may go back to the pool
  bool first_byte_seen = false;
  std::chrono::steady_clock::duration time_to_first_byte{};  // when first_byte_seen
  UsageScanner usage_scanner;  // token counts from the node's final record
};

// `buffers` (the request's, from the worker's RelayBufferPool) hold the node's read buffer, with
// the body bytes that came with the head; a paced stream hands them back to the pool while it
// waits for the node and takes a set again for the next read, so `buffers` may point to another
// set afterwards (never null).
asio::awaitable<RelayResult> relay(Worker& worker, ClientConnection& connection, UpstreamNode& node,
                                   Exchange& exchange, std::unique_ptr<RelayBuffers>& buffers,
                                   const RelayRequest& request);

// An error record in the stream's own format, for a stream that breaks after its first byte.
std::string stream_error_record(std::string_view content_type, const std::string& message);

}  // namespace llmgw::server::detail
