#include "catalog.hpp"

#include <prometheus/gauge.h>
#include <spdlog/spdlog.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "health_checker.hpp"
#include "server/as_tuple.hpp"

namespace llmgw::server::detail {
namespace {

constexpr std::string_view kUserAgent = "llmgw-catalog";

bool catalog_on(const Snapshot& snapshot) {
  return snapshot.config().catalog.interval.count() > 0;
}

void publish(UpstreamNode& node, routing::NodeModels models) {
  node.metrics.models->Set(static_cast<double>(models.on_disk.size()));
  node.metrics.models_loaded->Set(static_cast<double>(models.loaded.size()));
  node.models.store(std::make_shared<const routing::NodeModels>(std::move(models)));
}

// One listing: its names, or why there are none.
struct Listing {
  std::vector<std::string> names;
  std::string error;
};

asio::awaitable<Listing> list_models(asio::io_context& io, const UpstreamNode& node,
                                     const std::string& path, std::chrono::milliseconds timeout,
                                     bool openai) {
  Listing listing;
  const NodeGetResult got = co_await get_from_node(io, node, path, timeout, kUserAgent);
  if (!got.error.empty()) {
    listing.error = "GET " + path + " failed: " + got.error;
  } else if (got.status != 200) {
    listing.error = "GET " + path + " answered " + std::to_string(got.status);
  } else if (auto names = openai ? routing::parse_openai_models(got.body)
                                 : routing::parse_ollama_models(got.body)) {
    listing.names = std::move(*names);
  } else {
    listing.error = "GET " + path + " answered a body that is not a model list";
  }
  co_return listing;
}

}  // namespace

bool is_model_path(std::string_view path) noexcept {
  static constexpr std::string_view kPaths[] = {
      "/api/generate",        "/api/chat",       "/api/embed",     "/api/embeddings", "/api/show",
      "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/messages"};
  for (const auto known : kPaths) {
    if (path == known) {
      return true;
    }
  }
  return false;
}

namespace {

// Takes draining nodes (nodes[].draining) out of `eligibility`, unless that leaves no holder: a
// fleet that drains every node holding a model still serves it rather than refuse.
void leave_out_draining(const Snapshot& snapshot, routing::Eligibility& eligibility) {
  const std::size_t size = snapshot.nodes.size();
  bool any_draining = false;
  bool any_left = false;
  for (std::size_t i = 0; i < size; ++i) {
    const bool draining = snapshot.nodes[i]->draining.load(std::memory_order_relaxed);
    any_draining = any_draining || draining;
    any_left = any_left || (!draining && eligibility.holders.contains(i));
  }
  if (!any_draining || !any_left) {
    return;
  }
  routing::NodeMask holders(size);
  routing::NodeMask preferred(size);
  for (std::size_t i = 0; i < size; ++i) {
    if (snapshot.nodes[i]->draining.load(std::memory_order_relaxed)) {
      continue;
    }
    if (eligibility.holders.contains(i)) {
      holders.add(i);
    }
    if (eligibility.preferred.contains(i)) {
      preferred.add(i);
    }
  }
  eligibility = {std::move(holders), std::move(preferred)};
}

}  // namespace

bool takes_without_swap(const UpstreamNode& node, const routing::NodeModels& models,
                        const std::string& canonical) {
  const auto activity = node.admission.activity(canonical);
  return models.has_loaded(canonical) || activity.this_model ||
         (models.loaded.empty() && !activity.other_models);
}

bool takes_without_swap(const UpstreamNode& node, const std::string& canonical) {
  const auto models = node.models.load(std::memory_order_acquire);
  return canonical.empty() || !models || !models->current ||
         takes_without_swap(node, *models, canonical);
}

ModelRoute route_model(const Snapshot& snapshot, std::string_view model) {
  ModelRoute route = route_model_held(snapshot, model);
  leave_out_draining(snapshot, route.eligibility);
  return route;
}

ModelRoute route_model_held(const Snapshot& snapshot, std::string_view model) {
  ModelRoute route;
  if (model.empty() || !catalog_on(snapshot)) {
    return route;
  }
  route.model = routing::canonical_model(model);
  route.requested = std::string{model};
  const std::size_t size = snapshot.nodes.size();
  routing::NodeMask holders(size);
  routing::NodeMask loaded(size);
  bool all_current = true;
  for (std::size_t i = 0; i < size; ++i) {
    const auto models = snapshot.nodes[i]->models.load(std::memory_order_acquire);
    if (!models || !models->current) {
      all_current = false;
      // Unknown: may hold it, and nothing says a load there would evict (a stale view must
      // neither black-hole traffic nor move keys away from a node that just joined).
      holders.add(i);
      loaded.add(i);
    } else if (models->holds(route.model)) {
      holders.add(i);
      // Preferred: the model is loaded there or has requests there now, or the node is idle
      // (nothing loaded, no request for another model: a load there evicts nothing). Not
      // preferred: a node busy with other models, where this one would push one of them out. The
      // requests count at once, while the loaded list waits for the next fetch: a burst of new
      // sessions of several models does not land them on one node before anything has loaded.
      if (takes_without_swap(*snapshot.nodes[i], *models, route.model)) {
        loaded.add(i);
      }
    }
  }
  route.held_nowhere = all_current && holders.empty();
  route.eligibility = {std::move(holders), std::move(loaded)};
  return route;
}

std::string model_not_found_body(std::string_view path, std::string_view model) {
  using nlohmann::json;
  const std::string message =
      "model \"" + std::string{model} + "\" not found, try pulling it first";
  if (path == "/v1/messages") {
    return json{{"type", "error"}, {"error", {{"type", "not_found_error"}, {"message", message}}}}
               .dump() +
           "\n";
  }
  if (path.starts_with("/v1/")) {
    return json{{"error",
                 {{"message", message},
                  {"type", "not_found_error"},
                  {"param", nullptr},
                  {"code", nullptr}}}}
               .dump() +
           "\n";
  }
  return json{{"error", message}}.dump() + "\n";
}

bool forget_model(SharedState& shared, UpstreamNode& node, std::string_view canonical) {
  const auto models = node.models.load(std::memory_order_acquire);
  const bool placed = models && models->current && models->holds(canonical);
  if (placed) {
    publish(node, models->without(canonical));
    spdlog::info("catalog: node {} answered 404 for model {}: removed from its entry", node.id,
                 canonical);
  }
  request_catalog_refresh(shared, node.id);
  return placed;
}

void note_loaded(UpstreamNode& node, std::string_view canonical) {
  const auto models = node.models.load(std::memory_order_acquire);
  if (!models || !models->current || models->has_loaded(canonical)) {
    return;  // the common case: one load and a binary search
  }
  publish(node, models->with_loaded(canonical));
}

void request_catalog_refresh(SharedState& shared, std::string_view node) {
  if (shared.catalog_refresh) {
    shared.catalog_refresh(node);
  }
}

CatalogRefresher::CatalogRefresher(SharedState& shared, asio::io_context& control,
                                   const std::atomic<bool>& stop_requested)
    : shared_(shared), control_(control), stop_requested_(stop_requested) {
  // Before any worker thread exists: they read it without a lock.
  shared_.catalog_refresh = [this](std::string_view node) { fetch_soon(node); };
}

void CatalogRefresher::start() {
  asio::co_spawn(control_, loop(), asio::detached);
}

void CatalogRefresher::wake() {
  asio::post(control_, [this] { timer_.cancel(); });
}

void CatalogRefresher::fetch_soon(std::string_view node) {
  asio::post(control_, [this, name = std::string{node}] {
    const auto snapshot = shared_.current();
    if (!catalog_on(*snapshot)) {
      return;
    }
    for (const auto& upstream : snapshot->nodes) {
      if (name.empty() || upstream->id == name) {
        asio::co_spawn(control_, fetch(upstream), asio::detached);
      }
    }
  });
}

asio::awaitable<void> CatalogRefresher::fetch(std::shared_ptr<UpstreamNode> node) {
  if (node->catalog_fetching.exchange(true)) {
    // One at a time per node; the running one may have read the node before the change this
    // request is about, so it fetches once more when it is done.
    node->catalog_again.store(true);
    co_return;
  }
  const auto snapshot = shared_.current();
  const auto timeout = snapshot->config().health.timeout;
  const bool openai = node->config.api == "openai";
  routing::NodeModels next;
  Listing on_disk =
      co_await list_models(control_, *node, openai ? "/v1/models" : "/api/tags", timeout, openai);
  Listing loaded;
  if (on_disk.error.empty() && !openai) {
    loaded = co_await list_models(control_, *node, "/api/ps", timeout, false);
  } else {
    loaded.names = on_disk.names;  // an OpenAI-compatible server serves what it lists
  }
  const std::string error = !on_disk.error.empty() ? on_disk.error : loaded.error;
  const auto previous = node->models.load(std::memory_order_acquire);
  if (error.empty()) {
    next.on_disk = std::move(on_disk.names);
    next.loaded = std::move(loaded.names);
    next.current = true;
    next.fetched_at = std::chrono::system_clock::now();
    if (previous && !previous->current) {
      spdlog::info("catalog: node {} lists {} models again", node->id, next.on_disk.size());
    }
  } else {
    if (previous) {
      next = *previous;  // kept for /health; not trusted for routing
    }
    next.current = false;
    if (!previous || previous->current || previous->error != error) {
      spdlog::warn("catalog: node {}: {}; it counts as holding every model until a fetch succeeds",
                   node->id, error);
    }
    next.error = error;
  }
  publish(*node, std::move(next));
  node->catalog_fetching.store(false);
  if (node->catalog_again.exchange(false)) {
    asio::co_spawn(control_, fetch(node), asio::detached);
  }
}

nlohmann::json catalog_json(const UpstreamNode& node) {
  const auto models = node.models.load(std::memory_order_acquire);
  if (!models) {
    return {{"current", false},
            {"models", nlohmann::json::array()},
            {"loaded", nlohmann::json::array()},
            {"age_ms", nullptr},
            {"error", nullptr}};
  }
  nlohmann::json age = nullptr;
  if (models->fetched_at != std::chrono::system_clock::time_point{}) {
    age = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now() -
                                                                models->fetched_at)
              .count();
  }
  return {
      {"current", models->current},
      {"models", models->on_disk},
      {"loaded", models->loaded},
      {"age_ms", age},
      {"error", models->error.empty() ? nlohmann::json(nullptr) : nlohmann::json(models->error)}};
}

asio::awaitable<void> CatalogRefresher::loop() {
  while (!stop_requested_.load()) {
    const auto snapshot = shared_.current();
    const auto interval = snapshot->config().catalog.interval;
    if (interval.count() > 0) {
      for (const auto& node : snapshot->nodes) {
        asio::co_spawn(control_, fetch(node), asio::detached);
      }
    }
    // Off (0): wait for a reload to turn it on.
    timer_.expires_after(interval.count() > 0 ? interval : std::chrono::hours{24});
    co_await timer_.async_wait(kAsTuple);
  }
}

}  // namespace llmgw::server::detail
