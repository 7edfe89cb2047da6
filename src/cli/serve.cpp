// `llmgw serve`: load the configuration (file < LLMGW_* environment < flags), set up logging, run
// the gateway until SIGINT/SIGTERM, drain, exit. SIGHUP loads the same sources again and applies
// them (Gateway::reload); `--check-config` only validates, as `nginx -t` does.

#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "llmgw/cli/commands.hpp"
#include "llmgw/config/gateway_config.hpp"
#include "llmgw/server/gateway.hpp"
#include "llmgw/server/logging.hpp"

namespace llmgw::cli {
namespace {

struct ServeOptions {
  std::string config_file;
  std::vector<std::string> overrides;
  std::string listen;
  int port = -1;
  std::vector<std::string> nodes;
  int workers = -1;
  double balance_factor = -1;
  std::string balance_by;
  std::string log_level;
  std::string log_format;
  bool help_config = false;
  bool check_config = false;
};

// Named flags are shorthands for `--set path=value`; they apply after the --set list, except
// --node: the node list comes first, so that `--set nodes[0].max_in_flight=2` refines the nodes
// --node gave instead of being replaced by them.
std::vector<std::string> overrides_from(const ServeOptions& options) {
  std::vector<std::string> overrides;
  if (!options.nodes.empty()) {
    std::string joined;
    for (const auto& node : options.nodes) {
      joined += (joined.empty() ? "" : ",") + node;
    }
    overrides.push_back("nodes=" + joined);
  }
  overrides.insert(overrides.end(), options.overrides.begin(), options.overrides.end());
  if (!options.listen.empty()) {
    overrides.push_back("listen.address=" + options.listen);
  }
  if (options.port >= 0) {
    overrides.push_back("listen.port=" + std::to_string(options.port));
  }
  if (options.workers >= 0) {
    overrides.push_back("workers=" + std::to_string(options.workers));
  }
  if (options.balance_factor >= 0) {
    overrides.push_back("routing.balance_factor=" + std::to_string(options.balance_factor));
  }
  if (!options.balance_by.empty()) {
    overrides.push_back("routing.balance_by=" + options.balance_by);
  }
  if (!options.log_level.empty()) {
    overrides.push_back("log.level=" + options.log_level);
  }
  if (!options.log_format.empty()) {
    overrides.push_back("log.format=" + options.log_format);
  }
  return overrides;
}

config::ConfigSources sources_from(const ServeOptions& options) {
  config::ConfigSources sources;
  if (!options.config_file.empty()) {
    sources.file = options.config_file;
  }
  sources.environment = config::llmgw_environment();
  sources.overrides = overrides_from(options);
  return sources;
}

int serve(const ServeOptions& options) {
  if (options.help_config) {
    std::cout << config::describe_config_keys();
    return kExitOk;
  }
  // The environment is read once: a reload sees the file's new contents under the same
  // environment and flags, which still win over the file.
  const config::ConfigSources sources = sources_from(options);
  config::GatewayConfig gateway_config;
  try {
    gateway_config = config::load_gateway_config(sources);
  } catch (const config::ConfigError& e) {
    std::cerr << "llmgw serve: invalid configuration:\n" << e.what() << '\n';
    return kExitUsage;
  }
  if (options.check_config) {
    std::cout << "configuration ok"
              << (sources.file ? " (" + *sources.file + ")"
                               : std::string{" (no --config file: defaults, LLMGW_* and flags)"})
              << '\n';
    return kExitOk;
  }
  server::configure_logging(gateway_config.log);
  try {
    server::Gateway gateway(gateway_config);
    server::Gateway::ConfigLoader reload_source;
    if (sources.file) {
      reload_source = [sources] {
        spdlog::info("reading {}", *sources.file);
        return config::load_gateway_config(sources);
      };
    }
    gateway.handle_signals(std::move(reload_source));  // before start: SIGHUP must not kill
    gateway.start();
    gateway.run_until_signal();
    spdlog::info("stopped");
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_serve_command(CLI::App& app, ExitCode& exit_code) {
  auto options = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "Run the gateway in front of Ollama nodes");
  cmd->footer(
      "Precedence: --config file < LLMGW_* environment < flags. Every key can be set with\n"
      "--set PATH=VALUE; `llmgw serve --help-config` lists the keys, defaults and variables.\n"
      "SIGHUP reloads the --config file (flags and LLMGW_* still win); SIGINT/SIGTERM drain and "
      "stop.");
  cmd->add_option("-c,--config", options->config_file, "YAML configuration file")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", options->overrides, "Override a key: PATH=VALUE (repeatable)");
  cmd->add_option("--listen", options->listen, "Listen address (listen.address)");
  cmd->add_option("-p,--port", options->port, "Listen port, 0 = ephemeral (listen.port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("-n,--node", options->nodes,
                  "Upstream node URL or NAME=URL (repeatable; replaces the configured nodes)");
  cmd->add_option("-w,--workers", options->workers, "IO threads, 0 = cores (workers)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--balance-factor", options->balance_factor,
                  "Bounded-load factor c >= 1, or 0 for the plain ring (routing.balance_factor)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--balance-by", options->balance_by,
                  "What bounded loads count: sessions or requests (routing.balance_by)");
  cmd->add_option("--log-level", options->log_level, "trace|debug|info|warn|error|off");
  cmd->add_option("--log-format", options->log_format, "text|json");
  cmd->add_flag("--help-config", options->help_config, "List every configuration key and exit");
  cmd->add_flag("--check-config", options->check_config,
                "Validate the configuration (--config, LLMGW_*, flags) and exit: 0 and "
                "\"configuration ok\", or 2 and every problem with its key path");
  cmd->callback([options, &exit_code] { exit_code.value = serve(*options); });
}

}  // namespace llmgw::cli
