// AdmissionGate::activity: which models a node is serving or queueing now, what routing by model
// reads to keep a node to one model (server/catalog.hpp's takes_without_swap).

#include <gtest/gtest.h>

#include "llmgw/config/gateway_config.hpp"
#include "llmgw/metrics/gateway_metrics.hpp"
#include "server/admission_gate.hpp"

namespace llmgw::server::detail {
namespace {

TEST(AdmissionActivity, CountsAdmittedRequestsPerModelUntilTheyEnd) {
  metrics::GatewayMetrics metrics;
  config::NodeConfig node;
  node.name = "n0";
  node.max_in_flight = 2;
  config::AdmissionConfig admission;
  admission.interactive_reserve = 0;  // both slots for any class
  AdmissionGate gate(metrics.node("n0").admission, node, admission);

  auto idle = gate.activity("a:latest");
  EXPECT_FALSE(idle.this_model);
  EXPECT_FALSE(idle.other_models);
  {
    auto serving_a = gate.try_admit("a:latest", admission::Priority::interactive);
    ASSERT_TRUE(serving_a.held());
    EXPECT_TRUE(gate.activity("a:latest").this_model);
    EXPECT_FALSE(gate.activity("a:latest").other_models);
    EXPECT_FALSE(gate.activity("b:latest").this_model);
    EXPECT_TRUE(gate.activity("b:latest").other_models);
    // A request without a model (the catalog off) is nobody's.
    auto unnamed = gate.try_admit("", admission::Priority::interactive);
    ASSERT_TRUE(unnamed.held());
    EXPECT_FALSE(gate.activity("a:latest").other_models);
  }
  const auto after = gate.activity("b:latest");
  EXPECT_FALSE(after.this_model);
  EXPECT_FALSE(after.other_models);
}

}  // namespace
}  // namespace llmgw::server::detail
