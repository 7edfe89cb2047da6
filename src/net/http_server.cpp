#include "llmgw/net/http_server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <vector>

namespace llmgw::net {
namespace {

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

std::string json_error(std::string_view message) {
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
  std::optional<ssl::context> tls_context_;
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

void log_exception(std::string_view what, std::exception_ptr error) {
  if (!error) {
    return;
  }
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    spdlog::error("http server: {} failed: {}", what, e.what());
  } catch (...) {
    spdlog::error("http server: {} failed with an unknown exception", what);
  }
}

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
    http::response<http::string_body> response{http::status::ok, version_};
    response.result(static_cast<unsigned>(status));
    for (auto& header : headers) {
      response.insert(header.name, header.value);
    }
    response.keep_alive(keep_alive_);
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
    http::response<http::empty_body> response{http::status::ok, version_};
    response.result(static_cast<unsigned>(status));
    for (auto& header : headers) {
      response.insert(header.name, header.value);
    }
    response.keep_alive(keep_alive_);
    response.chunked(true);
    http::response_serializer<http::empty_body> serializer{response};
    state_ = State::kBroken;
    beast::get_lowest_layer(stream_).expires_after(core_.options().idle_timeout);
    auto [ec, bytes] = co_await http::async_write_header(stream_, serializer, use_tuple);
    if (ec) {
      co_return false;
    }
    state_ = State::kStreaming;
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

  asio::awaitable<bool> sleep(std::chrono::nanoseconds duration) override {
    if (core_.stopping()) {
      co_return false;
    }
    timer_.expires_after(duration);
    auto [ec] = co_await timer_.async_wait(use_tuple);
    co_return !ec && !core_.stopping();
  }

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
    co_return state_ == State::kComplete&& keep_alive_;
  }

 private:
  ServerCore& core_;
  Stream& stream_;
  asio::steady_timer& timer_;
  bool keep_alive_;
  unsigned version_;
  State state_ = State::kNothingSent;
};

