#pragma once

// Internal: the model catalog (routing by model, DESIGN.md §1.3). Which node holds which model,
// kept per node in UpstreamNode::models (routing/model_catalog.hpp) so that a node that stays
// across a reload keeps its entry.
//
// Kept up to date three ways:
//   - every catalog.interval_ms, each node is asked (ollama: GET /api/tags and /api/ps; openai:
//     GET /v1/models), on the control thread, off the proxy path;
//   - on demand, request_catalog_refresh(): after a pull or a delete through the gateway, after a
//     node answered 404 "model not found";
//   - from answers, at once: a 404 "model not found" from a node the catalog placed the model on
//     removes the model from that node's entry (forget_model) before the request is retried on the
//     next holder; a 2xx for a model marks it loaded there (note_loaded).
// A failed fetch keeps the lists (for /health) but marks the entry not current: such a node counts
// as holding every model until a fetch succeeds.
//
// Thread safety: everything here may be called from any thread; entries are published as
// std::shared_ptr<const NodeModels> (readers never lock).

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "gateway_state.hpp"
#include "llmgw/routing/model_catalog.hpp"

namespace llmgw::server::detail {

// Inference paths: their body names a model, and they are routed by it.
bool is_model_path(std::string_view path) noexcept;

// The routing view of one request's model.
struct ModelRoute {
  std::string model;      // canonical; empty: the request names no model (no filter)
  std::string requested;  // as the client wrote it (for the 404's message)
  routing::Eligibility eligibility;
  // Every node's entry is current and none holds the model: answer 404 without a node.
  bool held_nowhere = false;
};

// The candidates for `model` (as the client wrote it) in `snapshot`. With the catalog off
// (catalog.interval_ms 0) or no model, every node. Holders: the nodes whose entry lists it, and
// those whose entry is not current. Preferred (router.hpp's loaded-first tier): holders where it
// is loaded or has requests now, idle ones (nothing loaded, no other model's requests), or whose
// entry is not current (takes_without_swap); a holder busy with other
// models comes after them, as a load there would evict one (Ollama's max loaded models). With one
// model per fleet, or a fleet that has loaded nothing yet, every holder is preferred and the plain
// ring order applies.
// Draining nodes (nodes[].draining) are left out of the holders, unless only draining nodes hold
// the model.
ModelRoute route_model(const Snapshot& snapshot, std::string_view model);
// The same with draining nodes kept (where a session was: preheat.hpp).
ModelRoute route_model_held(const Snapshot& snapshot, std::string_view model);

// Whether `node` can serve `canonical` without swapping models: the model is loaded there or has
// requests there now, or the node is idle (nothing loaded, no request for another model). True
// for an empty model and for a node whose entry is not current. The preferred tier of
// route_model, and what admission checks before it spills a request to another holder.
bool takes_without_swap(const UpstreamNode& node, const std::string& canonical);
bool takes_without_swap(const UpstreamNode& node, const routing::NodeModels& models,
                        const std::string& canonical);

// The 404 body a node gives for a model it does not hold, in the shape of the path's API: Ollama's
// {"error":"model \"x\" not found, try pulling it first"} for /api/*, the OpenAI error object for
// /v1/chat/completions, /v1/completions and /v1/embeddings, Anthropic's for /v1/messages.
std::string model_not_found_body(std::string_view path, std::string_view model);

// A node answered 404 "model not found" for `canonical`: drop it from the node's entry and ask
// for a fresh fetch. Returns true when the entry had placed the model there.
bool forget_model(SharedState& shared, UpstreamNode& node, std::string_view canonical);

// A node served `canonical`: it is loaded there now (until the next fetch says otherwise).
void note_loaded(UpstreamNode& node, std::string_view canonical);

// Asks for a fetch of `node`'s models now (by node name; "" = every node). Returns at once; the
// fetch runs on the control thread. For the fleet endpoints after /api/pull and /api/delete.
void request_catalog_refresh(SharedState& shared, std::string_view node);

// The node's entry for /health: {"current", "models", "loaded", "age_ms", "error"}.
nlohmann::json catalog_json(const UpstreamNode& node);

// Fetches every node's models every catalog.interval_ms, and on request.
class CatalogRefresher {
 public:
  // Registers request_catalog_refresh's hook in `shared` (construct it before the workers run).
  CatalogRefresher(SharedState& shared, asio::io_context& control,
                   const std::atomic<bool>& stop_requested);
  // Spawns the loop on the control context (its first round fetches at once).
  void start();
  // The next round now (a reload: new nodes, a new interval).
  void wake();

 private:
  asio::awaitable<void> loop();
  asio::awaitable<void> fetch(std::shared_ptr<UpstreamNode> node);
  void fetch_soon(std::string_view node);

  SharedState& shared_;
  asio::io_context& control_;
  const std::atomic<bool>& stop_requested_;
  asio::steady_timer timer_{control_};
};

}  // namespace llmgw::server::detail
