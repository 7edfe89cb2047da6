// Inbound client keys (auth.keys_file): a request without a valid key gets 401 and reaches no node;
// a valid key (Bearer or x-api-key) is served and counted under its name; the gateway's own paths
// keep their rules; a key's priority class applies when the request names none; SIGHUP rereads
// the file; keys never reach a log; a non-loopback listener without keys is warned about.

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "support/child_process.hpp"
#include "support/gateway_fixture.hpp"
#include "support/serve_process.hpp"
#include "support/wait.hpp"

namespace llmgw::testing::auth_test {

using nlohmann::json;

constexpr std::string_view kChatKey = "chat-key-0123456789abcdef";
constexpr std::string_view kEvalKey = "eval-key-fedcba9876543210";
constexpr std::string_view kAdminToken = "admin-token-0123456789";

std::string keys_text() {
  return "# test keys\nchat: " + std::string{kChatKey} + "\neval: " + std::string{kEvalKey} +
         " batch\n";
}

net::HttpHeaders bearer(std::string_view key) {
  return {{"Authorization", "Bearer " + std::string{key}}};
}

std::uint64_t inference_requests(GatewayFixture& fixture) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    total += fixture.sim(i).stats().inference_requests;
  }
  return total;
}

std::string metrics_text(net::HttpClient& client, const std::string& url) {
  return get_url(client, url).body;
}

TEST(GatewayAuth, WithoutAValidKeyEveryNodePathIs401AndNoNodeIsTouched) {
  const TempDir dir("llmgw-auth");
  const std::string keys = dir.write("keys", keys_text());
  GatewayFixture fixture({.configure = [&](config::GatewayConfig& config) {
    config.auth.keys_file = keys;
    config.catalog.interval = std::chrono::milliseconds{0};
  }});
  net::HttpClient client;
  const std::string body = generate_body("hello", false);

  const auto none = post_json(client, fixture.url("/api/generate"), body);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.response.header("WWW-Authenticate"), "Bearer");
  EXPECT_EQ(json::parse(none.body)["error"],
            "an API key is required: send Authorization: Bearer <key> (or x-api-key: <key>)");
  const auto wrong =
      post_json(client, fixture.url("/api/chat"), body, {}, bearer("not-a-key-at-all"));
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(json::parse(wrong.body)["error"], "invalid API key");
  // One character short: the whole key is needed.
  const auto prefix = post_json(client, fixture.url("/api/generate"), body, {},
                                bearer(kChatKey.substr(0, kChatKey.size() - 1)));
  EXPECT_EQ(prefix.status, 401);
  const auto wrong_header =
      post_json(client, fixture.url("/v1/chat/completions"), body, {}, {{"x-api-key", "nope"}});
  EXPECT_EQ(wrong_header.status, 401);
  // The fleet paths ask every node: not without a key either.
  const auto tags = get_url(client, fixture.url("/api/tags"));
  EXPECT_EQ(tags.status, 401);
  const auto pull = post_json(client, fixture.url("/api/pull"), R"({"model":"llama3.2"})");
  EXPECT_EQ(pull.status, 401);
  EXPECT_EQ(inference_requests(fixture), 0U);

  const std::string metrics = metrics_text(client, fixture.url("/metrics"));
  EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total", {"key=\"none\"", "code=\"4xx\""}), 6.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total", {"code=\"2xx\""}), 0.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_upstream_in_flight"), 0.0);
}

