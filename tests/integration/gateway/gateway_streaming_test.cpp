// The relay as a client notices it: tokens arrive as they are generated (no buffering), upstream
// connections are reused, a client that leaves frees the node's KV slot, and OpenAI SSE streams
// pass through intact.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

TEST(GatewayStreaming, FirstChunkOfASlowStreamArrivesLongBeforeTheLast) {
  // 10 tokens, 100 ms apart: about one second from first to last.
  GatewayFixture fixture({.sim = slow_sim_options(10, 100.0)});
  net::HttpClient client;
  std::string body;
  int chunks = 0;
  std::optional<Clock::duration> first_chunk_after;
  const auto started = Clock::now();
  const auto exchange = post_json(client, fixture.url("/api/generate"), generate_body("stream me"),
                                  "stream-session", {}, [&](std::string_view data) {
                                    if (!first_chunk_after) {
                                      first_chunk_after = Clock::now() - started;
                                    }
                                    ++chunks;
                                    body.append(data);
                                    return true;
                                  });
  const auto total = Clock::now() - started;
  ASSERT_EQ(exchange.status, 200);
  ASSERT_TRUE(first_chunk_after.has_value());
  const auto records = ndjson_records(body);
  ASSERT_EQ(records.size(), 11U) << body;  // 10 tokens + the final done record
  EXPECT_TRUE(records.back()["done"].get<bool>());
  EXPECT_GE(total, milliseconds{700}) << "the sim's decode delay did not apply";
  EXPECT_LT(*first_chunk_after, total * 4 / 10)
      << "first chunk after "
      << std::chrono::duration_cast<milliseconds>(*first_chunk_after).count() << " ms of "
      << std::chrono::duration_cast<milliseconds>(total).count() << " ms: the stream was buffered";
  EXPECT_GE(chunks, 5) << "the body arrived in too few pieces to have been relayed as generated";
}

TEST(GatewayStreaming, UpstreamConnectionsAreKeptAliveAndReused) {
  GatewayFixture fixture;
  net::HttpClient client;
  // The catalog's first fetches (/api/tags, /api/ps) open connections of their own.
  ASSERT_TRUE(wait_until([&] {
    const auto health = nlohmann::json::parse(get_url(client, fixture.url("/health")).body);
    for (const auto& node : health["nodes"]) {
      if (!node["catalog"]["current"].get<bool>()) {
        return false;
      }
    }
    return true;
  })) << "the catalog's first fetches";
  std::uint64_t accepted_before = 0;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    accepted_before += fixture.sim(i).stats().connections_accepted;  // health probes at start
  }
  constexpr int kRequests = 40;
  for (int i = 0; i < kRequests; ++i) {
    const auto exchange = post_json(client, fixture.url("/api/generate"),
                                    generate_body("reuse " + std::to_string(i)));
    ASSERT_EQ(exchange.status, 200) << exchange.body;
  }
  std::uint64_t accepted = 0;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    accepted += fixture.sim(i).stats().connections_accepted;
  }
  EXPECT_EQ(client.connections_opened(), 1U);
  // One keep-alive client connection is served by one worker: one pooled connection per node.
  EXPECT_LE(accepted - accepted_before, 3U * 2)
      << kRequests << " requests opened " << accepted - accepted_before << " upstream connections";
}

// The descriptor of the other end of loopback connection `client_fd` when it lives in this process
// (the in-process gateway's accepted socket).
std::optional<int> peer_descriptor(int client_fd) {
  sockaddr_in client_local{};
  sockaddr_in client_peer{};
  socklen_t length = sizeof client_local;
  ::getsockname(client_fd, reinterpret_cast<sockaddr*>(&client_local), &length);
  length = sizeof client_peer;
  ::getpeername(client_fd, reinterpret_cast<sockaddr*>(&client_peer), &length);
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    const int fd = std::stoi(entry.path().filename().string());
    sockaddr_in local{};
    sockaddr_in peer{};
    length = sizeof local;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &length) != 0 ||
        local.sin_family != AF_INET) {
      continue;
    }
    length = sizeof peer;
    if (::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &length) != 0) {
      continue;
    }
    if (local.sin_port == client_peer.sin_port && peer.sin_port == client_local.sin_port) {
      return fd;
    }
  }
  return std::nullopt;
}

