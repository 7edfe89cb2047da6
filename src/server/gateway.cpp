// The gateway's listeners, client sessions and two-phase shutdown (reloads: gateway_reload.cpp;
// the health checker: health_checker.hpp).

#include "llmgw/server/gateway.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <condition_variable>
#include <nlohmann/json.hpp>

#include "access_log.hpp"
#include "catalog.hpp"
#include "credentials.hpp"
#include "dns_discovery.hpp"
#include "fleet_endpoints.hpp"
#include "gateway_impl.hpp"
#include "gateway_state.hpp"
#include "health_checker.hpp"
#include "llmgw/net/http_types.hpp"
#include "llmgw/net/url.hpp"
#include "llmgw/server/logging.hpp"
#include "llmgw/util/log_exception.hpp"
#include "local_endpoints.hpp"
#include "open_files.hpp"
#include "preheat.hpp"
#include "proxy.hpp"
#include "request_identity.hpp"
#include "request_reader.hpp"
#include "server/as_tuple.hpp"
#include "stream.hpp"
#include "watchdog.hpp"

namespace llmgw::server {

using namespace detail;
using Clock = std::chrono::steady_clock;

void Gateway::Impl::start() {
  const auto& config = shared.config;
  const unsigned count = config.workers;
  const auto address = asio::ip::make_address(config.listen.address);
  port = config.listen.port;
  limit_connections_to_open_files(count);
  load_listener_tls(config.listen.tls, config.admin_listen.tls, true);
  for (unsigned i = 0; i < count; ++i) {
    auto worker = std::make_unique<Worker>(shared);
    tcp::acceptor acceptor(worker->io);
    const tcp::endpoint endpoint(address, port);
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    // Every worker accepts on the same port; the kernel spreads connections between them. The
    // first binds without SO_REUSEPORT, so that it fails if any other process listens there
    // (with SO_REUSEPORT a second gateway would share the port and split the traffic); the
    // option is set once bound, before listen, so the other workers join it.
    const int one = 1;
    if (i > 0) {
      ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    beast::error_code ec;
    acceptor.bind(endpoint, ec);
    if (ec) {
      throw std::runtime_error("cannot listen on " + config.listen.address + ":" +
                               std::to_string(port) + ": " + ec.message() +
                               (ec == asio::error::address_in_use
                                    ? " (another process, perhaps another llmgw serve, "
                                      "listens on this port)"
                                    : ""));
    }
    if (i == 0) {
      ::setsockopt(acceptor.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    }
    acceptor.listen(asio::socket_base::max_listen_connections);
    port = acceptor.local_endpoint().port();
    worker->acceptor.emplace(std::move(acceptor));
    workers.push_back(std::move(worker));
  }
  if (!config.admin_listen.address.empty()) {
    listen_admin(*workers.front());
  }
  for (auto& worker : workers) {
    asio::co_spawn(worker->io, accept_loop(*worker, *worker->acceptor, false), asio::detached);
    if (worker->admin_acceptor) {
      asio::co_spawn(worker->io, accept_loop(*worker, *worker->admin_acceptor, true),
                     asio::detached);
    }
    worker->thread = std::thread([w = worker.get()] {
      auto guard = asio::make_work_guard(w->io);
      w->io.run();
    });
  }
  health_checker.start();
  catalog.start();
  discovery.start();
  control_thread = std::thread([this] {
    auto guard = asio::make_work_guard(control);
    control.run();
  });
  running = true;
  const auto snapshot = shared.current();
  if (!address.is_loopback() && snapshot->config().auth.keys.empty()) {
    spdlog::warn(
        "listening on {} without client keys: anyone who reaches this address can use the nodes "
        "(set auth.keys_file, or listen on 127.0.0.1)",
        config.listen.address);
  }
  const auto& upstream_tls = snapshot->config().upstream_tls;
  if (upstream_tls.insecure_skip_verify &&
      std::any_of(snapshot->nodes.begin(), snapshot->nodes.end(),
                  [](const auto& node) { return node->config.tls; })) {
    spdlog::warn(
        "upstream_tls.insecure_skip_verify is on: https:// nodes' certificates are not checked, "
        "so anyone on the path to them can read and change prompts and answers");
  }
  spdlog::info("llmgw listening on {}:{}{} with {} workers, {} nodes, routing {}",
               config.listen.address, port, config.listen.tls.enabled() ? " (HTTPS)" : "",
               workers.size(), snapshot->nodes.size(),
               describe_routing(snapshot->config().routing));
  if (admin_port != 0) {
    spdlog::info("admin API on {}:{}{} only (admin.listen)", config.admin_listen.address,
                 admin_port, config.admin_listen.tls.enabled() ? " (HTTPS)" : "");
  }
}

void Gateway::Impl::limit_connections_to_open_files(std::size_t worker_count) {
  // At start: a reload that raises limits.max_connections needs a restart to raise this too.
  const auto snapshot = shared.current();
  const auto& limits = snapshot->config().limits;
  const std::size_t needed = descriptors_needed(snapshot->config(), worker_count);
  const OpenFilesLimit open_files = raise_open_files_limit(needed);
  max_client_connections = connection_capacity(snapshot->config(), worker_count, open_files.soft);
  too_many_connections =
      "too many connections (limits.max_connections = " + std::to_string(limits.max_connections) +
      ")";
  if (open_files.soft < needed) {
    spdlog::warn(
        "open-files limit {} (hard limit {}) is below the {} descriptors that "
        "limits.max_connections = {} and the upstream pools need: serving at most {} client "
        "connections (raise it with ulimit -n or LimitNOFILE=)",
        open_files.soft, open_files.hard, needed, limits.max_connections, max_client_connections);
    too_many_connections = "too many connections (the gateway's open-files limit " +
                           std::to_string(open_files.soft) + " allows " +
                           std::to_string(max_client_connections) + ")";
  }
}

// admin.listen: one more acceptor, on the first worker (admin requests are rare).
void Gateway::Impl::listen_admin(Worker& worker) {
  const auto& listen = shared.config.admin_listen;
  const tcp::endpoint endpoint(asio::ip::make_address(listen.address), listen.port);
  tcp::acceptor acceptor(worker.io);
  acceptor.open(endpoint.protocol());
  acceptor.set_option(asio::socket_base::reuse_address(true));
  beast::error_code ec;
  acceptor.bind(endpoint, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + listen.address + ":" +
                             std::to_string(listen.port) + " (admin.listen): " + ec.message());
  }
  acceptor.listen(asio::socket_base::max_listen_connections);
  admin_port = acceptor.local_endpoint().port();
  worker.admin_acceptor.emplace(std::move(acceptor));
}

asio::awaitable<void> Gateway::Impl::accept_loop(Worker& worker, tcp::acceptor& acceptor,
                                                 bool admin_listener) {
  asio::steady_timer backoff(worker.io);
  while (acceptor.is_open()) {
    auto [ec, socket] = co_await acceptor.async_accept(kAsTuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) {
      co_return;
    }
    if (ec) {
      // Out of descriptors or similar: back off instead of spinning (Asio's throttling example).
      spdlog::warn("accept failed: {}; retrying in 100 ms", ec.message());
      backoff.expires_after(std::chrono::milliseconds{100});
      co_await backoff.async_wait(kAsTuple);
      continue;
    }
    asio::co_spawn(
        worker.io, serve_client(worker, std::move(socket), admin_listener),
        [](const std::exception_ptr& error) { util::log_exception("client session", error); });
  }
}

// With admin.listen, /admin/* lives only on the admin listener and that listener serves nothing
// else: the 404 message for a path on the wrong one, or "".
std::string_view Gateway::Impl::listener_refusal(std::string_view path, bool admin_listener) const {
  const bool admin_path = path == "/admin" || path.starts_with("/admin/");
  if (shared.config.admin_listen.address.empty() || admin_path == admin_listener) {
    return {};
  }
  return admin_listener ? "not found: this listener serves the admin API (/admin/*) only"
                        : "not found: the admin API listens on its own address (admin.listen)";
}

namespace {

// A gateway path's answer (handle_local), written to the client.
asio::awaitable<ProxyResult> write_local_path(SharedState& shared, ClientConnection& connection,
                                              http::response<http::string_body> response,
                                              bool head_request, bool counted,
                                              std::chrono::milliseconds idle_timeout) {
  response.set(kRequestIdHeader, connection.request_id);
  ProxyResult result;
  result.status = response.result_int();
  result.bytes = response.body().size();
  result.reusable = response.keep_alive();
  if (head_request) {
    response.body().clear();
  }
  connection.watchdog->arm(Watchdog::Side::client, idle_timeout);
  auto [ec, n] = co_await http::async_write(*connection.client, response, kAsTuple);
  result.reusable = result.reusable && !ec;
  if (counted) {
    shared.metrics.count_unrouted(result.status);  // probes and scrapes are not requests
  }
  co_return result;
}

// The cold ways out of serve_client, in frames of their own: what they hold is not part of the
// frame every connection keeps (bench/RESULTS.md §12.4).

// 503 past limits.max_connections; the caller closes the connection (close_client).
asio::awaitable<void> answer_and_close(SharedState& shared, ClientConnection& connection,
                                       int status, const std::string& message) {
  auto response = json_error(status, message, false);
  connection.watchdog->arm(Watchdog::Side::client, std::chrono::seconds{1});
  co_await http::async_write(*connection.client, response, kAsTuple);
  shared.metrics.count_unrouted(status);
}

// A request that cannot be read or is refused before routing (400, 413, 431, ...); the caller
// closes the connection after it, having drained what the client still sends.
asio::awaitable<void> answer_bad_request(SharedState& shared, ClientConnection& connection,
                                         const RequestError& error,
                                         std::chrono::milliseconds timeout) {
  auto response = error_response(error);
  connection.watchdog->arm(Watchdog::Side::client, timeout);
  co_await http::async_write(*connection.client, response, kAsTuple);
  shared.metrics.count_unrouted(error.status);
  co_await linger_before_close(connection);
}

}  // namespace

// One request, read: answered locally, refused (wrong listener, no client key), asked of every
// node (fleet paths) or proxied. Not a coroutine: it returns the coroutine that answers, so no
// frame of its own stays alive under a stream (1.3 KB per open stream, bench/RESULTS.md §12.4).
asio::awaitable<ProxyResult> Gateway::Impl::dispatch(Worker& worker, ClientConnection& connection,
                                                     Request& request, const std::string& client_ip,
                                                     Clock::time_point started,
                                                     bool admin_listener) {
  const std::shared_ptr<const Snapshot>& snapshot = worker.snapshot();
  const auto& config = snapshot->config();
  const bool keep_alive = request.keep_alive() && !shared.draining.load();
  const std::string_view path = net::target_path(request.target());
  connection.key_slot = metrics::kNoKeySlot;
  connection.key_name.clear();
  connection.key_priority.clear();
  if (const auto refusal = listener_refusal(path, admin_listener); !refusal.empty()) {
    return send_local_answer(worker, connection, config.timeouts.idle,
                             json_error(404, std::string{refusal}, keep_alive));
  }
  if (is_local_path(path)) {
    // The gateway's own paths keep their own rules (the admin token, status.require_token).
    return write_local_path(shared, connection, handle_local(shared, request),
                            request.method() == http::verb::head, !is_probe_path(path),
                            config.timeouts.idle);
  }
  // Every request that may reach a node needs a client key (auth.keys_file).
  const std::optional<ClientIdentity> client = identify_client(*snapshot, request);
  if (!client) {
    return send_local_answer(worker, connection, config.timeouts.idle,
                             key_required(request, keep_alive));
  }
  connection.key_slot = client->key_slot;
  connection.key_name = client->name;
  connection.key_priority = client->priority;
  if (!config.auth.keys.empty()) {
    // The key was for the gateway: nodes never see it.
    request.erase(http::field::authorization);
    request.erase("x-api-key");
  }
  if (is_fleet_request(request)) {
    // One catalog for clients: /api/tags, /api/ps, /api/pull, ... asked of every node.
    return handle_fleet(worker, connection, request, started);
  }
  return proxy_request(worker, connection, request, client_ip, started);
}

asio::awaitable<void> Gateway::Impl::serve_client(Worker& worker, tcp::socket socket,
                                                  bool admin_listener) {
  const auto open = shared.client_connections.fetch_add(1) + 1;
  // A plain socket (or TLS over one), not a beast::tcp_stream: the watchdog keeps the time
  // (watchdog.hpp). A TLS listener's context is the one in force at accept: a reload gives new
  // connections the new certificate while this one keeps its own.
  auto tls_context = (admin_listener ? admin_tls : listen_tls).load(std::memory_order_acquire);
  Stream stream =
      tls_context ? Stream{std::move(socket), std::move(tls_context)} : Stream{std::move(socket)};
  ClientConnection connection;
  connection.client = &stream;
  connection.admin_listener = admin_listener;
  const auto watchdog = Watchdog::start(worker.io, connection);
  connection.watchdog = watchdog.get();
  worker.connections.insert(&connection);
  struct Cleanup {
    Impl& impl;
    Worker& worker;
    ClientConnection& connection;
    ~Cleanup() {
      connection.watchdog->stop();
      worker.connections.erase(&connection);
      impl.shared.client_connections.fetch_sub(1);
    }
  } cleanup{*this, worker, connection};

  // Responses go out as a head and then one write per relayed chunk: without TCP_NODELAY, Nagle
  // holds each small write until the client's delayed ACK (40 ms on Linux) arrives, adding that
  // to every stream's time to first token.
  beast::error_code nodelay_error;
  stream.socket().set_option(tcp::no_delay(true), nodelay_error);
  // Responses are written at once when the socket takes them (gather_write.hpp: write_at_once).
  stream.socket().non_blocking(true, nodelay_error);
  beast::error_code endpoint_error;
  const auto remote = stream.socket().remote_endpoint(endpoint_error);
  const std::string client_ip = endpoint_error ? "unknown" : remote.address().to_string();

  if (stream.is_tls() && !co_await tls_handshake(worker, connection, client_ip)) {
    co_return;
  }
  if (static_cast<std::size_t>(open) > max_client_connections) {
    co_await answer_and_close(shared, connection, 503, too_many_connections);
    co_await close_client(connection);
    co_return;
  }

  beast::flat_buffer buffer = client_read_buffer(worker.snapshot()->config().limits);
  for (;;) {
    connection.idle = true;
    if (shared.draining.load()) {
      break;
    }
    // The wait for the next head runs under the configuration in force when it begins; the
    // request, once read, under the one in force then (a reload during a keep-alive connection's
    // idle time applies to its next request).
    const std::shared_ptr<const Snapshot> reading = worker.snapshot();  // alive across the wait
    ReadResult read =
        co_await read_request(connection, buffer, reading->config(), shared.buffered_body_bytes);
    const std::shared_ptr<const Snapshot> snapshot = worker.snapshot();
    const auto& config = snapshot->config();
    const auto started = read.started;
    if (read.error) {
      co_await answer_bad_request(shared, connection, *read.error, config.timeouts.client_header);
      break;
    }
    if (!read.request) {
      break;  // the client left or went quiet
    }
    Request& request = *read.request;
    const RequestIdentity identity = identify(request[kRequestIdHeader], request["traceparent"]);
    request.set(kRequestIdHeader, identity.request_id);  // the node gets both
    request.set("traceparent", identity.traceparent);
    connection.request_id = identity.request_id;
    if (read.key_refused_body_unread) {
      // Refused on its head; its body is still on the way, so the connection ends here.
      connection.key_slot = metrics::kNoKeySlot;
      connection.key_name.clear();
      const ProxyResult refused = co_await send_local_answer(
          worker, connection, config.timeouts.idle, key_required(request, false));
      access_log(config.log, client_ip, request, identity, connection.key_name, refused, started);
      co_await linger_before_close(connection);
      break;
    }
    const ProxyResult result =
        co_await dispatch(worker, connection, request, client_ip, started, admin_listener);
    access_log(config.log, client_ip, request, identity, connection.key_name, result, started);
    if (!result.reusable) {
      break;
    }
  }
  co_await close_client(connection);
}

// The server side of a TLS handshake, within timeouts.client_header. A client that does not trust
// the certificate, speaks plain HTTP or goes quiet is closed; logged at debug (a port scan would
// flood the log otherwise) and counted.
asio::awaitable<bool> Gateway::Impl::tls_handshake(Worker& worker, ClientConnection& connection,
                                                   const std::string& client_ip) {
  connection.watchdog->arm(Watchdog::Side::client,
                           worker.snapshot()->config().timeouts.client_header);
  auto [ec] = co_await connection.client->tls().async_handshake(ssl::stream_base::server, kAsTuple);
  connection.watchdog->disarm();
  if (ec) {
    shared.metrics.count_tls_handshake_failure();
    spdlog::debug(
        "TLS handshake with {} failed: {}", client_ip,
        connection.watchdog->expired() ? std::string{"no handshake in time"} : ec.message());
    connection.client->close();
    co_return false;
  }
  co_return true;
}

// Ends a client connection: the sending side first (TLS: close_notify, so a close-delimited body
// reads as complete; bounded at 1 s, as the client need not answer it), then the socket.
asio::awaitable<void> Gateway::Impl::close_client(ClientConnection& connection) {
  Stream& stream = *connection.client;
  if (stream.is_tls() && stream.socket().is_open()) {
    connection.watchdog->arm(Watchdog::Side::client, std::chrono::seconds{1});
    co_await stream.tls().async_shutdown(kAsTuple);
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream.close();
}

Gateway::Gateway(config::GatewayConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}

Gateway::~Gateway() {
  if (impl_->running) {
    if (!impl_->stop_requested.exchange(true)) {
      impl_->shared.draining.store(true);
      for (auto& worker : impl_->workers) {
        asio::post(worker->io, [w = worker.get()] {
          beast::error_code ignored;
          if (w->acceptor) {
            w->acceptor->close(ignored);
          }
          if (w->admin_acceptor) {
            w->admin_acceptor->close(ignored);
          }
          for (auto* connection : w->connections) {
            connection->client->close();
            if (connection->upstream != nullptr) {
              connection->upstream->close();
            }
          }
        });
      }
      impl_->finish_stop();
    }
    impl_->wait();
  }
}

void Gateway::start() {
  impl_->start();
}
std::uint16_t Gateway::port() const noexcept {
  return impl_->port;
}
std::uint16_t Gateway::admin_port() const noexcept {
  return impl_->admin_port;
}
void Gateway::request_stop() {
  impl_->request_stop();
}
void Gateway::wait() {
  impl_->wait();
}

std::vector<std::string> Gateway::reload(config::GatewayConfig next) {
  return impl_->reload(std::move(next));
}

void Gateway::handle_signals(ConfigLoader load_config) {
  impl_->handle_signals(std::move(load_config));
}

void Gateway::run_until_signal() {
  if (!impl_->signals) {
    impl_->handle_signals({});
  }
  impl_->wait();
}

}  // namespace llmgw::server
