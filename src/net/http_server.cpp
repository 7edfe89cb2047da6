#include "llmgw/net/http_server.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>

#include "http_server_connection.hpp"
#include "http_server_core.hpp"
#include "llmgw/net/tls_context.hpp"
#include "llmgw/util/log_exception.hpp"

namespace llmgw::net {
namespace detail {
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
    auto on_done = [](const std::exception_ptr& error) {
      util::log_exception("http server: connection", error);
    };
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
      tls_context_ = make_server_tls_context(options_.tls->certificate_chain_file,
                                             options_.tls->private_key_file);
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
  asio::co_spawn(accept_strand_, accept_loop(), [](const std::exception_ptr& error) {
    util::log_exception("http server: accept loop", error);
  });
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

}  // namespace detail

struct HttpServer::Impl {
  Impl(ServerOptions options, Handler handler) : core(std::move(options), std::move(handler)) {}
  detail::ServerCore core;
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
