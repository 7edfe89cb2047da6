#pragma once

// A child process for tests of the executables: its stdout and stderr go to one pipe the test
// reads with a deadline; it is killed and reaped on destruction if it is still running.

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace llmgw::testing {

class ChildProcess {
 public:
  // Starts `binary` with `args` (argv[0] is the binary). Throws std::runtime_error on failure.
  ChildProcess(std::string binary, std::vector<std::string> args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Output up to and including the first occurrence of `needle`, or everything read before the
  // deadline (the caller checks for the needle).
  std::string read_until(const std::string& needle, std::chrono::milliseconds timeout);
  // Everything read so far.
  const std::string& output() const { return output_; }

  // The exit code, or nullopt when the process did not exit in time (or died of a signal).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);

  void signal(int number);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string output_;
  std::optional<int> exit_code_;
  bool reaped_ = false;
};

}  // namespace llmgw::testing
