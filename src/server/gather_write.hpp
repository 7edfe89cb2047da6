#pragma once

// Internal: writes of a few buffers at once (a head, a piece of body and its chunk framing) on a
// client's or a node's stream: one non-blocking sendmsg when the socket takes it all, Asio's
// async_write for the rest.
//
// Thread safety: calls on one worker's stream.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <span>

#include "stream.hpp"

namespace llmgw::server::detail {

// Writes `buffers` (consumed as they go out) on a plain socket in non-blocking mode at once, as
// far as the socket takes them. Returns true when done (all written, or `ec` set), false when the
// rest must go out with write_rest (the socket is full, or a TLS stream: its synchronous calls
// answer would_block). No coroutine and no handler for the common case of a short write.
bool write_at_once(Stream& stream, std::span<boost::asio::const_buffer>& buffers,
                   boost::system::error_code& ec);
// The rest, asynchronously.
boost::asio::awaitable<boost::system::error_code> write_rest(
    Stream& stream, std::span<boost::asio::const_buffer> buffers);

}  // namespace llmgw::server::detail
