// Private to src/sim: the `ollama-sim` flags that configure models and their residency
// (--model/--models, --max-loaded-models, --load-seconds-per-gb, --keep-alive, --context-length,
// --fail-pull), kept apart from run_cli.cpp so the CLI's other flags stay readable.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "llmgw/sim/ollama_sim.hpp"

namespace llmgw::sim::detail {

class ModelFlags {
 public:
  // Registers the flags on `app`; the numeric ones write straight into `options`.
  ModelFlags(CLI::App& app, SimOptions& options);

  // After parsing: fills options.models and options.keep_alive. On a bad value prints the error
  // (naming the flag) to stderr and returns false, which is a usage error.
  bool apply(SimOptions& options) const;

 private:
  CLI::Option* models_option_ = nullptr;
  std::string models_ = "llama3.2,qwen2.5:0.5b";
  std::vector<std::string> model_;
  std::string keep_alive_ = "5m";
};

}  // namespace llmgw::sim::detail
