// The HTTP server and client against each other over real loopback sockets.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "llmgw/net/http_server.hpp"
#include "support/wait.hpp"

namespace llmgw::net {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// Echoes what it received so the client side can assert on it.
boost::asio::awaitable<void> echo_handler(const ServerRequest& request, ResponseStream& response) {
  HttpHeaders headers;
  headers.push_back({"Content-Type", "text/plain"});
  headers.push_back({"X-Echo-Method", request.method});
  headers.push_back({"X-Echo-Target", request.target});
  headers.push_back({"X-Echo-User-Agent", std::string(request.header("User-Agent").value_or(""))});
  headers.push_back({"X-Echo-Test", std::string(request.header("X-Test").value_or(""))});
  co_await response.respond(200, std::move(headers), request.body);
}

ServerOptions loopback_options() {
  ServerOptions options;
  options.address = "127.0.0.1";
  options.port = 0;
  return options;
}

TEST(HttpClientServer, GetAndPostRoundTrip) {
  HttpServer server{loopback_options(), echo_handler};
  server.start();
  HttpClient client;

  const auto get = client.send({"GET", server.base_url() + "/api/tags?x=1", {{"X-Test", "a"}}, ""});
  EXPECT_EQ(get.status, 200);
  EXPECT_EQ(get.header("X-Echo-Method"), "GET");
  EXPECT_EQ(get.header("x-echo-target"), "/api/tags?x=1");
  EXPECT_EQ(get.header("X-Echo-Test"), "a");
  EXPECT_THAT(std::string(get.header("X-Echo-User-Agent").value_or("")), StartsWith("llmgw/"));
  EXPECT_EQ(get.body, "");

  const auto post = client.send({"POST", server.base_url() + "/api/chat", {}, R"({"a":1})"});
  EXPECT_EQ(post.status, 200);
  EXPECT_EQ(post.header("X-Echo-Method"), "POST");
  EXPECT_EQ(post.body, R"({"a":1})");
  // The server counts a request once its answer is written, which may be just after it arrived.
  EXPECT_TRUE(testing::wait_until([&] { return server.requests_served() == 2; }))
      << "requests_served() = " << server.requests_served();
}

TEST(HttpClientServer, ChunksReachTheCallbackAsTheyAreWritten) {
  HttpServer server{
      loopback_options(),
      [](const ServerRequest&, ResponseStream& response) -> boost::asio::awaitable<void> {
        HttpHeaders headers;
        headers.push_back({"Content-Type", "application/x-ndjson"});
        co_await response.begin(200, std::move(headers));
        co_await response.write("{\"n\":1}\n");
        co_await response.sleep(milliseconds{300});
        co_await response.write("{\"n\":2}\n");
        co_await response.end();
      }};
  server.start();
  HttpClient client;

  const auto start = steady_clock::now();
  std::optional<steady_clock::duration> first_chunk_after;
  std::string received;
  const auto response = client.send({"POST", server.base_url() + "/api/generate", {}, "{}"},
                                    [&](std::string_view chunk) {
                                      if (!first_chunk_after) {
                                        first_chunk_after = steady_clock::now() - start;
                                      }
                                      received.append(chunk);
                                      return true;
                                    });
  const auto total = steady_clock::now() - start;

  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "") << "a streamed body goes to the callback only";
  EXPECT_EQ(received, "{\"n\":1}\n{\"n\":2}\n");
  ASSERT_TRUE(first_chunk_after.has_value());
  EXPECT_LT(*first_chunk_after, milliseconds{250}) << "the first chunk was held back";
  EXPECT_GE(total, milliseconds{300});
}

TEST(HttpClientServer, KeepAliveReusesOneConnection) {
  HttpServer server{loopback_options(), echo_handler};
  server.start();
  HttpClient client;
  for (int i = 0; i < 5; ++i) {
    const auto response =
        client.send({"POST", server.base_url() + "/n", {}, "body " + std::to_string(i)});
    ASSERT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "body " + std::to_string(i));
  }
  EXPECT_EQ(client.connections_opened(), 1U);
  EXPECT_EQ(server.connections_accepted(), 1U);
  EXPECT_TRUE(testing::wait_until([&] { return server.requests_served() == 5; }))
      << "requests_served() = " << server.requests_served();
}

