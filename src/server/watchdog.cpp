#include "watchdog.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace llmgw::server::detail {

std::shared_ptr<Watchdog> Watchdog::start(asio::io_context& io, ClientConnection& connection) {
  auto watchdog = std::make_shared<Watchdog>(io, connection);
  // The coroutine holds its own reference: it may wake once more after stop().
  asio::co_spawn(
      io, [self = watchdog]() { return self->watch(); },
      [](const std::exception_ptr& error) { log_exception("connection watchdog", error); });
  return watchdog;
}

void Watchdog::arm(Side side, std::chrono::milliseconds timeout) {
  side_ = side;
  expired_ = false;
  deadline_ = timeout.count() > 0 ? Clock::now() + timeout : Clock::time_point::max();
  if (deadline_ < timer_.expiry()) {
    // The watcher sleeps until a later time: wake it so that it waits for this deadline instead.
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
  beast::error_code ignored;
  if (side_ == Side::upstream) {
    if (connection_->upstream != nullptr) {
      connection_->upstream->close(ignored);
    }
  } else {
    connection_->client->close(ignored);
  }
}

asio::awaitable<void> Watchdog::watch() {
  // Woken by the timer (deadline reached or moved) or by a cancel (earlier deadline, or stop).
  while (connection_ != nullptr) {
    if (Clock::now() >= deadline_) {
      expire();
      continue;
    }
    timer_.expires_at(deadline_);
    auto [ec] = co_await timer_.async_wait(asio::as_tuple(asio::use_awaitable));
    (void)ec;  // both outcomes are handled by looking at the deadline again
  }
}

}  // namespace llmgw::server::detail
