#include "support/redis_server.hpp"

#include <signal.h>

#include <filesystem>
#include <stdexcept>

#include "support/run_process.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {

bool RedisServer::installed() {
  return std::filesystem::exists(kBinary) && std::filesystem::exists(kCli);
}

RedisServer::RedisServer() {
  for (int attempt = 0; attempt < 3 && !process_; ++attempt) {
    port_ = free_loopback_port();
    try {
      launch();
    } catch (const std::runtime_error&) {
      if (attempt == 2) {
        throw;
      }
    }
  }
}

RedisServer::~RedisServer() {
  if (process_) {
    resume();  // a stopped process is killed all the same, but be tidy
  }
}

void RedisServer::launch() {
  auto process = std::make_unique<ChildProcess>(
      kBinary,
      std::vector<std::string>{"--port", std::to_string(port_), "--bind", "127.0.0.1", "--save", "",
                               "--appendonly", "no", "--daemonize", "no", "--loglevel", "notice"});
  const std::string output =
      process->read_until("Ready to accept connections", std::chrono::seconds{10});
  if (output.find("Ready to accept connections") == std::string::npos) {
    throw std::runtime_error("redis-server did not start on port " + std::to_string(port_) + ": " +
                             output);
  }
  process_ = std::move(process);
}

void RedisServer::stop() {
  if (process_) {
    process_->signal(SIGCONT);
    process_.reset();  // SIGKILL and reap
  }
}

void RedisServer::start() {
  if (!process_) {
    launch();
  }
}

void RedisServer::pause() {
  if (process_) {
    process_->signal(SIGSTOP);
  }
}

void RedisServer::resume() {
  if (process_) {
    process_->signal(SIGCONT);
  }
}

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{kCli, "-h", "127.0.0.1", "-p", std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  auto result = run_process(argv, {}, std::chrono::seconds{5});
  std::string out = result.exit_code == 0 ? result.out : std::string{};
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r' || out.back() == ' ')) {
    out.pop_back();
  }
  return out;
}

}  // namespace llmgw::testing
