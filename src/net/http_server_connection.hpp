#pragma once

// Internal to http_server.cpp (its only includer): one connection's coroutine, the response stream
// it hands to the handler, and the error answers for requests that cannot be read.

#include <sys/socket.h>

#include <boost/asio/write.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <limits>
#include <memory>
#include <type_traits>

#include "http_server_core.hpp"

namespace llmgw::net::detail {

// Answers a request through one connection. Tracks what has been sent so that the session knows
// whether it may still answer with 500 and whether the connection can be kept alive.
template <class Stream>
class StreamResponder final : public ResponseStream {
 public:
  enum class State { kNothingSent, kStreaming, kComplete, kBroken };

  StreamResponder(ServerCore& core, Stream& stream, asio::steady_timer& timer, bool keep_alive,
                  unsigned version)
      : core_(core), stream_(stream), timer_(timer), keep_alive_(keep_alive), version_(version) {}

  asio::awaitable<bool> respond(int status, HttpHeaders headers, std::string body) override {
    if (state_ != State::kNothingSent) {
      co_return false;
    }
    auto response = make_head<http::string_body>(status, headers);
    response.body() = std::move(body);
    response.prepare_payload();
    state_ = State::kBroken;  // until the write succeeds
    beast::get_lowest_layer(stream_).expires_after(core_.options().idle_timeout);
    auto [ec, bytes] = co_await http::async_write(stream_, response, use_tuple);
    if (ec) {
      co_return false;
    }
    state_ = State::kComplete;
    core_.count_request();
    co_return true;
  }

  asio::awaitable<bool> begin(int status, HttpHeaders headers) override {
    if (state_ != State::kNothingSent) {
      co_return false;
    }
    auto response = make_head<http::empty_body>(status, headers);
    response.chunked(true);
    http::response_serializer<http::empty_body> serializer{response};
    state_ = State::kBroken;
    beast::get_lowest_layer(stream_).expires_after(core_.options().idle_timeout);
    auto [ec, bytes] = co_await http::async_write_header(stream_, serializer, use_tuple);
    if (ec) {
      co_return false;
    }
    state_ = State::kStreaming;
    streamed_ = true;
    co_return true;
  }

  asio::awaitable<bool> write(std::string_view chunk) override {
    if (state_ != State::kStreaming) {
      co_return false;
    }
    if (chunk.empty()) {
      co_return true;  // an empty chunk would end the body
    }
    beast::get_lowest_layer(stream_).expires_after(core_.options().idle_timeout);
    auto [ec, bytes] = co_await asio::async_write(
        stream_, http::make_chunk(asio::const_buffer(chunk.data(), chunk.size())), use_tuple);
    if (ec) {
      state_ = State::kBroken;
      co_return false;
    }
    co_return true;
  }

  asio::awaitable<bool> end() override {
    if (state_ != State::kStreaming) {
      co_return false;
    }
    state_ = State::kBroken;
    beast::get_lowest_layer(stream_).expires_after(core_.options().idle_timeout);
    auto [ec, bytes] = co_await asio::async_write(stream_, http::make_chunk_last(), use_tuple);
    if (ec) {
      co_return false;
    }
    state_ = State::kComplete;
    core_.count_request();
    co_return true;
  }

  void abort() override {
    state_ = State::kBroken;
    beast::get_lowest_layer(stream_).close();
  }

