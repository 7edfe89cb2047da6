#pragma once

// Internal: one connection that is plain TCP or TLS, decided at run time, so that the reader, the
// relay and the attempt stay single functions instead of templates over two stream types.
//
// BasicStream meets Asio's and Beast's stream concepts (AsyncReadStream, AsyncWriteStream,
// SyncReadStream, SyncWriteStream). Each asynchronous call branches once and hands the caller's
// completion handler to the socket or to the ssl::stream as it is (asio::async_initiate): no
// allocation, no type erasure, so the plain path costs what a bare socket costs.
//
// Synchronous calls exist for the non-blocking fast paths (gather_write.hpp write_at_once, the
// request reader's body read): on a plain socket they do the system call; over TLS they answer
// would_block without touching OpenSSL, so those callers take their asynchronous path. (A
// synchronous SSL write on a non-blocking socket could leave a record half sent inside the engine.)
//
// Stream (over tcp::socket) carries client connections and pooled node connections, timed by the
// connection's watchdog; TimedStream (over beast::tcp_stream) carries the gateway's own calls to
// nodes (fleet endpoints, health checks, the catalog, preheats), timed by tcp_stream's expiry.
//
// Thread safety: as the socket's; one worker thread uses a stream.

#include <boost/asio/async_result.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/system/system_error.hpp>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace llmgw::server::detail {

template <class NextLayer>
class BasicStream {
 public:
  using executor_type = typename NextLayer::executor_type;
  using TlsLayer = boost::asio::ssl::stream<NextLayer>;
  using error_code = boost::system::error_code;

  explicit BasicStream(NextLayer plain) : plain_(std::move(plain)) {}
  // TLS over `plain` (connected or not yet); `context` lives as long as the stream.
  BasicStream(NextLayer plain, std::shared_ptr<boost::asio::ssl::context> context)
      : plain_(plain.get_executor()),
        context_(std::move(context)),
        tls_(std::make_unique<TlsLayer>(std::move(plain), *context_)) {}

  bool is_tls() const noexcept { return tls_ != nullptr; }
  TlsLayer& tls() noexcept { return *tls_; }
  NextLayer& next_layer() noexcept { return tls_ ? tls_->next_layer() : plain_; }
  boost::asio::ip::tcp::socket& socket() noexcept {
    if constexpr (std::is_same_v<NextLayer, boost::asio::ip::tcp::socket>) {
      return next_layer();
    } else {
      return next_layer().socket();
    }
  }
  executor_type get_executor() noexcept { return next_layer().get_executor(); }

  // Closes the socket (pending operations end with an error). Never throws.
  void close() noexcept {
    error_code ignored;
    socket().close(ignored);
  }

  // A TLS client connection to `host`: SNI (for a name, not an address), and the peer's
  // certificate must name `host` (a DNS name or an IP address) unless `verify` is false.
  // Returns false when OpenSSL refuses the name.
  bool prepare_client(const std::string& host, bool verify);

  template <class MutableBuffers, class Token>
  auto async_read_some(const MutableBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const MutableBuffers& target) {
          if (tls_) {
            tls_->async_read_some(target, std::move(handler));
          } else {
            plain_.async_read_some(target, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class ConstBuffers, class Token>
  auto async_write_some(const ConstBuffers& buffers, Token&& token) {
    return boost::asio::async_initiate<Token, void(error_code, std::size_t)>(
        [this](auto handler, const ConstBuffers& source) {
          if (tls_) {
            tls_->async_write_some(source, std::move(handler));
          } else {
            plain_.async_write_some(source, std::move(handler));
          }
        },
        token, buffers);
  }

  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers, error_code& ec) {
    if (tls_) {
      ec = boost::asio::error::would_block;
      return 0;
    }
    return plain_.read_some(buffers, ec);
  }
  template <class MutableBuffers>
  std::size_t read_some(const MutableBuffers& buffers) {
    error_code ec;
    const auto n = read_some(buffers, ec);
    if (ec) {
      throw boost::system::system_error(ec);
    }
    return n;
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers, error_code& ec) {
    if (tls_) {
      ec = boost::asio::error::would_block;
      return 0;
    }
    return plain_.write_some(buffers, ec);
  }
  template <class ConstBuffers>
  std::size_t write_some(const ConstBuffers& buffers) {
    error_code ec;
    const auto n = write_some(buffers, ec);
    if (ec) {
      throw boost::system::system_error(ec);
    }
    return n;
  }

 private:
  NextLayer plain_;  // the connection when plain; an unused closed socket under TLS
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::unique_ptr<TlsLayer> tls_;
};

using Stream = BasicStream<boost::asio::ip::tcp::socket>;
using TimedStream = BasicStream<boost::beast::tcp_stream>;

extern template class BasicStream<boost::asio::ip::tcp::socket>;
extern template class BasicStream<boost::beast::tcp_stream>;

// After a socket nobody was reading turned readable (the watch of a client while its request
// waits on a node): whether the peer has left. A plain peer has left when a peek finds the end of
// the stream or an error; one that sent bytes (a pipelined request) has not. Over TLS a peer that
// closes sends a close_notify alert first, so bytes alone prove nothing: a peer has left when
// what waits is the end of the stream or exactly one record too short to carry anything but an
// alert (TLS 1.2: content type 21; TLS 1.3 hides the type, and an alert is 19 bytes of record
// payload with AES-GCM or ChaCha20, against 22 for the shortest handshake message, KeyUpdate).
bool peer_has_left(int native_socket, bool tls) noexcept;

// The reason a TLS handshake failed, for a log line or an error body: the certificate check's
// verdict when there was one ("certificate verify failed: unable to get local issuer
// certificate", "... does not match the host name"), else the error's message.
std::string describe_handshake_failure(Stream::TlsLayer& tls, const boost::system::error_code& ec);
std::string describe_handshake_failure(TimedStream::TlsLayer& tls,
                                       const boost::system::error_code& ec);

}  // namespace llmgw::server::detail
