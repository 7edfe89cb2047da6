#include "model_flags.hpp"

#include <charconv>
#include <iostream>

namespace llmgw::sim::detail {

namespace {

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> items;
  std::size_t start = 0;
  while (start <= list.size()) {
    const std::size_t comma = std::min(list.find(',', start), list.size());
    std::string item = list.substr(start, comma - start);
    const auto first = item.find_first_not_of(" \t");
    const auto last = item.find_last_not_of(" \t");
    if (first != std::string::npos) {
      items.push_back(item.substr(first, last - first + 1));
    }
    start = comma + 1;
  }
  return items;
}

// OLLAMA_KEEP_ALIVE accepts a Go duration ("5m", "-1") or a whole number of seconds ("300").
std::optional<std::chrono::nanoseconds> parse_keep_alive(const std::string& text) {
  if (auto duration = parse_go_duration(text)) {
    return duration;
  }
  long long seconds = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (error != std::errc{} || end != text.data() + text.size() || seconds > 9'000'000'000LL) {
    return std::nullopt;
  }
  return seconds < 0 ? std::chrono::nanoseconds{-1} : std::chrono::seconds{seconds};
}

}  // namespace

ModelFlags::ModelFlags(CLI::App& app, SimOptions& options) {
  models_option_ =
      app.add_option("--models", models_,
                     "Comma-separated models on this node's disk, each name[=size_gb] "
                     "(e.g. llama3.2=2.0,qwen2.5:0.5b); sizes default from the parameter size")
          ->capture_default_str();
  app.add_option("--model", model_,
                 "One more model on disk, name[=size_gb]; repeatable. Given without --models, "
                 "only these are served");
  app.add_option("--max-loaded-models", options.max_loaded_models,
                 "Models loaded at once; the least recently used idle one is unloaded for another")
      ->envname("OLLAMA_MAX_LOADED_MODELS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1024}))
      ->capture_default_str();
  app.add_option("--load-seconds-per-gb", options.load_seconds_per_gb,
                 "Time to load a model per GB of its size, times --time-scale (0 = instant)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--keep-alive", keep_alive_,
                 "How long an idle model stays loaded (Go duration or seconds; negative = forever, "
                 "0 = unload after each request); wall time, not scaled")
      ->envname("OLLAMA_KEEP_ALIVE")
      ->capture_default_str();
  app.add_option("--context-length", options.default_num_ctx,
                 "Context size a model loads with when a request names no num_ctx")
      ->envname("OLLAMA_CONTEXT_LENGTH")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
      ->capture_default_str();
  app.add_flag("--fail-pull", options.fail_pull,
               "Make every /api/pull fail after \"pulling manifest\" (for tests)");
}

bool ModelFlags::apply(SimOptions& options) const {
  std::vector<std::string> specs;
  if (models_option_->count() > 0 || model_.empty()) {
    specs = split_list(models_);
  }
  specs.insert(specs.end(), model_.begin(), model_.end());
  options.models.clear();
  for (const auto& text : specs) {
    auto spec = parse_model_spec(text);
    if (const auto* error = std::get_if<std::string>(&spec)) {
      std::cerr << "ollama-sim: --models/--model: " << *error << '\n';
      return false;
    }
    options.models.push_back(std::move(std::get<ModelSpec>(spec)));
  }
  if (options.models.empty()) {
    std::cerr << "ollama-sim: --models: at least one model name is required\n";
    return false;
  }
  const auto keep_alive = parse_keep_alive(keep_alive_);
  if (!keep_alive) {
    std::cerr << "ollama-sim: --keep-alive: '" << keep_alive_
              << "' is not a duration (e.g. 5m, 1h, 300, -1)\n";
    return false;
  }
  options.keep_alive = *keep_alive;
  return true;
}

}  // namespace llmgw::sim::detail