TEST(GatewayStreaming, ClientSocketsHaveNagleOffSoChunksAreNotHeldBack) {
  // The relay writes the head and then each chunk separately. With Nagle on, every write after the
  // first waits for the client's delayed ACK: short streamed requests took ~50 ms instead of ~5.
  // Timing that reliably on a loaded machine is not possible, so check the cause directly.
  GatewayFixture fixture;
  const int fd = connect_loopback(fixture.gateway().port());
  ASSERT_GE(fd, 0) << "cannot connect to the gateway";
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  // Once a response arrived, the gateway has set up its end of the connection.
  const std::string request = "GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  char buffer[512];
  ASSERT_GT(::recv(fd, buffer, sizeof buffer, 0), 0) << "no response from the gateway";

  const auto gateway_fd = peer_descriptor(fd);
  ASSERT_TRUE(gateway_fd.has_value()) << "the gateway's end of the connection was not found";
  int no_delay = 0;
  socklen_t length = sizeof no_delay;
  ASSERT_EQ(::getsockopt(*gateway_fd, IPPROTO_TCP, TCP_NODELAY, &no_delay, &length), 0);
  EXPECT_NE(no_delay, 0) << "TCP_NODELAY is off on the gateway's client socket";
}

TEST(GatewayStreaming, ClientDisconnectMidStreamCancelsTheUpstreamAndFreesTheSlot) {
  // 100 tokens at 50 ms: five seconds unless cancelled.
  GatewayFixture fixture({.sim = slow_sim_options(100, 50.0)});
  const std::string session = "leaving-session";
  auto& sim = fixture.sim(fixture.ring_owner(session));
  const auto started = Clock::now();
  {
    net::HttpClient client;
    int chunks = 0;
    post_json(client, fixture.url("/api/generate"), generate_body("long story"), session, {},
              [&](std::string_view) { return ++chunks < 2; });  // leave after the second chunk
    EXPECT_EQ(chunks, 2);
  }
  EXPECT_TRUE(wait_until([&] { return sim.stats().cancelled >= 1; }, milliseconds{3'000}))
      << "the sim never saw the generation cancelled";
  EXPECT_TRUE(wait_until([&] { return sim.stats().slots_busy == 0; }, milliseconds{3'000}))
      << "the KV slot stayed busy after the client left";
  EXPECT_LT(Clock::now() - started, milliseconds{4'000}) << "the generation ran to its end";
  net::HttpClient observer;
  EXPECT_TRUE(wait_until(
      [&] { return json::parse(get_url(observer, fixture.url("/health")).body)["in_flight"] == 0; },
      milliseconds{3'000}))
      << "the gateway still counts the abandoned request in flight";
}

TEST(GatewayStreaming, OpenAiChatCompletionStreamEndsWithDone) {
  GatewayFixture fixture;
  net::HttpClient client;
  const json request{{"model", GatewayFixture::kModel},
                     {"messages", json::array({{{"role", "user"}, {"content", "Hello"}}})},
                     {"stream", true}};
  const auto exchange =
      post_json(client, fixture.url("/v1/chat/completions"), request.dump(), "sse-session");
  ASSERT_EQ(exchange.status, 200) << exchange.body;
  EXPECT_EQ(exchange.route, "affinity");
  EXPECT_NE(exchange.response.header("Content-Type").value_or("").find("text/event-stream"),
            std::string_view::npos);
  const std::string& body = exchange.body;
  EXPECT_TRUE(body.ends_with("data: [DONE]\n\n")) << body;
  std::string content;
  int events = 0;
  for (std::size_t at = body.find("data: "); at != std::string::npos;
       at = body.find("data: ", at + 1)) {
    const auto end = body.find("\n\n", at);
    const std::string payload = body.substr(at + 6, end - at - 6);
    if (payload == "[DONE]") {
      continue;
    }
    const auto event = json::parse(payload);
    EXPECT_EQ(event["object"], "chat.completion.chunk");
    content += event["choices"][0]["delta"].value("content", "");
    ++events;
  }
  EXPECT_GE(events, 2);
  EXPECT_FALSE(content.empty());
}

}  // namespace
}  // namespace llmgw::testing
