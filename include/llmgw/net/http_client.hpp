#pragma once

// A blocking HTTP/1.1 client over Beast, for the CLI commands, the benchmark and the tests.
// http:// and https:// (OpenSSL: system CA store, SNI, host name verified). Connections are kept
// alive and reused per origin. Timeouts are enforced on every connect, write and read.
// Not thread-safe: use one client per thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "llmgw/net/http_types.hpp"

namespace llmgw::net {

struct ClientRequest {
  std::string method = "GET";
  std::string url;  // absolute: http[s]://host[:port]/path?query
  HttpHeaders headers;
  std::string body;
};

struct ClientResponse {
  int status = 0;
  HttpHeaders headers;
  std::string body;  // empty when the body went to a callback

  std::optional<std::string_view> header(std::string_view name) const {
    return find_header(headers, name);
  }
};

struct ClientOptions {
  std::chrono::milliseconds connect_timeout{10'000};
  std::chrono::milliseconds read_timeout{120'000};  // idle time allowed between received bytes
  std::string ca_file;                              // extra PEM CA bundle (tests, private CAs)
  bool verify_peer = true;
  std::size_t max_body_bytes = 256 * 1024 * 1024;
  bool keep_alive = true;
};

// A connect failure, a timeout, a TLS failure or a broken connection. The message names the host
// and what failed; it never contains header values or bodies (which may hold secrets).
class TransportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Receives body bytes as they arrive (one call per read); return false to stop reading and close
// the connection.
using BodyCallback = std::function<bool(std::string_view)>;

class HttpClient {
 public:
  explicit HttpClient(ClientOptions options = {});
  ~HttpClient();
  HttpClient(HttpClient&&) noexcept;
  HttpClient& operator=(HttpClient&&) noexcept;

  // Sends the request and returns the response. With on_body, the body is streamed to it instead
  // of being stored. HTTP error statuses are returned, not thrown; TransportError is thrown.
  ClientResponse send(const ClientRequest& request, const BodyCallback& on_body = {});

  // Number of TCP connections this client has opened (to check keep-alive).
  std::uint64_t connections_opened() const noexcept;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace llmgw::net
