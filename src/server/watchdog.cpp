#include "watchdog.hpp"

#include <utility>

#include "stream.hpp"

namespace llmgw::server::detail {

std::shared_ptr<Watchdog> Watchdog::start(asio::io_context& io, ClientConnection& connection) {
  auto watchdog = std::make_shared<Watchdog>(io, connection);
  watchdog->wait();
  return watchdog;
}

void Watchdog::arm(Side side, std::chrono::milliseconds timeout) {
  side_ = side;
  expired_ = false;
  deadline_ = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
  if (deadline_ < timer_.expiry()) {
    // The timer is set for a later time: wake the watch so that it waits for this deadline.
    timer_.cancel();
  }
}

void Watchdog::disarm() noexcept {
  deadline_ = Clock::time_point::max();
}

void Watchdog::stop() noexcept {
  connection_ = nullptr;
  deadline_ = Clock::time_point::max();
  timer_.cancel();
}

void Watchdog::expire() noexcept {
  expired_ = true;
  deadline_ = Clock::time_point::max();
  if (side_ == Side::upstream) {
    if (connection_->upstream != nullptr) {
      connection_->upstream->close();
    }
  } else {
    connection_->client->close();
  }
}

void Watchdog::wait() {
  timer_.expires_at(deadline_);
  // A plain handler, not a coroutine: a few hundred bytes less per open connection. The handler
  // holds a reference, so a wake after stop() finds the object alive (and does nothing).
  timer_.async_wait([self = shared_from_this()](const beast::error_code&) { self->on_wake(); });
}

void Watchdog::on_wake() {
  // Woken by the timer (deadline reached or moved later) or by a cancel (an earlier deadline, or
  // stop): both are settled by looking at the deadline again.
  if (connection_ == nullptr) {
    return;
  }
  if (Clock::now() >= deadline_) {
    expire();
  }
  wait();
}

void Watchdog::watch_client() {
  client_gone_ = false;
  if (connection_ == nullptr || watching_client_) {
    return;
  }
  watching_client_ = true;
  connection_->client->socket().async_wait(
      tcp::socket::wait_read,
      [self = shared_from_this(), id = ++watch_id_](const beast::error_code& ec) {
        self->on_client_readable(ec, id);
      });
}

void Watchdog::unwatch_client() noexcept {
  if (watching_client_ && connection_ != nullptr) {
    watching_client_ = false;
    beast::error_code ignored;
    connection_->client->socket().cancel(ignored);  // only the wait is pending on the client
  }
}

void Watchdog::on_client_readable(const beast::error_code& ec, std::uint64_t id) {
  // A wait cancelled by unwatch_client may complete after the next watch began: only the
  // current watch's completion counts.
  if (id != watch_id_ || !watching_client_ || connection_ == nullptr) {
    return;
  }
  watching_client_ = false;
  if (ec) {
    return;  // the connection ended
  }
  // Readable: either the client closed or it sent more (stream.hpp's peer_has_left).
  if (!peer_has_left(connection_->client->socket().native_handle(),
                     connection_->client->is_tls())) {
    return;
  }
  client_gone_ = true;
  if (connection_->upstream != nullptr) {
    connection_->upstream->close();
  }
  if (connection_->admission_wait != nullptr) {
    connection_->admission_wait->cancel();  // wakes the request waiting in a node's queue
  }
}

WaitWatch::WaitWatch(ClientConnection& connection, asio::steady_timer& timer)
    : connection_(connection) {
  connection.watchdog->disarm();
  connection.watchdog->watch_client();
  connection.admission_wait = &timer;
}

WaitWatch::~WaitWatch() {
  connection_.admission_wait = nullptr;
  connection_.watchdog->unwatch_client();
}

}  // namespace llmgw::server::detail
