// Stopping the gateway (gateway_impl.hpp): no new connections, in-flight requests drained within
// drain_ms, then what is left cut (node side first, so that streams end with an error record), the
// workers and the control thread stopped.

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <mutex>

#include "gateway_impl.hpp"
#include "gateway_state.hpp"
#include "server/as_tuple.hpp"
#include "stream.hpp"

namespace llmgw::server {

using namespace detail;
using Clock = std::chrono::steady_clock;

void Gateway::Impl::request_stop() {
  if (!running || stop_requested.exchange(true)) {
    return;
  }
  shared.draining.store(true);
  spdlog::info("stopping: no new connections; draining {} in-flight requests (up to {} ms)",
               shared.total_in_flight.load(), shared.current()->config().drain.count());
  for (auto& worker : workers) {
    asio::post(worker->io, [w = worker.get()] {
      beast::error_code ignored;
      if (w->acceptor) {
        w->acceptor->close(ignored);
      }
      if (w->admin_acceptor) {
        w->admin_acceptor->close(ignored);
      }
      // Connections waiting for their next request have nothing in flight: close them now.
      for (auto* connection : w->connections) {
        if (connection->idle) {
          connection->client->socket().cancel(ignored);
        }
      }
    });
  }
  asio::co_spawn(control, drain(), asio::detached);
}

asio::awaitable<void> Gateway::Impl::drain() {
  asio::steady_timer timer(control);
  const auto deadline = Clock::now() + shared.current()->config().drain;
  while (Clock::now() < deadline && shared.client_connections.load() > 0) {
    timer.expires_after(std::chrono::milliseconds{20});
    co_await timer.async_wait(kAsTuple);
  }
  const auto left = shared.client_connections.load();
  if (left > 0) {
    spdlog::warn("drain deadline passed: closing {} connections", left);
  }
  // Phase two: cut what is left, on each worker's own thread. First the node side only, so that
  // each open stream ends with an error record and its terminal chunk (relay.hpp) rather than in
  // the middle of a record; then, after a short grace, every client connection.
  shared.drain_cut.store(true);
  for (auto& worker : workers) {
    asio::post(worker->io, [w = worker.get()] {
      for (auto* connection : w->connections) {
        if (connection->upstream != nullptr) {
          connection->upstream->close();
        }
        if (connection->admission_wait != nullptr) {
          connection->admission_wait->cancel();  // a queued request: 503, shutting down
        }
      }
    });
  }
  const auto cut = Clock::now() + std::chrono::milliseconds{500};
  while (Clock::now() < cut && shared.client_connections.load() > 0) {
    timer.expires_after(std::chrono::milliseconds{10});
    co_await timer.async_wait(kAsTuple);
  }
  for (auto& worker : workers) {
    asio::post(worker->io, [w = worker.get()] {
      for (auto* connection : w->connections) {
        connection->client->close();
      }
    });
  }
  const auto grace = Clock::now() + std::chrono::seconds{2};
  while (Clock::now() < grace && shared.client_connections.load() > 0) {
    timer.expires_after(std::chrono::milliseconds{10});
    co_await timer.async_wait(kAsTuple);
  }
  finish_stop();
}

void Gateway::Impl::finish_stop() {
  for (auto& worker : workers) {
    asio::post(worker->io, [w = worker.get()] {
      w->pool.clear();
      w->io.stop();
    });
  }
  control.stop();
  {
    std::lock_guard lock(stopped_mutex);
    stopped = true;
  }
  stopped_cv.notify_all();
}

void Gateway::Impl::wait() {
  {
    std::unique_lock lock(stopped_mutex);
    stopped_cv.wait(lock, [this] { return stopped; });
  }
  for (auto& worker : workers) {
    if (worker->thread.joinable()) {
      worker->thread.join();
    }
  }
  if (control_thread.joinable() && control_thread.get_id() != std::this_thread::get_id()) {
    control_thread.join();
  }
  if (shared.placement_store) {
    shared.placement_store->stop();  // no answer is posted to a worker's io_context after this
  }
}

}  // namespace llmgw::server
