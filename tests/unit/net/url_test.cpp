// net::redact_url: credentials in URLs never reach what people read.

#include "llmgw/net/url.hpp"

#include <gtest/gtest.h>

namespace llmgw::net {
namespace {

TEST(RedactUrl, ReplacesUserAndPassword) {
  EXPECT_EQ(redact_url("http://user:pw@host:8080/v1"), "http://***@host:8080/v1");
  EXPECT_EQ(redact_url("https://token@api.example.com"), "https://***@api.example.com");
  EXPECT_EQ(redact_url("http://u:p@h?q=1"), "http://***@h?q=1");
}

TEST(RedactUrl, AnAtSignInThePasswordDoesNotLeakItsTail) {
  EXPECT_EQ(redact_url("http://user:p@ss@host/x"), "http://***@host/x");
}

TEST(RedactUrl, LeavesUrlsWithoutCredentialsAlone) {
  EXPECT_EQ(redact_url("http://127.0.0.1:11434"), "http://127.0.0.1:11434");
  EXPECT_EQ(redact_url("https://api.groq.com/openai/v1?x=a@b"),
            "https://api.groq.com/openai/v1?x=a@b");  // '@' past the authority is not user-info
  EXPECT_EQ(redact_url("no url here: a@b"), "no url here: a@b");
  EXPECT_EQ(redact_url(""), "");
  EXPECT_EQ(redact_url("http://"), "http://");
}

TEST(RedactUrl, RedactsEveryUrlInProse) {
  EXPECT_EQ(redact_url("openai at http://a:b@x/v1 (model m), fallback https://c@y"),
            "openai at http://***@x/v1 (model m), fallback https://***@y");
}

}  // namespace
}  // namespace llmgw::net