// The status to answer a request that could not be read with, or 0 to close without answering.
unsigned status_for_read_error(const boost::system::error_code& ec) {
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

std::string read_error_message(unsigned status, const boost::system::error_code& ec) {
  switch (status) {
    case 431:
      return "request header fields too large";
    case 413:
      return "request body too large";
    default:
      return "malformed request: " + ec.message();
  }
}

asio::awaitable<void> close_gracefully(beast::tcp_stream& stream) {
  boost::system::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  co_return;
}

asio::awaitable<void> close_gracefully(TlsStream& stream) {
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

std::shared_ptr<ConnectionControl> ServerCore::register_connection(beast::tcp_stream& stream,
                                                                   asio::steady_timer& timer) {
  auto control = std::make_shared<ConnectionControl>();
  control->executor = stream.get_executor();
  control->tcp = &stream;
  control->timer = &timer;
  std::lock_guard lock{mutex_};
  if (stop_requested_) {
    return nullptr;
  }
  connections_.emplace(control.get(), control);
  return control;
}

void ServerCore::unregister_connection(const std::shared_ptr<ConnectionControl>& control) {
  control->alive = false;
  {
    std::lock_guard lock{mutex_};
    connections_.erase(control.get());
  }
  state_changed_.notify_all();
}

void ServerCore::mark_accept_done() {
  {
    std::lock_guard lock{mutex_};
    accept_done_ = true;
  }
  state_changed_.notify_all();
}

asio::awaitable<void> ServerCore::accept_loop() {
  asio::steady_timer backoff{ioc_};
  for (;;) {
    auto [ec, socket] = co_await acceptor_.async_accept(asio::make_strand(ioc_), use_tuple);
    if (stopping_ || ec == asio::error::operation_aborted) {
      break;
    }
    if (ec) {
      // Typically EMFILE: back off instead of spinning until a descriptor frees up.
      spdlog::warn("http server: accept failed: {}", ec.message());
      backoff.expires_after(std::chrono::milliseconds{100});
      co_await backoff.async_wait(use_tuple);
      continue;
    }
    accepted_.fetch_add(1);
    boost::system::error_code endpoint_ec;
    const auto endpoint = socket.remote_endpoint(endpoint_ec);
    std::string remote = endpoint_ec ? std::string() : endpoint.address().to_string();
    socket.set_option(tcp::no_delay(true), endpoint_ec);
    auto executor = socket.get_executor();
    auto on_done = [](std::exception_ptr error) { log_exception("connection", error); };
    if (tls_context_) {
      asio::co_spawn(
          executor,
          serve_connection(*this, TlsStream(std::move(socket), *tls_context_), std::move(remote)),
          on_done);
    } else {
      asio::co_spawn(
          executor,
          serve_connection(*this, beast::tcp_stream(std::move(socket)), std::move(remote)),
          on_done);
    }
  }
  mark_accept_done();
}

void ServerCore::start() {
  if (!threads_.empty() || stop_requested_) {
    throw std::logic_error("HttpServer::start called twice");
  }
  const std::string where = options_.address + ":" + std::to_string(options_.port);
  try {
    if (options_.tls) {
      tls_context_.emplace(ssl::context::tls_server);
      tls_context_->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                ssl::context::no_tlsv1_1);
      tls_context_->use_certificate_chain_file(options_.tls->certificate_chain_file);
      tls_context_->use_private_key_file(options_.tls->private_key_file, ssl::context::pem);
    }
    const tcp::endpoint endpoint{asio::ip::make_address(options_.address), options_.port};
    acceptor_.open(endpoint.protocol());
    acceptor_.set_option(asio::socket_base::reuse_address(true));
    acceptor_.bind(endpoint);
    acceptor_.listen(asio::socket_base::max_listen_connections);
    port_ = acceptor_.local_endpoint().port();
  } catch (const boost::system::system_error& e) {
    throw std::runtime_error("http server: cannot listen on " + where + ": " + e.what());
  }
  {
    std::lock_guard lock{mutex_};
    accept_done_ = false;
  }
  asio::co_spawn(accept_strand_, accept_loop(),
                 [](std::exception_ptr error) { log_exception("accept loop", error); });
  const unsigned count = std::max(1U, options_.threads);
  threads_.reserve(count);
  for (unsigned i = 0; i < count; ++i) {
    threads_.emplace_back([this] {
      try {
        ioc_.run();
      } catch (const std::exception& e) {
        spdlog::error("http server: io thread stopped: {}", e.what());
      }
    });
    thread_ids_.push_back(threads_.back().get_id());
  }
}

void ServerCore::stop() {
  std::vector<std::shared_ptr<ConnectionControl>> to_close;
  bool first = false;
  {
    std::lock_guard lock{mutex_};
    if (!stop_requested_) {
      stop_requested_ = true;
      first = true;
      for (const auto& [key, control] : connections_) {
        to_close.push_back(control);
      }
    }
  }
  if (first) {
    stopping_ = true;
    asio::post(accept_strand_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
    for (const auto& control : to_close) {
      asio::post(control->executor, [control] {
        if (control->alive) {
          control->tcp->close();
          control->timer->cancel();
        }
      });
    }
    state_changed_.notify_all();
  }

  // A handler may call stop() from an io thread: it cannot join itself, so the destructor (or
  // another stop() from outside) does the joining.
  const auto self = std::this_thread::get_id();
  if (std::find(thread_ids_.begin(), thread_ids_.end(), self) != thread_ids_.end()) {
    return;
  }
  std::lock_guard join_lock{join_mutex_};
  {
    std::unique_lock lock{mutex_};
    const bool drained = state_changed_.wait_for(
        lock, kStopGrace, [this] { return connections_.empty() && accept_done_; });
    if (!drained) {
      spdlog::warn("http server: connections still busy after {} s; stopping forcefully",
                   kStopGrace.count());
    }
  }
  ioc_.stop();
  for (auto& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

void ServerCore::wait() {
  std::unique_lock lock{mutex_};
  state_changed_.wait(lock, [this] { return stop_requested_; });
}

std::string ServerCore::base_url() const {
  std::string host = options_.address;
  if (host == "0.0.0.0") {
    host = "127.0.0.1";
  } else if (host == "::") {
    host = "[::1]";
  } else if (host.find(':') != std::string::npos) {
    host = "[" + host + "]";
  }
  return (options_.tls ? "https://" : "http://") + host + ":" + std::to_string(port_);
}

}  // namespace

struct HttpServer::Impl {
  Impl(ServerOptions options, Handler handler) : core(std::move(options), std::move(handler)) {}
  ServerCore core;
};

HttpServer::HttpServer(ServerOptions options, Handler handler)
    : impl_(std::make_unique<Impl>(std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  impl_->core.start();
}
void HttpServer::stop() {
  impl_->core.stop();
}
void HttpServer::wait() {
  impl_->core.wait();
}
std::uint16_t HttpServer::port() const noexcept {
  return impl_->core.port();
}
std::string HttpServer::base_url() const {
  return impl_->core.base_url();
}
std::uint64_t HttpServer::connections_accepted() const noexcept {
  return impl_->core.connections_accepted();
}
std::uint64_t HttpServer::requests_served() const noexcept {
  return impl_->core.requests_served();
}

}  // namespace llmgw::net
