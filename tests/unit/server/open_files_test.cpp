// The open-files budget (server/open_files.hpp): how many client connections a descriptor limit
// carries. Found by make chaos (scenario 6): under `ulimit -n 256` the configured pools took every
// descriptor and the gateway served one connection.

#include "server/open_files.hpp"

#include <gtest/gtest.h>

namespace llmgw::server::detail {
namespace {

config::GatewayConfig with_nodes(std::size_t nodes) {
  config::GatewayConfig config;
  config.nodes.resize(nodes);
  return config;  // max_idle_upstream_per_node 64, max_connections 10000
}

TEST(OpenFiles, AScarceLimitStillCarriesConnectionsBesideThePools) {
  EXPECT_EQ(connection_capacity(with_nodes(2), 2, 256), 64U);
  EXPECT_EQ(connection_capacity(with_nodes(3), 2, 1024), 320U);
}

TEST(OpenFiles, APlentifulLimitReservesThePoolsWholeAndCapsAtMaxConnections) {
  // 20,000 descriptors, pools 2 x 3 x 64 = 384: (19,936 - 384) / 2.
  EXPECT_EQ(connection_capacity(with_nodes(3), 2, 20'000), 9'776U);
  EXPECT_EQ(connection_capacity(with_nodes(3), 2, 1'000'000), 10'000U);
  EXPECT_EQ(connection_capacity(with_nodes(3), 2, 10), 1U) << "never zero";
}

}  // namespace
}  // namespace llmgw::server::detail
