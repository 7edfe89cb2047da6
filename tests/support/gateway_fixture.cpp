#include "support/gateway_fixture.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <sstream>
#include <stdexcept>

namespace llmgw::testing {

sim::SimOptions fast_sim_options() {
  sim::SimOptions options;
  options.latency.time_scale = 0.01;
  options.output = {4, 12};
  options.num_parallel = 8;
  options.seed = 7;
  return options;
}

sim::SimOptions slow_sim_options(std::size_t tokens, double token_interval_ms) {
  sim::SimOptions options = fast_sim_options();
  options.latency.time_scale = 1.0;
  options.latency.prefill_tokens_per_s = 1e6;
  options.latency.decode_tokens_per_s = 1000.0 / token_interval_ms;
  options.output = {tokens, tokens};
  return options;
}

config::NodeConfig test_node(const std::string& name, const std::string& url) {
  config::NodeConfig node;
  node.name = name;
  node.url = url;
  config::resolve_node(node, "nodes[" + name + "]");
  return node;
}

config::GatewayConfig test_gateway_config(const std::vector<config::NodeConfig>& nodes) {
  config::GatewayConfig config;
  config.listen.address = "127.0.0.1";
  config.listen.port = 0;
  config.workers = 2;
  config.nodes = nodes;
  config.timeouts.connect = std::chrono::milliseconds{1'000};
  config.timeouts.first_byte = std::chrono::milliseconds{5'000};
  config.timeouts.idle = std::chrono::milliseconds{5'000};
  config.timeouts.client_header = std::chrono::milliseconds{5'000};
  config.drain = std::chrono::milliseconds{5'000};
  config.health.interval = std::chrono::milliseconds{60'000};
  config.health.timeout = std::chrono::milliseconds{1'000};
  // Short ejections: tests that restart a node expect it back after its checks pass.
  config.health.base_ejection = std::chrono::milliseconds{100};
  config.health.max_ejection = std::chrono::milliseconds{1'000};
  config.log.level = "warn";
  config.log.access_log = false;
  return config;
}

GatewayFixture::GatewayFixture(GatewayFixtureOptions options) : options_(std::move(options)) {
  std::vector<config::NodeConfig> nodes;
  for (std::size_t i = 0; i < options_.nodes; ++i) {
    auto sim = std::make_unique<sim::OllamaSim>(options_.sim);
    sim->start();
    const std::string name = std::string{"node-"} + static_cast<char>('a' + i);
    nodes.push_back(test_node(name, sim->base_url()));
    sims_.push_back(std::move(sim));
  }
  config_ = test_gateway_config(nodes);
  if (options_.configure) {
    options_.configure(config_);
  }
  config::validate(config_);
  std::vector<routing::RingMember> members;
  for (const auto& node : config_.nodes) {
    members.push_back({node.name, node.weight});
  }
  ring_ = routing::HashRing(members, config_.routing.virtual_nodes);
  gateway_ = std::make_unique<server::Gateway>(config_);
  gateway_->start();
}

GatewayFixture::~GatewayFixture() {
  // The gateway first, so that no request is mid-flight against a stopped sim.
  gateway_.reset();
  for (auto& sim : sims_) {
    if (sim) {
      sim->stop();
    }
  }
}

std::optional<std::size_t> GatewayFixture::node_index(std::string_view name) const {
  for (std::size_t i = 0; i < config_.nodes.size(); ++i) {
    if (config_.nodes[i].name == name) {
      return i;
    }
  }
  ADD_FAILURE() << "unknown node name \"" << name << "\"";
  return std::nullopt;
}

void GatewayFixture::stop_sim(std::size_t index) {
  sims_.at(index)->stop();
}

void GatewayFixture::restart_sim(std::size_t index) {
  sim::SimOptions options = options_.sim;
  options.port = config_.nodes.at(index).port;
  sims_.at(index)->stop();
  sims_.at(index) = std::make_unique<sim::OllamaSim>(options);
  sims_.at(index)->start();
}

std::string GatewayFixture::url(std::string_view path) const {
  return "http://127.0.0.1:" + std::to_string(gateway_->port()) + std::string{path};
}

std::size_t GatewayFixture::ring_owner(std::string_view session) const {
  return ring_order(session).at(0);
}

std::vector<std::size_t> GatewayFixture::ring_order(std::string_view session) const {
  return ring_.clockwise_members(routing::ring_position(session));
}

namespace {

Exchange to_exchange(net::ClientResponse response) {
  Exchange exchange;
  exchange.status = response.status;
  exchange.node = std::string{response.header("X-Gateway-Node").value_or("")};
  exchange.route = std::string{response.header("X-Gateway-Route").value_or("")};
  exchange.body = response.body;
  exchange.response = std::move(response);
  return exchange;
}

}  // namespace

Exchange post_json(net::HttpClient& client, const std::string& url, const std::string& body,
                   std::string_view session, const net::HttpHeaders& extra,
                   const net::BodyCallback& on_body) {
  net::ClientRequest request;
  request.method = "POST";
  request.url = url;
  request.headers = {{"Content-Type", "application/json"}};
  if (!session.empty()) {
    request.headers.push_back({"X-Session-ID", std::string{session}});
  }
  request.headers.insert(request.headers.end(), extra.begin(), extra.end());
  request.body = body;
  return to_exchange(client.send(request, on_body));
}

std::vector<std::string> session_nodes(GatewayFixture& fixture, net::HttpClient& client,
                                       const std::vector<std::string>& sessions) {
  std::vector<std::string> nodes;
  for (const auto& session : sessions) {
    const auto exchange =
        post_json(client, fixture.url("/api/generate"), generate_body("hi", false), session);
    EXPECT_EQ(exchange.status, 200) << exchange.body;
    nodes.push_back(exchange.node);
  }
  return nodes;
}

Exchange get_url(net::HttpClient& client, const std::string& url, const net::HttpHeaders& headers) {
  net::ClientRequest request;
  request.url = url;
  request.headers = headers;
  return to_exchange(client.send(request));
}

std::string generate_body(std::string_view prompt, bool stream) {
  return nlohmann::json{{"model", GatewayFixture::kModel}, {"prompt", prompt}, {"stream", stream}}
      .dump();
}

std::vector<nlohmann::json> ndjson_records(const std::string& body) {
  std::vector<nlohmann::json> records;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (!line.empty()) {
      records.push_back(nlohmann::json::parse(line));
    }
  }
  return records;
}

int connect_loopback(std::uint16_t port, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    return -1;
  }
  timeval timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    const int error = errno;
    ::close(fd);
    errno = error;
    return -1;
  }
  return fd;
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes, int timeout_ms) {
  const int fd = connect_loopback(port, timeout_ms);
  if (fd < 0) {
    throw std::runtime_error("connect to 127.0.0.1:" + std::to_string(port) + " failed");
  }
  // The server may answer (and close) before it read everything: a failed send is not an error.
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      break;
    }
    sent += static_cast<std::size_t>(n);
  }
  std::string received;
  char buffer[4096];
  for (;;) {
    const auto n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) {
      break;
    }
    received.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return received;
}

int raw_status(const std::string& response) {
  constexpr std::string_view kPrefix = "HTTP/1.1 ";
  if (response.size() < kPrefix.size() + 3 || !response.starts_with(kPrefix)) {
    return 0;
  }
  return std::stoi(response.substr(kPrefix.size(), 3));
}

std::string raw_body(const std::string& response) {
  const auto at = response.find("\r\n\r\n");
  return at == std::string::npos ? std::string{} : response.substr(at + 4);
}

double metric_sum(const std::string& exposition, std::string_view metric,
                  const std::vector<std::string>& labels) {
  double sum = 0.0;
  std::istringstream lines(exposition);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty() || line.front() == '#' || !line.starts_with(metric)) {
      continue;
    }
    const std::string_view rest = std::string_view{line}.substr(metric.size());
    if (!rest.starts_with('{') && !rest.starts_with(' ')) {
      continue;  // a longer name with this prefix (e.g. _bucket vs _bucket_x)
    }
    const auto value_at = line.rfind(' ');
    const std::string label_set = line.substr(metric.size(), value_at - metric.size());
    const bool matches = std::all_of(labels.begin(), labels.end(), [&](const std::string& label) {
      return label_set.find(label) != std::string::npos;
    });
    if (matches) {
      sum += std::stod(line.substr(value_at + 1));
    }
  }
  return sum;
}

StreamedExchange post_streamed(net::HttpClient& client, const std::string& url,
                               const std::string& body, std::string_view session) {
  StreamedExchange out;
  const auto started = std::chrono::steady_clock::now();
  out.exchange = post_json(client, url, body, session, {}, [&](std::string_view data) {
    if (!out.first_chunk_after) {
      out.first_chunk_after = std::chrono::steady_clock::now() - started;
    }
    ++out.chunks;
    out.body.append(data);
    return true;
  });
  out.total = std::chrono::steady_clock::now() - started;
  return out;
}

}  // namespace llmgw::testing
