#include "llmgw/bench/bench.hpp"

#include <fmt/chrono.h>
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <thread>
#include <variant>

#include "llmgw/bench/class_report.hpp"
#include "llmgw/config/gateway_config.hpp"
#include "llmgw/net/http_client.hpp"
#include "llmgw/server/gateway.hpp"
#include "llmgw/sim/ollama_sim.hpp"

namespace llmgw::bench {
namespace {

struct ModeSpec {
  std::string name;
  double balance_factor = 0.0;
  bool send_session_id = true;
  std::string balance_by = "requests";
  // routing.key_sources of the spawned gateway; round-robin keeps only the header, so that a
  // client without it is not keyed by its conversation's start.
  std::string key_sources = config::RoutingConfig{}.key_sources;
  // admission.warm_wait of the spawned gateway (docs/DESIGN.md §2.2).
  std::string warm_wait = config::AdmissionConfig{}.warm_wait;
  // The batch flood beside the chats, when BenchOptions::flood has clients: sent as batch
  // (admission's classes), sent without a class (everything interactive), or not at all.
  enum class Flood { batch, no_class, none };
  Flood flood = Flood::batch;
  bool catalog = true;           // false: catalog.interval_ms 0 (model-blind routing)
  std::string session_header{};  // non-empty: the client sends its key in this header instead
  bool key_in_body = false;      // the client sends its key as the body's prompt_cache_key
};

ModeSpec mode_spec(const std::string& name, const BenchOptions& options) {
  if (name == kModeRoundRobin) {
    return {name, options.balance_factor, false, "requests", "header"};
  }
  if (name == kModePrefix) {
    return {name, options.balance_factor, false, "sessions"};
  }
  if (name == kModeConsistentHash) {
    return {name, 0.0, true};
  }
  if (name == kModeBounded) {
    return {name, options.balance_factor, true, "sessions"};
  }
  if (name == kModeBoundedRequests) {
    return {name, options.balance_factor, true, "requests"};
  }
  if (name == kModeBoundedSpill) {
    ModeSpec spec{name, options.balance_factor, true, "sessions"};
    spec.warm_wait = "never";
    return spec;
  }
  if (name == kModeNoClasses || name == kModeUnloaded) {
    ModeSpec spec{name, options.balance_factor, true, "sessions"};
    spec.flood = name == kModeNoClasses ? ModeSpec::Flood::no_class : ModeSpec::Flood::none;
    return spec;
  }
  if (name == kModeModelBlind) {
    ModeSpec spec{name, options.balance_factor, true, "sessions"};
    spec.catalog = false;
    return spec;
  }
  if (name == kModeAgentHeader) {
    ModeSpec spec{name, options.balance_factor, true, "sessions"};
    spec.session_header = "x-claude-code-session-id";
    return spec;
  }
  if (name == kModePromptCacheKey) {
    ModeSpec spec{name, options.balance_factor, true, "sessions"};
    spec.key_in_body = true;
    return spec;
  }
  if (!options.spawn) {
    return {name, 0.0, true};  // a label for a running target; it decides only the header
  }
  throw std::invalid_argument(
      fmt::format("unknown mode '{}' (expected round_robin, consistent_hash, bounded, "
                  "bounded_requests, bounded_spill, prefix, no_classes, unloaded, model_blind, "
                  "agent_header or prompt_cache_key)",
                  name));
}

// The inventory of every sim of the multi-model fleet (SpawnOptions::fleet_models); empty when the
// sims keep their default inventory. Throws std::invalid_argument for a bad model spec.
std::vector<std::vector<sim::ModelSpec>> fleet_inventories(const SpawnOptions& spawn) {
  std::vector<sim::ModelSpec> models;
  for (const auto& text : spawn.fleet_models) {
    auto parsed = sim::parse_model_spec(text);
    if (const auto* error = std::get_if<std::string>(&parsed)) {
      throw std::invalid_argument(fmt::format("--fleet-models: {}", *error));
    }
    models.push_back(std::get<sim::ModelSpec>(std::move(parsed)));
  }
  std::vector<std::vector<sim::ModelSpec>> inventories(models.empty() ? 0 : spawn.sims);
  const std::size_t per_node =
      spawn.models_per_node == 0 ? models.size() : std::min(spawn.models_per_node, models.size());
  for (std::size_t node = 0; node < inventories.size(); ++node) {
    for (std::size_t j = 0; j < per_node; ++j) {
      inventories[node].push_back(models[(node + j) % models.size()]);
    }
  }
  return inventories;
}

void check_fleet(const SpawnOptions& spawn) {
  if (spawn.max_loaded_models == 0) {
    throw std::invalid_argument("--max-loaded-models must be at least 1");
  }
  if (spawn.load_seconds_per_gb < 0.0) {
    throw std::invalid_argument("--load-s-per-gb must not be negative");
  }
  if (spawn.models_per_node > 0 && spawn.fleet_models.empty()) {
    throw std::invalid_argument("--models-per-node needs --fleet-models");
  }
  fleet_inventories(spawn);  // throws for a bad spec
}

// The models the sessions ask for in turn: the workload's own list, else the fleet's.
std::vector<std::string> session_models(const BenchOptions& options) {
  std::vector<std::string> models = options.workload.models;
  if (models.empty() && options.spawn) {
    for (const auto& text : options.spawn->fleet_models) {
      const auto parsed = sim::parse_model_spec(text);
      if (const auto* spec = std::get_if<sim::ModelSpec>(&parsed)) {
        models.push_back(spec->name);  // check() refuses the others
      }
    }
  }
  return models;
}

// The workload as `mode`'s clients send it.
WorkloadOptions workload_for(const BenchOptions& options, const ModeSpec& mode) {
  WorkloadOptions workload = options.workload;
  workload.models = session_models(options);
  if (!mode.session_header.empty()) {
    workload.session_header = mode.session_header;
  }
  workload.session_id_in_body = workload.session_id_in_body || mode.key_in_body;
  return workload;
}

void check(const BenchOptions& options) {
  const WorkloadOptions& workload = options.workload;
  if (workload.sessions == 0 || workload.turns == 0) {
    throw std::invalid_argument("sessions and turns must be at least 1");
  }
  if (options.seeds.empty()) {
    throw std::invalid_argument("at least one seed is needed");
  }
  if (options.modes.empty()) {
    throw std::invalid_argument("at least one mode is needed");
  }
  if (options.spawn) {
    if (options.spawn->sims == 0 || options.spawn->num_parallel == 0) {
      throw std::invalid_argument("--spawn-sims and --num-parallel must be at least 1");
    }
    if (!options.target_url.empty()) {
      throw std::invalid_argument("give either --spawn-sims or --target, not both");
    }
  } else {
    if (options.target_url.empty()) {
      throw std::invalid_argument("give --spawn-sims N or --target URL");
    }
    if (options.modes.size() != 1) {
      throw std::invalid_argument(
          "with --target the gateway's routing is fixed: give exactly one --mode");
    }
  }
  if (workload.api != kApiOllama && workload.api != kApiOpenAi) {
    throw std::invalid_argument(
        fmt::format("--api must be ollama or openai, not '{}'", workload.api));
  }
  if (options.spawn) {
    check_fleet(*options.spawn);
  }
  if (options.balance_factor != 0.0 && options.balance_factor < 1.0) {
    throw std::invalid_argument("--balance-factor must be 0 or at least 1");
  }
}

void apply(const SpawnAdmission& limits, config::AdmissionConfig& admission) {
  admission.interactive.max_queue =
      limits.interactive_max_queue.value_or(admission.interactive.max_queue);
  admission.interactive.max_wait =
      limits.interactive_max_wait.value_or(admission.interactive.max_wait);
  admission.batch.max_queue = limits.batch_max_queue.value_or(admission.batch.max_queue);
  admission.batch.max_wait = limits.batch_max_wait.value_or(admission.batch.max_wait);
  admission.interactive_reserve =
      limits.interactive_reserve.value_or(admission.interactive_reserve);
}

// The sims and the gateway of one (mode, seed) run; stopped (gateway first) on destruction.
class SpawnedCluster {
 public:
  SpawnedCluster(const SpawnOptions& spawn, const ModeSpec& mode) {
    config::GatewayConfig gateway_config;
    gateway_config.listen.address = "127.0.0.1";
    gateway_config.listen.port = 0;
    gateway_config.workers = spawn.gateway_workers;
    gateway_config.routing.balance_factor = mode.balance_factor;
    gateway_config.routing.balance_by = mode.balance_by;
    gateway_config.routing.key_sources = mode.key_sources;
    gateway_config.admission.warm_wait = mode.warm_wait;
    apply(spawn.admission, gateway_config.admission);
    if (!mode.catalog) {
      gateway_config.catalog.interval = std::chrono::milliseconds{0};
    }
    const auto inventories = fleet_inventories(spawn);
    gateway_config.log.access_log = false;
    gateway_config.drain = std::chrono::milliseconds{2'000};
    for (std::size_t i = 0; i < spawn.sims; ++i) {
      sim::SimOptions sim_options;
      sim_options.num_parallel = spawn.num_parallel;
      sim_options.multiuser_cache = spawn.multiuser_cache;
      sim_options.latency.prefill_tokens_per_s = spawn.prefill_tokens_per_s;
      sim_options.latency.decode_tokens_per_s = spawn.decode_tokens_per_s;
      sim_options.latency.time_scale = spawn.time_scale;
      sim_options.output.min_tokens = spawn.min_output_tokens;
      sim_options.output.max_tokens = spawn.max_output_tokens;
      sim_options.max_loaded_models = spawn.max_loaded_models;
      sim_options.load_seconds_per_gb = spawn.load_seconds_per_gb;
      if (!inventories.empty()) {
        sim_options.models = inventories[i];
      }
      auto node = std::make_unique<sim::OllamaSim>(std::move(sim_options));
      node->start();
      config::NodeConfig node_config;
      node_config.name = fmt::format("sim-{}", i);
      node_config.url = node->base_url();
      config::resolve_node(node_config, fmt::format("nodes[{}]", i));
      // The gateway's cap is the sims' own parallelism: what a well-configured fleet has.
      node_config.max_in_flight = spawn.num_parallel;
      gateway_config.nodes.push_back(std::move(node_config));
      node_ids_.push_back(fmt::format("sim-{}", i));
      caps_.push_back(node_config.max_in_flight);
      sims_.push_back(std::move(node));
    }
    config::validate(gateway_config);
    if (spawn.preload) {
      preload(inventories);
    }
    const bool wait_for_catalog = mode.catalog && !inventories.empty();
    gateway_ = std::make_unique<server::Gateway>(std::move(gateway_config));
    gateway_->start();
    if (wait_for_catalog) {
      wait_for_models();
    }
  }

  ~SpawnedCluster() {
    if (gateway_) {
      gateway_->request_stop();
      gateway_->wait();
    }
    for (auto& node : sims_) {
      node->stop();
    }
  }

  SpawnedCluster(const SpawnedCluster&) = delete;
  SpawnedCluster& operator=(const SpawnedCluster&) = delete;

  std::string url() const { return fmt::format("http://127.0.0.1:{}", gateway_->port()); }
  const std::vector<std::string>& node_ids() const { return node_ids_; }

  // The run's counts: the sims' counters since the start, less what the preload cost.
  CacheCounts cache_counts() const {
    CacheCounts counts;
    for (const auto& node : sims_) {
      const auto stats = node->stats();
      counts.prompt_tokens += stats.prompt_tokens;
      counts.cached_prompt_tokens += stats.cached_prompt_tokens;
    }
    counts.prompt_tokens -= before_.prompt_tokens;
    counts.cached_prompt_tokens -= before_.cached_prompt_tokens;
    return counts;
  }

  std::vector<NodePeak> node_peaks() const {
    std::vector<NodePeak> peaks;
    for (std::size_t i = 0; i < sims_.size(); ++i) {
      peaks.push_back({node_ids_[i], sims_[i]->stats().generations_peak, caps_[i]});
    }
    return peaks;
  }

  std::uint64_t model_loads() const {
    std::uint64_t loads = 0;
    for (const auto& node : sims_) {
      loads += node->stats().model_loads;
    }
    return loads - loads_before_;
  }

 private:
  // A fleet that has been running knows its models: the run starts once the gateway's first
  // catalog round has listed every node (/health), not while it still counts every node as a
  // holder of every model. Throws std::runtime_error after 10 s.
  void wait_for_models() const {
    net::HttpClient client;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        const auto response = client.send({"GET", url() + "/health", {}, {}});
        const auto health = nlohmann::json::parse(response.body, nullptr, false);
        const auto nodes = health.is_object() ? health.value("nodes", nlohmann::json::array())
                                              : nlohmann::json::array();
        const bool current =
            !nodes.empty() && std::all_of(nodes.begin(), nodes.end(), [](const auto& node) {
              return node.value("catalog", nlohmann::json::object()).value("current", false);
            });
        if (current) {
          return;
        }
      } catch (const std::exception&) {
        // not answering yet
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    throw std::runtime_error("the spawned gateway did not list its nodes' models within 10 s");
  }

  // One tiny chat per sim, straight to it, for its first model; then the counters' baseline.
  void preload(const std::vector<std::vector<sim::ModelSpec>>& inventories) {
    net::HttpClient client;
    for (std::size_t i = 0; i < sims_.size() && i < inventories.size(); ++i) {
      const auto response =
          client.send({"POST",
                       sims_[i]->base_url() + "/api/chat",
                       {{"Content-Type", "application/json"}},
                       nlohmann::json{{"model", inventories[i].front().name},
                                      {"stream", false},
                                      {"messages", {{{"role", "user"}, {"content", "warm up"}}}},
                                      {"options", {{"num_predict", 1}}}}
                           .dump()});
      if (response.status != 200) {
        throw std::runtime_error(fmt::format("preloading sim-{} answered {}", i, response.status));
      }
    }
    before_ = cache_counts();
    loads_before_ = model_loads();
  }

  CacheCounts before_{};
  std::uint64_t loads_before_ = 0;
  std::vector<std::unique_ptr<sim::OllamaSim>> sims_;
  std::vector<std::string> node_ids_;
  std::vector<std::size_t> caps_;
  std::unique_ptr<server::Gateway> gateway_;
};

// With a flood, the sims' natural replies are at least a summary long: each summary is then
// exactly flood.output_tokens long and each chat reply its num_predict (workload.hpp).
SpawnOptions spawn_options(const BenchOptions& options) {
  SpawnOptions spawn = *options.spawn;
  if (options.flood.clients > 0) {
    spawn.min_output_tokens = std::max(spawn.min_output_tokens, options.flood.output_tokens);
    spawn.max_output_tokens = std::max(spawn.max_output_tokens, spawn.min_output_tokens);
  }
  return spawn;
}

// The classes' effective max_wait in the spawned gateways (never past first_byte_total).
ClassWaitLimits class_wait_limits(const BenchOptions& options) {
  if (!options.spawn) {
    return {};
  }
  config::AdmissionConfig admission;
  apply(options.spawn->admission, admission);
  const auto total = config::TimeoutsConfig{}.first_byte_total;
  const auto seconds = [total](std::chrono::milliseconds wait) {
    return std::chrono::duration<double>(std::min(wait, total)).count();
  };
  return {seconds(admission.interactive.max_wait), seconds(admission.batch.max_wait)};
}

std::string utc_now() {
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  return fmt::format("{:%Y-%m-%dT%H:%M:%SZ}", now);
}

}  // namespace

void BenchProgress::set_label(std::string label) {
  const std::lock_guard lock(mutex_);
  label_ = std::move(label);
}

std::string BenchProgress::label() const {
  const std::lock_guard lock(mutex_);
  return label_;
}

nlohmann::json describe_workload(const BenchOptions& options) {
  const WorkloadOptions& w = options.workload;
  nlohmann::json out = {
      {"sessions", w.sessions},
      {"turns", w.turns},
      {"think_time_s", std::chrono::duration<double>(w.think_time).count()},
      {"concurrency", w.concurrency},
      {"system_prompt_tokens", w.system_prompt_tokens},
      {"user_message_tokens", w.user_message_tokens},
      {"max_output_tokens", w.max_output_tokens},
      {"model", w.model},
      {"seeds", options.seeds},
      {"api", w.api},
  };
  if (const auto models = session_models(options); !models.empty()) {
    out["models"] = models;
  }
  if (options.spawn) {
    const SpawnOptions& s = *options.spawn;
    out["spawn"] = {{"sims", s.sims},
                    {"num_parallel", s.num_parallel},
                    {"multiuser_cache", s.multiuser_cache},
                    {"prefill_tokens_per_s", s.prefill_tokens_per_s},
                    {"decode_tokens_per_s", s.decode_tokens_per_s},
                    {"time_scale", s.time_scale},
                    {"min_output_tokens", s.min_output_tokens},
                    {"max_output_tokens", s.max_output_tokens},
                    {"gateway_workers", s.gateway_workers},
                    {"balance_factor", options.balance_factor}};
    if (!s.fleet_models.empty()) {
      nlohmann::json inventories = nlohmann::json::array();
      for (const auto& inventory : fleet_inventories(s)) {
        nlohmann::json names = nlohmann::json::array();
        for (const auto& spec : inventory) {
          names.push_back(spec.name);
        }
        inventories.push_back(std::move(names));
      }
      out["spawn"]["fleet_models"] = s.fleet_models;
      out["spawn"]["node_models"] = std::move(inventories);
    }
    out["spawn"]["max_loaded_models"] = s.max_loaded_models;
    out["spawn"]["load_seconds_per_gb"] = s.load_seconds_per_gb;
    out["spawn"]["preload"] = s.preload;
  } else {
    out["target"] = options.target_url;
  }
  if (options.prefill_tokens_per_s) {
    out["estimate_prefill_tokens_per_s"] = *options.prefill_tokens_per_s;
  }
  if (options.flood.clients > 0) {
    out["batch_flood"] = {{"clients", options.flood.clients},
                          {"prompt_tokens", options.flood.prompt_tokens},
                          {"output_tokens", options.flood.output_tokens},
                          {"priority_header", options.flood.priority_header}};
    if (options.spawn) {
      const SpawnOptions& s = *options.spawn;
      const auto capacity = s.sims * s.num_parallel;
      out["batch_flood"]["fleet_capacity"] = capacity;
      out["batch_flood"]["offered_over_capacity"] =
          static_cast<double>(w.sessions + options.flood.clients) / static_cast<double>(capacity);
      const auto limits = class_wait_limits(options);
      out["batch_flood"]["interactive_max_wait_s"] = *limits.interactive_max_wait_s;
      out["batch_flood"]["batch_max_wait_s"] = *limits.batch_max_wait_s;
      config::AdmissionConfig admission;
      apply(s.admission, admission);
      out["batch_flood"]["interactive_reserve"] = admission.interactive_reserve;
    }
  }
  return out;
}

BenchResult run_bench(const BenchOptions& options, BenchProgress* progress) {
  check(options);
  std::vector<ModeSpec> modes;
  for (const auto& name : options.modes) {
    modes.push_back(mode_spec(name, options));
  }
  const std::size_t runs_total = modes.size() * options.seeds.size();
  const std::size_t requests_per_run = options.workload.sessions * options.workload.turns;
  if (progress != nullptr) {
    progress->runs_total = runs_total;
    progress->total = runs_total * requests_per_run;
  }

  BenchResult result;
  result.runs_by_mode.resize(modes.size());
  nlohmann::json workload = describe_workload(options);
  workload["started_at"] = utc_now();
  // Seeds outside, modes inside: a drift in machine load during the run then hits every mode of a
  // seed alike instead of one mode wholesale.
  for (const auto seed : options.seeds) {
    for (std::size_t m = 0; m < modes.size(); ++m) {
      const ModeSpec& mode = modes[m];
      if (progress != nullptr) {
        progress->set_label(fmt::format("{} seed {}", mode.name, seed));
      }
      SeedRun seed_run;
      seed_run.mode = mode.name;
      seed_run.seed = seed;
      std::optional<SpawnedCluster> cluster;
      if (options.spawn) {
        cluster.emplace(spawn_options(options), mode);
      }
      const std::string url = cluster ? cluster->url() : options.target_url;
      ProgressCounter* counter = progress != nullptr ? &progress->requests : nullptr;
      std::optional<BatchFlood> flood;
      if (options.flood.clients > 0 && mode.flood != ModeSpec::Flood::none) {
        flood.emplace(url, options.flood, seed, mode.flood == ModeSpec::Flood::batch, counter);
      }
      seed_run.run =
          run_workload(url, workload_for(options, mode), seed, mode.send_session_id, counter);
      if (flood) {
        seed_run.batch = flood->stop();
        if (progress != nullptr) {
          progress->total += seed_run.batch.requests.size();
        }
      }
      if (cluster) {
        seed_run.nodes = cluster->node_ids();
        seed_run.measured_cache = cluster->cache_counts();
        seed_run.node_peaks = cluster->node_peaks();
        seed_run.model_loads = cluster->model_loads();
      }
      result.runs_by_mode[m].push_back(std::move(seed_run));
      if (progress != nullptr) {
        ++progress->runs_done;
      }
    }
  }
  result.report = build_report(workload, result.runs_by_mode, options.prefill_tokens_per_s);
  if (options.flood.clients > 0) {
    add_class_reports(result.report, result.runs_by_mode, class_wait_limits(options));
  }
  return result;
}

void write_report_files(const BenchResult& result, const std::string& directory) {
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) {
    throw std::runtime_error(fmt::format("cannot create {}: {}", directory, ec.message()));
  }
  const auto write = [&directory](const std::string& name, const std::string& content) {
    const auto path = std::filesystem::path(directory) / name;
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    file << content;
    file.close();
    if (!file) {
      throw std::runtime_error(fmt::format("cannot write {}", path.string()));
    }
  };
  write("report.json", result.report.dump(2) + "\n");
  write("report.html", render_html(result.report));
  write("requests.csv", render_requests_csv(result.runs_by_mode));
  if (const auto batch = render_batch_csv(result.runs_by_mode); !batch.empty()) {
    write("batch_requests.csv", batch);
  }
}

}  // namespace llmgw::bench
