#include <CLI/CLI.hpp>
#include <iostream>

#include "llmgw/cli/commands.hpp"
#include "llmgw/version.hpp"

namespace llmgw::cli {

void add_version_command(CLI::App& app, ExitCode& exit_code) {
  auto* cmd = app.add_subcommand("version", "Print the version and exit");
  cmd->callback([&exit_code] {
    std::cout << "llmgw " << kVersion << '\n';
    exit_code.value = kExitOk;
  });
}

int run(int argc, char** argv) {
  CLI::App app{"llmgw: an LLM inference gateway with session affinity, and a PR review toolkit"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string{kVersion});
  ExitCode exit_code;
  add_version_command(app, exit_code);
  add_serve_command(app, exit_code);
  add_bench_command(app, exit_code);
  add_summarise_command(app, exit_code);
  add_eval_command(app, exit_code);
  add_review_command(app, exit_code);
  add_review_server_command(app, exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return kExitUsage;
  }
  return exit_code.value;
}

}  // namespace llmgw::cli
