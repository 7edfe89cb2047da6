#pragma once

// Internal: reading one client request (head, then body) and deciding whether it may go on to the
// routing decision. The result is either a Request, an error to answer before closing the
// connection, or nothing (the client left or went quiet: close without a word).
//
// What is refused, and why (RFC 9112 unless noted):
// - framing a front proxy may read differently (request smuggling, §6.1, §6.3): Transfer-Encoding
//   other than exactly `chunked` (501 for an unknown coding, 400 otherwise), Transfer-Encoding
//   with Content-Length or in HTTP/1.0 (400); the connection is closed, so what follows is never
//   read as a request;
// - a missing (HTTP/1.1) or repeated Host (400, §3.2), CONNECT (405: not a forward proxy), a
//   target that is neither a path nor an absolute http(s) URL (400); an absolute-form target is
//   rewritten to its path (§3.2.2);
// - heads, chunk extensions and trailers together past limits.max_header_bytes (431); trailer
//   fields are dropped, never forwarded as header fields (§7.1.2 allows discarding them);
// - bodies past limits.max_body_bytes (413), and past the gateway-wide budget for bodies held in
//   memory, limits.max_buffered_body_bytes (503 with Retry-After, at once instead of growing).
//
// validate_request_head() and origin_form() are pure (no socket, no clock, no shared state), so
// unit tests and fuzz targets reach those rules without a connection.

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "gateway_state.hpp"

namespace llmgw::server::detail {

namespace http = beast::http;
using Request = http::request<http::string_body>;

// A request the gateway refuses before routing: answered with {"error": message}, then the
// connection is closed (what follows on it cannot be trusted to be a request).
struct RequestError {
  RequestError(int status_code, std::string text, std::chrono::seconds retry = {},
               std::string allowed = {})
      : status(status_code),
        message(std::move(text)),
        retry_after(retry),
        allow(std::move(allowed)) {}

  int status = 400;
  std::string message;
  std::chrono::seconds retry_after{0};  // > 0: sent as Retry-After
  std::string allow;                    // non-empty: sent as Allow (405)
};

// The rules a parsed head must pass before its body is read. `content_length` is the parser's
// (already checked for syntax). Returns the error to answer, or nullopt.
std::optional<RequestError> validate_request_head(const http::request_header<>& head,
                                                  std::optional<std::uint64_t> content_length,
                                                  const config::LimitsConfig& limits);

// The origin form ("/path?query") of an absolute-form target ("http://host/path?query"); "/" when
// the URL has no path. nullopt when `target` is not an absolute http or https URL.
std::optional<std::string> origin_form(std::string_view target);

// Request body bytes held in memory by all connections together, against
// limits.max_buffered_body_bytes. A reservation gives its bytes back when destroyed. Thread-safe
// (one atomic counter shared by every worker).
class BodyReservation {
 public:
  explicit BodyReservation(std::atomic<std::size_t>& held) noexcept : held_(&held) {}
  BodyReservation(BodyReservation&& other) noexcept
      : held_(other.held_), bytes_(std::exchange(other.bytes_, 0)) {}
  BodyReservation& operator=(BodyReservation&&) = delete;
  BodyReservation(const BodyReservation&) = delete;
  BodyReservation& operator=(const BodyReservation&) = delete;
  ~BodyReservation() { held_->fetch_sub(bytes_, std::memory_order_relaxed); }

  // Adds `bytes` when the total stays within `limit`; otherwise adds nothing and returns false.
  bool add(std::uint64_t bytes, std::size_t limit) noexcept;
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::atomic<std::size_t>* held_;
  std::size_t bytes_ = 0;
};

struct ReadResult {
  explicit ReadResult(std::atomic<std::size_t>& held) : reservation(held) {}

  std::optional<Request> request;     // set: route it
  std::optional<RequestError> error;  // set: answer it, then close
  // The head shows no valid client key (credentials.hpp's lacks_client_key) and a body follows:
  // `request` holds the head only, the body was not read. Answer 401, then close (lingering).
  bool key_refused_body_unread = false;
  BodyReservation reservation;  // the body's bytes; keep it as long as the request
  std::chrono::steady_clock::time_point started;  // when the head was read
};

// The read buffer of one client connection. Bounded: it holds a head (limits.max_header_bytes),
// a chunk-size line with its extensions or a trailer section, and one read's worth of body, so a
// client that never ends a line cannot grow it (Beast answers buffer_overflow instead).
beast::flat_buffer client_read_buffer(const config::LimitsConfig& limits);

// Reads the next request on `connection`'s client stream (timeouts from its watchdog), answering
// `Expect: 100-continue` itself (not for a request refused for its key on its head: its body is
// not read at all, see ReadResult::key_refused_body_unread). `buffer` (client_read_buffer) holds
// bytes read past the previous request and lives as long as the connection. Sets connection.idle to
// false once a head arrived. Body bytes are counted in `buffered_body_bytes`. Never throws.
asio::awaitable<ReadResult> read_request(ClientConnection& connection, beast::flat_buffer& buffer,
                                         const config::GatewayConfig& config,
                                         std::atomic<std::size_t>& buffered_body_bytes);

// After an error response: ends the sending side, then reads and drops what the client still
// sends (at most 1 MiB or 1 s) before the caller closes. Closing with unread input makes the
// kernel send a reset, and a client still sending its body may lose the response to it (nginx's
// lingering close, for the same reason).
asio::awaitable<void> linger_before_close(ClientConnection& connection);

// The response for `error` (JSON body, Connection: close, Retry-After / Allow when set).
http::response<http::string_body> error_response(const RequestError& error);

}  // namespace llmgw::server::detail
