#pragma once

// A Redis client for the gateway's shared state (routing.placement_store): hiredis' async API
// driven by Asio on a thread of its own, so the gateway's workers never block on Redis and never
// parse RESP (hiredis does).
//
// Availability is a value the data path reads without waiting: the client is available while it
// has a ready connection (setup commands answered) and no command has waited longer than
// `slow_after` for its answer. A caller that finds it unavailable does not send and does not
// wait; it goes on without Redis. A command unanswered for `drop_after` (a Redis that hangs:
// SIGSTOP, a network partition that drops packets) drops the connection; the client connects
// again with backoff (100 ms doubling to 2 s), and becomes available when the new connection's
// setup commands are answered, or when the late answers arrive on the old one.
//
// Every connection first sends AUTH (when a password is set), SELECT (database != 0) and the
// options' setup commands, in that order; an error reply to any of them drops the connection and
// is logged (without the password). Transitions (available, unavailable) are logged at most once
// per 10 s each, with the number of suppressed ones.
//
// Thread safety: command(), available() and connections() may be called from any thread; the
// callbacks run on the client's thread and must not block. stop() (also run by the destructor)
// joins the thread; callbacks not run by then are destroyed without being called.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace llmgw::net {

struct RedisEndpoint {
  std::string host = "127.0.0.1";
  std::uint16_t port = 6379;
  unsigned database = 0;
  std::string user;      // Redis 6 ACL user; empty: AUTH with the password only
  std::string password;  // empty: no AUTH. Never logged.
};

struct RedisReply {
  enum class Kind : std::uint8_t {
    string,       // a bulk or status string: text
    integer,      // integer
    nil,          // no value
    array,        // elements (strings and integers as text)
    error,        // an error reply from Redis: text
    unavailable,  // no connection, or it was lost before the answer came
  };
  Kind kind = Kind::unavailable;
  std::string text;
  long long integer = 0;
  std::vector<std::string> elements;
};

struct RedisClientOptions {
  RedisEndpoint endpoint;
  std::string name = "redis";  // in log lines ("placement store")
  std::chrono::milliseconds slow_after{20};
  std::chrono::milliseconds drop_after{1'000};
  std::vector<std::vector<std::string>> setup;  // sent on every new connection, after AUTH/SELECT
  // Called on the client's thread whenever availability changes (metrics).
  std::function<void(bool available)> on_availability{};
  // Called on the client's thread each time a connection has become ready (its setup answered).
  std::function<void()> on_ready{};
};

class RedisClient {
 public:
  using Callback = std::function<void(RedisReply)>;

  // Starts the client's thread; the first connection is made in the background.
  explicit RedisClient(RedisClientOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends `args` as one command. `done` gets the reply, or `unavailable` when there is no ready
  // connection or it is lost before the reply.
  void command(std::vector<std::string> args, Callback done);

  bool available() const noexcept;

  // How many connections have become ready so far: a change means a new connection (Redis may
  // have restarted and lost its data).
  std::uint64_t connections() const noexcept;

  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace llmgw::net
