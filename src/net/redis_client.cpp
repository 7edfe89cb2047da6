// hiredis' async API on an Asio io_context of its own (redis_client.hpp). hiredis owns the socket
// and the protocol; Asio only tells it when the descriptor is readable or writable, through the
// five event hooks hiredis asks an event library for (addRead, delRead, addWrite, delWrite,
// cleanup), as hiredis' own libevent and libuv adapters do.
//
// Lifetimes. A Connection wraps one redisAsyncContext. hiredis frees the context itself on an
// error or when asked (redisAsyncFree); it then calls every pending reply callback with no reply,
// the cleanup hook (after which the context must not be used) and the disconnect callback. A
// Connection is therefore never destroyed inside a hiredis callback: the one that is lost is
// released by a handler posted to the io_context.

#include "llmgw/net/redis_client.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <optional>
#include <thread>

namespace llmgw::net {
namespace {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kFirstBackoff{100};
constexpr milliseconds kMaxBackoff{2'000};
constexpr auto kLogInterval = std::chrono::seconds{10};

RedisReply convert(const redisReply& reply) {
  RedisReply out;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      out.kind = RedisReply::Kind::string;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_INTEGER:
      out.kind = RedisReply::Kind::integer;
      out.integer = reply.integer;
      break;
    case REDIS_REPLY_ERROR:
      out.kind = RedisReply::Kind::error;
      out.text.assign(reply.str, reply.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.kind = RedisReply::Kind::array;
      for (std::size_t i = 0; i < reply.elements; ++i) {
        const redisReply& element = *reply.element[i];
        out.elements.push_back(element.type == REDIS_REPLY_INTEGER ? std::to_string(element.integer)
                               : element.str != nullptr ? std::string(element.str, element.len)
                                                        : std::string{});
      }
      break;
    default:
      out.kind = RedisReply::Kind::nil;
      break;
  }
  return out;
}

}  // namespace

struct RedisClient::Impl : std::enable_shared_from_this<RedisClient::Impl> {
  struct Connection;

  // A command's callback, handed to hiredis as privdata.
  struct Call {
    Impl* client;
    Callback done;
    bool setup = false;  // AUTH, SELECT or a setup command: an error drops the connection
    bool last_setup = false;
  };

  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(Impl& owner, redisAsyncContext* context)
        : client(owner), ctx(context), fd(owner.io, context->c.fd) {}

    void arm(bool read) {
      bool& waiting = read ? reading : writing;
      if (closed || waiting || !(read ? want_read : want_write)) {
        return;
      }
      waiting = true;
      fd.async_wait(read ? asio::posix::stream_descriptor::wait_read
                         : asio::posix::stream_descriptor::wait_write,
                    [self = shared_from_this(), read](const boost::system::error_code& ec) {
                      (read ? self->reading : self->writing) = false;
                      if (ec || self->closed || !(read ? self->want_read : self->want_write)) {
                        return;
                      }
                      if (read) {
                        redisAsyncHandleRead(self->ctx);
                      } else {
                        redisAsyncHandleWrite(self->ctx);
                      }
                      self->arm(read);
                    });
    }

    Impl& client;
    redisAsyncContext* ctx;  // null once hiredis cleaned it up
    asio::posix::stream_descriptor fd;
    bool want_read = false;
    bool want_write = false;
    bool reading = false;
    bool writing = false;
    bool closed = false;
    bool ready = false;
    std::deque<Clock::time_point> sent;  // when each unanswered command was sent, oldest first
  };

  explicit Impl(RedisClientOptions client_options)
      : options(std::move(client_options)), watchdog(io), reconnect_timer(io) {}

  // --- hiredis hooks (all on the client's thread) ----------------------------------------------

  static Connection& of(void* data) { return *static_cast<Connection*>(data); }
  static void add_read(void* data) {
    of(data).want_read = true;
    of(data).arm(true);
  }
  static void del_read(void* data) { of(data).want_read = false; }
  static void add_write(void* data) {
    of(data).want_write = true;
    of(data).arm(false);
  }
  static void del_write(void* data) { of(data).want_write = false; }
  static void cleanup(void* data) {
    Connection& connection = of(data);
    connection.closed = true;
    connection.ctx = nullptr;
    connection.fd.release();  // hiredis closes the descriptor; pending waits end as aborted
  }
  static void on_connect(const redisAsyncContext* context, int status) {
    if (status != REDIS_OK) {
      Connection& connection = of(context->data);
      connection.client.lost(connection, context->errstr);
    }
  }
  static void on_disconnect(const redisAsyncContext* context, int status) {
    Connection& connection = of(context->data);
    connection.client.lost(connection, status == REDIS_OK ? "closed" : context->errstr);
  }
  static void on_reply(redisAsyncContext* context, void* reply, void* privdata) {
    std::unique_ptr<Call> call(static_cast<Call*>(privdata));
    Connection& connection = of(context->data);
    if (!connection.sent.empty()) {
      connection.sent.pop_front();
    }
    Impl& client = *call->client;
    if (reply == nullptr) {
      if (!client.stopping && call->done) {
        call->done(RedisReply{});
      }
      return;
    }
    RedisReply converted = convert(*static_cast<redisReply*>(reply));
    if (call->setup) {
      client.setup_answered(connection, converted, call->last_setup);
    } else {
      client.refresh();
      if (call->done) {
        call->done(std::move(converted));
      }
    }
  }

