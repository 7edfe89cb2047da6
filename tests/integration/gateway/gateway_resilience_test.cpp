// Failures that must not reach the client or count against a healthy node (issue: stale pooled
// connections, hung nodes, clients that leave, broken streams): each test sets up what real nodes
// do (close idle keep-alive connections, close after every stream as llama.cpp's server does, hang)
// and asserts what a user would see: every request answered, no node ejected, generations
// cancelled when their client leaves, connections that stay usable.

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

json health_of(const GatewayFixture& fixture) {
  net::HttpClient client;
  return json::parse(get_url(client, fixture.url("/health")).body);
}

std::string metrics_of(const GatewayFixture& fixture) {
  net::HttpClient client;
  return get_url(client, fixture.url("/metrics")).body;
}

// Sessions whose ring owner is each node in turn, `per_node` of each.
std::vector<std::string> sessions_on_every_node(const GatewayFixture& fixture,
                                                std::size_t per_node) {
  std::vector<std::vector<std::string>> by_node(fixture.node_count());
  for (int i = 0; i < 10'000; ++i) {
    const std::string session = "spread-" + std::to_string(i);
    auto& list = by_node[fixture.ring_owner(session)];
    if (list.size() < per_node) {
      list.push_back(session);
    }
  }
  std::vector<std::string> sessions;
  for (const auto& list : by_node) {
    sessions.insert(sessions.end(), list.begin(), list.end());
  }
  return sessions;
}

struct BurstOutcome {
  int failed = 0;  // anything but 200
  int moved = 0;   // served by a node other than the one that served the session before
  std::string first_failure;
  std::map<std::string, std::string> node_of;  // session -> the node that served it
};

// Sends one streamed /api/generate per session, `concurrency` at a time. `before` holds where
// earlier turns of the sessions went (`moved` counts the turns that went elsewhere).
BurstOutcome burst(GatewayFixture& fixture, const std::vector<std::string>& sessions,
                   std::size_t concurrency, std::map<std::string, std::string> before = {}) {
  BurstOutcome outcome;
  outcome.node_of = std::move(before);
  std::mutex mutex;
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> clients;
  for (std::size_t c = 0; c < concurrency; ++c) {
    clients.emplace_back([&] {
      net::HttpClient client;
      for (std::size_t i = next++; i < sessions.size(); i = next++) {
        const auto exchange = post_json(client, fixture.url("/api/generate"),
                                        generate_body("turn " + std::to_string(i)), sessions[i]);
        std::lock_guard lock(mutex);
        if (exchange.status != 200) {
          if (outcome.failed++ == 0) {
            outcome.first_failure = std::to_string(exchange.status) + " " + exchange.body;
          }
        } else if (auto [at, fresh] = outcome.node_of.try_emplace(sessions[i], exchange.node);
                   !fresh && at->second != exchange.node) {
          ++outcome.moved;
        }
      }
    });
  }
  for (auto& client : clients) {
    client.join();
  }
  return outcome;
}

TEST(GatewayResilience, IdleThenBurstAgainstNodesThatCloseIdleConnectionsFailsNothing) {
  // The nodes close keep-alive connections idle for 200 ms; the gateway would keep them 4 s.
  auto sim = fast_sim_options();
  sim.keep_alive_timeout = milliseconds{200};
  GatewayFixture fixture({.sim = sim, .configure = [](config::GatewayConfig& config) {
                            config.health.unhealthy_threshold = 1;  // one charged failure ejects
                          }});
  const auto sessions = sessions_on_every_node(fixture, 8);
  const auto first = burst(fixture, sessions, 4);
  ASSERT_EQ(first.failed, 0) << first.first_failure;
  std::this_thread::sleep_for(milliseconds{600});  // the lull: every pooled connection is closed
  const auto second = burst(fixture, sessions, 4, first.node_of);
  EXPECT_EQ(second.failed, 0) << second.first_failure;
  EXPECT_EQ(second.moved, 0) << "turns left their session's node after the lull";
  const auto health = health_of(fixture);
  for (const auto& node : health["nodes"]) {
    EXPECT_TRUE(node["healthy"].get<bool>()) << node.dump();
  }
  EXPECT_EQ(metric_sum(metrics_of(fixture), "llmgw_upstream_ejections_total"), 0.0);
}

