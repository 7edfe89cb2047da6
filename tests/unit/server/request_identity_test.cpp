// Request identity: X-Request-ID kept when sane, else generated; traceparent continued with a new
// parent id, or started.

#include "server/request_identity.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <string>

namespace llmgw::server::detail {
namespace {

const std::string kTrace = "4bf92f3577b34da6a3ce929d0e0e4736";
const std::string kParent = "00f067aa0ba902b7";

TEST(RequestIdentity, KeepsTheClientsRequestIdAndGeneratesOneOtherwise) {
  EXPECT_EQ(identify("req-42", "").request_id, "req-42");
  for (const std::string& bad : {std::string{}, std::string{"has space"}, std::string{"q\"uote"},
                                 std::string(201, 'a'), std::string{"tab\there"}}) {
    const auto identity = identify(bad, "");
    EXPECT_TRUE(std::regex_match(identity.request_id, std::regex{"[0-9a-f]{32}"}))
        << "'" << bad << "' -> " << identity.request_id;
  }
  EXPECT_NE(identify("", "").request_id, identify("", "").request_id);
}

TEST(RequestIdentity, ContinuesAValidTraceWithANewParentId) {
  const auto identity = identify("", "00-" + kTrace + "-" + kParent + "-01");
  EXPECT_EQ(identity.trace_id, kTrace);
  EXPECT_NE(identity.span_id, kParent);
  EXPECT_EQ(identity.traceparent, "00-" + kTrace + "-" + identity.span_id + "-01");
  // A later version: its first four fields are read, and the gateway speaks version 00.
  EXPECT_EQ(identify("", "01-" + kTrace + "-" + kParent + "-00-extra").trace_id, kTrace);
}

TEST(RequestIdentity, StartsATraceWhenTheClientsIsAbsentOrInvalid) {
  const std::regex shape{"00-[0-9a-f]{32}-[0-9a-f]{16}-00"};
  for (const std::string& bad :
       {std::string{}, "00-" + kTrace + "-" + kParent + "-01-extra",  // version 00 is exact
        "ff-" + kTrace + "-" + kParent + "-01",                       // version ff is invalid
        "00-" + std::string(32, '0') + "-" + kParent + "-01",         // all-zero trace id
        "00-" + kTrace + "-" + std::string(16, '0') + "-01",          // all-zero parent id
        "00-" + std::string{"4BF92F3577B34DA6A3CE929D0E0E4736"} + "-" + kParent + "-01"}) {
    const auto identity = identify("", bad);
    EXPECT_TRUE(std::regex_match(identity.traceparent, shape)) << bad;
    EXPECT_NE(identity.trace_id, kTrace) << bad;
  }
}

}  // namespace
}  // namespace llmgw::server::detail