TEST(HttpClientServer, ReconnectsWhenTheIdleConnectionWasClosed) {
  auto options = loopback_options();
  options.idle_timeout = milliseconds{100};
  HttpServer server{options, echo_handler};
  server.start();
  HttpClient client;
  ASSERT_EQ(client.send({"GET", server.base_url() + "/", {}, ""}).status, 200);
  // Not a readiness wait: the server must have dropped the idle connection by then.
  std::this_thread::sleep_for(milliseconds{400});
  const auto second = client.send({"POST", server.base_url() + "/", {}, "again"});
  EXPECT_EQ(second.status, 200);
  EXPECT_EQ(second.body, "again");
  EXPECT_EQ(client.connections_opened(), 2U);
}

TEST(HttpClientServer, ConnectionCloseIsHonoured) {
  HttpServer server{loopback_options(), echo_handler};
  server.start();
  ClientOptions options;
  options.keep_alive = false;
  HttpClient client{options};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(client.send({"GET", server.base_url() + "/", {}, ""}).status, 200);
  }
  EXPECT_EQ(client.connections_opened(), 3U);
  EXPECT_EQ(server.connections_accepted(), 3U);
}

TEST(HttpClientServer, OversizedBodyIsAnswered413) {
  auto options = loopback_options();
  options.max_body_bytes = 1024;
  HttpServer server{options, echo_handler};
  server.start();
  HttpClient client;
  const auto response = client.send({"POST", server.base_url() + "/", {}, std::string(4096, 'x')});
  EXPECT_EQ(response.status, 413);
  EXPECT_THAT(response.body, HasSubstr("\"error\""));
  EXPECT_EQ(response.header("Content-Type"), "application/json");
}

TEST(HttpClientServer, OversizedHeaderIsAnswered431) {
  auto options = loopback_options();
  options.max_header_bytes = 1024;
  HttpServer server{options, echo_handler};
  server.start();
  HttpClient client;
  const auto response =
      client.send({"GET", server.base_url() + "/", {{"X-Big", std::string(4096, 'h')}}, ""});
  EXPECT_EQ(response.status, 431);
  EXPECT_THAT(response.body, HasSubstr("\"error\""));
}

// Sends raw bytes and returns everything the server answers until it closes (bounded by 5 s).
std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return "socket() failed";
  }
  timeval timeout{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string answer;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0 &&
      ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())) {
    char buffer[4096];
    for (ssize_t n; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
      answer.append(buffer, static_cast<std::size_t>(n));
    }
  }
  ::close(fd);
  return answer;
}

TEST(HttpClientServer, GarbageRequestIsAnswered400) {
  HttpServer server{loopback_options(), echo_handler};
  server.start();
  const std::string answer = raw_exchange(server.port(), "THIS IS NOT HTTP\r\n\r\n");
  EXPECT_THAT(answer, StartsWith("HTTP/1.1 400"));
  EXPECT_THAT(answer, HasSubstr("{\"error\":"));
}

TEST(HttpClientServer, HandlerExceptionBecomes500) {
  HttpServer server{loopback_options(),
                    [](const ServerRequest&, ResponseStream&) -> boost::asio::awaitable<void> {
                      throw std::runtime_error("boom");
                      co_return;
                    }};
  server.start();
  HttpClient client;
  const auto response = client.send({"GET", server.base_url() + "/", {}, ""});
  EXPECT_EQ(response.status, 500);
  EXPECT_THAT(response.body, HasSubstr("boom"));
}

