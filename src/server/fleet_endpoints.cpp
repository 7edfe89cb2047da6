// The fleet endpoints (fleet_endpoints.hpp): listings, /api/version, /api/delete and /api/copy
// answered from every node at once. /api/pull is in fleet_pull.cpp, the pure parts in
// fleet_merge.cpp.

#include "fleet_endpoints.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/write.hpp>

#include "catalog.hpp"
#include "llmgw/net/http_types.hpp"
#include "request_identity.hpp"
#include "server/as_tuple.hpp"
#include "watchdog.hpp"

namespace llmgw::server::detail {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
constexpr std::string_view kNodesHeader = "X-Gateway-Nodes";
constexpr std::string_view kPartialHeader = "X-Gateway-Partial";
constexpr std::size_t kAnswerChannelCapacity = 32;

enum class ListingKind { tags, openai_models, ps, version };

// In the order of ListingKind.
constexpr std::string_view kListings[] = {"/api/tags", "/v1/models", "/api/ps", "/api/version"};

std::optional<ListingKind> listing_of(std::string_view path) {
  for (std::size_t i = 0; i < std::size(kListings); ++i) {
    if (kListings[i] == path) {
      return static_cast<ListingKind>(i);
    }
  }
  return std::nullopt;
}

// A node's listing in the shape its endpoint promises, or nullopt.
std::optional<json> parse_listing(ListingKind kind, const NodeAnswer& answer) {
  if (!answer.answered() || answer.status != 200) {
    return std::nullopt;
  }
  auto body = json::parse(answer.body, nullptr, false);
  if (!body.is_object()) {
    return std::nullopt;
  }
  const bool ok = kind == ListingKind::version         ? body.value("version", json{}).is_string()
                  : kind == ListingKind::openai_models ? body.value("data", json{}).is_array()
                                                       : body.value("models", json{}).is_array();
  return ok ? std::optional{std::move(body)} : std::nullopt;
}

json merge_listing(ListingKind kind, const std::vector<NodeListing>& listings) {
  switch (kind) {
    case ListingKind::tags:
      return merge_tags(listings);
    case ListingKind::openai_models:
      return merge_openai_models(listings);
    case ListingKind::ps:
      return merge_ps(listings);
    case ListingKind::version:
      break;
  }
  // The lowest version: a client that checks the version for a feature gets one every node has.
  std::string lowest = listings.front().body["version"].get<std::string>();
  for (const auto& listing : listings) {
    const auto version = listing.body["version"].get<std::string>();
    if (compare_versions(version, lowest) < 0) {
      lowest = version;
    }
  }
  return json{{"version", lowest}};
}

// The nodes a request addresses: those named by X-Gateway-Nodes, else the healthy ones.
std::variant<std::vector<std::shared_ptr<UpstreamNode>>, http::response<http::string_body>>
select_targets(const Snapshot& snapshot, const Request& request, bool keep_alive) {
  std::vector<std::shared_ptr<UpstreamNode>> targets;
  const auto header = request.find(kNodesHeader);
  if (header != request.end()) {
    std::vector<std::string> known;
    for (const auto& node : snapshot.nodes) {
      known.push_back(node->id);
    }
    const auto selection = parse_node_selection(header->value(), known);
    if (!selection.error.empty()) {
      return fleet_error(400, selection.error, keep_alive);
    }
    for (const auto& name : selection.names) {
      const auto it = std::find_if(snapshot.nodes.begin(), snapshot.nodes.end(),
                                   [&](const auto& node) { return node->id == name; });
      targets.push_back(*it);
    }
    return targets;
  }
  for (const auto& node : snapshot.nodes) {
    if (node->healthy.load()) {
      targets.push_back(node);
    }
  }
  if (targets.empty()) {
    return fleet_error(502, "no healthy node to ask", keep_alive);
  }
  return targets;
}

// The same request to every target at once, without streaming.
asio::awaitable<std::vector<NodeAnswer>> ask_targets(FleetRequest& fleet, http::verb method,
                                                     std::string target, std::string body,
                                                     FleetCallLimits limits) {
  auto state = std::make_shared<FanOut>(co_await asio::this_coro::executor, kAnswerChannelCapacity);
  co_return co_await fan_out(
      state, fleet.targets.size(), [&](std::size_t index, const RecordSink&) {
        return call_node(*fleet.targets[index], method, target, body,
                         std::string{fleet.request[http::field::authorization]}, limits,
                         state->cancel);
      });
}

// Every target's version, when each was read recently enough: within a health interval and a
// probe's timeout, i.e. no probe since has failed or is overdue. Else nullopt: the nodes are
// asked. A node restarted with another version is seen at its next probe.
std::optional<std::vector<NodeListing>> recent_versions(const FleetRequest& fleet) {
  const auto& health = fleet.snapshot->config().health;
  const auto oldest = Clock::now() - (health.interval + health.timeout);
  std::vector<NodeListing> versions;
  for (const auto& node : fleet.targets) {
    const auto known = node->version.load(std::memory_order_acquire);
    if (!known || known->read_at < oldest) {
      return std::nullopt;
    }
    versions.push_back({node->id, json{{"version", known->version}}});
  }
  return versions;
}

asio::awaitable<ProxyResult> list_fleet(FleetRequest& fleet, ListingKind kind, std::string path) {
  if (kind == ListingKind::version) {
    if (auto versions = recent_versions(fleet)) {
      co_return co_await send_fleet_response(
          fleet, fleet_json(200, merge_listing(kind, *versions), fleet.keep_alive));
    }
  }
  const auto& config = fleet.snapshot->config();
  const auto timeout = config.health.timeout;
  FleetCallLimits limits;
  limits.connect = std::min(config.timeouts.connect, timeout);
  limits.head = timeout;
  limits.idle = timeout;
  limits.deadline = Clock::now() + timeout;
  limits.max_body_bytes = config.limits.max_body_bytes;
  const auto answers =
      co_await ask_targets(fleet, http::verb::get, path, {}, pooled_on(fleet, limits));
  std::vector<NodeListing> listings;
  std::vector<std::string> left_out;
  std::string problems;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    const auto& answer = answers[i];
    if (auto body = parse_listing(kind, answer)) {
      if (kind == ListingKind::version) {
        remember_version(*fleet.targets[i], answer.body);
      }
      listings.push_back({answer.node, std::move(*body)});
      continue;
    }
    const std::string problem = answer.status == 200 && answer.failure.empty()
                                    ? "answered a body that is not its " + path + " listing"
                                    : answer.problem();
    spdlog::warn("fleet GET {}: node {} left out: {}", path, answer.node, problem);
    left_out.push_back(answer.node);
    problems += (problems.empty() ? "" : "; ") + ("node " + answer.node + ": " + problem);
  }
  if (listings.empty()) {
    co_return co_await send_fleet_response(
        fleet,
        fleet_error(502, "no node answered GET " + path + ": " + problems, fleet.keep_alive));
  }
  auto response = fleet_json(200, merge_listing(kind, listings), fleet.keep_alive);
  if (!left_out.empty()) {
    response.set(kPartialHeader, join_names(left_out));
  }
  co_return co_await send_fleet_response(fleet, std::move(response));
}

