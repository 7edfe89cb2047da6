// Bad input from clients, over raw TCP: framing that could smuggle a second request past a front
// proxy, unbounded chunk extensions and trailers, a flood of buffered bodies, heads without a
// usable Host or target, and HTTP/1.0 clients (which must never get a chunked body).

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::string error_of(const std::string& response) {
  const auto parsed = json::parse(raw_body(response), nullptr, false);
  if (parsed.is_discarded() || !parsed.contains("error")) {
    ADD_FAILURE() << "not a JSON {\"error\": ...} body: " << response;
    return {};
  }
  return parsed["error"].get<std::string>();
}

// The value of header `name` in a raw response head ("" when absent); case-insensitive name.
std::string header_of(const std::string& response, std::string_view name) {
  std::istringstream lines(response.substr(0, response.find("\r\n\r\n")));
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > name.size() && line[name.size()] == ':' &&
        std::equal(name.begin(), name.end(), line.begin(),
                   [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      auto value = line.substr(name.size() + 1);
      value.erase(0, value.find_first_not_of(' '));
      if (!value.empty() && value.back() == '\r') {
        value.pop_back();
      }
      return value;
    }
  }
  return {};
}

std::size_t count_of(const std::string& text, std::string_view needle) {
  std::size_t count = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

std::uint64_t prompt_tokens(GatewayFixture& fixture) {
  std::uint64_t total = 0;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    total += fixture.sim(i).stats().prompt_tokens;
  }
  return total;
}

// A complete /api/generate request, as a client would pipeline it after a smuggling attempt.
std::string smuggled_request() {
  const std::string body = generate_body("smuggled", false);
  return "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
         "Content-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

struct FramingCase {
  std::string headers;  // the framing header lines of the outer request
  int status;
};

TEST(GatewayBadInput, TransferEncodingOtherThanChunkedIsRefusedAndNothingIsForwarded) {
  GatewayFixture fixture;
  const std::string inner = smuggled_request();
  const std::string length = std::to_string(inner.size());
  const std::vector<FramingCase> cases{
      {"Transfer-Encoding: xchunked\r\n", 501},
      {"Transfer-Encoding: chunked, gzip\r\n", 501},
      {"Transfer-Encoding: gzip, chunked\r\n", 501},
      {"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", 501},
      {"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", 400},
      {"Transfer-Encoding: chunked, chunked\r\n", 400},
      {"Transfer-Encoding: xchunked\r\nContent-Length: " + length + "\r\n", 400},
      {"Content-Length: " + length + "\r\nTransfer-Encoding: chunked\r\n", 400},
  };
  for (const auto& framing : cases) {
    SCOPED_TRACE(framing.headers);
    const std::string request =
        "POST /api/generate HTTP/1.1\r\nHost: gateway\r\n" + framing.headers + "\r\n" + inner;
    const auto started = Clock::now();
    const auto response = raw_exchange(fixture.gateway().port(), request, 10'000);
    EXPECT_EQ(raw_status(response), framing.status) << response;
    EXPECT_NE(error_of(response).size(), 0U);
    // One answer, then the gateway closed: the rest was never read as a second request.
    EXPECT_EQ(count_of(response, "HTTP/1.1 "), 1U) << response;
    EXPECT_EQ(header_of(response, "Connection"), "close") << response;
    EXPECT_LT(Clock::now() - started, milliseconds{5'000}) << "the connection stayed open";
  }
  EXPECT_EQ(prompt_tokens(fixture), 0U) << "a smuggled request reached a node";
}

TEST(GatewayBadInput, TransferEncodingInAnHttp10RequestIsRefused) {
  GatewayFixture fixture;
  const auto response =
      raw_exchange(fixture.gateway().port(),
                   "POST /api/generate HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" +
                       smuggled_request());
  EXPECT_EQ(raw_status(response), 400) << response;
  EXPECT_EQ(prompt_tokens(fixture), 0U);
}

// A chunked /api/generate body: each chunk's size line carries `extension`.
std::string chunked_request(const std::string& body, std::size_t chunk_size,
                            const std::string& extension, const std::string& trailers = {},
                            const std::string& extra_headers = {}) {
  std::ostringstream out;
  out << "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
      << extra_headers << "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (std::size_t at = 0; at < body.size(); at += chunk_size) {
    const auto piece = body.substr(at, chunk_size);
    out << std::hex << piece.size() << extension << "\r\n" << piece << "\r\n";
  }
  out << "0\r\n" << trailers << "\r\n";
  return out.str();
}

TEST(GatewayBadInput, ChunkExtensionsCountAgainstTheHeaderLimit) {
  GatewayFixture fixture(
      {.configure = [](config::GatewayConfig& config) { config.limits.max_header_bytes = 4096; }});
  const std::string body = generate_body("extensions", false);
  // A few short extensions are fine.
  const auto fine = raw_exchange(fixture.gateway().port(), chunked_request(body, 8, ";a=b"));
  ASSERT_EQ(raw_status(fine), 200) << fine;
  // 1 KiB of extensions per chunk: over 4 KiB after a handful of chunks.
  const auto response = raw_exchange(fixture.gateway().port(),
                                     chunked_request(body, 8, ";x=" + std::string(1024, 'e')));
  ASSERT_EQ(raw_status(response), 431) << response.substr(0, 300);
  EXPECT_NE(error_of(response).find("max_header_bytes"), std::string::npos);
}

// The resident set of this process (the in-process gateway's), bytes.
std::size_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.starts_with("VmRSS:")) {
      return std::stoull(line.substr(6)) * 1024;
    }
  }
  return 0;
}

