// OllamaSim's model management: a request's residency (admission, load, unload), the listings
// (/api/tags, /api/ps, /v1/models, /v1/models/{id}), /api/pull, /api/delete, /api/copy, and the
// embedding endpoints, which load their model like any other request.

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "llmgw/sim/model_registry.hpp"
#include "llmgw/sim/protocol.hpp"
#include "ollama_sim_impl.hpp"

namespace llmgw::sim {

using namespace detail;

namespace {

// How often a request that waits for room (every loaded model busy) or for another request's load
// asks again. Short against any load time worth emulating; polling keeps the registry free of
// wake-up machinery.
constexpr auto kAdmitPoll = std::chrono::milliseconds{2};
// /api/ps shows a model kept forever (negative keep_alive) as expiring far in the future, as
// Ollama does; 100 years stays inside system_clock's range.
constexpr auto kForever = std::chrono::hours{24 * 365 * 100};
// Progress records of a pull's one layer.
constexpr int kPullSteps = 4;

std::int64_t unix_seconds(std::chrono::system_clock::time_point when) {
  return std::chrono::duration_cast<std::chrono::seconds>(when.time_since_epoch()).count();
}

json tag_json(const ModelInfo& info) {
  return json{{"name", info.name},
              {"model", info.name},
              {"modified_at", format_created_at(info.modified_at)},
              {"size", info.size_bytes},
              {"digest", info.digest},
              {"details", model_details_json(info)}};
}

json ps_entry_json(const LoadedModel& model, std::chrono::system_clock::time_point wall_now,
                   Clock::time_point steady_now) {
  const auto expires_at =
      model.expires_at ? wall_now + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                        *model.expires_at - steady_now)
                       : wall_now + kForever;
  return json{{"name", model.info.name},
              {"model", model.info.name},
              {"size", model.info.size_bytes},
              {"digest", model.info.digest},
              {"details", model_details_json(model.info)},
              {"expires_at", format_created_at(expires_at)},
              {"size_vram", model.info.size_bytes},
              {"context_length", model.num_ctx}};
}

// As Ollama's /v1/models: the id is the name as listed, or as asked for in /v1/models/{id}.
json openai_model_json(const ModelInfo& info, std::string_view id) {
  return json{{"id", id},
              {"object", "model"},
              {"created", unix_seconds(info.modified_at)},
              {"owned_by", "library"}};
}

std::string status_json(std::string_view status) {
  return json{{"status", status}}.dump();
}

std::string status_record(std::string_view status) {
  return status_json(status) + "\n";
}

// The records of a successful pull, as Ollama streams them for a one-layer model.
std::vector<std::string> pull_records(const ModelInfo& info) {
  std::vector<std::string> records{status_record("pulling manifest")};
  for (int step = 0; step <= kPullSteps; ++step) {
    const auto completed = info.size_bytes * static_cast<std::uint64_t>(step) / kPullSteps;
    records.push_back(json{{"status", "pulling " + info.digest.substr(0, 12)},
                           {"digest", "sha256:" + info.digest},
                           {"total", info.size_bytes},
                           {"completed", completed}}
                          .dump() +
                      "\n");
  }
  records.push_back(status_record("verifying sha256 digest"));
  records.push_back(status_record("writing manifest"));
  records.push_back(status_record("success"));
  return records;
}

std::string embed_body(EmbedApi api, const EmbedRequest& req, std::size_t dimensions,
                       std::chrono::nanoseconds total, std::chrono::nanoseconds load) {
  json embeddings = json::array();
  std::size_t tokens = 0;
  for (const auto& input : req.inputs) {
    tokens += count_tokens(input);
    embeddings.push_back(embed_text(canonical_model_name(req.model), input, dimensions));
  }
  if (api == EmbedApi::legacy) {
    return json{{"embedding", embeddings.empty() ? json::array() : embeddings.front()}}.dump();
  }
  if (api == EmbedApi::openai) {
    json data = json::array();
    for (std::size_t i = 0; i < embeddings.size(); ++i) {
      data.push_back(
          json{{"object", "embedding"}, {"embedding", std::move(embeddings[i])}, {"index", i}});
    }
    return json{{"object", "list"},
                {"data", std::move(data)},
                {"model", req.model},
                {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}}
        .dump();
  }
  return json{{"model", req.model},
              {"embeddings", std::move(embeddings)},
              {"total_duration", total.count()},
              {"load_duration", load.count()},
              {"prompt_eval_count", tokens}}
      .dump();
}

std::size_t total_tokens(const EmbedRequest& req) {
  std::size_t tokens = 0;
  for (const auto& input : req.inputs) {
    tokens += count_tokens(input);
  }
  return tokens;
}

}  // namespace