// The answer to a delete or copy from the nodes' answers: 200 when it was done wherever the
// model was, 404 in the nodes' own shape when no node had it, the failure otherwise (naming each
// failed node). Not a coroutine: GCC 12 cannot keep an initializer list alive across co_await.
http::response<http::string_body> change_answer(const FleetRequest& fleet, const std::string& path,
                                                const std::vector<NodeAnswer>& answers,
                                                std::string_view done_word) {
  json nodes = json::array();
  std::vector<const NodeAnswer*> failed;
  std::string problems;
  bool any_done = false;
  for (const auto& answer : answers) {
    const bool done = answer.answered() && answer.status == 200;
    const bool absent = answer.answered() && answer.status == 404;
    any_done = any_done || done;
    if (done || absent) {
      nodes.push_back({{"node", answer.node}, {"status", done ? done_word : "not found"}});
      continue;
    }
    failed.push_back(&answer);
    problems += (problems.empty() ? "" : "; ") + ("node " + answer.node + ": " + answer.problem());
    nodes.push_back({{"node", answer.node}, {"error", answer.problem()}});
  }
  const std::string what = std::string{fleet.request.method_string()} + " " + path;
  if (!failed.empty()) {
    spdlog::warn("fleet {}: {}", what, problems);
    return fleet_json(failure_status(failed),
                      json{{"error", what + " failed on " + problems}, {"nodes", nodes}},
                      fleet.keep_alive);
  }
  if (!any_done) {
    // No node had it: the first node's own 404 body (Ollama's wording).
    auto shape = json::parse(answers.front().body, nullptr, false);
    if (!shape.is_object() || !shape.contains("error")) {
      shape = json{{"error", "model not found on any node"}};
    }
    return fleet_json(404, shape, fleet.keep_alive);
  }
  return fleet_json(200, json{{"nodes", nodes}}, fleet.keep_alive);
}

// DELETE /api/delete and POST /api/copy on every addressed node (change_answer).
asio::awaitable<ProxyResult> change_on_fleet(FleetRequest& fleet, std::string_view done_word) {
  if (!json::parse(fleet.request.body(), nullptr, false).is_object()) {
    co_return co_await send_fleet_response(
        fleet, fleet_error(400, "the request body must be a JSON object", fleet.keep_alive));
  }
  const std::string path{net::target_path(fleet.request.target())};
  const auto answers = co_await ask_targets(fleet, fleet.request.method(), path,
                                            fleet.request.body(), request_limits(fleet));
  on_fleet_models_changed(fleet.worker.shared, target_names(fleet));
  co_return co_await send_fleet_response(fleet, change_answer(fleet, path, answers, done_word));
}

}  // namespace

