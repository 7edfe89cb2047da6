// Reading one client request: head, checks, body (request_reader.hpp).

#include "request_reader.hpp"

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/url/parse.hpp>
#include <tuple>
#include <vector>

#include "credentials.hpp"
#include "llmgw/net/http_types.hpp"
#include "llmgw/routing/session_key.hpp"
#include "llmgw/util/text.hpp"
#include "proxy.hpp"
#include "server/as_tuple.hpp"
#include "stream.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using Side = Watchdog::Side;

// One read's worth of body on top of the head limit in the client read buffer: Beast reads at
// most 64 KiB at a time, so bodies still arrive in full-size reads.
constexpr std::size_t kBodyReadBytes = 64 * 1024;
constexpr std::string_view kAllowedMethods = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

// The client closed or went quiet: nothing to answer.
bool is_quiet_close(const beast::error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::operation_aborted || ec == beast::error::timeout ||
         ec == asio::error::connection_reset || ec == asio::error::bad_descriptor ||
         ec == http::error::partial_message;
}

// `text` fit for an error message: visible ASCII only (a JSON dump of other bytes would throw),
// at most 40 characters.
std::string printable(std::string_view text) {
  constexpr std::size_t kMaxShown = 40;
  std::string out;
  for (const char c : text.substr(0, kMaxShown)) {
    out += (c > ' ' && c < 0x7f) ? c : '?';
  }
  return text.size() > kMaxShown ? out + "..." : out;
}

RequestError body_too_large(const config::LimitsConfig& limits) {
  return {413, "request body is larger than limits.max_body_bytes (" +
                   std::to_string(limits.max_body_bytes) + " bytes)"};
}

RequestError header_too_large(const config::LimitsConfig& limits, std::string_view what) {
  return {431, std::string{what} + " larger than limits.max_header_bytes (" +
                   std::to_string(limits.max_header_bytes) + " bytes)"};
}

RequestError budget_exhausted(const config::LimitsConfig& limits) {
  return {503,
          "the gateway holds limits.max_buffered_body_bytes (" +
              std::to_string(limits.max_buffered_body_bytes) +
              " bytes) of request bodies already; retry shortly",
          std::chrono::seconds{1}};
}

// RFC 9112 §6.1: the only coding the gateway decodes is chunked, applied once and last; anything
// else would make the gateway and the node (or a proxy in front) frame the message differently.
std::optional<RequestError> check_transfer_encoding(const http::request_header<>& head,
                                                    bool has_content_length) {
  const auto [first, last] = head.equal_range(http::field::transfer_encoding);
  if (first == last) {
    return std::nullopt;
  }
  if (head.version() < 11) {
    return RequestError{400, "Transfer-Encoding is not allowed in an HTTP/1.0 request"};
  }
  if (has_content_length) {
    return RequestError{400, "a request must not have both Transfer-Encoding and Content-Length"};
  }
  std::vector<std::string_view> codings;
  for (auto it = first; it != last; ++it) {
    std::string_view list = it->value();
    while (!list.empty()) {
      const auto comma = list.find(',');
      const auto coding = util::trim(list.substr(0, comma));
      if (!coding.empty()) {
        codings.push_back(coding);
      }
      list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
  }
  for (const auto coding : codings) {
    const auto name = util::trim(coding.substr(0, coding.find(';')));
    if (!beast::iequals(name, "chunked")) {
      return RequestError{
          501, "transfer coding \"" + printable(name) + "\" is not supported (only chunked is)"};
    }
  }
  if (codings.size() != 1 || !beast::iequals(codings.front(), "chunked")) {
    return RequestError{400, "Transfer-Encoding must be exactly \"chunked\""};
  }
  return std::nullopt;
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
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return header_too_large(limits, "request header is");
  }
  if (ec == http::error::body_limit) {  // the head parser checks Content-Length against it
    return body_too_large(limits);
  }
  if (ec == http::error::bad_transfer_encoding) {  // Beast's own check: duplicated chunked
    return RequestError{400, "Transfer-Encoding must be exactly \"chunked\""};
  }
  return RequestError{400, "malformed request: " + ec.message()};
}

// Watches the chunk-size lines of a chunked body as Beast parses them: their extensions count
// against what is left of the header limit, and each chunk's size against the body budget before
// its bytes are stored.
struct ChunkGuard {
  const config::LimitsConfig& limits;
  BodyReservation& reservation;
  std::size_t header_allowance;  // header bytes left for extensions and trailers
  std::optional<RequestError> failure;