TEST(GatewayBadInput, EndlessChunkExtensionsGetAnErrorAndDoNotGrowMemory) {
  GatewayFixture fixture;
  const int fd = connect_loopback(fixture.gateway().port());
  ASSERT_GE(fd, 0);
  const std::string head =
      "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nTransfer-Encoding: chunked\r\n\r\n5";
  ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL), static_cast<ssize_t>(head.size()));
  const std::string extensions = [] {
    std::string out;
    while (out.size() < 64 * 1024) {
      out += ";ext=value";
    }
    return out;
  }();
  const std::size_t rss_before = resident_bytes();
  // Up to 64 MiB of one chunk-size line: the gateway must answer long before.
  constexpr std::size_t kMaxSent = 64 * 1024 * 1024;
  std::size_t sent = 0;
  while (sent < kMaxSent) {
    const auto n = ::send(fd, extensions.data(), extensions.size(), MSG_NOSIGNAL);
    if (n <= 0) {
      break;  // the gateway answered and closed (or stopped reading: SO_SNDTIMEO)
    }
    sent += static_cast<std::size_t>(n);
  }
  const std::size_t rss_after = resident_bytes();
  std::string response;
  char buffer[4096];
  for (ssize_t n = 0; (n = ::recv(fd, buffer, sizeof buffer, 0)) > 0;) {
    response.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  EXPECT_EQ(raw_status(response), 431) << response.substr(0, 300);
  EXPECT_LT(sent, std::size_t{8} * 1024 * 1024) << "the gateway kept reading one chunk-size line";
  EXPECT_LT(rss_after, rss_before + 16 * 1024 * 1024)
      << "RSS grew from " << rss_before << " to " << rss_after;
}

TEST(GatewayBadInput, TrailersAreNotForwardedAsHeaderFields) {
  GatewayFixture fixture;
  // A trailer must not become the session key (nor any header the node sees).
  const auto response = raw_exchange(
      fixture.gateway().port(),
      chunked_request(generate_body("trailer", false), 16, "", "X-Session-ID: from-trailer\r\n"));
  ASSERT_EQ(raw_status(response), 200) << response;
  EXPECT_EQ(header_of(response, "X-Gateway-Key-Source"), "prefix") << response;
}

TEST(GatewayBadInput, TrailersPastTheHeaderLimitGet431) {
  GatewayFixture fixture(
      {.configure = [](config::GatewayConfig& config) { config.limits.max_header_bytes = 4096; }});
  std::string trailers;
  for (int i = 0; i < 16; ++i) {
    trailers += "X-Trailer-" + std::to_string(i) + ": " + std::string(512, 't') + "\r\n";
  }
  const auto response =
      raw_exchange(fixture.gateway().port(),
                   chunked_request(generate_body("trailers", false), 64, "", trailers));
  ASSERT_EQ(raw_status(response), 431) << response.substr(0, 300);
  EXPECT_NE(error_of(response).find("max_header_bytes"), std::string::npos);
}

