#pragma once

// The emulator's models: what a node holds on disk (its inventory, as /api/tags lists it) and what
// it holds in memory (residency, as /api/ps lists it), with the rules of Ollama's scheduler
// (server/sched.go) that a fleet in front of it can feel:
// - Loading a model takes time proportional to its size (`load_time_per_gb`).
// - At most `max_loaded_models` models are loaded or loading (OLLAMA_MAX_LOADED_MODELS). A model
//   that needs room unloads the least recently used IDLE loaded model; when every loaded model is
//   busy, the request waits.
// - A model stays loaded for `keep_alive` after its last request ends (the request's own value,
//   else the default, OLLAMA_KEEP_ALIVE); negative keeps it forever, 0 unloads it at once.
// - A request asking for a different context size (`num_ctx`) than the loaded one reloads the
//   model once it is idle.
// - Unloading drops the model's KV slots: the next conversation on it starts cold.
// Worked example (max_loaded_models 1, 2 GB at 1 s/GB): a request for A loads A (2 s, one load);
// a second request for A is ready at once; a request for B while A serves waits, and when A goes
// idle B unloads A and loads (one unload, two loads); a later request for A loads A again, cold.
//
// Time is passed in (`now`), never read, so every rule is unit-testable with a fake clock; the
// caller sleeps for the load time it is told. Thread-safe: one mutex around the bookkeeping.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "llmgw/sim/slot_scheduler.hpp"

namespace llmgw::sim {

// One model of the inventory as configured: a name and, optionally, its size on disk. Implicit
// from a name so that a plain list of names still configures SimOptions::models.
struct ModelSpec {
  ModelSpec(std::string model_name) : name(std::move(model_name)) {}  // NOLINT: by design
  ModelSpec(const char* model_name) : name(model_name) {}             // NOLINT: by design
  ModelSpec(std::string model_name, std::uint64_t bytes)
      : name(std::move(model_name)), size_bytes(bytes) {}

  std::string name;
  std::optional<std::uint64_t> size_bytes;  // default: derived from the parameter size
};

// "name" or "name=size_gb" (decimal gigabytes, e.g. "llama3.2=2.0"); an error message otherwise.
std::variant<ModelSpec, std::string> parse_model_spec(std::string_view text);

// "llama3.2" and "llama3.2:latest" name the same model, as in Ollama.
std::string canonical_model_name(std::string_view name);

// Go's time.ParseDuration subset Ollama accepts for keep_alive: "5m", "1h30m", "10s", "250ms",
// "-1m", "0". nullopt when the text is not a duration.
std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text);

// What /api/tags and /api/show say about a model.
struct ModelInfo {
  std::string name;  // canonical: "llama3.2:latest"
  std::uint64_t size_bytes = 0;
  std::string digest;  // 64 hex digits (sha256 of the name, or of the source for a copy)
  std::chrono::system_clock::time_point modified_at;
  std::string family;          // "llama"
  std::string parameter_size;  // "3.2B"
  std::string quantization_level = "Q4_K_M";
};

// The inventory entry for `name` (canonicalised); `size_bytes` defaults to a Q4 model of the
// parameter size its tag names (0.6 bytes per parameter: llama3.2 3.2B -> 1.92 GB).
ModelInfo describe_model(std::string_view name, std::optional<std::uint64_t> size_bytes,
                         std::chrono::system_clock::time_point modified_at);

struct ResidencyOptions {
  std::size_t max_loaded_models = 3;  // OLLAMA_MAX_LOADED_MODELS; at least 1
  // Already multiplied by the time scale. 0 = loads are instant (still counted).
  std::chrono::nanoseconds load_time_per_gb{0};
  // OLLAMA_KEEP_ALIVE: how long an idle model stays loaded; negative = forever, 0 = unload at once.
  std::chrono::nanoseconds default_keep_alive = std::chrono::minutes{5};
  std::size_t default_num_ctx = 4096;            // OLLAMA_CONTEXT_LENGTH
  std::size_t num_parallel = 4;                  // KV slots per model
  std::size_t queue_size = 512;                  // waiting requests per model
  SlotChoice slot_choice = SlotChoice::longest;  // OLLAMA_MULTIUSER_CACHE: multi_user
};

