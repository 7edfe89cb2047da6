// The heads the proxy path writes by hand (server/head_writer.hpp): what they say must read back
// through Beast's own parser as what they were made from; and the writes (gather_write.hpp) must
// deliver every byte, in order, whether the socket takes them at once or not.

#include "server/head_writer.hpp"

#include <gtest/gtest.h>

#include <array>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <limits>
#include <string>

#include "server/gather_write.hpp"

namespace llmgw::server::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// Parses `text` as one message with Beast's parser; fails the test when it does not parse whole.
template <bool IsRequest>
http::message<IsRequest, http::string_body> parse(const std::string& text) {
  http::parser<IsRequest, http::string_body> parser;
  parser.eager(true);
  beast::error_code ec;
  const auto used = parser.put(asio::buffer(text), ec);
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_EQ(used, text.size());
  EXPECT_TRUE(parser.is_done());
  return parser.release();
}
const auto parse_response = parse<false>;

TEST(HeadWriter, StatusLineCarriesTheCodeAndItsReason) {
  for (const unsigned code : {200U, 404U, 429U, 503U}) {
    std::string text;
    append_status_line(text, code);
    append_field(text, "Content-Length", "0");
    end_head(text);
    const auto parsed = parse_response(text);
    EXPECT_EQ(parsed.result_int(), code);
    EXPECT_EQ(parsed.reason(), http::obsolete_reason(http::int_to_status(code)));
  }
  std::string unknown;
  append_status_line(unknown, 299);
  EXPECT_EQ(unknown, "HTTP/1.1 299 <unknown-status>\r\n");
}

TEST(HeadWriter, ChunkSizeLinesAreHexWithCrlf) {
  std::array<char, 18> line{};
  const auto as_text = [&](std::size_t size) {
    return std::string(line.data(), chunk_size_line(size, line));
  };
  EXPECT_EQ(as_text(0), "0\r\n");
  EXPECT_EQ(as_text(1), "1\r\n");
  EXPECT_EQ(as_text(255), "ff\r\n");
  EXPECT_EQ(as_text(4096), "1000\r\n");
  EXPECT_EQ(as_text(std::numeric_limits<std::size_t>::max()), "ffffffffffffffff\r\n");
}

TEST(HeadWriter, ChunkedPiecesReadBackAsTheBody) {
  std::string text;
  append_status_line(text, 200);
  append_field(text, "Transfer-Encoding", "chunked");
  end_head(text);
  std::string body;
  std::array<char, 18> line{};
  for (const std::string& piece : {std::string{"{\"response\":\"a\"}\n"}, std::string(300, 'x')}) {
    text.append(line.data(), chunk_size_line(piece.size(), line));
    text += piece;
    text += kChunkEnd;
    body += piece;
  }
  text += kLastChunk;
  EXPECT_EQ(parse_response(text).body(), body);
}

// A connected loopback pair: `writer` for the code under test, `reader` for the peer.
struct SocketPair {
  asio::io_context io;
  Stream writer{tcp::socket{io}};
  tcp::socket reader{io};

  SocketPair() {
    tcp::acceptor acceptor{io, {asio::ip::make_address("127.0.0.1"), 0}};
    writer.socket().connect(acceptor.local_endpoint());
    reader = acceptor.accept();
    writer.socket().non_blocking(true);
  }
};

TEST(HeadWriter, WriteAtOnceDeliversSmallWritesWhole) {
  SocketPair pair;
  const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
  const std::string body = "hello";
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(body)};
  std::span<asio::const_buffer> rest{buffers};
  boost::system::error_code ec;
  EXPECT_TRUE(write_at_once(pair.writer, rest, ec));
  EXPECT_FALSE(ec);
  EXPECT_TRUE(rest.empty());
  std::string got(head.size() + body.size(), '\0');
  asio::read(pair.reader, asio::buffer(got));
  EXPECT_EQ(got, head + body);
}

TEST(HeadWriter, WhatTheSocketDoesNotTakeGoesOutWithWriteRest) {
  SocketPair pair;
  // Fixed small buffers (no autotuning), and more than both hold.
  pair.writer.socket().set_option(asio::socket_base::send_buffer_size{16384});
  pair.reader.set_option(asio::socket_base::receive_buffer_size{65536});
  std::string big(2 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) {
    big[i] = static_cast<char>('a' + i % 26);
  }
  const std::string head = "HEAD\r\n";
  std::array<asio::const_buffer, 2> buffers{asio::buffer(head), asio::buffer(big)};
  std::span<asio::const_buffer> rest{buffers};
  boost::system::error_code ec;
  ASSERT_FALSE(write_at_once(pair.writer, rest, ec));  // 2 MiB does not fit
  EXPECT_FALSE(ec);
  ASSERT_FALSE(rest.empty());

  std::string got(head.size() + big.size(), '\0');
  boost::system::error_code write_error = asio::error::fault;
  asio::co_spawn(
      pair.io,
      [&]() -> asio::awaitable<void> { write_error = co_await write_rest(pair.writer, rest); },
      asio::detached);
  asio::async_read(pair.reader, asio::buffer(got), [](boost::system::error_code, std::size_t) {});
  pair.io.run();
  EXPECT_FALSE(write_error) << write_error.message();
  EXPECT_EQ(got, head + big);
}

}  // namespace
}  // namespace llmgw::server::detail