TEST(GatewayBadInput, BodiesPastTheGatewayWideBudgetGet503AtOnce) {
  constexpr std::size_t kBudget = 512 * 1024;
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.limits.max_body_bytes = kBudget;
    config.limits.max_buffered_body_bytes = kBudget;
  }});
  // Connection A announces 400 KiB and sends only part of it: the gateway holds that much. Its
  // 100 Continue says the gateway took the bytes into account.
  const std::string big = generate_body(std::string(400 * 1024, 'a'), false);
  const int slow = connect_loopback(fixture.gateway().port());
  ASSERT_GE(slow, 0);
  const std::string head =
      "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
      "Connection: close\r\nExpect: 100-continue\r\nContent-Length: " +
      std::to_string(big.size()) + "\r\n\r\n";
  ASSERT_EQ(::send(slow, head.data(), head.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(head.size()));
  char buffer[4096];
  const auto got = ::recv(slow, buffer, sizeof buffer, 0);
  ASSERT_GT(got, 0);
  ASSERT_TRUE(std::string(buffer, static_cast<std::size_t>(got)).starts_with("HTTP/1.1 100"));
  ASSERT_EQ(::send(slow, big.data(), 1024, MSG_NOSIGNAL), 1024);

  // B's 200 KiB do not fit next to A's: 503 with Retry-After, without waiting for B's body.
  const std::string medium = generate_body(std::string(200 * 1024, 'b'), false);
  const auto response = raw_exchange(
      fixture.gateway().port(), "POST /api/generate HTTP/1.1\r\nHost: gateway\r\nContent-Length: " +
                                    std::to_string(medium.size()) + "\r\n\r\n");
  EXPECT_EQ(raw_status(response), 503) << response;
  EXPECT_EQ(header_of(response, "Retry-After"), "1") << response;
  EXPECT_NE(error_of(response).find("max_buffered_body_bytes"), std::string::npos);
  // The chunked way is held to the same budget.
  const auto chunked =
      raw_exchange(fixture.gateway().port(), chunked_request(medium, 64 * 1024, ""));
  EXPECT_EQ(raw_status(chunked), 503) << chunked.substr(0, 300);

  // A finishes and gets its answer; its bytes are given back, so B now fits.
  const std::string rest = big.substr(1024);
  std::size_t sent = 0;
  while (sent < rest.size()) {
    const auto n = ::send(slow, rest.data() + sent, rest.size() - sent, MSG_NOSIGNAL);
    ASSERT_GT(n, 0);
    sent += static_cast<std::size_t>(n);
  }
  std::string answer;
  for (ssize_t n = 0; (n = ::recv(slow, buffer, sizeof buffer, 0)) > 0;) {
    answer.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(slow);
  EXPECT_EQ(raw_status(answer), 200) << answer.substr(0, 300);
  net::HttpClient client;
  EXPECT_EQ(post_json(client, fixture.url("/api/generate"), medium).status, 200);
}

TEST(GatewayBadInput, HostRulesAndConnect) {
  GatewayFixture fixture;
  const auto port = fixture.gateway().port();
  const auto no_host = raw_exchange(port, "GET /api/version HTTP/1.1\r\n\r\n");
  EXPECT_EQ(raw_status(no_host), 400) << no_host;
  EXPECT_NE(error_of(no_host).find("Host"), std::string::npos);
  const auto two_hosts =
      raw_exchange(port, "GET /api/version HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n");
  EXPECT_EQ(raw_status(two_hosts), 400) << two_hosts;
  // HTTP/1.0 needs no Host.
  const auto old_client = raw_exchange(port, "GET /api/version HTTP/1.0\r\n\r\n");
  EXPECT_EQ(raw_status(old_client), 200) << old_client;
  const auto connect =
      raw_exchange(port, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
  EXPECT_EQ(raw_status(connect), 405) << connect;
  EXPECT_NE(header_of(connect, "Allow"), "") << connect;
  const auto relative = raw_exchange(port, "GET api/version HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(raw_status(relative), 400) << relative;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    EXPECT_EQ(fixture.sim(i).stats().prompt_tokens, 0U);
  }
}

TEST(GatewayBadInput, AnAbsoluteFormTargetIsForwardedAsItsPath) {
  GatewayFixture fixture;
  const auto port = fixture.gateway().port();
  const auto tags =
      raw_exchange(port,
                   "GET http://example.com/api/tags HTTP/1.1\r\nHost: example.com\r\nConnection: "
                   "close\r\n\r\n");
  ASSERT_EQ(raw_status(tags), 200) << tags;
  EXPECT_TRUE(json::parse(raw_body(tags), nullptr, false).contains("models")) << tags;
  const auto health = raw_exchange(
      port,
      "GET http://gateway:8000/health HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(raw_status(health), 200) << health;
}

TEST(GatewayBadInput, Http10ClientsGetCloseDelimitedStreamsNeverChunked) {
  GatewayFixture fixture;
  const std::string body = generate_body("an old client", true);
  const auto response = raw_exchange(
      fixture.gateway().port(),
      "POST /api/generate HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body,
      10'000);
  ASSERT_EQ(raw_status(response), 200) << response;
  EXPECT_EQ(header_of(response, "Transfer-Encoding"), "") << response;
  const auto records = ndjson_records(raw_body(response));
  ASSERT_FALSE(records.empty()) << response;
  EXPECT_TRUE(records.back()["done"].get<bool>()) << response;
  // An HTTP/1.0 keep-alive client whose streamed response has no length is closed after it.
  const auto kept =
      raw_exchange(fixture.gateway().port(),
                   "POST /api/generate HTTP/1.0\r\nConnection: keep-alive\r\nContent-Type: "
                   "application/json\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n" + body,
                   10'000);
  ASSERT_EQ(raw_status(kept), 200) << kept;
  EXPECT_EQ(header_of(kept, "Transfer-Encoding"), "") << kept;
  EXPECT_EQ(header_of(kept, "Connection"), "close") << kept;
}

}  // namespace
}  // namespace llmgw::testing
