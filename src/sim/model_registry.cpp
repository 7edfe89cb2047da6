#include "llmgw/sim/model_registry.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

namespace llmgw::sim {

namespace {

std::string sha256_hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
    return std::string(64, '0');
  }
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) {
    hex += fmt::format("{:02x}", digest[i]);
  }
  return hex;
}

// "llama3.2:latest" -> "llama", "qwen2.5:0.5b" -> "qwen".
std::string model_family(std::string_view canonical) {
  std::string family;
  for (const char c : canonical) {
    if (!std::isalpha(static_cast<unsigned char>(c))) {
      break;
    }
    family += c;
  }
  return family.empty() ? "llama" : family;
}

// "qwen2.5:0.5b" -> 0.5e9; untagged sizes default to a 3B-class model (llama3.2's 3.2B).
double parameter_count(std::string_view canonical) {
  const auto tag = canonical.substr(canonical.find(':') + 1);
  if (tag.size() >= 2 && (tag.back() == 'b' || tag.back() == 'B') &&
      tag.find_first_not_of("0123456789.") == tag.size() - 1) {
    double billions = 0.0;
    const auto [end, error] = std::from_chars(tag.data(), tag.data() + tag.size() - 1, billions);
    if (error == std::errc{} && end == tag.data() + tag.size() - 1 && billions > 0.0) {
      return billions * 1e9;
    }
  }
  return 3.2e9;
}

std::string parameter_size_text(double parameters) {
  return fmt::format("{:g}B", parameters / 1e9);
}

std::optional<double> parse_number(std::string_view text) {
  double value = 0.0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc{} || end != text.data() + text.size() || !std::isfinite(value)) {
    return std::nullopt;
  }
  return value;
}

constexpr double kBytesPerParameter = 0.6;  // Q4_K_M averages ~4.8 bits per weight
constexpr double kBytesPerGb = 1e9;

}  // namespace

std::string canonical_model_name(std::string_view name) {
  std::string canonical{name};
  if (canonical.find(':') == std::string::npos) {
    canonical += ":latest";
  }
  return canonical;
}

std::variant<ModelSpec, std::string> parse_model_spec(std::string_view text) {
  const auto equals = text.find('=');
  const auto name = text.substr(0, equals);
  if (name.empty() || name.find_first_of(" \t,") != std::string_view::npos) {
    return fmt::format("'{}': expected a model name, optionally with =size_gb", text);
  }
  if (equals == std::string_view::npos) {
    return ModelSpec{std::string{name}};
  }
  const auto size = parse_number(text.substr(equals + 1));
  if (!size || *size <= 0.0 || *size > 10'000.0) {
    return fmt::format("'{}': size must be a number of gigabytes in (0, 10000]", text);
  }
  return ModelSpec{std::string{name},
                   static_cast<std::uint64_t>(std::llround(*size * kBytesPerGb))};
}

std::optional<std::chrono::nanoseconds> parse_go_duration(std::string_view text) {
  static constexpr std::pair<std::string_view, double> kUnits[] = {
      {"ns", 1.0}, {"us", 1e3}, {"µs", 1e3}, {"ms", 1e6}, {"s", 1e9}, {"m", 60e9}, {"h", 3600e9}};
  double sign = 1.0;
  if (!text.empty() && (text.front() == '-' || text.front() == '+')) {
    sign = text.front() == '-' ? -1.0 : 1.0;
    text.remove_prefix(1);
  }
  if (text == "0") {
    return std::chrono::nanoseconds{0};
  }
  if (text.empty()) {
    return std::nullopt;
  }
  double total = 0.0;
  while (!text.empty()) {
    const auto number_end = text.find_first_not_of("0123456789.");
    if (number_end == 0 || number_end == std::string_view::npos) {
      return std::nullopt;  // a unit without a number, or a number without a unit
    }
    const auto number = parse_number(text.substr(0, number_end));
    if (!number) {
      return std::nullopt;
    }
    text.remove_prefix(number_end);
    const auto unit_end = std::min(text.find_first_of("0123456789."), text.size());
    const auto unit = text.substr(0, unit_end);
    const auto* match = std::find_if(std::begin(kUnits), std::end(kUnits),
                                     [unit](const auto& known) { return known.first == unit; });
    if (match == std::end(kUnits)) {
      return std::nullopt;
    }
    total += *number * match->second;
    text.remove_prefix(unit_end);
  }
  if (total > 9e18) {
    return std::nullopt;
  }
  return std::chrono::nanoseconds{static_cast<std::int64_t>(std::llround(sign * total))};
}

ModelInfo describe_model(std::string_view name, std::optional<std::uint64_t> size_bytes,
                         std::chrono::system_clock::time_point modified_at) {
  ModelInfo info;
  info.name = canonical_model_name(name);
  const double parameters = parameter_count(info.name);
  info.size_bytes = size_bytes.value_or(
      static_cast<std::uint64_t>(std::llround(parameters * kBytesPerParameter)));
  info.digest = sha256_hex(info.name);
  info.modified_at = modified_at;
  info.family = model_family(info.name);
  info.parameter_size = parameter_size_text(parameters);
  return info;
}