  // Ends early when the server stops or the client closes its connection: as Go's http.Server
  // cancels a request's context when its connection closes, so Ollama stops a generation whose
  // client left, streamed or not. The socket is watched only while sleeping (no read is pending
  // on it then: the next request is read after the handler returns).
  asio::awaitable<bool> sleep(std::chrono::nanoseconds duration) override {
    if (core_.stopping() || peer_gone_) {
      co_return false;
    }
    timer_.expires_after(duration);
    auto& socket = beast::get_lowest_layer(stream_).socket();
    auto watch = std::make_shared<PeerWatch>();
    socket.async_wait(asio::socket_base::wait_read, [watch, &socket, timer = &timer_](
                                                        const boost::system::error_code& ec) {
      if (ec || !watch->active) {
        return;
      }
      char byte = 0;
      const auto peeked = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (peeked == 0 || (peeked < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
        watch->gone = true;
        timer->cancel();
      }
    });
    auto [ec] = co_await timer_.async_wait(use_tuple);
    watch->active = false;
    boost::system::error_code ignored;
    socket.cancel(ignored);
    peer_gone_ = watch->gone;
    co_return !ec && !core_.stopping() && !peer_gone_;
  }

  bool peer_gone() const override { return peer_gone_; }

  // Completes whatever the handler left open. Returns true when the connection can serve the next
  // request.
  asio::awaitable<bool> finish(const std::optional<std::string>& failure) {
    if (state_ == State::kNothingSent) {
      const std::string message =
          failure ? "handler failed: " + *failure : std::string("handler sent no response");
      keep_alive_ = keep_alive_ && !failure;
      // A named local: GCC 12 miscompiles braced temporaries inside co_await expressions.
      HttpHeaders headers;
      headers.push_back({"Content-Type", "application/json"});
      co_await respond(500, std::move(headers), json_error(message));
    } else if (state_ == State::kStreaming) {
      // A handler that threw mid-stream cannot say so in HTTP any more: cut the body short so the
      // client sees an incomplete response instead of a silently truncated one.
      if (failure) {
        co_return false;
      }
      co_await end();
    }
    // close_after_streamed_response: llama.cpp's server closes the connection after every
    // streamed response although it announced keep-alive; emulated for the gateway's tests.
    co_return state_ == State::kComplete&& keep_alive_ &&
        !(streamed_ && core_.options().close_after_streamed_response);
  }

 private:
  template <class Body>
  http::response<Body> make_head(int status, const HttpHeaders& headers) const {
    http::response<Body> response{http::status::ok, version_};
    response.result(static_cast<unsigned>(status));
    for (const auto& header : headers) {
      response.insert(header.name, header.value);
    }
    response.keep_alive(keep_alive_);
    return response;
  }

  ServerCore& core_;
  Stream& stream_;
  asio::steady_timer& timer_;
  bool keep_alive_;
  unsigned version_;
  struct PeerWatch {
    bool active = true;
    bool gone = false;
  };

  State state_ = State::kNothingSent;
  bool streamed_ = false;
  bool peer_gone_ = false;
};

// The status to answer a request that could not be read with, or 0 to close without answering.
inline unsigned status_for_read_error(const boost::system::error_code& ec) {
  if (ec == http::error::header_limit) {
    return 431;
  }
  if (ec == http::error::body_limit) {
    return 413;
  }
  if (ec == http::error::end_of_stream || ec == http::error::partial_message) {
    return 0;
  }
  if (ec.category() == http::make_error_code(http::error::bad_method).category()) {
    return 400;
  }
  return 0;
}

inline std::string read_error_message(unsigned status, const boost::system::error_code& ec) {
  switch (status) {
    case 431:
      return "request header fields too large";
    case 413:
      return "request body too large";
    default:
      return "malformed request: " + ec.message();
  }
}

inline asio::awaitable<void> close_gracefully(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  co_return;
}

inline asio::awaitable<void> close_gracefully(TlsStream& stream) {
  beast::get_lowest_layer(stream).expires_after(kLingerTimeout);
  auto [ec] = co_await stream.async_shutdown(use_tuple);
  (void)ec;  // the peer may be gone already; the socket closes either way
}

// Writes an error answer for a request that could not be read, then closes so that the peer still
// receives it (see kLingerTimeout).
template <class Stream>
asio::awaitable<void> reject_request(ServerCore& core, Stream& stream, beast::flat_buffer& buffer,
                                     unsigned status, const std::string& message) {
  http::response<http::string_body> response{http::status::ok, 11};
  response.result(status);
  response.set(http::field::content_type, "application/json");
  response.keep_alive(false);
  response.body() = json_error(message);
  response.prepare_payload();
  beast::get_lowest_layer(stream).expires_after(core.options().idle_timeout);
  auto [ec, bytes] = co_await http::async_write(stream, response, use_tuple);
  if (ec) {
    co_return;
  }
  core.count_request();
  if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
    boost::system::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  }
  std::size_t drained = 0;
  while (drained < kLingerMaxBytes) {
    buffer.consume(buffer.size());
    beast::get_lowest_layer(stream).expires_after(kLingerTimeout);
    auto [read_ec, n] = co_await stream.async_read_some(buffer.prepare(64 * 1024), use_tuple);
    if (read_ec) {
      break;
    }
    buffer.commit(n);
    drained += n;
  }
}

template <class Stream>
asio::awaitable<void> serve_connection(ServerCore& core, Stream stream, std::string remote) {
  auto& lowest = beast::get_lowest_layer(stream);
  asio::steady_timer timer{lowest.get_executor()};
  auto control = core.register_connection(lowest, timer);
  if (!control) {
    co_return;
  }
  struct Unregister {
    ServerCore& core;
    std::shared_ptr<ConnectionControl> control;
    ~Unregister() { core.unregister_connection(control); }
  } unregister{core, control};

  const auto& options = core.options();
  if constexpr (std::is_same_v<Stream, TlsStream>) {
    lowest.expires_after(options.idle_timeout);
    auto [ec] = co_await stream.async_handshake(ssl::stream_base::server, use_tuple);
    if (ec) {
      spdlog::debug("http server: TLS handshake with {} failed: {}", remote, ec.message());
      co_return;
    }
  }

  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(std::min<std::size_t>(
        options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
    parser.body_limit(options.max_body_bytes);
    lowest.expires_after(options.idle_timeout);
    auto [ec, bytes] = co_await http::async_read(stream, buffer, parser, use_tuple);
    if (ec) {
      if (const unsigned status = status_for_read_error(ec); status != 0) {
        co_await reject_request(core, stream, buffer, status, read_error_message(status, ec));
      } else if (ec == http::error::end_of_stream) {
        co_await close_gracefully(stream);
      }
      co_return;
    }

    auto message = parser.release();
    ServerRequest request;
    request.method = std::string(message.method_string());
    request.target = std::string(message.target());
    request.headers.reserve(
        static_cast<std::size_t>(std::distance(message.begin(), message.end())));
    for (const auto& field : message) {
      request.headers.push_back({std::string(field.name_string()), std::string(field.value())});
    }
    request.body = std::move(message.body());
    request.remote_address = remote;

    StreamResponder<Stream> responder{core, stream, timer, message.keep_alive(), message.version()};
    std::optional<std::string> failure;
    try {
      co_await core.handler()(request, responder);
    } catch (const std::exception& e) {
      failure = e.what();
    } catch (...) {
      failure = "unknown exception";
    }
    if (failure) {
      spdlog::warn("http server: handler for {} {} failed: {}", request.method, request.path(),
                   *failure);
    }
    if (!co_await responder.finish(failure)) {
      if (lowest.socket().is_open()) {
        co_await close_gracefully(stream);
      }
      co_return;
    }
  }
}
}  // namespace llmgw::net::detail