// Contract: a stream the server aborts midway makes the client throw TransportError, after the
// callback has seen the bytes that did arrive.
TEST(HttpClientServer, AbortMidStreamThrowsAfterDeliveredChunks) {
  HttpServer server{
      loopback_options(),
      [](const ServerRequest&, ResponseStream& response) -> boost::asio::awaitable<void> {
        co_await response.begin(200, {});
        co_await response.write("partial\n");
        response.abort();
      }};
  server.start();
  HttpClient client;
  std::string received;
  try {
    client.send({"GET", server.base_url() + "/", {}, ""}, [&](std::string_view chunk) {
      received.append(chunk);
      return true;
    });
    FAIL() << "an aborted stream must not look complete";
  } catch (const TransportError& e) {
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(server.port())));
    EXPECT_THAT(e.what(), HasSubstr("closed before the response was complete"));
  }
  EXPECT_EQ(received, "partial\n");
}

TEST(HttpClientServer, CallbackCanStopReading) {
  HttpServer server{
      loopback_options(),
      [](const ServerRequest&, ResponseStream& response) -> boost::asio::awaitable<void> {
        co_await response.begin(200, {});
        for (int i = 0; i < 100; ++i) {
          if (!co_await response.write("line\n") || !co_await response.sleep(milliseconds{10})) {
            co_return;
          }
        }
        co_await response.end();
      }};
  server.start();
  HttpClient client;
  int calls = 0;
  const auto start = steady_clock::now();
  const auto response = client.send({"GET", server.base_url() + "/", {}, ""},
                                    [&](std::string_view) { return ++calls < 2; });
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(calls, 2);
  EXPECT_LT(steady_clock::now() - start, milliseconds{900}) << "the client kept reading";
  // The stopped connection is not reused.
  ASSERT_EQ(
      client.send({"GET", server.base_url() + "/", {}, ""}, [](auto) { return false; }).status,
      200);
  EXPECT_EQ(client.connections_opened(), 2U);
}

TEST(HttpClientServer, ReadTimeoutThrowsNamingTheHost) {
  HttpServer server{
      loopback_options(),
      [](const ServerRequest&, ResponseStream& response) -> boost::asio::awaitable<void> {
        if (co_await response.sleep(std::chrono::seconds{30})) {
          co_await response.respond(200, {}, "late");
        }
      }};
  server.start();
  ClientOptions options;
  options.read_timeout = milliseconds{200};
  HttpClient client{options};
  const auto start = steady_clock::now();
  try {
    client.send({"GET", server.base_url() + "/", {}, ""});
    FAIL() << "expected a timeout";
  } catch (const TransportError& e) {
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(server.port())));
    EXPECT_THAT(e.what(), HasSubstr("timed out"));
  }
  EXPECT_LT(steady_clock::now() - start, std::chrono::seconds{5});

  // stop() cuts the sleeping handler short instead of waiting 30 s for it.
  const auto stop_start = steady_clock::now();
  server.stop();
  EXPECT_LT(steady_clock::now() - stop_start, std::chrono::seconds{2});
}

TEST(HttpClientServer, ConnectToClosedPortThrows) {
  std::uint16_t port = 0;
  {
    HttpServer server{loopback_options(), echo_handler};
    server.start();
    port = server.port();
  }
  HttpClient client;
  try {
    client.send({"GET", "http://127.0.0.1:" + std::to_string(port) + "/", {}, ""});
    FAIL() << "expected a connect failure";
  } catch (const TransportError& e) {
    EXPECT_THAT(e.what(), HasSubstr("connect to 127.0.0.1:" + std::to_string(port)));
  }
}

TEST(HttpClientServer, ErrorsNeverQuoteHeaderValues) {
  HttpClient client;
  try {
    client.send(
        {"GET", "http://127.0.0.1:1/?token=s3cret", {{"Authorization", "Bearer s3cret"}}, ""});
    FAIL() << "expected a connect failure";
  } catch (const TransportError& e) {
    EXPECT_THAT(e.what(), ::testing::Not(HasSubstr("s3cret")));
  }
}

TEST(HttpClientServer, WaitReturnsAfterStop) {
  HttpServer server{loopback_options(), echo_handler};
  server.start();
  std::atomic<bool> returned{false};
  std::thread waiter{[&] {
    server.wait();
    returned = true;
  }};
  EXPECT_FALSE(returned.load());
  server.stop();
  waiter.join();
  EXPECT_TRUE(returned.load());
}

}  // namespace
}  // namespace llmgw::net
