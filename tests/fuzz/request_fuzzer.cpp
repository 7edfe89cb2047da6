// Fuzz target: the bytes a client sends on one connection -> the gateway's request path up to the
// node: the head and body read with the gateway's limits, the routing decision for the session
// key, and the request as rewritten for the node. The contracts under test:
//   - any bytes are read without UB, leaks or unbounded memory (Beast's parser with the limits
//     of config::LimitsConfig);
//   - a routing plan names distinct nodes of the table, at most max_attempts of them;
//   - what goes to the node parses back as exactly one complete request with the same method,
//     target and body, and no hop-by-hop header: nothing the client sent can make the node see a
//     second request (smuggling) or a different one.
//
// read_request() mirrors the connection loop in src/server/gateway.cpp (head parser, the
// Content-Length check, then the body). When the request validation moves into
// src/server/request_reader.{hpp,cpp}, replace read_request() by that function: the rest of the
// target stays as it is.

#include <boost/asio/buffer.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/config/gateway_config.hpp"
#include "llmgw/net/http_types.hpp"
#include "llmgw/routing/hash_ring.hpp"
#include "llmgw/routing/router.hpp"
#include "llmgw/routing/session_key.hpp"
#include "llmgw/routing/session_table.hpp"
#include "server/upstream_request.hpp"

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace routing = llmgw::routing;
using llmgw::server::detail::Request;

constexpr std::size_t kMaxRequestsPerConnection = 8;

// Feeds `input` to `parser` until it is done, the input runs out (then end of stream, as a closed
// socket would give), or an error. Consumes what was parsed.
template <class Parser>
bool parse_from(Parser& parser, std::string_view& input) {
  beast::error_code ec;
  while (!parser.is_done()) {
    const std::size_t used = parser.put(asio::buffer(input.data(), input.size()), ec);
    input.remove_prefix(used);
    if (ec && ec != http::error::need_more) {
      return false;
    }
    if (used == 0) {
      parser.put_eof(ec);  // every byte was offered: the peer closed mid-message
      return !ec && parser.is_done();
    }
  }
  return true;
}

// One request as src/server/gateway.cpp reads it; nullopt where the gateway answers 400/413/431
// and closes, or where the client closed.
std::optional<Request> read_request(std::string_view& input,
                                    const llmgw::config::LimitsConfig& limits) {
  http::request_parser<http::empty_body> head_parser;
  head_parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  head_parser.body_limit(limits.max_body_bytes);
  beast::error_code ec;
  while (!head_parser.is_header_done()) {
    const std::size_t used = head_parser.put(asio::buffer(input.data(), input.size()), ec);
    input.remove_prefix(used);
    if (ec || used == 0) {
      return std::nullopt;  // malformed, too large, or the head never completes
    }
  }
  if (head_parser.content_length() && *head_parser.content_length() > limits.max_body_bytes) {
    return std::nullopt;  // 413
  }
  http::request_parser<http::string_body> parser{std::move(head_parser)};
  parser.body_limit(limits.max_body_bytes);
  if (!parse_from(parser, input)) {
    return std::nullopt;
  }
  return parser.release();
}

struct Fleet {
  Fleet() {
    for (const char* id : {"sim-a", "sim-b", "sim-c"}) {
      nodes.push_back(std::make_shared<routing::NodeState>(id));
    }
    table = std::make_unique<routing::RoutingTable>(nodes, config.routing.virtual_nodes);
    policy.balance_factor = config.routing.balance_factor;
    policy.max_attempts = config.routing.max_attempts;
  }
  llmgw::config::GatewayConfig config;  // the defaults: limits, session header, routing policy
  std::vector<std::shared_ptr<routing::NodeState>> nodes;
  std::unique_ptr<routing::RoutingTable> table;
  routing::RoutingPolicy policy;
};

void check_plan(const routing::RoutePlan& plan, const Fleet& fleet) {
  if (plan.empty() || plan.count > fleet.policy.max_attempts) {
    __builtin_trap();
  }
  for (std::size_t i = 0; i < plan.count; ++i) {
    if (plan.candidates[i] >= fleet.table->size()) {
      __builtin_trap();
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (plan.candidates[j] == plan.candidates[i]) {
        __builtin_trap();
      }
    }
  }
}

