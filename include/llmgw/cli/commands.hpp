#pragma once

// The subcommands of `llmgw`. Each area registers its own subcommand on the CLI11 app; the
// subcommand's callback stores the process exit code (0 ok, 1 runtime failure, 2 usage error).

namespace CLI {
class App;
}  // namespace CLI

namespace llmgw::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

struct ExitCode {
  int value = kExitOk;
};

// Parses argv and runs the chosen subcommand; returns the process exit code.
int run(int argc, char** argv);

void add_version_command(CLI::App& app, ExitCode& exit_code);
void add_serve_command(CLI::App& app, ExitCode& exit_code);
void add_bench_command(CLI::App& app, ExitCode& exit_code);
void add_summarise_command(CLI::App& app, ExitCode& exit_code);
void add_eval_command(CLI::App& app, ExitCode& exit_code);
void add_review_command(CLI::App& app, ExitCode& exit_code);
void add_review_server_command(CLI::App& app, ExitCode& exit_code);

}  // namespace llmgw::cli
