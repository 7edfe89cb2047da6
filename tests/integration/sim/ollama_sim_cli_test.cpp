// The ollama-sim executable: flags, the "listening on" line scripts read, and clean shutdown.

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmgw/net/http_client.hpp"

namespace llmgw::sim {
namespace {

// A child process with its stdout (and stderr) on a pipe; killed and reaped on destruction.
class Child {
 public:
  explicit Child(std::vector<std::string> args) {
    int fds[2];
    if (::pipe(fds) != 0) {
      throw std::runtime_error("pipe failed");
    }
    pid_ = ::fork();
    if (pid_ == 0) {
      ::dup2(fds[1], STDOUT_FILENO);
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> argv;
      argv.push_back(const_cast<char*>(OLLAMA_SIM_BINARY));
      for (auto& arg : args) {
        argv.push_back(arg.data());
      }
      argv.push_back(nullptr);
      ::execv(OLLAMA_SIM_BINARY, argv.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~Child() {
    if (pid_ > 0 && !exit_code_) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // Output up to and including the first line containing `needle`, or everything read before the
  // deadline.
  std::string read_until(const std::string& needle, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (output_.find(needle) == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        break;
      }
      pollfd fd{out_, POLLIN, 0};
      if (::poll(&fd, 1, static_cast<int>(left.count())) <= 0) {
        break;
      }
      char buffer[4096];
      const auto n = ::read(out_, buffer, sizeof buffer);
      if (n <= 0) {
        break;
      }
      output_.append(buffer, static_cast<std::size_t>(n));
    }
    return output_;
  }

  // The exit code, or nullopt when the process did not exit in time (or died of a signal).
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
    }
    return std::nullopt;
  }

  void signal(int number) { ::kill(pid_, number); }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string output_;
  std::optional<int> exit_code_;
};

constexpr std::chrono::milliseconds kTimeout{10'000};

TEST(OllamaSimCli, PrintsItsEphemeralPortServesAndStopsCleanlyOnSigterm) {
  Child child({"--port", "0", "--time-scale", "0.001", "--models", "tiny:1b"});
  const std::string prefix = "ollama-sim listening on http://127.0.0.1:";
  const std::string output = child.read_until("\n", kTimeout);
  const auto at = output.find(prefix);
  ASSERT_NE(at, std::string::npos) << output;
  const int port = std::stoi(output.substr(at + prefix.size()));
  ASSERT_GT(port, 0);

  net::HttpClient client;
  const auto base = "http://127.0.0.1:" + std::to_string(port);
  const auto tags = client.send({"GET", base + "/api/tags", {}, ""});
  EXPECT_EQ(tags.status, 200);
  EXPECT_NE(tags.body.find("tiny:1b"), std::string::npos);

  child.signal(SIGTERM);
  EXPECT_EQ(child.wait_exit(kTimeout), 0);
}

TEST(OllamaSimCli, HelpListsTheFlagsAndExitsZero) {
  Child child({"--help"});
  const auto output = child.read_until("--time-scale", kTimeout);
  EXPECT_EQ(child.wait_exit(kTimeout), 0);
  for (const char* flag : {"--port", "--models", "--num-parallel", "--queue-size", "--prefill-tps",
                           "--decode-tps", "--time-scale", "--seed", "--fault"}) {
    EXPECT_NE(output.find(flag), std::string::npos) << flag;
  }
}

TEST(OllamaSimCli, UsageErrorsExitTwo) {
  for (const auto& args : std::vector<std::vector<std::string>>{{"--num-parallel", "0"},
                                                                {"--fault", "explode"},
                                                                {"--no-such-flag"},
                                                                {"--models", ","}}) {
    Child child(args);
    EXPECT_EQ(child.wait_exit(kTimeout), 2) << args.front();
  }
}

}  // namespace
}  // namespace llmgw::sim