TEST(GatewayResilience, NodesThatCloseAfterEveryStreamKeepTheirSessions) {
  // llama.cpp's server closes the connection after each streamed response although it announced
  // keep-alive: 4 nodes' worth of sessions, many turns each, none may fail or move.
  auto sim = fast_sim_options();
  sim.close_after_stream = true;
  GatewayFixture fixture({.sim = sim, .configure = [](config::GatewayConfig& config) {
                            config.health.unhealthy_threshold = 1;
                          }});
  auto sessions = sessions_on_every_node(fixture, 4);
  std::vector<std::string> turns;
  for (int turn = 0; turn < 4; ++turn) {
    turns.insert(turns.end(), sessions.begin(), sessions.end());
  }
  const auto outcome = burst(fixture, turns, 3);
  EXPECT_EQ(outcome.failed, 0) << outcome.first_failure;
  EXPECT_EQ(outcome.moved, 0);
  EXPECT_EQ(metric_sum(metrics_of(fixture), "llmgw_upstream_ejections_total"), 0.0);
}

TEST(GatewayResilience, PooledConnectionsOlderThanUpstreamIdleAreNotReused) {
  GatewayFixture fixture({.nodes = 1, .configure = [](config::GatewayConfig& config) {
                            config.workers = 1;  // one pool
                            config.timeouts.upstream_idle = milliseconds{300};
                            // No other connections to count: the catalog's fetches and health
                            // probes open their own, at times of their own.
                            config.catalog.interval = milliseconds{0};
                            config.health.interval = milliseconds{60'000};
                          }});
  net::HttpClient client;
  const auto send = [&] {
    return post_json(client, fixture.url("/api/generate"), generate_body("hi", false), "s").status;
  };
  ASSERT_EQ(send(), 200);
  const auto after_first = fixture.sim(0).stats().connections_accepted;  // + the start-up probe
  ASSERT_EQ(send(), 200);  // at once: the pooled connection is reused
  EXPECT_EQ(fixture.sim(0).stats().connections_accepted, after_first);
  std::this_thread::sleep_for(milliseconds{500});
  ASSERT_EQ(send(), 200);  // after upstream_idle: a new connection
  EXPECT_EQ(fixture.sim(0).stats().connections_accepted, after_first + 1);
}

// A node that answers the first request on each connection (keep-alive, after `delay`) and closes
// the connection without a word when a second request arrives on it: a keep-alive connection the
// node gave up on just as the gateway reused it, a race no check before reuse can see.
class ClosingOnReuseNode {
 public:
  explicit ClosingOnReuseNode(milliseconds delay) : delay_(delay) {
    listener_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(::bind(listener_, reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(::listen(listener_, 64), 0);
    ::getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    acceptor_ = std::thread([this] { accept_loop(); });
  }
  ~ClosingOnReuseNode() {
    stopping_ = true;
    ::shutdown(listener_, SHUT_RDWR);
    acceptor_.join();
    for (auto& thread : connections_) {
      thread.join();
    }
    ::close(listener_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  int connections() const { return accepted_.load(); }

 private:
  void accept_loop() {
    while (!stopping_) {
      pollfd ready{listener_, POLLIN, 0};
      if (::poll(&ready, 1, 50) <= 0) {
        continue;
      }
      const int fd = ::accept(listener_, nullptr, nullptr);
      if (fd < 0) {
        continue;
      }
      ++accepted_;
      connections_.emplace_back([this, fd] { serve(fd); });
    }
  }
  // Reads one request head (no body is expected beyond what Content-Length says).
  bool read_request(int fd) {
    std::string data;
    char buffer[4096];
    while (data.find("\r\n\r\n") == std::string::npos || !body_complete(data)) {
      pollfd ready{fd, POLLIN, 0};
      if (stopping_ || ::poll(&ready, 1, 2'000) <= 0) {
        return false;
      }
      const auto n = ::recv(fd, buffer, sizeof(buffer), 0);
      if (n <= 0) {
        return false;
      }
      data.append(buffer, static_cast<std::size_t>(n));
    }
    return true;
  }
  static bool body_complete(const std::string& data) {
    const auto end = data.find("\r\n\r\n");
    auto at = data.find("Content-Length: ");
    if (at == std::string::npos || at > end) {
      return true;
    }
    const auto length = std::stoul(data.substr(at + 16));
    return data.size() >= end + 4 + length;
  }
  void serve(int fd) {
    if (read_request(fd)) {
      std::this_thread::sleep_for(delay_);
      const std::string body = R"({"model":"llama3.2","response":"ok","done":true})";
      const std::string response =
          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
          "Content-Length: " +
          std::to_string(body.size()) + "\r\nConnection: keep-alive\r\n\r\n" + body;
      (void)::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
      read_request(fd);  // the reuse: read it, answer nothing
    }
    ::close(fd);
  }

  milliseconds delay_;
  int listener_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> accepted_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // joined by the destructor (only the acceptor adds)
};

TEST(GatewayResilience, AReusedConnectionThatFailsIsRetriedOnANewOneAndNotCharged) {
  ClosingOnReuseNode node(milliseconds{150});
  auto config = test_gateway_config({test_node("only", node.url())});
  config.workers = 1;  // one pool, so the second phase reuses what the first left
  config.health.unhealthy_threshold = 1;
  server::Gateway gateway(config);
  gateway.start();
  const auto url = "http://127.0.0.1:" + std::to_string(gateway.port()) + "/api/generate";
  // Two requests at once leave two pooled connections; both will fail on reuse.
  std::vector<std::thread> first;
  std::atomic<int> first_ok{0};
  for (int i = 0; i < 2; ++i) {
    first.emplace_back([&] {
      net::HttpClient client;
      first_ok += post_json(client, url, generate_body("x", false), "s").status == 200 ? 1 : 0;
    });
  }
  for (auto& thread : first) {
    thread.join();
  }
  ASSERT_EQ(first_ok.load(), 2);
  const int before = node.connections();
  net::HttpClient client;
  for (int i = 0; i < 3; ++i) {
    const auto exchange = post_json(client, url, generate_body("again", false), "s");
    EXPECT_EQ(exchange.status, 200) << "request " << i << ": " << exchange.body;
  }
  const auto health = json::parse(
      get_url(client, "http://127.0.0.1:" + std::to_string(gateway.port()) + "/health").body);
  EXPECT_TRUE(health["nodes"][0]["healthy"].get<bool>()) << "a stale connection was charged";
  EXPECT_GE(node.connections(), before + 1) << "the retry did not open a new connection";
  gateway.request_stop();
  gateway.wait();
}

TEST(GatewayResilience, AHungNodeIsEjectedAndStaysOutThoughItsHealthPathAnswers) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.timeouts.first_byte = milliseconds{300};
    config.health.unhealthy_threshold = 2;
    config.health.healthy_threshold = 1;
    config.health.interval = milliseconds{50};
    config.health.base_ejection = milliseconds{10'000};
  }});
  const std::string session = "hung-owner-session";
  const auto owner = fixture.ring_owner(session);
  fixture.sim(owner).set_fault({.mode = sim::FaultMode::hang});
  net::HttpClient client;
  for (int i = 0; i < 2; ++i) {
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("hello", false), session);
    EXPECT_EQ(exchange.status, 200) << exchange.body;  // failed over after the first byte timeout
    EXPECT_EQ(exchange.route, "failover");
  }
  ASSERT_TRUE(wait_until([&] { return !health_of(fixture)["nodes"][owner]["healthy"].get<bool>(); },
                         milliseconds{2'000}))
      << "two first-byte timeouts did not eject the hung node";
  // Twenty passing /api/version probes later it is still out (its ejection lasts 10 s).
  std::this_thread::sleep_for(milliseconds{1'000});
  const auto node = health_of(fixture)["nodes"][owner];
  EXPECT_FALSE(node["healthy"].get<bool>()) << node.dump();
  EXPECT_GT(node["ejected_for_ms"].get<std::int64_t>(), 0) << node.dump();
  const auto next =
      post_json(client, fixture.url("/api/generate"), generate_body("again", false), session);
  EXPECT_EQ(next.status, 200);
  EXPECT_NE(next.node, fixture.node_name(owner));
}

TEST(GatewayResilience, RetriesStayInsideOneOverallDeadline) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.timeouts.first_byte = milliseconds{1'000};
    config.timeouts.first_byte_total = milliseconds{1'200};
  }});
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    fixture.sim(i).set_fault({.mode = sim::FaultMode::hang});
  }
  net::HttpClient client;
  const auto started = Clock::now();
  const auto exchange =
      post_json(client, fixture.url("/api/generate"), generate_body("anyone?"), "deadline");
  const auto took = Clock::now() - started;
  ASSERT_EQ(exchange.status, 504) << exchange.body;
  // Three attempts of 1 s each would take 3 s; the deadline ends them at 1.2 s.
  EXPECT_LT(took, milliseconds{2'500}) << "retries ran past timeouts.first_byte_total";
  EXPECT_GE(took, milliseconds{1'100});
}

TEST(GatewayResilience, AFast5xxFromTheLastCandidateCountsAgainstTheNode) {
  GatewayFixture fixture({.nodes = 1, .configure = [](config::GatewayConfig& config) {
                            config.health.unhealthy_threshold = 2;
                          }});
  fixture.sim(0).set_fault({.mode = sim::FaultMode::error500});
  net::HttpClient client;
  for (int i = 0; i < 2; ++i) {
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("x", false), "five");
    EXPECT_EQ(exchange.status, 500) << "the node's own answer is relayed";
  }
  EXPECT_FALSE(health_of(fixture)["nodes"][0]["healthy"].get<bool>());
}

TEST(GatewayResilience, AClientThatLeavesBeforeTheFirstByteCancelsTheGeneration) {
  // A non-streamed generation of 40 tokens x 50 ms = 2 s; the client leaves after 300 ms.
  GatewayFixture fixture({.nodes = 1, .sim = slow_sim_options(40, 50.0)});
  const int fd = connect_loopback(fixture.gateway().port());
  ASSERT_GE(fd, 0);
  const std::string body = generate_body("a long answer please", false);
  const std::string request =
      "POST /api/generate HTTP/1.1\r\nHost: gw\r\n"
      "Content-Type: application/json\r\nContent-Length: " +
      std::to_string(body.size()) + "\r\n\r\n" + body;
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(request.size()));
  ASSERT_TRUE(
      wait_until([&] { return fixture.sim(0).stats().slots_busy == 1; }, milliseconds{2'000}));
  std::this_thread::sleep_for(milliseconds{300});
  ::close(fd);
  const auto closed = Clock::now();
  ASSERT_TRUE(
      wait_until([&] { return fixture.sim(0).stats().cancelled == 1; }, milliseconds{1'500}))
      << "the generation ran on after its client left";
  const auto took = std::chrono::duration_cast<milliseconds>(Clock::now() - closed).count();
  RecordProperty("cancel_after_client_left_ms", static_cast<int>(took));
  EXPECT_LT(took, 500) << "the node's request was not closed promptly";
}

TEST(GatewayResilience, ABrokenStreamLeavesTheClientConnectionUsable) {
  GatewayFixture fixture;
  const std::string session = "broken-then-next";
  const auto owner = fixture.ring_owner(session);
  fixture.sim(owner).set_fault({.mode = sim::FaultMode::close_mid_stream, .after_tokens = 2});
  net::HttpClient client;  // one keep-alive connection for both requests
  const auto broken = post_json(client, fixture.url("/api/generate"), generate_body("x"), session);
  ASSERT_EQ(broken.status, 200);
  const auto records = ndjson_records(broken.body);
  ASSERT_FALSE(records.empty());
  EXPECT_TRUE(records.back().contains("error")) << broken.body;
  fixture.sim(owner).set_fault({});
  const auto next = post_json(client, fixture.url("/api/generate"), generate_body("y"), session);
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.response.header("Connection").value_or(""), "")
      << "the error record is followed by the terminal chunk, not a close";
}

}  // namespace
}  // namespace llmgw::testing
