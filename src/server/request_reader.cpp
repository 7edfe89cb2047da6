// Reading one client request: head, checks, body (request_reader.hpp).

#include "request_reader.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include "proxy.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

constexpr auto kAsTuple = asio::as_tuple(asio::use_awaitable);
using Side = Watchdog::Side;

// The client closed or went quiet: nothing to answer.
bool is_quiet_close(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::operation_aborted || ec == beast::error::timeout ||
         ec == asio::error::connection_reset || ec == asio::error::bad_descriptor ||
         ec == http::error::partial_message;
}

RequestError body_too_large(const config::LimitsConfig& limits) {
  return {413, "request body is larger than limits.max_body_bytes (" +
                   std::to_string(limits.max_body_bytes) + " bytes)"};
}

// What a failed head read means: nothing (the client left) or an error to answer.
std::optional<RequestError> head_read_error(const beast::error_code& ec,
                                            const beast::flat_buffer& buffer,
                                            const config::LimitsConfig& limits) {
  if (is_quiet_close(ec) && ec != http::error::partial_message) {
    return std::nullopt;
  }
  if (ec == http::error::partial_message && buffer.size() == 0) {
    return std::nullopt;
  }
  if (ec == http::error::header_limit) {
    return RequestError{431, "request header is larger than limits.max_header_bytes (" +
                                 std::to_string(limits.max_header_bytes) + " bytes)"};
  }
  if (ec == http::error::body_limit) {  // the head parser checks Content-Length against it
    return body_too_large(limits);
  }
  return RequestError{400, "malformed request: " + ec.message()};
}

}  // namespace

std::optional<RequestError> validate_request_head(const http::request_header<>& /*head*/,
                                                  std::optional<std::uint64_t> content_length,
                                                  const config::LimitsConfig& limits) {
  if (content_length && *content_length > limits.max_body_bytes) {
    return body_too_large(limits);
  }
  return std::nullopt;
}

http::response<http::string_body> error_response(const RequestError& error) {
  return json_error(error.status, error.message, false);
}

asio::awaitable<ReadResult> read_request(ClientConnection& connection, beast::flat_buffer& buffer,
                                         const config::GatewayConfig& config) {
  tcp::socket& stream = *connection.client;
  Watchdog& watchdog = *connection.watchdog;
  const auto& limits = config.limits;
  ReadResult result;

  http::request_parser<http::empty_body> head_parser;
  head_parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  head_parser.body_limit(limits.max_body_bytes);
  watchdog.arm(Side::client, config.timeouts.client_header);
  auto [head_error, head_bytes] =
      co_await http::async_read_header(stream, buffer, head_parser, kAsTuple);
  watchdog.disarm();  // the client is not waited on again until the next arm()
  connection.idle = false;
  result.started = std::chrono::steady_clock::now();
  if (head_error) {
    result.error = head_read_error(head_error, buffer, limits);
    co_return result;
  }
  result.error = validate_request_head(head_parser.get(), head_parser.content_length(), limits);
  if (result.error) {
    co_return result;
  }
  if (beast::iequals(head_parser.get()[http::field::expect], "100-continue")) {
    http::response<http::empty_body> proceed{http::status::continue_, 11};
    watchdog.arm(Side::client, config.timeouts.client_header);
    co_await http::async_write(stream, proceed, kAsTuple);
  }
  http::request_parser<http::string_body> parser{std::move(head_parser)};
  parser.body_limit(limits.max_body_bytes);
  beast::error_code body_error;
  if (!parser.is_done()) {  // a GET is complete with its head: no read (and no queued handler)
    watchdog.arm(Side::client, config.timeouts.client_header);
    // A small body usually came with the head: parse it at once. The socket is non-blocking,
    // so this never waits; the rest of a larger body is read asynchronously.
    body_error = asio::error::would_block;
    if (buffer.size() > 0) {
      http::read(stream, buffer, parser, body_error);
    }
    if (body_error == asio::error::would_block || body_error == asio::error::try_again) {
      auto [read_error, body_bytes] = co_await http::async_read(stream, buffer, parser, kAsTuple);
      body_error = read_error;
    }
    watchdog.disarm();
  }
  if (body_error) {
    if (body_error == http::error::body_limit) {
      result.error = body_too_large(limits);
    } else if (!is_quiet_close(body_error)) {
      result.error = RequestError{400, "malformed request body: " + body_error.message()};
    }
    co_return result;
  }
  result.request.emplace(parser.release());
  co_return result;
}

}  // namespace llmgw::server::detail
