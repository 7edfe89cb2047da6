// The client through forward proxies named by http_proxy / https_proxy. The origin host name ends
// in .invalid so that the requests can only succeed if the client really leaves name resolution and
// the connection to the proxy.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "llmgw/net/http_server.hpp"
#include "support/test_certs.hpp"

namespace llmgw::net {
namespace {

constexpr const char* kOriginHost = "llmgw-test.invalid";

// Sets an environment variable for the lifetime of the object and restores the old value.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str()); old != nullptr) {
      old_ = old;
    }
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

int connect_loopback(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd >= 0 && ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// A minimal HTTP CONNECT proxy: one tunnel at a time, always to 127.0.0.1 and the requested port
// (whatever host was asked for), recording each CONNECT target.
class FakeConnectProxy {
 public:
  FakeConnectProxy() {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = 0;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listen_fd_, 8) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      throw std::runtime_error("fake proxy: cannot listen");
    }
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  ~FakeConnectProxy() {
    stopping_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);  // wakes the blocked accept()
    thread_.join();
    ::close(listen_fd_);
  }
  FakeConnectProxy(const FakeConnectProxy&) = delete;
  FakeConnectProxy& operator=(const FakeConnectProxy&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> targets() const {
    std::lock_guard lock{mutex_};
    return targets_;
  }

 private:
  void run() {
    while (!stopping_) {
      const int client = ::accept(listen_fd_, nullptr, nullptr);
      if (client < 0) {
        return;
      }
      tunnel(client);
      ::close(client);
    }
  }

  void tunnel(int client) {
    std::string head;
    char byte = 0;
    while (head.find("\r\n\r\n") == std::string::npos && ::recv(client, &byte, 1, 0) == 1) {
      head.push_back(byte);
    }
    // "CONNECT host:port HTTP/1.1"
    const auto first_space = head.find(' ');
    const auto second_space = head.find(' ', first_space + 1);
    if (head.rfind("CONNECT ", 0) != 0 || second_space == std::string::npos) {
      return;
    }
    const std::string target = head.substr(first_space + 1, second_space - first_space - 1);
    {
      std::lock_guard lock{mutex_};
      targets_.push_back(target);
    }
    const int upstream = connect_loopback(
        static_cast<std::uint16_t>(std::stoi(target.substr(target.rfind(':') + 1))));
    if (upstream < 0) {
      const std::string refused = "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n";
      ::send(client, refused.data(), refused.size(), MSG_NOSIGNAL);
      return;
    }
    const std::string established = "HTTP/1.1 200 Connection established\r\n\r\n";
    ::send(client, established.data(), established.size(), MSG_NOSIGNAL);
    pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
    char buffer[16384];
    while (!stopping_) {
      if (::poll(fds, 2, 100) < 0) {
        break;
      }
      bool closed = false;
      for (int i = 0; i < 2 && !closed; ++i) {
        if ((fds[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
          continue;
        }
        const ssize_t n = ::recv(fds[i].fd, buffer, sizeof buffer, 0);
        closed =
            n <= 0 || ::send(fds[1 - i].fd, buffer, static_cast<std::size_t>(n), MSG_NOSIGNAL) != n;
      }
      if (closed) {
        break;
      }
    }
    ::close(upstream);
  }

  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stopping_{false};
  mutable std::mutex mutex_;
  std::vector<std::string> targets_;
  std::thread thread_;
};

TEST(HttpClientProxy, HttpsIsTunnelledThroughConnect) {
  const testing::TestCertificates certificates{{{kOriginHost}, {}}};
  ServerOptions server_options;
  server_options.tls =
      ServerTlsOptions{certificates.certificate_chain_file(), certificates.private_key_file()};
  HttpServer server{
      server_options,
      [](const ServerRequest& request, ResponseStream& response) -> boost::asio::awaitable<void> {
        co_await response.respond(
            200, {}, "tunnelled to " + std::string(request.header("Host").value_or("")));
      }};
  server.start();
  FakeConnectProxy proxy;
  const ScopedEnv https_proxy{"https_proxy", proxy.url()};
  const ScopedEnv no_proxy{"no_proxy", "example.org,.example.net"};
  ClientOptions options;
  options.ca_file = certificates.ca_file();
  HttpClient client{options};

  const std::string origin = std::string(kOriginHost) + ":" + std::to_string(server.port());
  for (int i = 0; i < 2; ++i) {
    const auto response = client.send({"GET", "https://" + origin + "/x", {}, ""});
    EXPECT_EQ(response.status, 200);
    EXPECT_EQ(response.body, "tunnelled to " + origin);
  }
  EXPECT_EQ(proxy.targets(), std::vector<std::string>{origin}) << "one tunnel, kept alive";
  EXPECT_EQ(client.connections_opened(), 1U);
}

TEST(HttpClientProxy, HttpSendsAbsoluteFormToTheProxy) {
  std::mutex mutex;
  std::vector<std::string> targets;
  HttpServer proxy{
      ServerOptions{},
      [&](const ServerRequest& request, ResponseStream& response) -> boost::asio::awaitable<void> {
        {
          std::lock_guard lock{mutex};
          targets.push_back(request.target +
                            " Host=" + std::string(request.header("Host").value_or("")));
        }
        co_await response.respond(200, {}, "via proxy");
      }};
  proxy.start();
  const ScopedEnv http_proxy{"http_proxy", proxy.base_url()};
  HttpClient client;
  const auto response =
      client.send({"GET", "http://" + std::string(kOriginHost) + ":8080/api/tags?x=1", {}, ""});
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, "via proxy");
  std::lock_guard lock{mutex};
  EXPECT_EQ(targets, std::vector<std::string>{"http://llmgw-test.invalid:8080/api/tags?x=1 "
                                              "Host=llmgw-test.invalid:8080"});
}

TEST(HttpClientProxy, LoopbackBypassesTheProxy) {
  HttpServer server{
      ServerOptions{},
      [](const ServerRequest&, ResponseStream& response) -> boost::asio::awaitable<void> {
        co_await response.respond(200, {}, "direct");
      }};
  server.start();
  // Nothing listens on port 1: going through this proxy would fail.
  const ScopedEnv http_proxy{"http_proxy", "http://127.0.0.1:1"};
  HttpClient client;
  EXPECT_EQ(client.send({"GET", server.base_url() + "/", {}, ""}).body, "direct");
}

}  // namespace
}  // namespace llmgw::net