  void operator()(std::uint64_t size, beast::string_view extensions, beast::error_code& ec) {
    if (extensions.size() > header_allowance) {
      failure = header_too_large(limits, "request header with chunk extensions and trailers is");
      ec = http::error::header_limit;
      return;
    }
    header_allowance -= extensions.size();
    if (!reservation.add(size, limits.max_buffered_body_bytes)) {
      failure = budget_exhausted(limits);
      ec = http::error::body_limit;
    }
  }
};

// Removes the fields after the first `head_fields` (a chunked body's trailer section, which the
// parser appends to the header) and returns their size as they came on the wire.
std::size_t drop_trailers(Request& request, std::size_t head_fields) {
  std::size_t bytes = 0;
  std::size_t index = 0;
  for (auto it = request.begin(); it != request.end();) {
    if (index++ < head_fields) {
      ++it;
      continue;
    }
    bytes += it->name_string().size() + it->value().size() + 4;  // ": " and CRLF
    it = request.erase(it);
  }
  return bytes;
}

// Reads the body into `parser` (bytes that came with the head first, without waiting).
asio::awaitable<beast::error_code> read_body(Stream& stream, beast::flat_buffer& buffer,
                                             http::request_parser<http::string_body>& parser) {
  // The socket is non-blocking (and a TLS stream answers would_block at once), so this never
  // waits; the rest of a larger body is read asynchronously.
  beast::error_code ec = asio::error::would_block;
  if (buffer.size() > 0) {
    http::read(stream, buffer, parser, ec);
  }
  if (ec == asio::error::would_block || ec == asio::error::try_again) {
    std::tie(ec, std::ignore) = co_await http::async_read(stream, buffer, parser, kAsTuple);
  }
  co_return ec;
}

}  // namespace

std::optional<std::string> origin_form(std::string_view target) {
  const auto url = boost::urls::parse_absolute_uri(target);
  if (!url || !url->has_authority() ||
      (!beast::iequals(url->scheme(), "http") && !beast::iequals(url->scheme(), "https"))) {
    return std::nullopt;
  }
  std::string out{url->encoded_path()};
  if (out.empty()) {
    out = "/";
  }
  if (url->has_query()) {
    out += "?" + std::string{url->encoded_query()};
  }
  return out;
}

std::optional<RequestError> validate_request_head(const http::request_header<>& head,
                                                  std::optional<std::uint64_t> content_length,
                                                  const config::LimitsConfig& limits) {
  const auto hosts = head.count(http::field::host);
  if (hosts > 1) {
    return RequestError{400, "more than one Host header"};
  }
  if (hosts == 0 && head.version() >= 11) {
    return RequestError{400, "an HTTP/1.1 request must have a Host header"};
  }
  if (head.method() == http::verb::connect) {
    return RequestError{405, "CONNECT is not supported: llmgw is not a forward proxy",
                        std::chrono::seconds{0}, std::string{kAllowedMethods}};
  }
  const std::string_view target = head.target();
  const bool asterisk = target == "*" && head.method() == http::verb::options;
  if (!target.starts_with('/') && !asterisk && !origin_form(target)) {
    return RequestError{400, "request target \"" + printable(target) +
                                 "\" is neither a path nor an absolute http URL"};
  }
  const bool has_content_length = head.count(http::field::content_length) > 0;
  if (auto error = check_transfer_encoding(head, has_content_length)) {
    return error;
  }
  if (content_length && *content_length > limits.max_body_bytes) {
    return body_too_large(limits);
  }
  return std::nullopt;
}

bool BodyReservation::add(std::uint64_t bytes, std::size_t limit) noexcept {
  if (bytes > limit) {
    return false;
  }
  const auto size = static_cast<std::size_t>(bytes);
  const auto before = held_->fetch_add(size, std::memory_order_relaxed);
  if (before + size > limit) {
    held_->fetch_sub(size, std::memory_order_relaxed);
    return false;
  }
  bytes_ += size;
  return true;
}

beast::flat_buffer client_read_buffer(const config::LimitsConfig& limits) {
  return beast::flat_buffer{limits.max_header_bytes + kBodyReadBytes};
}

http::response<http::string_body> error_response(const RequestError& error) {
  auto response = json_error(error.status, error.message, false);
  if (error.retry_after.count() > 0) {
    response.set(http::field::retry_after, std::to_string(error.retry_after.count()));
  }
  if (!error.allow.empty()) {
    response.set(http::field::allow, error.allow);
  }
  return response;
}