namespace detail {

json model_details_json(const ModelInfo& info) {
  return json{{"parent_model", ""},
              {"format", "gguf"},
              {"family", info.family},
              {"families", json::array({info.family})},
              {"parameter_size", info.parameter_size},
              {"quantization_level", info.quantization_level}};
}

}  // namespace detail

ResidencyOptions OllamaSim::Impl::residency_options(const SimOptions& options) {
  ResidencyOptions residency;
  residency.max_loaded_models = std::max<std::size_t>(1, options.max_loaded_models);
  const double seconds_per_gb =
      std::max(0.0, options.load_seconds_per_gb * options.latency.time_scale);
  residency.load_time_per_gb =
      std::chrono::nanoseconds{static_cast<std::int64_t>(seconds_per_gb * 1e9)};
  residency.default_keep_alive = options.keep_alive;
  residency.default_num_ctx = options.default_num_ctx;
  residency.num_parallel = options.num_parallel;
  residency.queue_size = options.queue_size;
  residency.slot_choice = options.multiuser_cache ? SlotChoice::multi_user : SlotChoice::longest;
  return residency;
}

asio::awaitable<OllamaSim::Impl::Taken> OllamaSim::Impl::admit_model(
    std::string_view model, std::optional<std::size_t> num_ctx, ModelUse& use,
    net::ResponseStream& out) {
  while (true) {
    const auto admitted = models.admit(model, num_ctx, Clock::now());
    switch (admitted.admission) {
      case ModelRegistry::Admission::not_found:
        co_return Taken::not_found;
      case ModelRegistry::Admission::ready:
        use.hold(admitted);
        co_return Taken::ready;
      case ModelRegistry::Admission::load:
        use.hold(admitted);
        if (!co_await out.sleep(admitted.load_time)) {
          co_return Taken::stopped;
        }
        models.loaded(admitted.entry, Clock::now());
        co_return Taken::ready;
      case ModelRegistry::Admission::wait:
        if (!co_await out.sleep(kAdmitPoll)) {
          co_return Taken::stopped;
        }
        break;
    }
  }
}

asio::awaitable<bool> OllamaSim::Impl::take_model(const InferenceRequest& req, ModelUse& use,
                                                  net::ResponseStream& out) {
  const Endpoint endpoint = req.endpoint;
  // An empty request with keep_alive 0 unloads the model (Ollama's expireRunner).
  if (req.load_only && req.keep_alive && req.keep_alive->count() == 0) {
    if (!models.unload(req.model, Clock::now())) {
      co_await out.respond(404, content_type(kJson),
                           error_body(endpoint, 404, model_not_found(req.model)));
    } else {
      co_await out.respond(
          200, content_type(kJson),
          ollama_load_record(endpoint, req.model,
                             format_created_at(std::chrono::system_clock::now()), "unload"));
    }
    co_return false;
  }
  const Taken taken = co_await admit_model(req.model, req.num_ctx, use, out);
  if (taken == Taken::not_found) {
    co_await out.respond(404, content_type(kJson),
                         error_body(endpoint, 404, model_not_found(req.model)));
    co_return false;
  }
  if (taken == Taken::stopped) {
    co_return false;
  }
  if (req.load_only) {
    co_await out.respond(200, content_type(kJson),
                         ollama_load_record(endpoint, req.model,
                                            format_created_at(std::chrono::system_clock::now())));
    co_return false;
  }
  co_return true;
}

asio::awaitable<void> OllamaSim::Impl::embed(const net::ServerRequest& request, EmbedApi api,
                                             net::ResponseStream& out) {
  const auto arrived = Clock::now();
  const bool openai = api == EmbedApi::openai;
  auto respond_error = [&out, openai](int status, const std::string& message) {
    return out.respond(status, content_type(kJson),
                       openai ? openai_error(status, message) : ollama_error(message));
  };
  auto parsed = parse_embed_request(request.body, api == EmbedApi::legacy);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    co_await respond_error(error->status, error->message);
    co_return;
  }
  const auto& req = std::get<EmbedRequest>(parsed);
  if (openai && req.inputs.empty()) {
    co_await respond_error(400, "invalid input");
    co_return;
  }
  ModelUse use(models, req.keep_alive);
  const Taken taken = co_await admit_model(req.model, req.num_ctx, use, out);
  if (taken == Taken::not_found) {
    co_await respond_error(404, model_not_found(req.model));
    co_return;
  }
  if (taken == Taken::stopped) {
    co_return;
  }
  const auto load = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - arrived);
  // Embedding models evaluate every token; charge prefill time for them.
  if (!co_await out.sleep(options.latency.prefill(total_tokens(req)))) {
    co_return;
  }
  const auto total = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - arrived);
  co_await out.respond(200, content_type(kJson),
                       embed_body(api, req, options.embedding_dimensions, total, load));
}

