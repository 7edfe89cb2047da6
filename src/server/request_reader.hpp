#pragma once

// Internal: reading one client request (head, then body) and deciding whether it may go on to the
// routing decision. The result is either a Request, an error to answer before closing the
// connection, or nothing (the client left or went quiet: close without a word).
//
// validate_request_head() is pure (no socket, no clock): it sees a parsed head and the limits, so
// unit tests and fuzz targets reach every rule without a connection.

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "gateway_state.hpp"

namespace llmgw::server::detail {

namespace http = beast::http;
using Request = http::request<http::string_body>;

// A request the gateway refuses before routing: answered with {"error": message}, then the
// connection is closed (what follows on it cannot be trusted to be a request).
struct RequestError {
  int status = 400;
  std::string message;
};

// The rules a parsed head must pass before its body is read. `content_length` is the parser's
// (already checked for syntax). Returns the error to answer, or nullopt.
std::optional<RequestError> validate_request_head(const http::request_header<>& head,
                                                  std::optional<std::uint64_t> content_length,
                                                  const config::LimitsConfig& limits);

struct ReadResult {
  std::optional<Request> request;                 // set: route it
  std::optional<RequestError> error;              // set: answer it, then close
  std::chrono::steady_clock::time_point started;  // when the head was read
};

// Reads the next request on `connection`'s client stream (timeouts from its watchdog), answering
// `Expect: 100-continue` itself. `buffer` holds bytes read past the previous request and lives as
// long as the connection. Sets connection.idle to false once a head arrived. Never throws.
asio::awaitable<ReadResult> read_request(ClientConnection& connection, beast::flat_buffer& buffer,
                                         const config::GatewayConfig& config);

// The response for `error` (JSON body, Connection: close).
http::response<http::string_body> error_response(const RequestError& error);

}  // namespace llmgw::server::detail