ModelRegistry::ModelRegistry(ResidencyOptions options, const std::vector<ModelSpec>& models,
                             std::chrono::system_clock::time_point modified_at)
    : options_(std::move(options)) {
  for (const auto& spec : models) {
    insert_locked(describe_model(spec.name, spec.size_bytes, modified_at));
  }
}

ModelRegistry::~ModelRegistry() {
  shutdown();
}

ModelRegistry::Entry& ModelRegistry::insert_locked(ModelInfo info) {
  const std::string name = info.name;
  Entry entry;
  entry.info = std::move(info);
  entry.id = next_id_++;
  entry.keep_alive = options_.default_keep_alive;
  entry.slots = std::make_shared<SlotScheduler>(options_.num_parallel, options_.queue_size,
                                                options_.slot_choice);
  return entries_.insert_or_assign(name, std::move(entry)).first->second;
}

ModelRegistry::Entry* ModelRegistry::find_locked(std::string_view name) {
  const auto it = entries_.find(canonical_model_name(name));
  return it == entries_.end() ? nullptr : &it->second;
}

ModelRegistry::Entry* ModelRegistry::find_id_locked(std::uint64_t id) {
  for (auto& [name, entry] : entries_) {
    if (entry.id == id) {
      return &entry;
    }
  }
  return nullptr;
}

std::chrono::nanoseconds ModelRegistry::load_time(const ModelInfo& info) const {
  const double gigabytes = static_cast<double>(info.size_bytes) / kBytesPerGb;
  return std::chrono::nanoseconds{static_cast<std::int64_t>(
      std::llround(gigabytes * static_cast<double>(options_.load_time_per_gb.count())))};
}

void ModelRegistry::unload_locked(Entry& entry) {
  if (!entry.loaded) {
    return;
  }
  entry.loaded = false;
  entry.unload_when_idle = false;
  entry.expires_at.reset();
  // The runner's memory is gone, and with it every KV slot of the model.
  entry.slots->forget();
  ++unloads_;
}

void ModelRegistry::expire_locked(TimePoint now) {
  for (auto& [name, entry] : entries_) {
    if (entry.loaded && entry.active == 0 && entry.expires_at && *entry.expires_at <= now) {
      unload_locked(entry);
    }
  }
}

std::size_t ModelRegistry::resident_locked() const {
  return static_cast<std::size_t>(
      std::count_if(entries_.begin(), entries_.end(),
                    [](const auto& named) { return named.second.loaded || named.second.loading; }));
}

ModelRegistry::Entry* ModelRegistry::least_recently_used_idle_locked() {
  Entry* oldest = nullptr;
  for (auto& [name, entry] : entries_) {
    const bool idle = entry.loaded && !entry.loading && entry.active == 0;
    if (idle && (oldest == nullptr || entry.last_used < oldest->last_used)) {
      oldest = &entry;
    }
  }
  return oldest;
}

ModelRegistry::Admit ModelRegistry::admit(std::string_view name, std::optional<std::size_t> num_ctx,
                                          TimePoint now) {
  std::lock_guard lock(mutex_);
  expire_locked(now);
  Entry* entry = find_locked(name);
  if (entry == nullptr) {
    return {};
  }
  const std::size_t wanted_ctx = num_ctx.value_or(options_.default_num_ctx);
  Admit result{Admission::wait, entry->id, entry->slots, {}};
  if (entry->loading) {
    return result;
  }
  if (entry->loaded && entry->num_ctx != wanted_ctx) {
    // Ollama reloads a runner whose options differ, but only once its requests are done.
    if (entry->active > 0) {
      return result;
    }
    unload_locked(*entry);
  }
  if (entry->loaded) {
    ++entry->active;
    entry->last_used = now;
    entry->expires_at.reset();
    result.admission = Admission::ready;
    return result;
  }
  if (resident_locked() >= std::max<std::size_t>(1, options_.max_loaded_models)) {
    Entry* victim = least_recently_used_idle_locked();
    if (victim == nullptr) {
      return result;  // every loaded model is busy: wait for one to finish
    }
    unload_locked(*victim);
  }
  entry->loading = true;
  entry->num_ctx = wanted_ctx;
  ++entry->active;
  entry->last_used = now;
  ++loads_;
  result.admission = Admission::load;
  result.load_time = load_time(entry->info);
  return result;
}

void ModelRegistry::loaded(std::uint64_t id, TimePoint now) {
  std::lock_guard lock(mutex_);
  Entry* entry = find_id_locked(id);
  if (entry == nullptr || !entry->loading) {
    return;
  }
  entry->loading = false;
  entry->loaded = true;
  entry->last_used = now;
}

