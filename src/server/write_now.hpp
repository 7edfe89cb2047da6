#pragma once

// Internal: writes a Beast serializer's bytes at once when the socket takes them.

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/write.hpp>
#include <tuple>

#include "stream.hpp"

namespace llmgw::server::detail {

// Writes what the serializer holds (only its head when `head_only`) at once if the socket takes
// it, which a short message always does: no asynchronous operation then, so no completion handler
// is queued and the worker does not run one more epoll_wait just to dispatch it (strace: two of
// the four epoll_wait calls per short request). What does not fit goes out asynchronously; a
// socket not in non-blocking mode, and every TLS stream (stream.hpp: its synchronous calls answer
// would_block), go the asynchronous way from the start. need_buffer (a buffer_body piece went
// out and the body goes on) is success.
template <bool kIsRequest, class Body>
boost::asio::awaitable<boost::beast::error_code> write_now(
    Stream& stream, boost::beast::http::serializer<kIsRequest, Body>& serializer, bool head_only) {
  namespace http = boost::beast::http;
  constexpr auto as_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);
  boost::beast::error_code ec = boost::asio::error::would_block;
  if (!stream.is_tls() && stream.socket().non_blocking()) {
    if (head_only) {
      http::write_header(stream, serializer, ec);
    } else {
      http::write(stream, serializer, ec);
    }
  }
  if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
    if (head_only) {
      std::tie(ec, std::ignore) = co_await http::async_write_header(stream, serializer, as_tuple);
    } else {
      std::tie(ec, std::ignore) = co_await http::async_write(stream, serializer, as_tuple);
    }
  }
  if (ec == http::error::need_buffer) {
    ec = {};
  }
  co_return ec;
}

}  // namespace llmgw::server::detail