// Routes like proxy_request: a keyed request through the session table and the plain bounded
// ring, an unkeyed one round-robin. The nodes' health and load come from the key's position, so
// the fuzzer reaches failover and spill too.
void route(const Request& request, const Fleet& fleet, routing::SessionTable& sessions,
           std::uint64_t ticket) {
  // The gateway's key cascade (headers, prompt_cache_key, the prefix fingerprint over the body).
  static const auto sources = routing::parse_key_sources(fleet.config.routing.key_sources,
                                                         fleet.config.routing.session_header)
                                  .sources;
  const auto header = [&request](std::string_view name) -> std::optional<std::string_view> {
    const auto it = request.find(name);
    if (it == request.end()) {
      return std::nullopt;
    }
    return it->value();
  };
  const std::string key =
      routing::choose_key(sources, header, llmgw::net::target_path(request.target()),
                          request.body(), fleet.config.routing.prefix_bytes)
          .key;
  if (key.empty()) {
    check_plan(routing::plan_round_robin(*fleet.table, ticket, fleet.policy), fleet);
    return;
  }
  const std::uint64_t position = routing::ring_position(key);
  std::int64_t total = 0;
  for (std::size_t i = 0; i < fleet.nodes.size(); ++i) {
    const std::uint64_t bits = position >> (8 * i);
    fleet.nodes[i]->healthy = (bits & 3U) != 0;
    fleet.nodes[i]->in_flight = static_cast<std::int64_t>((bits >> 2) & 7U);
    total += fleet.nodes[i]->in_flight;
  }
  check_plan(routing::plan_keyed(*fleet.table, position, total, fleet.policy), fleet);
  const auto now = routing::SessionTable::Clock::time_point{} + std::chrono::hours{1};
  check_plan(sessions.plan(*fleet.table, position, total, fleet.policy, now), fleet);
}

// What the node receives must read back as the one request that was meant, for the node named,
// from the client at kClientIp.
constexpr std::string_view kClientIp = "203.0.113.7";
constexpr std::string_view kNodeHost = "127.0.0.1:11501";
void check_upstream(const Request& request) {
  const llmgw::server::detail::UpstreamRequest upstream{request, kClientIp};
  const std::string bytes = upstream.head(kNodeHost) + upstream.body();
  std::string_view rest = bytes;
  http::request_parser<http::string_body> parser;
  parser.header_limit(std::numeric_limits<std::uint32_t>::max());
  parser.body_limit(std::numeric_limits<std::uint64_t>::max());
  if (!parse_from(parser, rest) || !rest.empty()) {
    __builtin_trap();  // not one complete request, or bytes left that would be a second one
  }
  const auto& seen = parser.get();
  if (seen.method_string() != request.method_string() || seen.target() != request.target() ||
      seen.body() != request.body()) {
    __builtin_trap();
  }
  for (const auto& field : seen) {
    if (llmgw::server::detail::is_hop_by_hop(field.name_string())) {
      __builtin_trap();
    }
  }
  const std::string_view forwarded = seen["X-Forwarded-For"];
  if (seen.count(http::field::host) != 1 || seen[http::field::host] != kNodeHost ||
      seen.count("X-Forwarded-For") != 1 || forwarded.size() < kClientIp.size() ||
      forwarded.substr(forwarded.size() - kClientIp.size()) != kClientIp) {
    __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const Fleet fleet;
  routing::SessionTable sessions{routing::SessionTableOptions{std::chrono::minutes{5}, 64}};
  std::string_view input(reinterpret_cast<const char*>(data), size);
  for (std::size_t n = 0; n < kMaxRequestsPerConnection && !input.empty(); ++n) {
    auto request = read_request(input, fleet.config.limits);
    if (!request) {
      break;
    }
    (void)llmgw::net::target_path(request->target());  // local or proxied: both read the path
    const bool keep_alive = request->keep_alive();
    route(*request, fleet, sessions, n);
    check_upstream(*request);
    if (!keep_alive) {
      break;
    }
  }
  return 0;
}