  // --- connection management ------------------------------------------------------------------

  void connect() {
    if (stopping) {
      return;
    }
    const auto& endpoint = options.endpoint;
    redisAsyncContext* context = redisAsyncConnect(endpoint.host.c_str(), endpoint.port);
    if (context == nullptr || context->err != 0) {
      const std::string reason = context != nullptr ? context->errstr : "out of memory";
      if (context != nullptr) {
        redisAsyncFree(context);
      }
      note_down("cannot connect: " + reason);
      schedule_reconnect();
      return;
    }
    auto connection = std::make_shared<Connection>(*this, context);
    context->data = connection.get();
    context->ev.data = connection.get();
    context->ev.addRead = add_read;
    context->ev.delRead = del_read;
    context->ev.addWrite = add_write;
    context->ev.delWrite = del_write;
    context->ev.cleanup = cleanup;
    redisAsyncSetConnectCallback(context, on_connect);
    redisAsyncSetDisconnectCallback(context, on_disconnect);
    current = connection;

    std::vector<std::vector<std::string>> setup;
    if (!endpoint.password.empty()) {
      setup.push_back(endpoint.user.empty()
                          ? std::vector<std::string>{"AUTH", endpoint.password}
                          : std::vector<std::string>{"AUTH", endpoint.user, endpoint.password});
    }
    if (endpoint.database != 0) {
      setup.push_back({"SELECT", std::to_string(endpoint.database)});
    }
    setup.insert(setup.end(), options.setup.begin(), options.setup.end());
    setup.push_back({"PING"});  // so that there is always a last setup answer to wait for
    for (std::size_t i = 0; i < setup.size(); ++i) {
      issue(*connection, setup[i],
            std::make_unique<Call>(Call{this, {}, true, i + 1 == setup.size()}));
    }
  }

  void issue(Connection& connection, const std::vector<std::string>& args,
             std::unique_ptr<Call> call) {
    std::vector<const char*> argv;
    std::vector<std::size_t> lengths;
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    Call* raw = call.release();
    if (connection.ctx == nullptr ||
        redisAsyncCommandArgv(connection.ctx, on_reply, raw, static_cast<int>(argv.size()),
                              argv.data(), lengths.data()) != REDIS_OK) {
      std::unique_ptr<Call> failed(raw);
      if (failed->done) {
        failed->done(RedisReply{});
      }
      return;
    }
    connection.sent.push_back(Clock::now());
    arm_watchdog();
  }

  void setup_answered(Connection& connection, const RedisReply& reply, bool last) {
    if (reply.kind == RedisReply::Kind::error) {
      // Redis' own message (e.g. WRONGPASS ...) never repeats the password.
      drop(connection, "refused a setup command: " + reply.text);
      return;
    }
    if (last) {
      connection.ready = true;
      backoff = kFirstBackoff;
      connections.fetch_add(1, std::memory_order_relaxed);
      refresh();
      if (options.on_ready) {
        options.on_ready();
      }
    }
  }

  // The connection is gone (hiredis freed its context or is freeing it now).
  void lost(Connection& connection, const std::string& reason) {
    if (current.get() != &connection) {
      return;
    }
    asio::post(io, [dead = std::move(current)] {});  // destroyed outside hiredis' callbacks
    if (!stopping) {
      note_down(reason);
      schedule_reconnect();
    }
  }

  void drop(Connection& connection, const std::string& reason) {
    if (connection.ctx == nullptr) {
      return;
    }
    const auto keep = connection.shared_from_this();
    note_down(reason);
    asio::post(io, [this, keep] {
      if (keep->ctx != nullptr) {
        redisAsyncFree(keep->ctx);  // calls lost() through on_disconnect when it was connected
      }
      lost(*keep, "dropped");
    });
  }