asio::awaitable<void> linger_before_close(ClientConnection& connection) {
  constexpr std::size_t kMaxDropped = 1024 * 1024;
  Stream& stream = *connection.client;
  connection.watchdog->arm(Side::client, std::chrono::seconds{1});  // closes the stream at 1 s
  if (stream.is_tls()) {
    // close_notify, then what the client still sends is read (and dropped) by OpenSSL while it
    // waits for the client's own close_notify or end of stream.
    co_await stream.tls().async_shutdown(kAsTuple);
    co_return;
  }
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  std::array<char, 16 * 1024> sink{};
  for (std::size_t dropped = 0; !ec && dropped < kMaxDropped;) {
    std::size_t got = 0;
    std::tie(ec, got) = co_await stream.async_read_some(asio::buffer(sink), kAsTuple);
    dropped += got;
  }
}

namespace {

// The rest of a request whose head is in `head_parser` and valid: 100 Continue when asked for,
// then the body. A frame of its own, so that a connection waiting for its next head (read_request)
// does not hold the body parser (bench/RESULTS.md §12.4).
asio::awaitable<void> read_rest(ClientConnection& connection, beast::flat_buffer& buffer,
                                const config::GatewayConfig& config,
                                http::request_parser<http::empty_body>& head_parser,
                                std::size_t head_bytes, ReadResult& result) {
  Stream& stream = *connection.client;
  Watchdog& watchdog = *connection.watchdog;
  const auto& limits = config.limits;
  const auto length = head_parser.content_length();
  if (beast::iequals(head_parser.get()[http::field::expect], "100-continue")) {
    http::response<http::empty_body> proceed{http::status::continue_, 11};
    watchdog.arm(Side::client, config.timeouts.client_header);
    co_await http::async_write(stream, proceed, kAsTuple);
  }
  const auto head_fields =
      static_cast<std::size_t>(std::distance(head_parser.get().begin(), head_parser.get().end()));
  http::request_parser<http::string_body> parser{std::move(head_parser)};
  parser.body_limit(limits.max_body_bytes);
  if (length && *length > 0) {
    // Room for the routing scan to read the body in place (routing::scan_body); Beast's own
    // reserve of Content-Length bytes is then a no-op.
    parser.get().body().reserve(static_cast<std::size_t>(*length) + routing::body_scan_padding());
  }
  ChunkGuard guard{limits,
                   result.reservation,
                   limits.max_header_bytes - std::min(head_bytes, limits.max_header_bytes),
                   {}};
  parser.on_chunk_header(guard);
  if (!parser.is_done()) {  // a GET is complete with its head: no read (and no queued handler)
    watchdog.arm(Side::client, config.timeouts.client_header);
    const auto body_error = co_await read_body(stream, buffer, parser);
    watchdog.disarm();
    if (guard.failure) {
      result.error = std::move(guard.failure);
    } else if (body_error == http::error::buffer_overflow) {
      // A chunk-size line or trailer section that does not fit the bounded read buffer.
      result.error = header_too_large(limits, "chunk extensions or trailers are");
    } else if (body_error == http::error::body_limit) {
      result.error = body_too_large(limits);
    } else if (body_error && !is_quiet_close(body_error)) {
      result.error = RequestError{400, "malformed request body: " + body_error.message()};
    }
    if (body_error) {
      co_return;
    }
  }
  Request request = parser.release();
  if (drop_trailers(request, head_fields) > guard.header_allowance) {
    result.error = header_too_large(limits, "request header with chunk extensions and trailers is");
    co_return;
  }
  result.request.emplace(std::move(request));
}

}  // namespace

asio::awaitable<ReadResult> read_request(ClientConnection& connection, beast::flat_buffer& buffer,
                                         const config::GatewayConfig& config,
                                         std::atomic<std::size_t>& buffered_body_bytes) {
  Stream& stream = *connection.client;
  Watchdog& watchdog = *connection.watchdog;
  const auto& limits = config.limits;
  ReadResult result{buffered_body_bytes};

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
  auto& head = head_parser.get();
  const auto length = head_parser.content_length();
  result.error = validate_request_head(
      head, length ? std::optional<std::uint64_t>{*length} : std::nullopt, limits);
  if (result.error) {
    co_return result;
  }
  if (!head.target().starts_with('/') && head.target() != "*") {
    head.target(*origin_form(head.target()));  // validated above
  }
  if (!head_parser.is_done() &&
      lacks_client_key(config, head, net::target_path(head.target()), connection.admin_listener)) {
    // A 401 needs no body: none of it is read (nor buffered, nor invited by 100 Continue).
    result.key_refused_body_unread = true;
    result.request.emplace(std::move(head.base()));
    co_return result;
  }
  if (length && !result.reservation.add(*length, limits.max_buffered_body_bytes)) {
    result.error = budget_exhausted(limits);
    co_return result;
  }
  co_await read_rest(connection, buffer, config, head_parser, head_bytes, result);
  co_return result;
}

}  // namespace llmgw::server::detail