std::string OllamaSim::Impl::tags_json() const {
  auto inventory = models.inventory();
  // Most recently modified first, as Ollama lists them.
  std::stable_sort(inventory.begin(), inventory.end(),
                   [](const auto& a, const auto& b) { return a.modified_at > b.modified_at; });
  json listed = json::array();
  for (const auto& info : inventory) {
    listed.push_back(tag_json(info));
  }
  return json{{"models", std::move(listed)}}.dump();
}

std::string OllamaSim::Impl::ps_json() {
  const auto steady_now = Clock::now();
  const auto wall_now = std::chrono::system_clock::now();
  json listed = json::array();
  for (const auto& model : models.loaded(steady_now)) {
    listed.push_back(ps_entry_json(model, wall_now, steady_now));
  }
  return json{{"models", std::move(listed)}}.dump();
}

std::string OllamaSim::Impl::openai_models_json() const {
  json data = json::array();
  for (const auto& info : models.inventory()) {
    data.push_back(openai_model_json(info, info.name));
  }
  return json{{"object", "list"}, {"data", std::move(data)}}.dump();
}

asio::awaitable<void> OllamaSim::Impl::openai_model(std::string_view id, net::ResponseStream& out) {
  const auto info = models.find(id);
  if (!info) {
    co_await out.respond(404, content_type(kJson),
                         openai_error(404, fmt::format("model '{}' not found", id)));
    co_return;
  }
  co_await out.respond(200, content_type(kJson), openai_model_json(*info, id).dump());
}

asio::awaitable<void> OllamaSim::Impl::pull(const net::ServerRequest& request,
                                            net::ResponseStream& out) {
  auto parsed = parse_pull_request(request.body);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    co_await out.respond(error->status, content_type(kJson), ollama_error(error->message));
    co_return;
  }
  const PullRequest& req = std::get<PullRequest>(parsed);
  const std::string& name = req.model;
  const bool streamed = req.stream;
  const std::string failure = "pull model manifest: simulated failure (--fail-pull)";
  const ModelInfo info = describe_model(name, std::nullopt, std::chrono::system_clock::now());
  if (!streamed) {
    if (options.fail_pull) {
      co_await out.respond(500, content_type(kJson), ollama_error(failure));
      co_return;
    }
    models.add(info);
    co_await out.respond(200, content_type(kJson), status_json("success"));
    co_return;
  }
  if (!co_await out.begin(200, content_type("application/x-ndjson"))) {
    co_return;
  }
  const auto records = pull_records(info);
  for (std::size_t i = 0; i < records.size(); ++i) {
    if (options.fail_pull && i == 1) {
      // Ollama streams the error as a record once progress has been written.
      if (co_await out.write(ollama_error(failure) + "\n")) {
        co_await out.end();
      }
      co_return;
    }
    if (i + 1 == records.size()) {
      models.add(info);  // the manifest is written: the model is on disk before "success"
    }
    if (!co_await out.write(records[i])) {
      co_return;
    }
  }
  co_await out.end();
}

asio::awaitable<void> OllamaSim::Impl::remove(const net::ServerRequest& request,
                                              net::ResponseStream& out) {
  auto parsed = parse_model_field(request.body);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    co_await out.respond(error->status, content_type(kJson), ollama_error(error->message));
    co_return;
  }
  const auto& name = std::get<std::string>(parsed);
  if (!models.remove(name, Clock::now())) {
    co_await out.respond(404, content_type(kJson),
                         ollama_error(fmt::format("model '{}' not found", name)));
    co_return;
  }
  co_await out.respond(200, content_type(kJson), std::string{});
}

asio::awaitable<void> OllamaSim::Impl::copy(const net::ServerRequest& request,
                                            net::ResponseStream& out) {
  auto parsed = parse_copy_request(request.body);
  if (const auto* error = std::get_if<RequestError>(&parsed)) {
    co_await out.respond(error->status, content_type(kJson), ollama_error(error->message));
    co_return;
  }
  const CopyRequest& req = std::get<CopyRequest>(parsed);
  const std::string& source = req.source;
  const std::string& destination = req.destination;
  if (!models.copy(source, destination, std::chrono::system_clock::now())) {
    co_await out.respond(404, content_type(kJson),
                         ollama_error(fmt::format("model \"{}\" not found", source)));
    co_return;
  }
  co_await out.respond(200, content_type(kJson), std::string{});
}

}  // namespace llmgw::sim
