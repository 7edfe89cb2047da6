#include "llmgw/net/http_client.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/url/parse.hpp>
#include <cstdlib>
#include <exception>
#include <limits>
#include <optional>
#include <utility>

#include "llmgw/net/retry.hpp"
#include "llmgw/version.hpp"

namespace llmgw::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;
using error_code = boost::system::error_code;

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint32_t kMaxResponseHeaderBytes = 64 * 1024;
constexpr std::size_t kReadChunkBytes = 16 * 1024;

struct Endpoint {
  std::string host;  // for resolving, without brackets
  std::string port;

  std::string name() const {
    return host.find(':') != std::string::npos ? "[" + host + "]:" + port : host + ":" + port;
  }
};

// Where a request goes: the origin, and the proxy in between when one applies.
struct Route {
  bool https = false;
  Endpoint origin;
  std::string host_header;  // host[:port] as the server expects it
  std::string target;       // origin-form, or absolute-form through an http proxy
  std::optional<Endpoint> proxy;

  // Connections are reused only for the same route (scheme, origin and proxy).
  std::string key() const {
    return (https ? "https://" : "http://") + origin.name() +
           (proxy ? " via " + proxy->name() : std::string());
  }
  // The first hop: the proxy when there is one.
  const Endpoint& first_hop() const { return proxy ? *proxy : origin; }
};

bool is_loopback_host(std::string_view host) {
  if (iequals(host, "localhost")) {
    return true;
  }
  error_code ec;
  const auto address = asio::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

std::string env_or_empty(const char* lower, const char* upper) {
  if (const char* value = std::getenv(lower); value != nullptr && *value != '\0') {
    return value;
  }
  if (const char* value = std::getenv(upper); value != nullptr && *value != '\0') {
    return value;
  }
  return {};
}

// no_proxy: comma-separated host names or domain suffixes ("example.com" and ".example.com" both
// match example.com and its subdomains), "*" for every host; an optional ":port" is ignored.
bool excluded_by_no_proxy(std::string_view host, std::string_view no_proxy) {
  while (!no_proxy.empty()) {
    const auto comma = no_proxy.find(',');
    std::string_view entry = no_proxy.substr(0, comma);
    no_proxy = comma == std::string_view::npos ? std::string_view{} : no_proxy.substr(comma + 1);
    while (!entry.empty() && entry.front() == ' ') {
      entry.remove_prefix(1);
    }
    while (!entry.empty() && entry.back() == ' ') {
      entry.remove_suffix(1);
    }
    if (entry == "*") {
      return true;
    }
    if (const auto colon = entry.rfind(':');
        colon != std::string_view::npos && entry.find(':') == colon) {
      entry = entry.substr(0, colon);
    }
    if (!entry.empty() && entry.front() == '.') {
      entry.remove_prefix(1);
    }
    if (entry.empty()) {
      continue;
    }
    if (iequals(host, entry)) {
      return true;
    }
    if (host.size() > entry.size() && host[host.size() - entry.size() - 1] == '.' &&
        iequals(host.substr(host.size() - entry.size()), entry)) {
      return true;
    }
  }
  return false;
}

// Proxy settings, read once when the client is made (as curl and most tools do).
struct ProxySettings {
  std::string http_proxy;
  std::string https_proxy;
  std::string no_proxy;

  static ProxySettings from_environment() {
    return {env_or_empty("http_proxy", "HTTP_PROXY"), env_or_empty("https_proxy", "HTTPS_PROXY"),
            env_or_empty("no_proxy", "NO_PROXY")};
  }
};

std::optional<Endpoint> parse_proxy(const std::string& proxy_url) {
  // A bare "host:port" is common in proxy variables.
  const std::string with_scheme =
      proxy_url.find("://") == std::string::npos ? "http://" + proxy_url : proxy_url;
  const auto parsed = boost::urls::parse_uri(with_scheme);
  if (!parsed || parsed->host_address().empty()) {
    throw TransportError("proxy setting is not a valid URL (expected http://host:port)");
  }
  return Endpoint{parsed->host_address(),
                  parsed->has_port() ? std::string(parsed->port()) : std::string("80")};
}

Route make_route(const std::string& url, const ProxySettings& proxies) {
  // The URL is not quoted in errors: its query may carry a token.
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    throw TransportError("invalid request URL (expected http[s]://host[:port]/path)");
  }
  Route route;
  if (parsed->scheme_id() == boost::urls::scheme::https) {
    route.https = true;
  } else if (parsed->scheme_id() != boost::urls::scheme::http) {
    throw TransportError("unsupported URL scheme '" + std::string(parsed->scheme()) +
                         "' (expected http or https)");
  }
  route.origin.host = parsed->host_address();
  if (route.origin.host.empty()) {
    throw TransportError("request URL has no host");
  }
  route.origin.port =
      parsed->has_port() ? std::string(parsed->port()) : std::string(route.https ? "443" : "80");
  route.host_header = std::string(parsed->encoded_host());
  if (parsed->has_port()) {
    route.host_header += ":" + route.origin.port;
  }
  route.target = std::string(parsed->encoded_target());
  if (route.target.empty()) {
    route.target = "/";
  } else if (route.target.front() != '/') {
    route.target.insert(route.target.begin(), '/');
  }

  const std::string& proxy_url = route.https ? proxies.https_proxy : proxies.http_proxy;
  if (!proxy_url.empty() && !is_loopback_host(route.origin.host) &&
      !excluded_by_no_proxy(route.origin.host, proxies.no_proxy)) {
    route.proxy = parse_proxy(proxy_url);
    if (!route.https) {
      route.target = "http://" + route.host_header + route.target;
    }
  }
  return route;
}