TEST(GatewayAuth, A401ComesRightAfterTheHeadWithoutWaitingForTheBody) {
  const TempDir dir("llmgw-auth");
  const std::string keys = dir.write("keys", keys_text());
  GatewayFixture fixture({.configure = [&](config::GatewayConfig& config) {
    config.auth.keys_file = keys;
    config.catalog.interval = std::chrono::milliseconds{0};
  }});
  // A head announcing 1 MB that never comes: the 401 must not wait for it (nor invite it with
  // 100 Continue), and the connection closes after it.
  for (const std::string expect : {"", "Expect: 100-continue\r\n"}) {
    const std::string head =
        "POST /api/generate HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" + expect +
        "Content-Length: 1000000\r\n\r\n";
    const auto started = std::chrono::steady_clock::now();
    const std::string response = raw_exchange(fixture.gateway().port(), head, 4'000);
    const auto took = std::chrono::steady_clock::now() - started;
    EXPECT_TRUE(response.starts_with("HTTP/1.1 401")) << response;
    EXPECT_NE(response.find("Connection: close"), std::string::npos) << response;
    EXPECT_EQ(json::parse(raw_body(response))["error"],
              "an API key is required: send Authorization: Bearer <key> (or x-api-key: <key>)");
    EXPECT_LT(took, std::chrono::milliseconds{3'000}) << "the gateway waited for the body";
  }
  EXPECT_EQ(inference_requests(fixture), 0U);
}

TEST(GatewayAuth, AValidKeyIsServedAndCountedUnderItsName) {
  const TempDir dir("llmgw-auth");
  const std::string keys = dir.write("keys", keys_text());
  GatewayFixture fixture({.configure = [&](config::GatewayConfig& config) {
    config.auth.keys_file = keys;
    config.admin.token = std::string{kAdminToken};
  }});
  net::HttpClient client;
  const std::string body = generate_body("hello", false);
  for (int i = 0; i < 3; ++i) {
    const auto served = post_json(client, fixture.url("/api/generate"), body, {}, bearer(kChatKey));
    ASSERT_EQ(served.status, 200) << served.body;
    EXPECT_FALSE(served.node.empty());
  }
  const auto lower_scheme = post_json(client, fixture.url("/api/generate"), body, {},
                                      {{"Authorization", "bearer " + std::string{kEvalKey}}});
  EXPECT_EQ(lower_scheme.status, 200) << lower_scheme.body;
  const auto api_key = post_json(client, fixture.url("/api/generate"), body, {},
                                 {{"x-api-key", std::string{kEvalKey}}});
  EXPECT_EQ(api_key.status, 200) << api_key.body;
  const auto tags = get_url(client, fixture.url("/api/tags"), bearer(kChatKey));
  EXPECT_EQ(tags.status, 200) << tags.body;
  EXPECT_EQ(inference_requests(fixture), 5U);

  // The gateway's own paths: open as before, the admin API on its token (a client key is not it).
  EXPECT_EQ(get_url(client, fixture.url("/health")).status, 200);
  EXPECT_EQ(get_url(client, fixture.url("/status")).status, 200);
  EXPECT_EQ(get_url(client, fixture.url("/admin/nodes"), bearer(kChatKey)).status, 401);
  EXPECT_EQ(get_url(client, fixture.url("/admin/nodes"), bearer(kAdminToken)).status, 200);
  EXPECT_EQ(post_json(client, fixture.url("/api/generate"), body, {}, bearer(kAdminToken)).status,
            401);

  const std::string metrics = metrics_text(client, fixture.url("/metrics"));
  EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total", {"key=\"chat\"", "code=\"2xx\""}), 4.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total", {"key=\"eval\"", "code=\"2xx\""}), 2.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_requests_total", {"key=\"none\"", "code=\"4xx\""}), 2.0);
  // The eval key's class is batch: its requests named none.
  EXPECT_EQ(metric_sum(metrics, "llmgw_admission_dispatched_total", {"class=\"batch\""}), 2.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_admission_dispatched_total", {"class=\"interactive\""}),
            3.0);
}

