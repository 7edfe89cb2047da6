#include "local_endpoints.hpp"

#include <prometheus/gauge.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "catalog.hpp"
#include "credentials.hpp"
#include "llmgw/net/http_types.hpp"
#include "llmgw/net/url.hpp"
#include "llmgw/version.hpp"
#include "proxy.hpp"
#include "status_page.hpp"

namespace llmgw::server::detail {
namespace {

using nlohmann::json;

http::response<http::string_body> make_response(int status, std::string content_type,
                                                std::string body, bool keep_alive) {
  http::response<http::string_body> response;
  response.version(11);
  response.result(static_cast<unsigned>(status));
  response.set(http::field::content_type, std::move(content_type));
  response.set(http::field::server, "llmgw");
  response.body() = std::move(body);
  response.keep_alive(keep_alive);
  response.prepare_payload();
  return response;
}

// How much longer an ejected node stays out before checks count again (0 when healthy).
std::int64_t ejected_for_ms(const UpstreamNode& node) {
  if (node.healthy.load()) {
    return 0;
  }
  const auto left = node.health.ejected_until() - std::chrono::steady_clock::now();
  return std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count());
}

double unix_seconds(std::chrono::system_clock::time_point at) {
  return std::chrono::duration<double>(at.time_since_epoch()).count();
}

// Oldest first: {"kind": "failure"|"ejected"|"readmitted", "reason", "count", "first", "last"}
// (times in seconds since the epoch).
json events_json(const NodeEvents& events) {
  json out = json::array();
  for (const auto& event : events.recent()) {
    out.push_back({{"kind", event.kind},
                   {"reason", event.reason},
                   {"count", event.count},
                   {"first", unix_seconds(event.first)},
                   {"last", unix_seconds(event.last)}});
  }
  return out;
}

// The node's admission: its caps, slots held, queue by class, and the estimate's inputs (null
// until observed).
json admission_json(const UpstreamNode& node) {
  using admission::Priority;
  const auto view = node.admission.view(Priority::interactive, {});
  const auto optional_number = [](std::optional<double> value) {
    return value ? json(*value) : json(nullptr);
  };
  return {{"max_in_flight", view.cap},
          {"max_in_flight_per_model", view.per_model_cap},
          {"interactive_reserve", view.interactive_reserve},
          {"active_sessions", view.active_sessions},
          {"reserved", view.reserved},
          {"in_flight", view.in_flight},
          {"batch_in_flight", view.batch_in_flight},
          {"queued",
           {{"interactive", view.queued[static_cast<std::size_t>(Priority::interactive)]},
            {"batch", view.queued[static_cast<std::size_t>(Priority::batch)]}}},
          {"service_seconds", optional_number(view.service_seconds)},
          {"prefill_seconds_per_token", optional_number(view.prefill_seconds_per_token)},
          {"cache_reuse", optional_number(view.cache_reuse)}};
}

json node_json(const UpstreamNode& node, unsigned virtual_nodes) {
  return {{"name", node.id},
          {"url", net::redact_url(node.config.url)},
          {"weight", node.weight.load()},
          {"draining", node.draining.load()},
          {"healthy", node.healthy.load()},
          {"in_flight", node.in_flight.load()},
          {"sessions", node.sessions.load()},
          {"interactive_sessions", node.interactive_sessions.load()},
          {"requests", node.requests.load()},
          {"consecutive_failures", node.health.consecutive_failures()},
          {"ejections", node.health.ejections()},
          {"ejected_for_ms", ejected_for_ms(node)},
          {"virtual_nodes", virtual_nodes},
          {"api", node.config.api},
          {"source", node.config.discovered ? "dns" : "config"},
          {"catalog", catalog_json(node)},
          {"admission", admission_json(node)},
          {"recent_events", events_json(node.events)}};
}

http::response<http::string_body> health(SharedState& shared, bool keep_alive) {
  const auto snapshot = shared.current();
  json nodes = json::array();
  std::size_t healthy = 0;
  for (std::size_t i = 0; i < snapshot->nodes.size(); ++i) {
    const auto& node = snapshot->node(i);
    healthy += node.healthy.load() ? 1 : 0;
    nodes.push_back(node_json(node, snapshot->table.ring().virtual_nodes_of(i)));
  }
  const bool draining = shared.draining.load();
  const std::string status = draining                           ? "draining"
                             : healthy == 0                     ? "unavailable"
                             : healthy < snapshot->nodes.size() ? "degraded"
                                                                : "ok";
  const auto& routing = snapshot->config().routing;
  const json body{
      {"status", status},
      {"version", std::string{kVersion}},
      {"uptime_seconds",
       std::chrono::duration<double>(std::chrono::steady_clock::now() - shared.started).count()},
      {"in_flight", shared.total_in_flight.load()},
      {"client_connections", shared.client_connections.load()},
      {"routing",
       {{"mode", routing.balance_factor > 0 ? "bounded" : "consistent_hash"},
        {"balance_factor", routing.balance_factor},
        {"balance_by", routing.balance_by},
        {"live_sessions", snapshot->sessions
                              ? snapshot->sessions->live_sessions(std::chrono::steady_clock::now())
                              : 0},
        {"session_header", routing.session_header},
        {"max_attempts", routing.max_attempts},
        // Shared placements (README "Running more than one gateway"); the URL without password.
        {"placement_store", shared.placement_store
                                ? json{{"url", net::redact_url(shared.config.placement_store)},
                                       {"available", shared.placement_store->available()}}
                                : json(nullptr)}}},
      {"preheat",
       {{"max_bytes", snapshot->config().preheat.max_bytes},
        {"sessions", shared.prompts.size(std::chrono::steady_clock::now())},
        {"bytes", shared.prompts.bytes()},
        {"evictions", shared.prompts.evictions()}}},
      {"admission",
       {{"priority_header", snapshot->config().admission.priority_header},
        {"warm_wait", snapshot->config().admission.warm_wait},
        {"batch_aging_ms", snapshot->config().admission.batch_aging.count()},
        {"interactive_reserve", snapshot->config().admission.interactive_reserve},
        {"interactive_reserve_idle_ms",
         snapshot->config().admission.interactive_reserve_idle.count()}}},
      {"ring",
       {{"virtual_nodes", snapshot->table.ring().virtual_node_count()},
        {"virtual_nodes_per_node", routing.virtual_nodes},
        {"nodes", snapshot->nodes.size()},
        {"snapshot_version", snapshot->version}}},
      {"nodes", nodes}};
  const int code = (draining || healthy == 0) ? 503 : 200;
  return make_response(code, "application/json", body.dump() + "\n", keep_alive);
}

http::response<http::string_body> status_page(const Snapshot& snapshot,
                                              const http::request<http::string_body>& request,
                                              bool keep_alive) {
  const auto& config = snapshot.config();
  if (config.status.require_token &&
      !authorized_by_token(request[http::field::authorization], config.admin.token)) {
    auto response = json_error(401, "the status page needs the admin token", keep_alive);
    response.set(http::field::www_authenticate, "Basic realm=\"llmgw status\", charset=\"UTF-8\"");
    return response;
  }
  auto response =
      make_response(200, "text/html; charset=utf-8", std::string{status_page_html()}, keep_alive);
  response.set(http::field::cache_control, "no-store");
  response.set("X-Content-Type-Options", "nosniff");
  // The page loads nothing from elsewhere, and a browser enforces it.
  response.set("Content-Security-Policy",
               "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "connect-src 'self'; img-src data:; frame-ancestors 'none'");
  return response;
}

json nodes_json(const Snapshot& snapshot) {
  json nodes = json::array();
  for (std::size_t i = 0; i < snapshot.nodes.size(); ++i) {
    nodes.push_back(node_json(snapshot.node(i), snapshot.table.ring().virtual_nodes_of(i)));
  }
  return {{"nodes", nodes}};
}

// The running configuration with `added` appended to its nodes, validated with the config
// loader's rules (throws config::ConfigError naming the key).
config::GatewayConfig with_node_added(const config::GatewayConfig& running, const json& added) {
  config::NodeConfig node;
  node.url = added.at("url").get<std::string>();
  node.name = added.value("name", std::string{});
  node.weight = added.value("weight", 1.0);
  config::resolve_node(node, "nodes[" + std::to_string(running.nodes.size()) + "]");
  auto next = running;
  next.nodes.push_back(std::move(node));
  config::validate(next);
  return next;
}

// PATCH /admin/nodes/NAME: the running configuration with the node's `draining` and/or `weight`
// changed as `patch` says. Refuses (`problem` set, nullopt) what is not exactly that.
std::optional<config::GatewayConfig> with_node_patched(const config::GatewayConfig& running,
                                                       const std::string& name, const json& patch,
                                                       std::string& problem, int& status) {
  status = 400;
  if (!patch.is_object() || patch.empty()) {
    problem = "expected a JSON object with \"draining\" (true or false) and/or \"weight\" (> 0)";
    return std::nullopt;
  }
  for (const auto& [key, value] : patch.items()) {
    if (key != "draining" && key != "weight") {
      problem = "unknown field \"" + key + "\": a node's draining and weight can be changed";
      return std::nullopt;
    }
  }
  if (patch.contains("draining") && !patch["draining"].is_boolean()) {
    problem = "\"draining\" must be true or false, got " + patch["draining"].dump();
    return std::nullopt;
  }
  if (patch.contains("weight") &&
      (!patch["weight"].is_number() || !(patch["weight"].get<double>() > 0) ||
       !std::isfinite(patch["weight"].get<double>()))) {
    problem = "\"weight\" must be a number > 0, got " + patch["weight"].dump();
    return std::nullopt;
  }
  auto next = running;
  const auto it = std::find_if(next.nodes.begin(), next.nodes.end(),
                               [&](const config::NodeConfig& node) { return node.name == name; });
  if (it == next.nodes.end()) {
    status = 404;
    problem = "no node named \"" + name + "\"";
    return std::nullopt;
  }
  if (patch.contains("draining")) {
    it->draining = patch["draining"].get<bool>();
  }
  if (patch.contains("weight")) {
    it->weight = patch["weight"].get<double>();
  }
  config::validate(next);
  return next;
}

// PATCH /admin/nodes/NAME, published like every admin change (throws json::exception for a body
// that is not JSON, config::ConfigError for a change the loader refuses).
http::response<http::string_body> patch_node(SharedState& shared, const std::string& name,
                                             const std::string& body, bool keep_alive) {
  const auto patch = json::parse(body);
  std::string problem;
  int status = 400;
  const auto published = shared.update([&](const config::GatewayConfig& running) {
    return with_node_patched(running, name, patch, problem, status);
  });
  if (!problem.empty()) {
    return json_error(status, problem, keep_alive);
  }
  return make_response(200, "application/json", nodes_json(*published).dump() + "\n", keep_alive);
}

http::response<http::string_body> admin(SharedState& shared,
                                        const http::request<http::string_body>& request,
                                        bool keep_alive) {
  const auto snapshot = shared.current();
  const std::string& token = snapshot->config().admin.token;
  if (token.empty()) {
    return json_error(404, "the admin API is disabled: set admin.token or admin.token_file",
                      keep_alive);
  }
  const std::string_view authorization = request[http::field::authorization];
  if (!token_matches(bearer_token(authorization), token)) {
    auto response = json_error(401, "missing or wrong admin bearer token", keep_alive);
    response.set(http::field::www_authenticate, "Bearer");
    return response;
  }
  const std::string_view path = net::target_path(request.target());
  constexpr std::string_view kNodes = "/admin/nodes";
  if (path == kNodes && request.method() == http::verb::get) {
    return make_response(200, "application/json", nodes_json(*snapshot).dump() + "\n", keep_alive);
  }
  // Each change reads the running node list and publishes the next one under the membership
  // lock (SharedState::update): two changes at once both land, none is lost.
  try {
    if (path == kNodes && request.method() == http::verb::post) {
      const auto body = json::parse(request.body());
      if (!body.is_object() || !body.contains("url")) {
        return json_error(400,
                          "expected a JSON object with \"url\" (and optional \"name\", "
                          "\"weight\")",
                          keep_alive);
      }
      const auto published = shared.update([&](const config::GatewayConfig& running) {
        return std::optional{with_node_added(running, body)};
      });
      // Its models at once (as a reload asks), not at the next catalog round: routing by model
      // and preheats (preheat.hpp) wait for them.
      request_catalog_refresh(shared, published->nodes.back()->id);
      return make_response(201, "application/json", nodes_json(*published).dump() + "\n",
                           keep_alive);
    }
    const bool named =
        path.starts_with(kNodes) && path.size() > kNodes.size() + 1 && path[kNodes.size()] == '/';
    if (named && request.method() == http::verb::patch) {
      return patch_node(shared, std::string{path.substr(kNodes.size() + 1)}, request.body(),
                        keep_alive);
    }
    if (named && request.method() == http::verb::delete_) {
      const std::string name{path.substr(kNodes.size() + 1)};
      std::optional<http::response<http::string_body>> refused;
      const auto published = shared.update([&](const config::GatewayConfig& running)
                                               -> std::optional<config::GatewayConfig> {
        auto next = running;
        if (std::any_of(next.nodes.begin(), next.nodes.end(),
                        [&](const auto& node) { return node.name == name && node.discovered; })) {
          refused =
              json_error(409,
                         "node \"" + name + "\" was found by DNS discovery (discovery.dns.name " +
                             running.discovery.dns.name +
                             "): it leaves when its record does; drain it with PATCH "
                             "{\"draining\": true} meanwhile",
                         keep_alive);
          return std::nullopt;
        }
        if (std::erase_if(next.nodes, [&](const auto& node) { return node.name == name; }) == 0) {
          refused = json_error(404, "no node named \"" + name + "\"", keep_alive);
          return std::nullopt;
        }
        if (next.nodes.empty()) {
          refused = json_error(409, "refusing to remove the last node", keep_alive);
          return std::nullopt;
        }
        config::validate(next);
        return next;
      });
      if (refused) {
        return std::move(*refused);
      }
      return make_response(200, "application/json", nodes_json(*published).dump() + "\n",
                           keep_alive);
    }
  } catch (const json::exception& e) {
    return json_error(400, std::string{"request body is not valid JSON: "} + e.what(), keep_alive);
  } catch (const config::ConfigError& e) {
    return json_error(400, e.what(), keep_alive);
  }
  return json_error(404, "unknown admin path or method", keep_alive);
}

}  // namespace

bool is_probe_path(std::string_view path) noexcept {
  return path == "/" || path == "/health" || path == "/metrics" || path == "/status";
}

bool is_local_path(std::string_view path) noexcept {
  return is_probe_path(path) || path == "/admin" || path.starts_with("/admin/");
}

http::response<http::string_body> handle_local(SharedState& shared,
                                               const http::request<http::string_body>& request) {
  const bool keep_alive = request.keep_alive() && !shared.draining.load();
  const std::string_view path = net::target_path(request.target());
  const bool read_only =
      request.method() == http::verb::get || request.method() == http::verb::head;
  if (path.starts_with("/admin")) {
    return admin(shared, request, keep_alive);
  }
  if (!read_only) {
    return json_error(405, "method not allowed on " + std::string{path}, keep_alive);
  }
  if (path == "/health") {
    return health(shared, keep_alive);
  }
  if (path == "/status") {
    return status_page(*shared.current(), request, keep_alive);
  }
  if (path == "/metrics") {
    shared.metrics.set_client_connections(static_cast<double>(shared.client_connections.load()));
    const auto snapshot = shared.current();
    if (snapshot->sessions) {
      snapshot->sessions->live_sessions(std::chrono::steady_clock::now());  // expires idle ones
    }
    for (const auto& node : snapshot->nodes) {
      node->metrics.sessions->Set(static_cast<double>(node->sessions.load()));
    }
    auto& preheat = shared.metrics.preheat();
    preheat.store_sessions->Set(
        static_cast<double>(shared.prompts.size(std::chrono::steady_clock::now())));
    preheat.store_bytes->Set(static_cast<double>(shared.prompts.bytes()));
    return make_response(200, "text/plain; version=0.0.4; charset=utf-8",
                         shared.metrics.serialize(), keep_alive);
  }
  return make_response(200, "text/plain; charset=utf-8", "llmgw is running\n", keep_alive);
}

}  // namespace llmgw::server::detail
