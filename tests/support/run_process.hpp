#pragma once

// Runs a child process to completion for CLI tests: arguments without a shell, extra environment
// variables, stdout and stderr captured separately, and a deadline after which the child is
// killed (the result says so) so that a hung command fails the test instead of the suite.

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace llmgw::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when killed by a signal or the deadline
  bool timed_out = false;
  std::string out;
  std::string err;
};

// Runs `argv[0]` with `argv`; `env` entries are added to (or replace) the current environment,
// and an entry with an empty value removes the variable.
ProcessResult run_process(const std::vector<std::string>& argv,
                          const std::map<std::string, std::string>& env = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds{60});

}  // namespace llmgw::testing
