#include "head_writer.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/http/status.hpp>
#include <charconv>
#include <vector>

namespace llmgw::server::detail {

namespace asio = boost::asio;
namespace http = boost::beast::http;

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name);
  out.append(": ");
  out.append(value);
  out.append("\r\n");
}

void append_request_head(std::string& out, const http::request_header<>& request) {
  out.append(request.method_string());
  out.push_back(' ');
  out.append(request.target());
  out.append(request.version() == 10 ? " HTTP/1.0\r\n" : " HTTP/1.1\r\n");
  for (const auto& field : request) {
    append_field(out, field.name_string(), field.value());
  }
}

void append_status_line(std::string& out, unsigned code) {
  char digits[8];
  const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, code);
  out.append("HTTP/1.1 ");
  out.append(digits, ec == std::errc{} ? end : digits);
  out.push_back(' ');
  out.append(http::obsolete_reason(http::int_to_status(code)));
  out.append("\r\n");
}

std::size_t chunk_size_line(std::size_t size, std::span<char, 18> out) noexcept {
  const auto [end, ec] = std::to_chars(out.data(), out.data() + 16, size, 16);
  char* tail = ec == std::errc{} ? end : out.data();
  *tail++ = '\r';
  *tail++ = '\n';
  return static_cast<std::size_t>(tail - out.data());
}

namespace {

// Drops `bytes` from the front of `buffers`.
void consume(std::span<asio::const_buffer>& buffers, std::size_t bytes) {
  while (!buffers.empty() && bytes >= buffers.front().size()) {
    bytes -= buffers.front().size();
    buffers = buffers.subspan(1);
  }
  if (!buffers.empty()) {
    buffers.front() += bytes;
  }
}

}  // namespace

bool write_at_once(Stream& stream, std::span<asio::const_buffer>& buffers,
                   boost::system::error_code& ec) {
  if (stream.is_tls() || !stream.socket().non_blocking()) {
    return false;
  }
  while (!buffers.empty()) {
    const std::size_t written = stream.socket().write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      return false;
    }
    if (ec) {
      return true;
    }
    consume(buffers, written);
  }
  return true;
}

asio::awaitable<boost::system::error_code> write_rest(Stream& stream,
                                                      std::span<asio::const_buffer> buffers) {
  // The span points into the caller's frame, which lives until this returns.
  auto [ec, written] =
      co_await asio::async_write(stream, buffers, asio::as_tuple(asio::use_awaitable));
  (void)written;
  co_return ec;
}

}  // namespace llmgw::server::detail