bool is_fleet_request(const Request& request) noexcept {
  const std::string_view path = net::target_path(request.target());
  const auto method = request.method();
  if (listing_of(path)) {
    return method == http::verb::get || method == http::verb::head;
  }
  return (method == http::verb::post && (path == "/api/pull" || path == "/api/copy")) ||
         (method == http::verb::delete_ && path == "/api/delete");
}

FleetCallLimits request_limits(const FleetRequest& fleet) {
  const auto& config = fleet.snapshot->config();
  FleetCallLimits limits;
  limits.connect = config.timeouts.connect;
  limits.head = config.timeouts.first_byte;
  limits.idle = config.timeouts.idle;
  if (config.timeouts.total.count() > 0) {
    limits.deadline = fleet.started + config.timeouts.total;
  }
  limits.max_body_bytes = config.limits.max_body_bytes;
  return pooled_on(fleet, limits);
}

FleetCallLimits pooled_on(const FleetRequest& fleet, FleetCallLimits limits) {
  const auto& config = fleet.snapshot->config();
  limits.pool = &fleet.worker.pool;
  limits.pool_idle_age = config.timeouts.upstream_idle;
  limits.pool_max_idle = config.limits.max_idle_upstream_per_node;
  return limits;
}

bool remember_version(UpstreamNode& node, std::string_view body) {
  const auto parsed = json::parse(body, nullptr, false);
  if (!parsed.is_object() || !parsed.value("version", json{}).is_string()) {
    node.version.store(nullptr, std::memory_order_release);
    return false;
  }
  node.version.store(std::make_shared<const NodeVersion>(
                         NodeVersion{parsed["version"].get<std::string>(), Clock::now()}),
                     std::memory_order_release);
  return true;
}

std::vector<std::string> target_names(const FleetRequest& fleet) {
  std::vector<std::string> names;
  for (const auto& node : fleet.targets) {
    names.push_back(node->id);
  }
  return names;
}

void on_fleet_models_changed(SharedState& shared, const std::vector<std::string>& nodes) {
  // The catalog refreshes these nodes' entries now instead of at its next interval, so routing
  // by model sees a pulled model at once.
  for (const auto& node : nodes) {
    request_catalog_refresh(shared, node);
  }
}

http::response<http::string_body> fleet_json(int status, const json& body, bool keep_alive) {
  http::response<http::string_body> response;
  response.version(11);
  response.result(static_cast<unsigned>(status));
  response.set(http::field::content_type, "application/json; charset=utf-8");
  response.set(http::field::server, "llmgw");
  response.set("X-Gateway-Route", "fleet");
  response.body() = body.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

http::response<http::string_body> fleet_error(int status, const std::string& message,
                                              bool keep_alive) {
  return fleet_json(status, json{{"error", message}}, keep_alive);
}

asio::awaitable<ProxyResult> send_fleet_response(FleetRequest& fleet,
                                                 http::response<http::string_body> response) {
  const int status = response.result_int();
  const std::uint64_t bytes = response.body().size();
  if (fleet.request.method() == http::verb::head) {
    response.body().clear();  // Content-Length stays that of the GET
  }
  response.set(kRequestIdHeader, fleet.connection.request_id);
  fleet.worker.shared.metrics.count_unrouted(status, fleet.connection.key_slot);
  fleet.connection.watchdog->arm(Watchdog::Side::client, fleet.snapshot->config().timeouts.idle);
  auto [ec, n] = co_await http::async_write(*fleet.connection.client, response, kAsTuple);
  co_return ProxyResult{status, !ec && response.keep_alive(), {}, "fleet", bytes};
}

asio::awaitable<ProxyResult> handle_fleet(Worker& worker, ClientConnection& connection,
                                          Request& request, Clock::time_point started) {
  FleetRequest fleet{worker,
                     connection,
                     request,
                     worker.snapshot(),
                     {},
                     started,
                     request.keep_alive() && !worker.shared.draining.load()};
  // The nodes' own timeouts bound the wait from here; the client side is armed per write.
  connection.watchdog->disarm();
  auto selected = select_targets(*fleet.snapshot, request, fleet.keep_alive);
  if (auto* refusal = std::get_if<http::response<http::string_body>>(&selected)) {
    co_return co_await send_fleet_response(fleet, std::move(*refusal));
  }
  fleet.targets = std::move(std::get<0>(selected));
  const std::string path{net::target_path(request.target())};
  if (const auto kind = listing_of(path)) {
    co_return co_await list_fleet(fleet, *kind, path);
  }
  if (path == "/api/pull") {
    co_return co_await pull_on_fleet(fleet);
  }
  co_return co_await change_on_fleet(fleet, path == "/api/copy" ? "copied" : "deleted");
}

}  // namespace llmgw::server::detail