void ModelRegistry::release(std::uint64_t id, std::optional<std::chrono::nanoseconds> keep_alive,
                            TimePoint now) {
  std::lock_guard lock(mutex_);
  Entry* entry = find_id_locked(id);
  if (entry == nullptr || entry->active == 0) {
    return;  // deleted meanwhile
  }
  --entry->active;
  entry->last_used = now;
  if (entry->loading) {
    entry->loading = false;  // the load never finished
  }
  entry->keep_alive = keep_alive.value_or(options_.default_keep_alive);
  if (entry->active > 0 || !entry->loaded) {
    return;
  }
  if (entry->unload_when_idle || entry->keep_alive == std::chrono::nanoseconds{0}) {
    unload_locked(*entry);
  } else if (entry->keep_alive < std::chrono::nanoseconds{0}) {
    entry->expires_at.reset();
  } else {
    entry->expires_at = now + entry->keep_alive;
  }
}

bool ModelRegistry::unload(std::string_view name, TimePoint now) {
  std::lock_guard lock(mutex_);
  expire_locked(now);
  Entry* entry = find_locked(name);
  if (entry == nullptr) {
    return false;
  }
  if (entry->active == 0) {
    unload_locked(*entry);
  } else {
    entry->unload_when_idle = true;
  }
  return true;
}

std::optional<ModelInfo> ModelRegistry::find(std::string_view name) const {
  std::lock_guard lock(mutex_);
  const auto it = entries_.find(canonical_model_name(name));
  if (it == entries_.end()) {
    return std::nullopt;
  }
  return it->second.info;
}

std::vector<ModelInfo> ModelRegistry::inventory() const {
  std::lock_guard lock(mutex_);
  std::vector<ModelInfo> models;
  for (const auto& [name, entry] : entries_) {
    models.push_back(entry.info);
  }
  return models;
}

std::vector<LoadedModel> ModelRegistry::loaded(TimePoint now) {
  std::lock_guard lock(mutex_);
  expire_locked(now);
  std::vector<LoadedModel> models;
  for (const auto& [name, entry] : entries_) {
    if (!entry.loaded && !entry.loading) {
      continue;
    }
    LoadedModel model{entry.info, entry.num_ctx, entry.loading, entry.active, entry.expires_at};
    if (entry.active > 0) {
      // Busy: it expires keep_alive after its requests end; shown from now, as Ollama does.
      model.expires_at.reset();
      if (entry.keep_alive >= std::chrono::nanoseconds{0}) {
        model.expires_at = now + entry.keep_alive;
      }
    }
    models.push_back(std::move(model));
  }
  return models;
}

void ModelRegistry::add(ModelInfo info) {
  std::lock_guard lock(mutex_);
  if (Entry* entry = find_locked(info.name)) {
    entry->info.modified_at = info.modified_at;
    return;
  }
  insert_locked(std::move(info));
}

bool ModelRegistry::remove(std::string_view name, TimePoint now) {
  std::lock_guard lock(mutex_);
  expire_locked(now);
  const auto it = entries_.find(canonical_model_name(name));
  if (it == entries_.end()) {
    return false;
  }
  if (it->second.loaded) {
    unload_locked(it->second);
  }
  retired_.push_back(it->second.slots);
  entries_.erase(it);
  return true;
}

bool ModelRegistry::copy(std::string_view source, std::string_view destination,
                         std::chrono::system_clock::time_point modified_at) {
  std::lock_guard lock(mutex_);
  const Entry* from = find_locked(source);
  if (from == nullptr) {
    return false;
  }
  ModelInfo info = from->info;
  info.name = canonical_model_name(destination);
  info.modified_at = modified_at;
  if (Entry* existing = find_locked(info.name)) {
    existing->info = std::move(info);
    return true;
  }
  insert_locked(std::move(info));
  return true;
}

std::uint64_t ModelRegistry::loads() const {
  std::lock_guard lock(mutex_);
  return loads_;
}

std::uint64_t ModelRegistry::unloads() const {
  std::lock_guard lock(mutex_);
  return unloads_;
}

std::size_t ModelRegistry::busy_slots() const {
  std::lock_guard lock(mutex_);
  std::size_t busy = 0;
  for (const auto& [name, entry] : entries_) {
    busy += entry.slots->busy_slots();
  }
  return busy;
}

std::size_t ModelRegistry::queue_depth() const {
  std::lock_guard lock(mutex_);
  std::size_t queued = 0;
  for (const auto& [name, entry] : entries_) {
    queued += entry.slots->queue_depth();
  }
  return queued;
}

void ModelRegistry::shutdown() {
  std::lock_guard lock(mutex_);
  for (auto& [name, entry] : entries_) {
    entry.slots->shutdown();
  }
  for (auto& slots : retired_) {
    slots->shutdown();
  }
}

}  // namespace llmgw::sim
