// `llmgw serve` flags, through the real binary: the named routing flags reach the running gateway,
// and a bad value is refused at start with the key's path and exit code 2.

#include <gtest/gtest.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

#include "llmgw/net/http_client.hpp"
#include "support/child_process.hpp"
#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using std::chrono::milliseconds;

TEST(GatewayCli, BalanceFlagsReachTheRunningGateway) {
  ChildProcess gateway(LLMGW_BINARY, {"serve", "--listen", "127.0.0.1", "--port", "0", "--workers",
                                      "1", "--node", "node-a=http://127.0.0.1:9", "--balance-by",
                                      "requests", "--balance-factor", "1.5"});
  const std::string marker = "llmgw listening on 127.0.0.1:";
  const std::string output = gateway.read_until("routing", milliseconds{10'000});
  const auto at = output.find(marker);
  ASSERT_NE(at, std::string::npos) << output;
  const auto port = std::stoi(output.substr(at + marker.size()));
  net::HttpClient client;
  const auto health = get_url(client, "http://127.0.0.1:" + std::to_string(port) + "/health");
  const auto routing = nlohmann::json::parse(health.body)["routing"];
  EXPECT_EQ(routing["balance_by"], "requests");
  EXPECT_EQ(routing["balance_factor"], 1.5);
  EXPECT_EQ(routing["live_sessions"], 0);
}

TEST(GatewayCli, AnUnknownBalanceUnitIsRefusedWithTheKeyPath) {
  ChildProcess gateway(LLMGW_BINARY, {"serve", "--listen", "127.0.0.1", "--port", "0", "--node",
                                      "http://127.0.0.1:9", "--balance-by", "tokens"});
  const std::string output = gateway.read_until("(from --set)", milliseconds{10'000});
  EXPECT_NE(output.find("routing.balance_by: must be one of sessions, requests; got \"tokens\""),
            std::string::npos)
      << output;
  const auto exit_code = gateway.wait_exit(milliseconds{10'000});
  ASSERT_TRUE(exit_code.has_value()) << output;
  EXPECT_EQ(*exit_code, 2);
}

}  // namespace
}  // namespace llmgw::testing
