#pragma once

// Internal to http_server.cpp (its only includer): the server's shared state (ServerCore) and what
// every connection needs of it. The connection coroutine is in http_server_connection.hpp, the
// accept loop and the lifecycle in http_server.cpp.

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "llmgw/net/http_server.hpp"

namespace llmgw::net::detail {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// How long a closing connection may take to drain what the peer still sends after an error answer,
// and how much of it we are willing to read. Without the drain, closing a socket with unread
// request bytes makes the kernel send RST, and the peer may lose the error answer we just wrote.
constexpr std::chrono::seconds kLingerTimeout{1};
constexpr std::size_t kLingerMaxBytes = 1024 * 1024;
// How long stop() lets connections finish after closing them before it stops the io_context.
constexpr std::chrono::seconds kStopGrace{3};

inline std::string json_error(std::string_view message) {
  return nlohmann::json{{"error", message}}.dump();
}

// What stop() needs to reach a live connection. The pointers are owned by the connection's
// coroutine; `alive` is read and written only on the connection's strand, so a posted close never
// touches a finished connection.
struct ConnectionControl {
  asio::any_io_executor executor;
  beast::tcp_stream* tcp = nullptr;
  asio::steady_timer* timer = nullptr;
  bool alive = true;
};

class ServerCore {
 public:
  ServerCore(ServerOptions options, Handler handler)
      : options_(std::move(options)),
        handler_(std::move(handler)),
        ioc_(static_cast<int>(std::max(1U, options_.threads))) {}

  ~ServerCore() { stop(); }

  void start();
  void stop();
  void wait();

  std::uint16_t port() const noexcept { return port_; }
  std::string base_url() const;
  std::uint64_t connections_accepted() const noexcept { return accepted_.load(); }
  std::uint64_t requests_served() const noexcept { return served_.load(); }

  const ServerOptions& options() const noexcept { return options_; }
  const Handler& handler() const noexcept { return handler_; }
  bool stopping() const noexcept { return stopping_.load(); }
  void count_request() noexcept { served_.fetch_add(1); }

  // Returns nullptr when the server is already stopping (the connection should close at once).
  std::shared_ptr<ConnectionControl> register_connection(beast::tcp_stream& stream,
                                                         asio::steady_timer& timer);
  // Called on the connection's strand when its coroutine ends.
  void unregister_connection(const std::shared_ptr<ConnectionControl>& control);

 private:
  asio::awaitable<void> accept_loop();
  void mark_accept_done();

  ServerOptions options_;
  Handler handler_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::uint64_t> accepted_{0};
  std::atomic<std::uint64_t> served_{0};

  std::mutex mutex_;
  std::condition_variable state_changed_;
  bool stop_requested_ = false;  // guarded by mutex_
  bool accept_done_ = true;      // guarded by mutex_
  std::unordered_map<ConnectionControl*, std::shared_ptr<ConnectionControl>> connections_;
  std::mutex join_mutex_;  // serialises joining when stop() races with the destructor

  std::uint16_t port_ = 0;
  std::shared_ptr<ssl::context> tls_context_;  // net/tls_context.hpp
  std::vector<std::thread::id> thread_ids_;
  // Declared after everything a coroutine frame touches: frames still pending when the io_context
  // is destroyed are destroyed with it and unregister themselves.
  asio::io_context ioc_;
  // The accept loop and the close in stop() run here: an acceptor is not safe to share between
  // threads.
  asio::strand<asio::io_context::executor_type> accept_strand_{asio::make_strand(ioc_)};
  tcp::acceptor acceptor_{ioc_};
  std::vector<std::thread> threads_;
};

}  // namespace llmgw::net::detail
