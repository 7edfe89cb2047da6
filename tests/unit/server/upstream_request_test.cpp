// What a node receives for a client's request (server/upstream_request.hpp): read back through
// Beast's parser, as the node would read it.

#include "server/upstream_request.hpp"

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <string>
#include <vector>

namespace llmgw::server::detail {
namespace {

namespace http = beast::http;

Request as_node_reads_it(const Request& client, std::string_view host = "node-a:11434") {
  const UpstreamRequest upstream{client, "198.51.100.9"};
  const std::string wire = upstream.head(host) + upstream.body();
  http::request_parser<http::string_body> parser;
  parser.eager(true);
  beast::error_code ec;
  EXPECT_EQ(parser.put(boost::asio::buffer(wire), ec), wire.size());
  EXPECT_FALSE(ec) << ec.message();
  EXPECT_TRUE(parser.is_done());
  return parser.release();
}

Request chat(unsigned version = 11) {
  Request request{http::verb::post, "/api/chat", version};
  request.set(http::field::host, "gateway.example");
  request.set(http::field::content_type, "application/json");
  request.body() = R"({"model":"llama3.2","messages":[]})";
  request.prepare_payload();
  return request;
}

TEST(UpstreamRequest, KeepsTheMessageAndNamesTheNode) {
  Request client = chat();
  client.set("X-Session-ID", "s-1");
  const Request seen = as_node_reads_it(client);
  EXPECT_EQ(seen.method(), http::verb::post);
  EXPECT_EQ(seen.target(), "/api/chat");
  EXPECT_EQ(seen.version(), 11U);
  EXPECT_EQ(seen.count(http::field::host), 1U);
  EXPECT_EQ(seen[http::field::host], "node-a:11434");
  EXPECT_EQ(seen[http::field::content_type], "application/json");
  EXPECT_EQ(seen["X-Session-ID"], "s-1");
  EXPECT_EQ(seen.body(), client.body());
  EXPECT_TRUE(seen.keep_alive());
  EXPECT_EQ(client[http::field::host], "gateway.example");  // the client's request is unchanged
}

TEST(UpstreamRequest, DropsHopByHopFieldsAndThoseConnectionNames) {
  Request client = chat(10);
  client.set(http::field::connection, "keep-alive, X-Private");
  client.set(http::field::keep_alive, "timeout=5");
  client.set("X-Private", "for the gateway only");
  client.set(http::field::te, "trailers");
  client.set(http::field::upgrade, "h2c");
  client.set(http::field::expect, "100-continue");
  client.set(http::field::proxy_authorization, "Basic c2VjcmV0");
  const Request seen = as_node_reads_it(client);
  for (const auto* name : {"Connection", "Keep-Alive", "X-Private", "TE", "Upgrade", "Expect",
                           "Proxy-Authorization"}) {
    EXPECT_EQ(seen.count(name), 0U) << name;
  }
  EXPECT_EQ(seen.version(), 11U);  // an HTTP/1.0 client's request goes out as HTTP/1.1 keep-alive
  EXPECT_TRUE(seen.keep_alive());
}

TEST(UpstreamRequest, AppendsTheClientToEveryForwardedForItSent) {
  Request client = chat();
  client.insert("X-Forwarded-For", "203.0.113.1");
  client.insert("X-Forwarded-For", "203.0.113.2, 203.0.113.3");
  EXPECT_EQ(as_node_reads_it(client)["X-Forwarded-For"],
            "203.0.113.1, 203.0.113.2, 203.0.113.3, 198.51.100.9");
  EXPECT_EQ(as_node_reads_it(chat())["X-Forwarded-For"], "198.51.100.9");
}

TEST(UpstreamRequest, ContentLengthFollowsTheBody) {
  Request client = chat();
  client.set(http::field::content_length, "999");  // whatever the client said, the body counts
  client.body() = "{}";
  EXPECT_EQ(as_node_reads_it(client)[http::field::content_length], "2");

  Request get{http::verb::get, "/api/tags", 11};
  get.set(http::field::host, "gateway.example");
  EXPECT_EQ(as_node_reads_it(get).count(http::field::content_length), 0U);

  Request empty_post{http::verb::post, "/api/pull", 11};
  EXPECT_EQ(as_node_reads_it(empty_post)[http::field::content_length], "0");

  Request chunked = chat();
  chunked.set(http::field::transfer_encoding, "chunked");
  const Request seen = as_node_reads_it(chunked);
  EXPECT_EQ(seen.count(http::field::transfer_encoding), 0U);
  EXPECT_EQ(seen.body(), chunked.body());
}

}  // namespace
}  // namespace llmgw::server::detail