TEST(GatewayAuth, AHeaderPriorityWinsOverTheKeysClass) {
  const TempDir dir("llmgw-auth");
  const std::string keys = dir.write("keys", keys_text());
  GatewayFixture fixture(
      {.configure = [&](config::GatewayConfig& config) { config.auth.keys_file = keys; }});
  net::HttpClient client;
  auto headers = bearer(kEvalKey);
  headers.push_back({"X-Request-Priority", "interactive"});
  ASSERT_EQ(post_json(client, fixture.url("/api/generate"), generate_body("hi", false), {}, headers)
                .status,
            200);
  const std::string metrics = metrics_text(client, fixture.url("/metrics"));
  EXPECT_EQ(metric_sum(metrics, "llmgw_admission_dispatched_total", {"class=\"interactive\""}),
            1.0);
  EXPECT_EQ(metric_sum(metrics, "llmgw_admission_dispatched_total", {"class=\"batch\""}), 0.0);
}

TEST(GatewayAuth, SighupRereadsTheKeysFileAndKeysNeverReachTheLog) {
  sim::OllamaSim node(fast_sim_options());
  node.start();
  const TempDir dir("llmgw-auth");
  dir.write("keys", "chat: " + std::string{kChatKey} + "\n");
  const std::string file = dir.write("gateway.yaml",
                                     "listen: {address: 127.0.0.1, port: 0}\nworkers: 1\n"
                                     "health: {interval_ms: 60000}\nauth: {keys_file: keys}\n"
                                     "log: {access_log: true}\nnodes:\n  - {name: a, url: \"" +
                                         node.base_url() + "\"}\n");
  ServeProcess gateway(file);
  ASSERT_NE(gateway.port(), 0);
  net::HttpClient client;
  const std::string body = generate_body("hello", false);
  const auto status_with = [&](std::string_view key) {
    return post_json(client, gateway.url("/api/generate"), body, {}, bearer(key)).status;
  };
  EXPECT_EQ(status_with(kChatKey), 200);
  EXPECT_EQ(status_with(kEvalKey), 401);

  // The chat key is revoked and the eval key added.
  dir.write("keys", "eval: " + std::string{kEvalKey} + "\n");
  gateway.process().signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("configuration reloaded"));
  EXPECT_EQ(status_with(kEvalKey), 200);
  EXPECT_EQ(status_with(kChatKey), 401);

  // A broken file keeps the running keys.
  dir.write("keys", "eval " + std::string{kEvalKey} + "\n");
  gateway.process().signal(SIGHUP);
  ASSERT_TRUE(gateway.wait_for_output("auth.keys_file:"));
  EXPECT_EQ(status_with(kEvalKey), 200);

  gateway.process().signal(SIGTERM);
  // Everything it wrote, to its exit (the pipe closes; the needle never comes).
  const std::string output =
      gateway.process().read_until("\x01 not printed", std::chrono::seconds{20});
  EXPECT_TRUE(gateway.process().wait_exit(std::chrono::seconds{10}).has_value());
  EXPECT_NE(output.find(" POST /api/generate 401"), std::string::npos) << output;
  EXPECT_NE(output.find(" key=eval"), std::string::npos) << "the access line names the key";
  EXPECT_EQ(output.find(kChatKey), std::string::npos) << output;
  EXPECT_EQ(output.find(kEvalKey), std::string::npos) << output;
  EXPECT_EQ(output.find("without client keys"), std::string::npos) << output;
}

TEST(GatewayAuth, ANonLoopbackListenerWithoutKeysIsWarnedAbout) {
  const TempDir dir("llmgw-auth");
  const std::string file =
      dir.write("gateway.yaml",
                "listen: {address: 0.0.0.0, port: 0}\nworkers: 1\nhealth: {interval_ms: 60000}\n");
  ChildProcess gateway(LLMGW_BINARY, {"serve", "--config", file});
  const std::string output = gateway.read_until(" routing ", std::chrono::seconds{20});
  EXPECT_NE(output.find("llmgw listening on 0.0.0.0:"), std::string::npos) << output;
  EXPECT_NE(output.find("warning listening on 0.0.0.0 without client keys: anyone who reaches "
                        "this address can use the nodes"),
            std::string::npos)
      << output;
}

}  // namespace llmgw::testing::auth_test
