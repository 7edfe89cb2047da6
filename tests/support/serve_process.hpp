#pragma once

// `llmgw serve` as a child process with a configuration file the test rewrites: for what only the
// real binary shows (signals, reloads, log lines, exit codes).

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace llmgw::testing {

// A temporary directory, removed with everything in it on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  // Writes (or replaces) `name` in the directory with `text`; returns its path.
  std::string write(const std::string& name, const std::string& text) const;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

class ServeProcess {
 public:
  // Starts `llmgw serve --config <config_file> <extra_args...>` and waits (up to `timeout`) for
  // its "listening" line; fails the test (port() == 0) when it does not come.
  explicit ServeProcess(const std::string& config_file, std::vector<std::string> extra_args = {},
                        std::chrono::milliseconds timeout = std::chrono::seconds{20});

  ChildProcess& process() { return process_; }
  std::uint16_t port() const { return port_; }
  // "http://127.0.0.1:PORT/path".
  std::string url(std::string_view path) const;
  // True when `needle` appears in the output within `timeout`.
  bool wait_for_output(const std::string& needle,
                       std::chrono::milliseconds timeout = std::chrono::seconds{20});

 private:
  ChildProcess process_;
  std::uint16_t port_ = 0;
};

}  // namespace llmgw::testing
