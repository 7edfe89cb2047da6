// TLS on the gateway's listener (listen.tls) and to https:// nodes, with a CA and certificates
// generated per test: an HTTPS client streams through the gateway; a client that does not trust
// the CA gets no answer; a reload serves a new certificate to new connections while open ones go
// on, and a bad one keeps the running one; https:// nodes are verified (CA, host name), their
// connections pooled, their health checked and their listings merged.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "llmgw/net/http_client.hpp"
#include "support/child_process.hpp"
#include "support/gateway_fixture.hpp"
#include "support/serve_process.hpp"
#include "support/test_certs.hpp"
#include "support/wait.hpp"

namespace llmgw::testing::tls_test {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

std::string https_url(GatewayFixture& fixture, std::string_view path) {
  return "https://127.0.0.1:" + std::to_string(fixture.gateway().port()) + std::string{path};
}

net::HttpClient trusting(const std::string& ca_file) {
  net::ClientOptions options;
  options.ca_file = ca_file;
  return net::HttpClient{options};
}

std::string read_text(const std::string& path) {
  std::ifstream in{path, std::ios::binary};
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The listener's certificate and key, copied where a test may replace them.
struct ServedFiles {
  explicit ServedFiles(const TestCertificates& certificates) { serve(certificates); }
  void serve(const TestCertificates& certificates) const {
    dir.write("cert.pem", read_text(certificates.certificate_chain_file()));
    dir.write("key.pem", read_text(certificates.private_key_file()));
  }
  std::string cert() const { return dir.path() + "/cert.pem"; }
  std::string key() const { return dir.path() + "/key.pem"; }
  TempDir dir{"llmgw-tls"};
};

TEST(GatewayTls, AnHttpsClientStreamsThroughTheGateway) {
  const TestCertificates certificates;
  // 8 tokens, 80 ms apart: the first record must come long before the last.
  GatewayFixture fixture(
      {.sim = slow_sim_options(8, 80.0), .configure = [&](config::GatewayConfig& config) {
         config.listen.tls = {certificates.certificate_chain_file(),
                              certificates.private_key_file()};
       }});
  auto client = trusting(certificates.ca_file());
  // The handshake first (slow under sanitizers on a loaded machine): only the stream is timed.
  ASSERT_EQ(get_url(client, https_url(fixture, "/health")).status, 200);
  const auto streamed = post_streamed(client, https_url(fixture, "/api/generate"),
                                      generate_body("stream me over TLS"), "tls-session");
  ASSERT_EQ(streamed.exchange.status, 200);
  const auto records = ndjson_records(streamed.body);
  ASSERT_EQ(records.size(), 9U) << streamed.body;
  EXPECT_TRUE(records.back()["done"].get<bool>());
  ASSERT_TRUE(streamed.first_chunk_after.has_value());
  // 8 records 80 ms apart: the first arrives about 560 ms before the end unless buffered.
  EXPECT_GT(streamed.total - *streamed.first_chunk_after, milliseconds{300})
      << "the stream was buffered";
  EXPECT_GE(streamed.chunks, 4);
  // Keep-alive over TLS: a second request on the same connection.
  EXPECT_EQ(get_url(client, https_url(fixture, "/health")).status, 200);
  EXPECT_EQ(client.connections_opened(), 1U);
  // Plain HTTP on the TLS port gets no HTTP answer.
  EXPECT_EQ(raw_status(
                raw_exchange(fixture.gateway().port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 2'000)),
            0);
}

TEST(GatewayTls, AClientThatDoesNotTrustTheCaGetsNoAnswer) {
  const TestCertificates certificates;
  GatewayFixture fixture({.configure = [&](config::GatewayConfig& config) {
    config.listen.tls = {certificates.certificate_chain_file(), certificates.private_key_file()};
  }});
  const TestCertificates other;  // another CA
  auto stranger = trusting(other.ca_file());
  try {
    stranger.send({"GET", https_url(fixture, "/api/tags"), {}, ""});
    FAIL() << "a client that does not trust the gateway's CA was answered";
  } catch (const net::TransportError& e) {
    EXPECT_THAT(e.what(), HasSubstr("certificate verif"));
  }
  auto client = trusting(certificates.ca_file());
  ASSERT_TRUE(wait_until(
      [&] {
        const auto metrics = get_url(client, https_url(fixture, "/metrics")).body;
        return metric_sum(metrics, "llmgw_tls_handshake_failures_total") >= 1.0;
      },
      milliseconds{5'000}))
      << "the refused handshake was not counted";
  EXPECT_EQ(fixture.sim(0).stats().inference_requests + fixture.sim(1).stats().inference_requests +
                fixture.sim(2).stats().inference_requests,
            0U);
}

TEST(GatewayTls, AReloadServesTheNewCertificateToNewConnectionsOnly) {
  const TestCertificates first({{"first.test", "localhost"}, {"127.0.0.1"}});
  const TestCertificates second({{"second.test", "localhost"}, {"127.0.0.1"}});
  const ServedFiles served(first);
  GatewayFixture fixture({.nodes = 1, .configure = [&](config::GatewayConfig& config) {
                            config.listen.tls = {served.cert(), served.key()};
                          }});
  const std::uint16_t port = fixture.gateway().port();
  EXPECT_EQ(served_certificate_subject(port, first.ca_file()), "/CN=first.test");
  auto open_client = trusting(first.ca_file());  // keeps its connection across the reload
  ASSERT_EQ(get_url(open_client, https_url(fixture, "/health")).status, 200);

  served.serve(second);
  fixture.gateway().reload(fixture.config());  // what SIGHUP does after loading the file
  EXPECT_EQ(served_certificate_subject(port, second.ca_file()), "/CN=second.test");
  EXPECT_EQ(get_url(open_client, https_url(fixture, "/health")).status, 200);
  EXPECT_EQ(open_client.connections_opened(), 1U) << "the open connection was not kept";

  // A key that does not belong to the certificate: the running certificate stays.
  served.dir.write("key.pem", read_text(first.private_key_file()));
  fixture.gateway().reload(fixture.config());
  EXPECT_EQ(served_certificate_subject(port, second.ca_file()), "/CN=second.test");
  auto fresh = trusting(second.ca_file());
  EXPECT_EQ(get_url(fresh, https_url(fixture, "/health")).status, 200);
}

TEST(GatewayTls, ServeRefusesAKeyThatDoesNotMatchWithItsPathAndExitCode2) {
  const TestCertificates first;
  const TestCertificates second;
  const TempDir dir("llmgw-tls");
  const std::string file =
      dir.write("gateway.yaml", "listen: {address: 127.0.0.1, port: 0, tls: {cert_file: \"" +
                                    first.certificate_chain_file() + "\", key_file: \"" +
                                    second.private_key_file() + "\"}}\n");
  ChildProcess gateway(LLMGW_BINARY, {"serve", "--config", file});
  const std::string output = gateway.read_until("\x01 not printed", std::chrono::seconds{20});
  const auto code = gateway.wait_exit(std::chrono::seconds{10});
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 2) << output;
  EXPECT_THAT(output,
              HasSubstr("listen.tls.key_file: the private key in " + second.private_key_file() +
                        " does not match the certificate in " + first.certificate_chain_file()));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("PRIVATE KEY")));
}

// --- https:// nodes ---

sim::SimOptions https_sim(const TestCertificates& certificates) {
  auto options = fast_sim_options();
  options.tls_certificate_file = certificates.certificate_chain_file();
  options.tls_key_file = certificates.private_key_file();
  return options;
}

TEST(GatewayHttpsNodes, VerifiedNodesServeStreamsListingsAndHealthOverPooledConnections) {
  const TestCertificates certificates;
  GatewayFixture fixture(
      {.nodes = 2, .sim = https_sim(certificates), .configure = [&](config::GatewayConfig& config) {
         config.upstream_tls.ca_file = certificates.ca_file();
         config.catalog.interval = milliseconds{0};
         config.workers = 1;
       }});
  ASSERT_THAT(fixture.sim(0).base_url(), ::testing::StartsWith("https://"));
  net::HttpClient client;
  const auto first =
      post_json(client, fixture.url("/api/generate"), generate_body("hello"), "https-session");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_TRUE(ndjson_records(first.body).back()["done"].get<bool>());
  const auto node = fixture.node_index(first.node);
  ASSERT_TRUE(node.has_value());
  const auto accepted = fixture.sim(*node).stats().connections_accepted;
  for (int i = 0; i < 4; ++i) {
    const auto turn =
        post_json(client, fixture.url("/api/generate"), generate_body("again"), "https-session");
    ASSERT_EQ(turn.status, 200);
    EXPECT_EQ(turn.node, first.node);
  }
  EXPECT_EQ(fixture.sim(*node).stats().connections_accepted, accepted)
      << "the TLS connection to the node was not reused";

  // The fleet endpoints ask every node over TLS.
  const auto tags = get_url(client, fixture.url("/api/tags"));
  ASSERT_EQ(tags.status, 200) << tags.body;
  EXPECT_FALSE(tags.response.header("X-Gateway-Partial").has_value()) << tags.body;
  EXPECT_EQ(get_url(client, fixture.url("/api/version")).status, 200);

  // Health checks over TLS pass: both nodes stay healthy after a round of probes.
  fixture.gateway().reload([&] {
    auto config = fixture.config();
    config.health.interval = milliseconds{100};
    return config;
  }());
  const auto probes = fixture.sim(0).stats().requests;
  ASSERT_TRUE(wait_until([&] { return fixture.sim(0).stats().requests >= probes + 2; },
                         milliseconds{5'000}));
  const auto health = nlohmann::json::parse(get_url(client, fixture.url("/health")).body);
  for (const auto& entry : health["nodes"]) {
    EXPECT_TRUE(entry["healthy"].get<bool>()) << entry.dump();
    EXPECT_TRUE(entry["recent_events"].empty()) << "a probe over TLS failed: " << entry.dump();
  }
}

TEST(GatewayHttpsNodes, AnUntrustedNodeCertificateIsRefusedWithTheReason) {
  const TestCertificates certificates;
  GatewayFixture fixture(
      {.nodes = 1, .sim = https_sim(certificates), .configure = [&](config::GatewayConfig& config) {
         config.catalog.interval = milliseconds{0};  // no ca_file
       }});
  net::HttpClient client;
  const auto refused = post_json(client, fixture.url("/api/generate"), generate_body("hi", false));
  EXPECT_EQ(refused.status, 502);
  EXPECT_THAT(refused.body, HasSubstr("certificate verify failed"));
  EXPECT_EQ(fixture.sim(0).stats().inference_requests, 0U);
  const auto tags = get_url(client, fixture.url("/api/tags"));
  EXPECT_EQ(tags.status, 502);
  EXPECT_THAT(tags.body, HasSubstr("certificate verify failed"));
}

TEST(GatewayHttpsNodes, ACertificateForAnotherHostIsRefused) {
  // Signed by the trusted CA, but for other.test only: not for 127.0.0.1.
  const TestCertificates certificates({{"other.test"}, {}});
  GatewayFixture fixture(
      {.nodes = 1, .sim = https_sim(certificates), .configure = [&](config::GatewayConfig& config) {
         config.upstream_tls.ca_file = certificates.ca_file();
         config.catalog.interval = milliseconds{0};
       }});
  net::HttpClient client;
  const auto refused = post_json(client, fixture.url("/api/generate"), generate_body("hi", false));
  EXPECT_EQ(refused.status, 502);
  EXPECT_THAT(refused.body, HasSubstr("does not name the node's host"));
  EXPECT_EQ(fixture.sim(0).stats().inference_requests, 0U);

  // Served once upstream_tls.insecure_skip_verify turns every check off (test benches only).
  auto config = fixture.config();
  config.upstream_tls.insecure_skip_verify = true;
  fixture.gateway().reload(config);
  const auto served = post_json(client, fixture.url("/api/generate"), generate_body("hi", false));
  EXPECT_EQ(served.status, 200) << served.body;
}

}  // namespace llmgw::testing::tls_test
