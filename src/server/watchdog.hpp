#pragma once

// Internal: the timeouts of one client connection, enforced by one timer instead of one timer wait
// per socket operation.
//
// Why: beast::tcp_stream with expires_after() starts a timer wait for every read and write and
// cancels it when the operation completes. On the short-request path that is five timer waits per
// request, each an extra queued handler (the cancelled wait), and whenever the new wait is the
// earliest one on the worker (always, with one busy connection) a timerfd_settime system call:
// strace showed 5 of them per proxied GET, next to 3 sendmsg and 2 recvmsg.
//
// The watchdog keeps a deadline and one timer per client connection. Arming it only stores the
// new deadline unless that deadline is earlier than the time the timer is already set for; the
// timer then wakes the watcher, which either finds the deadline passed (and closes the stream it
// guards, as tcp_stream does on a timeout) or waits again for the later deadline. Worked example
// with the defaults (client_header 30 s, first_byte 300 s, idle 120 s): the timer is set once for
// t0 + 30 s; every request in the next 30 s only moves the deadline; at t0 + 30 s the watcher finds
// the deadline later and re-arms once. A shorter timeout than the timer's (a test's 300 ms
// first_byte) cancels the wait so that it fires on time.
//
// Thread safety: none; everything runs on the connection's worker thread.

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>

#include "gateway_state.hpp"

namespace llmgw::server::detail {

class Watchdog : public std::enable_shared_from_this<Watchdog> {
 public:
  enum class Side { client, upstream };

  // Starts watching `connection` (its client stream, and its upstream stream while one is set).
  // The connection must call stop() before it goes away.
  static std::shared_ptr<Watchdog> start(asio::io_context& io, ClientConnection& connection);

  explicit Watchdog(asio::io_context& io, ClientConnection& connection)
      : timer_(io), connection_(&connection) {}

  // The operation about to start on `side` must finish within `timeout` (0 = no limit), else that
  // side's stream is closed and expired() turns true. Clears a previous expiry.
  void arm(Side side, std::chrono::milliseconds timeout);
  // No limit until the next arm(): for waits that have their own timeout (connect).
  void disarm() noexcept;
  // The last armed deadline passed and the guarded stream was closed.
  bool expired() const noexcept { return expired_; }
  // Ends the watch; the connection is never touched again.
  void stop() noexcept;

  // Watches the client socket while the request waits on the node or in a node's admission queue
  // (no read is pending on the client then): when the client closes its side or resets, the
  // upstream stream is closed at once, which cancels the generation on the node, the admission
  // wait's timer (ClientConnection::admission_wait) is cancelled, which takes the request out of
  // the queue, and client_gone() turns true. A client that
  // sends more bytes (a pipelined request) is not gone; the watch then ends. Cost: one queued
  // wait and its cancellation per request, no system call while nothing happens.
  void watch_client();
  // Ends the client watch (the response head is about to be written).
  void unwatch_client() noexcept;
  bool client_gone() const noexcept { return client_gone_; }

 private:
  using Clock = std::chrono::steady_clock;

  void wait();
  void on_wake();
  void expire() noexcept;
  void on_client_readable(const beast::error_code& ec, std::uint64_t id);

  asio::steady_timer timer_;
  ClientConnection* connection_;
  Clock::time_point deadline_ = Clock::time_point::max();
  Side side_ = Side::client;
  bool expired_ = false;
  bool watching_client_ = false;
  std::uint64_t watch_id_ = 0;
  bool client_gone_ = false;
};

// While a request waits in the gateway (a node's admission queue, a preheat it waits for), no
// read is pending on the client: the client is watched (Watchdog::watch_client), and one that
// leaves cancels `timer`, which wakes the wait. Both end when this is destroyed.
class WaitWatch {
 public:
  WaitWatch(ClientConnection& connection, asio::steady_timer& timer);
  ~WaitWatch();
  WaitWatch(const WaitWatch&) = delete;
  WaitWatch& operator=(const WaitWatch&) = delete;

 private:
  ClientConnection& connection_;
};

}  // namespace llmgw::server::detail
