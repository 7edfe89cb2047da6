#include "gather_write.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace llmgw::server::detail {

namespace asio = boost::asio;

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
