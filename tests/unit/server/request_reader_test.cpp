// The request-head rules of the gateway (server/request_reader.hpp), without sockets.

#include "server/request_reader.hpp"

#include <gtest/gtest.h>

namespace llmgw::server::detail {
namespace {

http::request_header<> head(http::verb method, std::string_view target, unsigned version = 11) {
  http::request_header<> out;
  out.method(method);
  out.target(target);
  out.version(version);
  out.set(http::field::host, "gateway");
  return out;
}

int status_of(const http::request_header<>& request,
              std::optional<std::uint64_t> content_length = std::nullopt) {
  const auto error = validate_request_head(request, content_length, config::LimitsConfig{});
  return error ? error->status : 0;
}

TEST(ValidateRequestHead, AcceptsOrdinaryRequests) {
  EXPECT_EQ(status_of(head(http::verb::get, "/api/tags")), 0);
  auto post = head(http::verb::post, "/api/chat");
  post.set(http::field::transfer_encoding, "chunked");
  EXPECT_EQ(status_of(post), 0);
  post.set(http::field::transfer_encoding, "Chunked");
  EXPECT_EQ(status_of(post), 0);
  EXPECT_EQ(status_of(head(http::verb::get, "http://x/api/tags")), 0);
  EXPECT_EQ(status_of(head(http::verb::options, "*")), 0);
}

TEST(ValidateRequestHead, TransferCodingsOtherThanChunkedAre501Or400) {
  const auto with = [](std::initializer_list<std::string_view> values) {
    auto request = head(http::verb::post, "/api/generate");
    for (const auto value : values) {
      request.insert(http::field::transfer_encoding, value);
    }
    return status_of(request);
  };
  EXPECT_EQ(with({"xchunked"}), 501);
  EXPECT_EQ(with({"chunked, gzip"}), 501);
  EXPECT_EQ(with({"gzip, chunked"}), 501);
  EXPECT_EQ(with({"gzip", "chunked"}), 501);
  EXPECT_EQ(with({"chunked", "chunked"}), 400);
  EXPECT_EQ(with({"chunked,chunked"}), 400);
  EXPECT_EQ(with({"chunked;ext=1"}), 400);
  EXPECT_EQ(with({","}), 400);
  EXPECT_EQ(with({"\xff\xfe"}), 501);  // the message stays printable (JSON-safe)
  auto both = head(http::verb::post, "/api/generate");
  both.set(http::field::transfer_encoding, "chunked");
  both.set(http::field::content_length, "5");
  EXPECT_EQ(status_of(both, 5), 400);
  auto old = head(http::verb::post, "/api/generate", 10);
  old.set(http::field::transfer_encoding, "chunked");
  EXPECT_EQ(status_of(old), 400);
}

TEST(ValidateRequestHead, HostConnectAndTargets) {
  http::request_header<> no_host;
  no_host.method(http::verb::get);
  no_host.target("/api/tags");
  no_host.version(11);
  EXPECT_EQ(status_of(no_host), 400);
  no_host.version(10);
  EXPECT_EQ(status_of(no_host), 0);  // HTTP/1.0 needs none
  auto two = head(http::verb::get, "/");
  two.insert(http::field::host, "other");
  EXPECT_EQ(status_of(two), 400);
  const auto connect = validate_request_head(head(http::verb::connect, "example.com:443"),
                                             std::nullopt, config::LimitsConfig{});
  ASSERT_TRUE(connect);
  EXPECT_EQ(connect->status, 405);
  EXPECT_FALSE(connect->allow.empty());
  EXPECT_EQ(status_of(head(http::verb::get, "api/tags")), 400);
  EXPECT_EQ(status_of(head(http::verb::get, "*")), 400);
  EXPECT_EQ(status_of(head(http::verb::get, "ftp://x/y")), 400);
}

TEST(ValidateRequestHead, ContentLengthPastTheBodyLimitIs413) {
  config::LimitsConfig limits;
  limits.max_body_bytes = 10;
  const auto error = validate_request_head(head(http::verb::post, "/"), 11, limits);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->status, 413);
  EXPECT_FALSE(validate_request_head(head(http::verb::post, "/"), 10, limits));
}

TEST(OriginForm, KeepsPathAndQueryOfAbsoluteHttpUrls) {
  EXPECT_EQ(origin_form("http://x/api/tags"), "/api/tags");
  EXPECT_EQ(origin_form("HTTPS://user:pw@x:8080/v1/models?a=1"), "/v1/models?a=1");
  EXPECT_EQ(origin_form("http://x"), "/");
  EXPECT_EQ(origin_form("http://x?q"), "/?q");
  EXPECT_EQ(origin_form("/api/tags"), std::nullopt);
  EXPECT_EQ(origin_form("ftp://x/y"), std::nullopt);
  EXPECT_EQ(origin_form("http:/x"), std::nullopt);
  EXPECT_EQ(origin_form("http://x/#frag"), std::nullopt);
}

TEST(BodyReservation, HoldsBytesWithinTheLimitAndGivesThemBack) {
  std::atomic<std::size_t> held{0};
  {
    BodyReservation first(held);
    EXPECT_TRUE(first.add(60, 100));
    BodyReservation second(held);
    EXPECT_FALSE(second.add(41, 100));
    EXPECT_EQ(held.load(), 60U);
    EXPECT_TRUE(second.add(40, 100));
    EXPECT_FALSE(second.add(std::numeric_limits<std::uint64_t>::max(), 100));
    EXPECT_EQ(held.load(), 100U);
  }
  EXPECT_EQ(held.load(), 0U);
}

}  // namespace
}  // namespace llmgw::server::detail
