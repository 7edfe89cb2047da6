#include "support/redis_server.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "support/run_process.hpp"

namespace llmgw::testing {
namespace {

// A port nothing listens on now (the kernel's pick for port 0); the server binds it right after.
std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof address;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    if (fd >= 0) {
      ::close(fd);
    }
    throw std::runtime_error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

}  // namespace

bool RedisServer::installed() {
  return std::filesystem::exists(kBinary) && std::filesystem::exists(kCli);
}

RedisServer::RedisServer() {
  for (int attempt = 0; attempt < 3 && !process_; ++attempt) {
    port_ = free_port();
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
