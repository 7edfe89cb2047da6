// TLS between the HTTP server and client, with certificates generated per test.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "llmgw/net/http_client.hpp"
#include "llmgw/net/http_server.hpp"
#include "support/test_certs.hpp"

namespace llmgw::net {
namespace {

using ::testing::HasSubstr;

boost::asio::awaitable<void> hello_handler(const ServerRequest& request, ResponseStream& response) {
  if (request.path() == "/stream") {
    co_await response.begin(200, {});
    co_await response.write("one\n");
    co_await response.write("two\n");
    co_await response.end();
    co_return;
  }
  co_await response.respond(200, {}, "hello over TLS");
}

ServerOptions tls_options(const testing::TestCertificates& certificates) {
  ServerOptions options;
  options.tls =
      ServerTlsOptions{certificates.certificate_chain_file(), certificates.private_key_file()};
  return options;
}

std::string url(const HttpServer& server, std::string_view host, std::string_view path) {
  return "https://" + std::string(host) + ":" + std::to_string(server.port()) + std::string(path);
}

TEST(HttpsClientServer, ClientTrustingTheTestCaSucceeds) {
  const testing::TestCertificates certificates;
  HttpServer server{tls_options(certificates), hello_handler};
  server.start();
  EXPECT_THAT(server.base_url(), ::testing::StartsWith("https://127.0.0.1:"));
  ClientOptions options;
  options.ca_file = certificates.ca_file();
  HttpClient client{options};

  const auto by_ip = client.send({"GET", server.base_url() + "/", {}, ""});
  EXPECT_EQ(by_ip.status, 200);
  EXPECT_EQ(by_ip.body, "hello over TLS");
  const auto by_name = client.send({"GET", url(server, "localhost", "/"), {}, ""});
  EXPECT_EQ(by_name.body, "hello over TLS");

  std::string streamed;
  client.send({"GET", server.base_url() + "/stream", {}, ""}, [&](std::string_view chunk) {
    streamed.append(chunk);
    return true;
  });
  EXPECT_EQ(streamed, "one\ntwo\n");
  // localhost and 127.0.0.1 are different origins; each keeps its own connection alive in turn.
  EXPECT_EQ(client.connections_opened(), 3U);
}

TEST(HttpsClientServer, KeepAliveWorksOverTls) {
  const testing::TestCertificates certificates;
  HttpServer server{tls_options(certificates), hello_handler};
  server.start();
  ClientOptions options;
  options.ca_file = certificates.ca_file();
  HttpClient client{options};
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(client.send({"GET", server.base_url() + "/", {}, ""}).status, 200);
  }
  EXPECT_EQ(client.connections_opened(), 1U);
  EXPECT_EQ(server.connections_accepted(), 1U);
}

TEST(HttpsClientServer, UnknownCaFailsVerification) {
  const testing::TestCertificates certificates;
  HttpServer server{tls_options(certificates), hello_handler};
  server.start();
  HttpClient client;  // system trust store only
  try {
    client.send({"GET", server.base_url() + "/", {}, ""});
    FAIL() << "a certificate from an unknown CA was accepted";
  } catch (const TransportError& e) {
    EXPECT_THAT(e.what(), HasSubstr("verification failed"));
    EXPECT_THAT(e.what(), HasSubstr("127.0.0.1:" + std::to_string(server.port())));
  }
  EXPECT_EQ(server.requests_served(), 0U);
}

TEST(HttpsClientServer, CertificateForAnotherHostIsRefused) {
  const testing::TestCertificates certificates{{{"other.example"}, {}}};
  HttpServer server{tls_options(certificates), hello_handler};
  server.start();
  ClientOptions options;
  options.ca_file = certificates.ca_file();
  HttpClient client{options};
  for (const std::string host : {"127.0.0.1", "localhost"}) {
    try {
      client.send({"GET", url(server, host, "/"), {}, ""});
      FAIL() << "a certificate for other.example was accepted for " << host;
    } catch (const TransportError& e) {
      EXPECT_THAT(e.what(), HasSubstr("verification failed"));
      EXPECT_THAT(e.what(), HasSubstr("host name"));
    }
  }
  EXPECT_EQ(server.requests_served(), 0U);
}

TEST(HttpsClientServer, VerificationCanBeDisabled) {
  const testing::TestCertificates certificates{{{"other.example"}, {}}};
  HttpServer server{tls_options(certificates), hello_handler};
  server.start();
  ClientOptions options;
  options.verify_peer = false;
  HttpClient client{options};
  EXPECT_EQ(client.send({"GET", server.base_url() + "/", {}, ""}).status, 200);
}

}  // namespace
}  // namespace llmgw::net