// A model in memory, as /api/ps shows it.
struct LoadedModel {
  ModelInfo info;
  std::size_t num_ctx = 0;
  bool loading = false;
  std::size_t active = 0;  // requests using it now
  // When it will be unloaded if nothing uses it; nullopt = never (negative keep_alive).
  std::optional<std::chrono::steady_clock::time_point> expires_at;
};

class ModelRegistry {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  enum class Admission {
    ready,      // loaded: use it now
    load,       // the caller loads it: sleep `load_time`, then call loaded()
    wait,       // loading elsewhere, or no room yet: ask again shortly
    not_found,  // not in the inventory
  };

  struct Admit {
    Admission admission = Admission::not_found;
    std::uint64_t entry = 0;  // identifies this inventory entry for loaded()/release()
    std::shared_ptr<SlotScheduler> slots;
    std::chrono::nanoseconds load_time{0};
  };

  ModelRegistry(ResidencyOptions options, const std::vector<ModelSpec>& models,
                std::chrono::system_clock::time_point modified_at);
  ~ModelRegistry();
  ModelRegistry(const ModelRegistry&) = delete;
  ModelRegistry& operator=(const ModelRegistry&) = delete;

  // Starts using `name` with context size `num_ctx` (nullopt = the default). Every admission that
  // is ready or load counts as one request in use until release().
  Admit admit(std::string_view name, std::optional<std::size_t> num_ctx, TimePoint now);
  // The load that admit() asked for is done.
  void loaded(std::uint64_t entry, TimePoint now);
  // A request admitted on `entry` ended; `keep_alive` as it asked (nullopt = the default). A load
  // that never finished (the server stopping) leaves the model unloaded.
  void release(std::uint64_t entry, std::optional<std::chrono::nanoseconds> keep_alive,
               TimePoint now);
  // keep_alive 0 on an empty request: unloads `name` now if idle, else when its requests end.
  // False when `name` is not in the inventory.
  bool unload(std::string_view name, TimePoint now);

  std::optional<ModelInfo> find(std::string_view name) const;
  std::vector<ModelInfo> inventory() const;        // by name
  std::vector<LoadedModel> loaded(TimePoint now);  // after expiring what is due; by name
  // Pull: adds the model, or refreshes its modified_at when present.
  void add(ModelInfo info);
  // Delete: false when absent. A loaded model is unloaded; requests using it finish normally.
  bool remove(std::string_view name, TimePoint now);
  // Copy: false when `source` is absent. The copy has the source's digest and size, not loaded.
  bool copy(std::string_view source, std::string_view destination,
            std::chrono::system_clock::time_point modified_at);

  std::uint64_t loads() const;
  std::uint64_t unloads() const;
  std::size_t busy_slots() const;
  std::size_t queue_depth() const;
  // Wakes every waiter of every model's slots with `stopped`, including deleted models'.
  void shutdown();

 private:
  struct Entry {
    ModelInfo info;
    std::uint64_t id = 0;
    std::shared_ptr<SlotScheduler> slots;
    bool loaded = false;
    bool loading = false;
    std::size_t num_ctx = 0;
    std::size_t active = 0;
    bool unload_when_idle = false;
    std::chrono::nanoseconds keep_alive{0};
    TimePoint last_used{};
    std::optional<TimePoint> expires_at;
  };

  Entry& insert_locked(ModelInfo info);
  Entry* find_locked(std::string_view name);
  Entry* find_id_locked(std::uint64_t id);
  void expire_locked(TimePoint now);
  void unload_locked(Entry& entry);
  std::size_t resident_locked() const;
  Entry* least_recently_used_idle_locked();
  std::chrono::nanoseconds load_time(const ModelInfo& info) const;

  const ResidencyOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, Entry, std::less<>> entries_;
  // Deleted models' slots, kept so shutdown() reaches requests still using them.
  std::vector<std::shared_ptr<SlotScheduler>> retired_;
  std::uint64_t next_id_ = 1;
  std::uint64_t loads_ = 0;
  std::uint64_t unloads_ = 0;
};

}  // namespace llmgw::sim