std::string describe(std::string_view what, const Endpoint& endpoint, const error_code& ec,
                     std::chrono::milliseconds timeout) {
  if (ec == beast::error::timeout) {
    return std::string(what) + " " + endpoint.name() + " timed out after " +
           std::to_string(timeout.count()) + " ms";
  }
  return std::string(what) + " " + endpoint.name() + " failed: " + ec.message();
}

// The peer closed a kept-alive connection before answering: the request never reached a handler,
// so sending it again on a fresh connection is safe.
bool is_stale_connection_error(const error_code& ec) {
  return ec == http::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
         ec == ssl::error::stream_truncated;
}

// RFC 9110 §9.2.2: repeating these has the same effect as sending them once. Only these are sent
// again on a fresh connection when a kept-alive one turns out closed after the request went out:
// a POST may already have been acted on (a review created), so it is never re-sent here.
bool is_idempotent(http::verb method) {
  switch (method) {
    case http::verb::get:
    case http::verb::head:
    case http::verb::put:
    case http::verb::delete_:
    case http::verb::options:
    case http::verb::trace:
      return true;
    default:
      return false;
  }
}

struct Connection {
  std::string key;
  std::optional<beast::tcp_stream> tcp;  // plain connections
  std::unique_ptr<TlsStream> tls;        // TLS connections
  beast::flat_buffer buffer;
  bool host_name_rejected = false;  // set by the verify callback

  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : *tcp; }
};

struct Exchange {
  bool stale = false;  // the reused connection was closed before the request got through
  bool reusable = false;
  ClientResponse response;
};

}  // namespace

struct HttpClient::Impl {
  explicit Impl(ClientOptions client_options)
      : options(std::move(client_options)), proxies(ProxySettings::from_environment()) {}

  ClientOptions options;
  ProxySettings proxies;
  asio::io_context ioc;
  std::optional<ssl::context> tls_context;
  std::unique_ptr<Connection> idle;  // one kept-alive connection, for the last origin used
  std::uint64_t opened = 0;

