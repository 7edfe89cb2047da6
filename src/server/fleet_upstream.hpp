#pragma once

// Internal: the gateway's own requests to its nodes for the fleet endpoints (fleet_endpoints.hpp):
// one request to one node (call_node), and the same request to several nodes at once (fan_out),
// with their records relayed to one coroutine as they arrive.
//
// Bounded: every connect, write and read has its own timeout and the whole call a deadline
// (FleetCallLimits); a response body past max_body_bytes (or an NDJSON record past it) fails the
// node. Cancellable: FleetCancel closes every open connection of a fan-out at once, which is how
// a client that leaves cancels the pulls it started on the nodes.
//
// Lifetimes: fan_out returns only after every node's task ended, so tasks may refer to what the
// caller's frame holds. Thread safety: none; everything runs on the client's worker thread.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/experimental/channel.hpp>
#include <boost/beast/http/verb.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gateway_state.hpp"

namespace llmgw::server::detail {

class UpstreamPool;

struct FleetCallLimits {
  using Clock = std::chrono::steady_clock;
  std::chrono::milliseconds connect{2'000};  // TCP connect
  std::chrono::milliseconds head{2'000};     // request written and response head read
  std::chrono::milliseconds idle{2'000};     // between two reads of the body (0 = no limit)
  Clock::time_point deadline = Clock::time_point::max();  // the whole call
  std::size_t max_body_bytes = 16 * 1024 * 1024;          // a buffered body, or one record
  // The calling worker's keep-alive connections (the proxy path's pool): a call takes a live one
  // when there is one and gives it back after a complete answer. Null: a fresh connection per
  // call, closed after it (the control thread, which has no pool).
  UpstreamPool* pool = nullptr;
  std::chrono::milliseconds pool_idle_age{4'000};  // timeouts.upstream_idle_ms
  std::size_t pool_max_idle = 64;                  // limits.max_idle_upstream_per_node
};

// The connections of one fan-out, closed together by cancel_all().
class FleetCancel {
 public:
  void add(beast::tcp_stream* stream) { open_.push_back(stream); }
  void remove(beast::tcp_stream* stream) noexcept;
  void cancel_all() noexcept;
  bool cancelled() const noexcept { return cancelled_; }

 private:
  std::vector<beast::tcp_stream*> open_;
  bool cancelled_ = false;
};

// One node's answer to a fleet request.
struct NodeAnswer {
  std::string node;
  int status = 0;       // the node's HTTP status; 0 when it gave none (failure says why)
  std::string body;     // the whole body; empty when it was streamed record by record
  std::string failure;  // non-empty: no usable answer ("could not connect ...", "did not ...")
  bool timed_out = false;

  bool answered() const noexcept { return failure.empty() && status != 0; }
  // What went wrong, for a client: the transport failure, else the node's {"error": ...}, else
  // its status.
  std::string problem() const;
};

// Receives one NDJSON record (without its newline); false stops the call.
using RecordSink = std::function<asio::awaitable<bool>(std::string record)>;

// `method target` with `body` (JSON when non-empty) to `node`: on a pooled keep-alive connection
// when limits.pool has one (a pooled connection the node had closed is replaced by a new one,
// once, as on the proxy path), else on a new one; Connection: close without a pool and to an
// https:// node (its own TLS connection, not pooled). The client's
// Authorization header (empty: none) goes with it, so that nodes behind an authenticating proxy
// accept the gateway's fan-out as they accept the client. With a sink, a 200 response's body goes
// to it record by record as it arrives; other bodies are buffered. Never throws.
asio::awaitable<NodeAnswer> call_node(const UpstreamNode& node, beast::http::verb method,
                                      std::string target, std::string body,
                                      std::string authorization, FleetCallLimits limits,
                                      FleetCancel& cancel, RecordSink sink = {});

struct FleetEvent {
  std::size_t index = 0;
  bool done = false;
  std::string record;  // when !done
  NodeAnswer answer;   // when done
};

// The shared state of one fan-out; tasks hold it, so it outlives the caller if need be.
struct FanOut {
  FanOut(const asio::any_io_executor& executor, std::size_t capacity)
      : channel(executor, capacity) {}

  asio::experimental::channel<void(beast::error_code, FleetEvent)> channel;
  FleetCancel cancel;
  bool client_gone = false;
  bool watching = false;  // watch_client's wait is pending
};

// The task of node `index`: usually call_node with the sink it is given.
using NodeTask = std::function<asio::awaitable<NodeAnswer>(std::size_t index, RecordSink sink)>;
// Handles one record of node `index`, in the caller's coroutine (records never interleave).
using RecordHandler = std::function<asio::awaitable<void>(std::size_t index, std::string record)>;

// Runs `task` for indices 0..count-1 concurrently, hands each record to `on_record` as it
// arrives (a slow handler holds the nodes back: the channel is bounded), and returns the answers
// in index order once every task ended.
asio::awaitable<std::vector<NodeAnswer>> fan_out(std::shared_ptr<FanOut> state, std::size_t count,
                                                 NodeTask task, RecordHandler on_record = {});

// Watches `client` while a fan-out runs and nothing is read from it: when the client closes or
// resets its connection, every upstream call of `state` is cancelled and state->client_gone set.
// stop_watching() ends the watch (call it before the next read or write on the client).
void watch_client(Stream& client, const std::shared_ptr<FanOut>& state);
void stop_watching(Stream& client, FanOut& state) noexcept;

}  // namespace llmgw::server::detail
