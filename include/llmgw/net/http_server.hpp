#pragma once

// A small coroutine HTTP/1.1 server for the Ollama emulator and the test fakes (GitHub, OpenAI).
// The gateway's own data path does not use it: it has a dedicated relay (llmgw/server/).
//
// Handlers are coroutines that receive the whole request (bodies are small JSON) and answer through
// a ResponseStream, either in one piece or as a chunked stream flushed chunk by chunk.
// Beast stays in the .cpp; only asio's awaitable appears here.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "llmgw/net/http_types.hpp"

namespace llmgw::net {

struct ServerRequest {
  std::string method;  // "GET", "POST", ...
  std::string target;  // path and query as received
  HttpHeaders headers;
  std::string body;
  std::string remote_address;

  std::string_view path() const noexcept { return target_path(target); }
  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
};

// How a handler answers. Every call reports whether the client is still there: false means the
// connection is gone and the handler should stop (and free whatever it holds).
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;

  // A complete response with Content-Length.
  virtual boost::asio::awaitable<bool> respond(int status, HttpHeaders headers,
                                               std::string body) = 0;
  // Starts a chunked response: sends the head now.
  virtual boost::asio::awaitable<bool> begin(int status, HttpHeaders headers) = 0;
  // Sends one chunk and flushes it to the socket before returning.
  virtual boost::asio::awaitable<bool> write(std::string_view chunk) = 0;
  // Ends a chunked response (terminating zero-length chunk).
  virtual boost::asio::awaitable<bool> end() = 0;
  // Closes the connection at once, without finishing the response (fault injection).
  virtual void abort() = 0;
  // Waits on the connection's executor; returns false early if the server is stopping or the
  // client closed its connection (then peer_gone() is true).
  virtual boost::asio::awaitable<bool> sleep(std::chrono::nanoseconds duration) = 0;
  // The client closed its connection while the handler slept.
  virtual bool peer_gone() const { return false; }
};

using Handler = std::function<boost::asio::awaitable<void>(const ServerRequest&, ResponseStream&)>;

struct ServerTlsOptions {
  std::string certificate_chain_file;  // PEM
  std::string private_key_file;        // PEM
};

struct ServerOptions {
  std::string address = "127.0.0.1";
  std::uint16_t port = 0;  // 0 = ephemeral; read port() after start()
  unsigned threads = 1;
  std::size_t max_header_bytes = 64 * 1024;
  std::size_t max_body_bytes = 64 * 1024 * 1024;
  // A connection with no read or write finishing for this long is closed; between requests this
  // is the keep-alive timeout (Go's http.Server IdleTimeout, uvicorn's timeout_keep_alive).
  std::chrono::milliseconds idle_timeout{60'000};
  // Close the connection after each chunked response, while announcing keep-alive, as llama.cpp's
  // server does after streamed responses (for tests of clients' connection reuse).
  bool close_after_streamed_response = false;
  std::optional<ServerTlsOptions> tls;  // serve HTTPS when set
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Handler handler);
  ~HttpServer();  // stops and joins
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds, listens and starts serving on background threads. Throws std::runtime_error with the
  // address when it cannot bind.
  void start();
  // Stops accepting, closes every connection and joins the threads. Idempotent.
  void stop();
  // Blocks until stop() has been called (from another thread or a signal handler).
  void wait();

  std::uint16_t port() const noexcept;
  std::string base_url() const;  // "http://127.0.0.1:PORT" or "https://..."
  std::uint64_t connections_accepted() const noexcept;
  std::uint64_t requests_served() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::net
