#pragma once

// A real redis-server (Debian's) for tests, on an ephemeral loopback port, without persistence:
// started and waited for with a bound, stopped by PID. Tests skip with a clear message when the
// binary is missing (scripts/install-deps installs it, so CI never skips).

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.hpp"

namespace llmgw::testing {

class RedisServer {
 public:
  static constexpr const char* kBinary = "/usr/bin/redis-server";
  static constexpr const char* kCli = "/usr/bin/redis-cli";

  // Whether redis-server and redis-cli are installed.
  static bool installed();

  // Starts redis-server on a free port. Throws std::runtime_error when it does not come up.
  RedisServer();
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // Kills the server (SIGKILL: its data is gone, as after a crash without persistence).
  void stop();
  // Starts a fresh, empty server on the same port.
  void start();
  // SIGSTOP / SIGCONT: a server that hangs with its connections open.
  void pause();
  void resume();

  // Runs one command through redis-cli and returns its output, trimmed ("" on failure).
  std::string cli(const std::vector<std::string>& args) const;

 private:
  void launch();

  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace llmgw::testing