  ssl::context& tls() {
    if (!tls_context) {
      ssl::context context{ssl::context::tls_client};
      context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                          ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                          ssl::context::no_tlsv1_1);
      // The system store; OpenSSL itself honours SSL_CERT_FILE and SSL_CERT_DIR here.
      context.set_default_verify_paths();
      error_code ec;
      if (!options.ca_file.empty()) {
        context.load_verify_file(options.ca_file, ec);
        if (ec) {
          throw TransportError("cannot load CA file " + options.ca_file + ": " + ec.message());
        }
      }
      context.set_verify_mode(options.verify_peer ? ssl::verify_peer : ssl::verify_none);
      tls_context.emplace(std::move(context));
    }
    return *tls_context;
  }

  asio::awaitable<void> open_tunnel(beast::tcp_stream& stream, const Route& route,
                                    std::chrono::steady_clock::time_point deadline) {
    const auto& proxy = *route.proxy;
    http::request<http::empty_body> connect{http::verb::connect, route.origin.name(), 11};
    connect.set(http::field::host, route.origin.name());
    connect.set(http::field::user_agent, "llmgw/" + std::string(kVersion));
    stream.expires_at(deadline);
    auto [write_ec, written] = co_await http::async_write(stream, connect, use_tuple);
    if (write_ec) {
      throw TransportError(
          describe("CONNECT through proxy", proxy, write_ec, options.connect_timeout));
    }
    beast::flat_buffer buffer;
    http::response_parser<http::empty_body> parser;
    parser.skip(true);  // a CONNECT answer has no body: the tunnel starts right after the head
    stream.expires_at(deadline);
    auto [read_ec, read] = co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (read_ec) {
      throw TransportError(
          describe("CONNECT through proxy", proxy, read_ec, options.connect_timeout));
    }
    const unsigned status = parser.get().result_int();
    if (status / 100 != 2) {
      throw TransportError("proxy " + proxy.name() + " refused the tunnel to " +
                           route.origin.name() + " with status " + std::to_string(status));
    }
  }

  asio::awaitable<std::unique_ptr<Connection>> connect(const Route& route) {
    const auto deadline = std::chrono::steady_clock::now() + options.connect_timeout;
    const Endpoint& hop = route.first_hop();

    // getaddrinfo cannot be interrupted: on timeout the lookup is abandoned, not stopped.
    tcp::resolver resolver{ioc};
    asio::steady_timer resolve_timer{ioc};
    resolve_timer.expires_at(deadline);
    resolve_timer.async_wait([&resolver](const error_code& ec) {
      if (!ec) {
        resolver.cancel();
      }
    });
    auto [resolve_ec, results] = co_await resolver.async_resolve(hop.host, hop.port, use_tuple);
    resolve_timer.cancel();
    if (resolve_ec) {
      if (resolve_ec == asio::error::operation_aborted) {
        throw TransportError("resolving " + hop.name() + " timed out after " +
                             std::to_string(options.connect_timeout.count()) + " ms");
      }
      throw HostUnreachableError("resolving " + hop.name() + " failed: " + resolve_ec.message());
    }

    auto connection = std::make_unique<Connection>();
    connection->key = route.key();
    connection->tcp.emplace(ioc);
    connection->tcp->expires_at(deadline);
    auto [connect_ec, connected] = co_await connection->tcp->async_connect(results, use_tuple);
    if (connect_ec) {
      const bool refused = connect_ec == asio::error::connection_refused ||
                           connect_ec == asio::error::host_unreachable ||
                           connect_ec == asio::error::network_unreachable;
      if (refused) {
        throw HostUnreachableError(
            describe("connect to", hop, connect_ec, options.connect_timeout));
      }
      throw TransportError(describe("connect to", hop, connect_ec, options.connect_timeout));
    }
    ++opened;
    error_code ignored;
    connection->tcp->socket().set_option(tcp::no_delay(true), ignored);

    if (route.proxy && route.https) {
      co_await open_tunnel(*connection->tcp, route, deadline);
    }
    if (route.https) {
      connection->tls = std::make_unique<TlsStream>(std::move(*connection->tcp), tls());
      connection->tcp.reset();
      auto* native = connection->tls->native_handle();
      error_code address_ec;
      asio::ip::make_address(route.origin.host, address_ec);
      // SNI carries host names only (RFC 6066 §3).
      if (address_ec && SSL_set_tlsext_host_name(native, route.origin.host.c_str()) != 1) {
        throw TransportError("TLS setup for " + route.origin.name() + " failed (SNI)");
      }
      if (options.verify_peer) {
        connection->tls->set_verify_callback(
            [rejected = &connection->host_name_rejected,
             verifier = ssl::host_name_verification(route.origin.host)](
                bool preverified, ssl::verify_context& context) mutable {
              const bool ok = verifier(preverified, context);
              if (preverified && !ok) {
                *rejected = true;
              }
              return ok;
            });
      }
      connection->lowest().expires_at(deadline);
      auto [handshake_ec] =
          co_await connection->tls->async_handshake(ssl::stream_base::client, use_tuple);
      if (handshake_ec) {
        throw TransportError(describe_tls_failure(*connection, route, handshake_ec));
      }
    }
    co_return connection;
  }

  std::string describe_tls_failure(Connection& connection, const Route& route,
                                   const error_code& ec) const {
    const long verify_result = SSL_get_verify_result(connection.tls->native_handle());
    if (connection.host_name_rejected) {
      return "TLS certificate verification failed for " + route.origin.name() +
             ": certificate does not match the host name";
    }
    if (verify_result != X509_V_OK) {
      return "TLS certificate verification failed for " + route.origin.name() + ": " +
             X509_verify_cert_error_string(verify_result);
    }
    return describe("TLS handshake with", route.origin, ec, options.connect_timeout);
  }

  template <class Stream>
  asio::awaitable<Exchange> exchange(Stream& stream, beast::flat_buffer& buffer,
                                     http::request<http::string_body>& request, bool reused,
                                     const Route& route, const BodyCallback& on_body) {
    auto& lowest = beast::get_lowest_layer(stream);
    const Endpoint& origin = route.origin;
    Exchange result;

    lowest.expires_after(options.read_timeout);
    auto [write_ec, written] = co_await http::async_write(stream, request, use_tuple);
    if (write_ec) {
      if (reused) {
        result.stale = true;
        co_return result;
      }
      throw TransportError(describe("sending request to", origin, write_ec, options.read_timeout));
    }

    http::response_parser<http::buffer_body> parser;
    parser.header_limit(kMaxResponseHeaderBytes);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());  // enforced below
    if (request.method() == http::verb::head) {
      parser.skip(true);
    }
    lowest.expires_after(options.read_timeout);
    auto [header_ec, header_bytes] =
        co_await http::async_read_header(stream, buffer, parser, use_tuple);
    if (header_ec) {
      // The request went out whole: the server may have acted on it before the connection
      // closed. Only a request that may run twice is sent again.
      if (reused && !parser.got_some() && is_stale_connection_error(header_ec) &&
          is_idempotent(request.method())) {
        result.stale = true;
        co_return result;
      }
      throw TransportError(
          describe("reading response from", origin, header_ec, options.read_timeout));
    }
    auto& response = result.response;
    response.status = static_cast<int>(parser.get().result_int());
    for (const auto& field : parser.get()) {
      response.headers.push_back({std::string(field.name_string()), std::string(field.value())});
    }

    std::array<char, kReadChunkBytes> chunk{};
    bool stopped_by_callback = false;
    while (!parser.is_done()) {
      parser.get().body().data = chunk.data();
      parser.get().body().size = chunk.size();
      lowest.expires_after(options.read_timeout);
      auto [read_ec, read] = co_await http::async_read_some(stream, buffer, parser, use_tuple);
      const std::size_t got = chunk.size() - parser.get().body().size;
      if (got > 0) {
        const std::string_view piece{chunk.data(), got};
        if (on_body) {
          if (!on_body(piece)) {
            stopped_by_callback = true;
            break;
          }
        } else {
          if (response.body.size() + got > options.max_body_bytes) {
            throw TransportError("response body from " + origin.name() + " exceeds " +
                                 std::to_string(options.max_body_bytes) + " bytes");
          }
          response.body.append(piece);
        }
      }
      if (read_ec && read_ec != http::error::need_buffer) {
        if (read_ec == http::error::partial_message || is_stale_connection_error(read_ec)) {
          throw TransportError("connection to " + origin.name() +
                               " closed before the response was complete");
        }
        throw TransportError(
            describe("reading response from", origin, read_ec, options.read_timeout));
      }
    }
    result.reusable = !stopped_by_callback && options.keep_alive && parser.get().keep_alive();
    co_return result;
  }

  asio::awaitable<ClientResponse> send(const ClientRequest& request, const BodyCallback& on_body) {
    const Route route = make_route(request.url, proxies);

    http::request<http::string_body> message;
    message.version(11);
    const auto verb = http::string_to_verb(request.method);
    if (verb == http::verb::unknown) {
      message.method_string(request.method);
    } else {
      message.method(verb);
    }
    message.target(route.target);
    for (const auto& header : request.headers) {
      message.insert(header.name, header.value);
    }
    if (!find_header(request.headers, "Host")) {
      message.set(http::field::host, route.host_header);
    }
    if (!find_header(request.headers, "User-Agent")) {
      message.set(http::field::user_agent, "llmgw/" + std::string(kVersion));
    }
    message.body() = request.body;
    message.prepare_payload();
    message.keep_alive(options.keep_alive);

    const std::string key = route.key();
    for (int attempt = 0;; ++attempt) {
      std::unique_ptr<Connection> connection;
      bool reused = false;
      // A kept-alive connection the server has closed meanwhile is not reused: a request that
      // may not be sent twice (a POST) could not be retried if it failed on it.
      if (idle && idle->key == key && attempt == 0 &&
          !peer_closed_or_sent(idle->lowest().socket().native_handle())) {
        connection = std::move(idle);
        reused = true;
      } else {
        idle.reset();
        connection = co_await connect(route);
      }
      // Not a conditional expression: GCC 12 destroys a co_await result inside ?: twice.
      Exchange result;
      if (connection->tls) {
        result = co_await exchange(*connection->tls, connection->buffer, message, reused, route,
                                   on_body);
      } else {
        result = co_await exchange(*connection->tcp, connection->buffer, message, reused, route,
                                   on_body);
      }
      if (result.stale) {
        continue;  // reused connections only; the next attempt opens a fresh one
      }
      if (result.reusable) {
        idle = std::move(connection);
      }
      co_return std::move(result.response);
    }
  }
};

HttpClient::HttpClient(ClientOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}
HttpClient::~HttpClient() = default;
HttpClient::HttpClient(HttpClient&&) noexcept = default;
HttpClient& HttpClient::operator=(HttpClient&&) noexcept = default;

ClientResponse HttpClient::send(const ClientRequest& request, const BodyCallback& on_body) {
  std::optional<ClientResponse> response;
  std::exception_ptr failure;
  asio::co_spawn(impl_->ioc, impl_->send(request, on_body),
                 [&](std::exception_ptr error, ClientResponse result) {
                   if (error) {
                     failure = error;
                   } else {
                     response = std::move(result);
                   }
                 });
  // Every operation inside has a deadline, so run() returns.
  impl_->ioc.restart();
  impl_->ioc.run();
  if (failure) {
    std::rethrow_exception(failure);
  }
  if (!response) {
    throw TransportError("request did not complete");
  }
  return std::move(*response);
}

std::uint64_t HttpClient::connections_opened() const noexcept {
  return impl_->opened;
}

}  // namespace llmgw::net
