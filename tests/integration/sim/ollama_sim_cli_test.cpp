// The ollama-sim executable: flags, the "listening on" line scripts read, and clean shutdown.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "support/child_process.hpp"

namespace llmgw::sim {
namespace {

// The ollama-sim executable as a child process (output on a pipe; killed and reaped at the end).
class Child : public llmgw::testing::ChildProcess {
 public:
  explicit Child(std::vector<std::string> args)
      : ChildProcess(OLLAMA_SIM_BINARY, std::move(args)) {}
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

TEST(OllamaSimCli, ModelFlagsSetTheInventoryAndItsSizes) {
  Child child({"--port", "0", "--model", "tiny:1b=0.5", "--model", "other", "--max-loaded-models",
               "1", "--load-seconds-per-gb", "0", "--keep-alive", "-1"});
  const std::string prefix = "ollama-sim listening on http://127.0.0.1:";
  const std::string output = child.read_until("\n", kTimeout);
  const auto at = output.find(prefix);
  ASSERT_NE(at, std::string::npos) << output;
  const auto base =
      "http://127.0.0.1:" + std::to_string(std::stoi(output.substr(at + prefix.size())));
  net::HttpClient client;
  const auto tags = client.send({"GET", base + "/api/tags", {}, ""});
  EXPECT_NE(tags.body.find(R"("name":"tiny:1b")"), std::string::npos) << tags.body;
  EXPECT_NE(tags.body.find(R"("size":500000000)"), std::string::npos) << tags.body;
  EXPECT_NE(tags.body.find(R"("name":"other:latest")"), std::string::npos) << tags.body;
  EXPECT_EQ(tags.body.find("llama3.2"), std::string::npos) << "--model alone replaces the default";
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
                                                                {"--models", ","},
                                                                {"--models", "big=huge"},
                                                                {"--model", "=2"},
                                                                {"--keep-alive", "soon"},
                                                                {"--max-loaded-models", "0"}}) {
    Child child(args);
    EXPECT_EQ(child.wait_exit(kTimeout), 2) << args.front();
  }
}

}  // namespace
}  // namespace llmgw::sim