  void schedule_reconnect() {
    reconnect_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
    reconnect_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (const auto self = weak.lock(); self && !ec && !self->current) {
        self->connect();
      }
    });
  }

  // --- availability ---------------------------------------------------------------------------

  void arm_watchdog() {
    if (watchdog_armed || stopping) {
      return;
    }
    watchdog_armed = true;
    const auto tick = std::clamp(options.slow_after / 2, milliseconds{2}, milliseconds{100});
    watchdog.expires_after(tick);
    watchdog.async_wait([this](const boost::system::error_code& ec) {
      watchdog_armed = false;
      if (ec || stopping) {
        return;
      }
      if (current && !current->sent.empty()) {
        const auto waited = Clock::now() - current->sent.front();
        if (waited >= options.drop_after) {
          drop(*current, "no answer for " + std::to_string(options.drop_after.count()) + " ms");
        }
      }
      refresh();
      if ((current && !current->sent.empty()) || log_pending) {
        arm_watchdog();
      }
    });
  }

  void refresh() {
    const auto now = Clock::now();
    const bool up = current && current->ready &&
                    (current->sent.empty() || now - current->sent.front() < options.slow_after);
    // The first outcome (ready, or a failure with its reason) is logged even though the client
    // started unavailable: a store that is down from the start must say so.
    const bool first_outcome = !decided && (up || !down_reason.empty());
    if (up != available.load(std::memory_order_relaxed) || first_outcome) {
      decided = true;
      available.store(up, std::memory_order_relaxed);
      if (!up && down_reason.empty()) {
        down_reason = "no answer within " + std::to_string(options.slow_after.count()) + " ms";
      }
      ++transitions;
      log_pending = true;
      if (options.on_availability) {
        options.on_availability(up);
      }
    }
    if (up) {
      down_reason.clear();
    }
    log_state(now);
  }

  void note_down(std::string reason) {
    if (down_reason.empty()) {
      down_reason = std::move(reason);
    }
    refresh();
  }

  // At most one line per kLogInterval; a change within it is logged when the interval ends (the
  // watchdog keeps running while one is pending), so the log always ends on the current state.
  void log_state(Clock::time_point now) {
    if (!log_pending || now - last_log < kLogInterval) {
      if (log_pending) {
        arm_watchdog();
      }
      return;
    }
    log_pending = false;
    last_log = now;
    const std::string more =
        transitions > 1 ? " (" + std::to_string(transitions) + " changes since the last line)" : "";
    transitions = 0;
    if (available.load(std::memory_order_relaxed)) {
      spdlog::info("{} available{}", options.name, more);
    } else {
      spdlog::warn("{} unavailable: {}{}; requests go on without it", options.name,
                   down_reason.empty() ? std::string{"not connected"} : down_reason, more);
    }
  }

  RedisClientOptions options;
  asio::io_context io{1};
  asio::steady_timer watchdog;
  asio::steady_timer reconnect_timer;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> guard;
  std::thread thread;
  std::shared_ptr<Connection> current;
  milliseconds backoff = kFirstBackoff;
  bool watchdog_armed = false;
  bool stopping = false;
  bool log_pending = false;
  bool decided = false;  // the first connection attempt had an outcome
  unsigned transitions = 0;
  std::string down_reason;
  Clock::time_point last_log{};
  std::atomic<bool> available{false};
  std::atomic<std::uint64_t> connections{0};
};

RedisClient::RedisClient(RedisClientOptions options)
    : impl_(std::make_shared<Impl>(std::move(options))) {
  impl_->guard.emplace(impl_->io.get_executor());
  asio::post(impl_->io, [impl = impl_.get()] { impl->connect(); });
  impl_->thread = std::thread([impl = impl_.get()] { impl->io.run(); });
}

RedisClient::~RedisClient() {
  stop();
}

void RedisClient::command(std::vector<std::string> args, Callback done) {
  asio::post(impl_->io,
             [impl = impl_.get(), args = std::move(args), done = std::move(done)]() mutable {
               if (impl->stopping) {
                 return;
               }
               if (!impl->current || !impl->current->ready) {
                 done(RedisReply{});
                 return;
               }
               impl->issue(*impl->current, args,
                           std::make_unique<Impl::Call>(Impl::Call{impl, std::move(done)}));
             });
}

bool RedisClient::available() const noexcept {
  return impl_->available.load(std::memory_order_relaxed);
}

std::uint64_t RedisClient::connections() const noexcept {
  return impl_->connections.load(std::memory_order_relaxed);
}

void RedisClient::stop() {
  if (!impl_->thread.joinable()) {
    return;
  }
  asio::post(impl_->io, [impl = impl_.get()] {
    impl->stopping = true;
    impl->watchdog.cancel();
    impl->reconnect_timer.cancel();
    if (impl->current && impl->current->ctx != nullptr) {
      redisAsyncFree(impl->current->ctx);  // pending callbacks are dropped (stopping)
    }
    impl->current.reset();
    impl->guard.reset();
  });
  impl_->thread.join();
}

}  // namespace llmgw::net
