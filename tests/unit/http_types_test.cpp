#include "llmgw/net/http_types.hpp"

#include <gtest/gtest.h>

namespace llmgw::net {
namespace {

TEST(HttpTypes, FindHeaderIgnoresCase) {
  const HttpHeaders headers{{"Content-Type", "application/json"}, {"X-Session-ID", "abc"}};
  ASSERT_TRUE(find_header(headers, "x-session-id").has_value());
  EXPECT_EQ(*find_header(headers, "x-session-id"), "abc");
  EXPECT_FALSE(find_header(headers, "X-Missing").has_value());
}

TEST(HttpTypes, TargetPathDropsQuery) {
  EXPECT_EQ(target_path("/api/chat?stream=false"), "/api/chat");
  EXPECT_EQ(target_path("/health"), "/health");
}

}  // namespace
}  // namespace llmgw::net
