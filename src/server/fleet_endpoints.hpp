#pragma once

// Internal: the fleet endpoints, where clients see one Ollama instead of N nodes. The gateway
// answers them itself by asking the nodes at request time (fleet_upstream.hpp), concurrently:
//
//   GET /api/tags     the union of the healthy nodes' models, one entry per (name, digest)
//   GET /v1/models    the union, one entry per id
//   GET /api/ps       every node's loaded models, each entry with "node": "<node name>"
//   GET /api/version  the lowest version among the healthy nodes (what every node supports),
//                     from the versions their health probes read (UpstreamNode::version) while
//                     those are at most health.interval_ms + timeout_ms old, else asked
//   POST /api/pull    to every healthy node; one merged NDJSON progress stream (fleet_pull.cpp)
//   DELETE /api/delete, POST /api/copy   to every healthy node; one answer naming each node's
//
// `X-Gateway-Nodes: a,b` addresses the named nodes instead (healthy or not); an unknown name is
// a 400. A listing leaves out a node that does not answer within health.timeout and names it in
// `X-Gateway-Partial`; when no node answers, 502. Shapes are Ollama's and OpenAI's, so the
// official clients parse them; README.md "Fleet endpoints" has the examples.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "fleet_upstream.hpp"
#include "gateway_state.hpp"
#include "proxy.hpp"

namespace llmgw::server::detail {

// True for the requests the fleet endpoints answer (method and path).
bool is_fleet_request(const Request& request) noexcept;

// Answers a fleet request on `connection`. Never throws.
asio::awaitable<ProxyResult> handle_fleet(Worker& worker, ClientConnection& connection,
                                          Request& request,
                                          std::chrono::steady_clock::time_point started);

// Called after a pull, delete or copy with the nodes it was sent to, so that the per-node model
// catalog refreshes them (request_catalog_refresh) instead of waiting for its next interval.
void on_fleet_models_changed(SharedState& shared, const std::vector<std::string>& nodes);

// --- Pure parts, unit-tested (tests/unit/server/fleet_merge_test.cpp) ---

struct NodeListing {
  std::string node;
  nlohmann::json body;  // the node's parsed answer
};

// {"models": [...]}: every node's entries, the first of each (name, digest) kept, in node order.
nlohmann::json merge_tags(const std::vector<NodeListing>& listings);
// {"object": "list", "data": [...]}: the first entry of each id kept.
nlohmann::json merge_openai_models(const std::vector<NodeListing>& listings);
// {"models": [...]}: every node's entries, each with "node" set to its node's name.
nlohmann::json merge_ps(const std::vector<NodeListing>& listings);

// <0, 0, >0 as version a is older than, equal to or newer than b ("0.5.7" < "0.6.0" <
// "0.10.1"; a pre-release "0.6.0-rc1" < "0.6.0"; a leading "v" is ignored).
int compare_versions(std::string_view a, std::string_view b);

// X-Gateway-Nodes ("a, b"): the names in order, duplicates dropped; or an error naming the
// unknown (or missing) names.
struct NodeSelection {
  std::vector<std::string> names;
  std::string error;  // non-empty: refuse with 400
};
NodeSelection parse_node_selection(std::string_view header, const std::vector<std::string>& known);

// One record of node `node`'s pull stream as the merged stream relays it: "node" added; a
// node's {"status":"success"} becomes {"status":"node <name>: success"}, so that clients
// (ollama-js, Ollama's CLI) that stop at the first "success" read on to the fleet's own.
struct RelayedPullRecord {
  std::string line;   // to relay (with its newline); empty for an error record
  std::string error;  // the node's {"error": ...}, or why the record is unusable
  bool success = false;
};
RelayedPullRecord relay_pull_record(std::string_view record, std::string_view node);

// --- Shared by fleet_endpoints.cpp and fleet_pull.cpp ---

struct FleetRequest {
  Worker& worker;
  ClientConnection& connection;
  Request& request;
  std::shared_ptr<const Snapshot> snapshot;
  std::vector<std::shared_ptr<UpstreamNode>> targets;  // the nodes addressed
  std::chrono::steady_clock::time_point started;
  bool keep_alive = true;
};

// The bounds of each node's call for a pull, delete or copy: timeouts.connect_ms,
// first_byte_ms and idle_ms, timeouts.total_ms from the request's arrival, limits.max_body_bytes;
// on the worker's keep-alive connections (pooled_on).
FleetCallLimits request_limits(const FleetRequest& fleet);

// `limits` with the worker's upstream pool and its bounds (timeouts.upstream_idle_ms,
// limits.max_idle_upstream_per_node).
FleetCallLimits pooled_on(const FleetRequest& fleet, FleetCallLimits limits);

// Keeps the version in `body` (a node's answer to GET /api/version) as the node's current one;
// false, and the node's version forgotten, when the body carries none.
bool remember_version(UpstreamNode& node, std::string_view body);

// The names of the nodes addressed.
std::vector<std::string> target_names(const FleetRequest& fleet);

// Node names, "a, b".
std::string join_names(const std::vector<std::string>& names);

// The status for a request that failed on the nodes in `failed`: theirs when they all answered
// the same HTTP error, 504 when every one timed out, else 502.
int failure_status(const std::vector<const NodeAnswer*>& failed);

// A JSON response from the gateway (X-Gateway-Route: fleet).
http::response<http::string_body> fleet_json(int status, const nlohmann::json& body,
                                             bool keep_alive);

// {"error": message}, as fleet_json.
http::response<http::string_body> fleet_error(int status, const std::string& message,
                                              bool keep_alive);

// Writes `response` to the client (its body dropped for HEAD) and accounts for it.
asio::awaitable<ProxyResult> send_fleet_response(FleetRequest& fleet,
                                                 http::response<http::string_body> response);

// POST /api/pull (fleet_pull.cpp).
asio::awaitable<ProxyResult> pull_on_fleet(FleetRequest& fleet);

}  // namespace llmgw::server::detail
