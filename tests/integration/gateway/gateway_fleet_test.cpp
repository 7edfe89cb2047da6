// The fleet endpoints: clients see one Ollama. Sims holding different models behind a gateway:
// /api/tags and /v1/models are the union, /api/ps says each model's node, /api/version answers
// for the fleet, /api/pull reaches every node with one merged progress stream (one node failing
// included), /api/delete and /api/copy likewise; X-Gateway-Nodes picks the nodes.

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <future>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "llmgw/net/http_server.hpp"
#include "support/gateway_fixture.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

sim::SimOptions holding(std::vector<sim::ModelSpec> models, bool fail_pull = false) {
  auto options = fast_sim_options();
  options.models = std::move(models);
  options.fail_pull = fail_pull;
  return options;
}

// Sims with their own options (node-a, node-b, ...), plus extra raw node URLs, behind an
// in-process gateway.
class Fleet {
 public:
  explicit Fleet(std::vector<sim::SimOptions> options, std::vector<std::string> extra_urls = {},
                 const std::function<void(config::GatewayConfig&)>& configure = {}) {
    std::vector<config::NodeConfig> nodes;
    for (auto& sim_options : options) {
      sims_.push_back(std::make_unique<sim::OllamaSim>(std::move(sim_options)));
      sims_.back()->start();
      nodes.push_back(test_node(name(nodes.size()), sims_.back()->base_url()));
    }
    for (const auto& url : extra_urls) {
      nodes.push_back(test_node(name(nodes.size()), url));
    }
    auto config = test_gateway_config(nodes);
    if (configure) {
      configure(config);
    }
    gateway_ = std::make_unique<server::Gateway>(config);
    gateway_->start();
  }
  ~Fleet() {
    gateway_.reset();
    for (auto& sim : sims_) {
      sim->stop();
    }
  }
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  static std::string name(std::size_t index) {
    return std::string{"node-"} + static_cast<char>('a' + index);
  }
  sim::OllamaSim& sim(std::size_t index) { return *sims_.at(index); }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(gateway_->port()) + std::string{path};
  }

 private:
  std::vector<std::unique_ptr<sim::OllamaSim>> sims_;
  std::unique_ptr<server::Gateway> gateway_;
};

std::multiset<std::string> names_in(const json& listing, const char* array, const char* key) {
  std::multiset<std::string> names;
  for (const auto& entry : listing.at(array)) {
    names.insert(entry.at(key).get<std::string>());
  }
  return names;
}

std::multiset<std::string> tags_of(net::HttpClient& client, const std::string& base_url) {
  const auto tags = get_url(client, base_url + "/api/tags");
  EXPECT_EQ(tags.status, 200) << tags.body;
  return names_in(json::parse(tags.body), "models", "name");
}

Exchange send(net::HttpClient& client, const std::string& method, const std::string& url,
              const std::string& body, const net::HttpHeaders& headers = {}) {
  net::ClientRequest request;
  request.method = method;
  request.url = url;
  request.headers = headers;
  request.headers.push_back({"Content-Type", "application/json"});
  request.body = body;
  auto response = client.send(request);
  return Exchange{response.status, {}, {}, response.body, response};
}

std::string pull_body(std::string_view model, bool stream = true) {
  return json{{"model", model}, {"stream", stream}}.dump();
}

TEST(GatewayFleet, TagsAndV1ModelsAreTheUnionWithoutDuplicates) {
  Fleet fleet(
      {holding({"llama3.2", "qwen2.5:0.5b"}), holding({"llama3.2", "mistral"}), holding({"phi3"})});
  net::HttpClient client;
  const auto tags = get_url(client, fleet.url("/api/tags"));
  ASSERT_EQ(tags.status, 200) << tags.body;
  EXPECT_EQ(tags.response.header("X-Gateway-Partial"), std::nullopt);
  const auto listing = json::parse(tags.body);
  EXPECT_EQ(names_in(listing, "models", "name"),
            (std::multiset<std::string>{"llama3.2:latest", "qwen2.5:0.5b", "mistral:latest",
                                        "phi3:latest"}));
  for (const auto& entry : listing["models"]) {  // Ollama's shape, as the node sent it
    for (const char* key : {"name", "model", "modified_at", "size", "digest", "details"}) {
      EXPECT_TRUE(entry.contains(key)) << key << " missing in " << entry.dump();
    }
  }

  const auto models = get_url(client, fleet.url("/v1/models"));
  ASSERT_EQ(models.status, 200) << models.body;
  const auto openai = json::parse(models.body);
  EXPECT_EQ(openai["object"], "list");
  EXPECT_EQ(names_in(openai, "data", "id"),
            (std::multiset<std::string>{"llama3.2:latest", "qwen2.5:0.5b", "mistral:latest",
                                        "phi3:latest"}));
  EXPECT_EQ(openai["data"][0]["object"], "model");
}

TEST(GatewayFleet, PsListsEveryLoadedModelWithItsNode) {
  Fleet fleet({holding({"llama3.2"}), holding({"mistral", "llama3.2"}), holding({"phi3"})});
  net::HttpClient client;
  // Load a model on each of the first two nodes, straight at the sims.
  const auto load = [&](std::size_t node, std::string_view model) {
    const auto body = json{{"model", model}, {"prompt", "hi"}, {"stream", false}}.dump();
    EXPECT_EQ(post_json(client, fleet.sim(node).base_url() + "/api/generate", body).status, 200);
  };
  load(0, "llama3.2");
  load(1, "mistral");
  const auto ps = get_url(client, fleet.url("/api/ps"));
  ASSERT_EQ(ps.status, 200) << ps.body;
  std::set<std::pair<std::string, std::string>> loaded;
  const auto listing = json::parse(ps.body);
  for (const auto& entry : listing["models"]) {
    loaded.emplace(entry["name"], entry["node"]);
    EXPECT_TRUE(entry.contains("expires_at")) << entry.dump();
    EXPECT_TRUE(entry.contains("size_vram")) << entry.dump();
  }
  EXPECT_EQ(loaded, (std::set<std::pair<std::string, std::string>>{{"llama3.2:latest", "node-a"},
                                                                   {"mistral:latest", "node-b"}}));
}

TEST(GatewayFleet, VersionAnswersForTheFleetAndHeadAndRootStillWork) {
  Fleet fleet({holding({"llama3.2"}), holding({"phi3"})});
  net::HttpClient client;
  const auto version = get_url(client, fleet.url("/api/version"));
  ASSERT_EQ(version.status, 200) << version.body;
  EXPECT_EQ(json::parse(version.body), (json{{"version", "0.5.7"}}));  // the sims' version

  net::ClientRequest head;
  head.method = "HEAD";
  head.url = fleet.url("/api/version");
  const auto head_response = client.send(head);
  EXPECT_EQ(head_response.status, 200);
  EXPECT_TRUE(head_response.body.empty());
  const auto root = get_url(client, fleet.url("/"));
  EXPECT_EQ(root.status, 200);
  EXPECT_EQ(root.body, "llmgw is running\n");
}

TEST(GatewayFleet, ANodeThatDoesNotAnswerIsLeftOutAndNamedAndNoneAnsweringIs502) {
  Fleet fleet({holding({"llama3.2"}), holding({"phi3"})});
  net::HttpClient client;
  fleet.sim(1).stop();  // health checks are rare here: the gateway still thinks it healthy
  const auto tags = get_url(client, fleet.url("/api/tags"));
  ASSERT_EQ(tags.status, 200) << tags.body;
  EXPECT_EQ(tags.response.header("X-Gateway-Partial"), "node-b");
  EXPECT_EQ(names_in(json::parse(tags.body), "models", "name"),
            std::multiset<std::string>{"llama3.2:latest"});

  fleet.sim(0).stop();
  const auto none = get_url(client, fleet.url("/api/tags"));
  EXPECT_EQ(none.status, 502);
  const auto error = json::parse(none.body).at("error").get<std::string>();
  EXPECT_NE(error.find("node-a"), std::string::npos) << error;
  EXPECT_NE(error.find("node-b"), std::string::npos) << error;
}

TEST(GatewayFleet, PullReachesEveryNodeInOneMergedStreamAndNamesTheNodeThatFailed) {
  Fleet fleet({holding({"llama3.2"}), holding({"phi3"}), holding({"phi3"}, true)});
  net::HttpClient client;
  const auto pulled = post_json(client, fleet.url("/api/pull"), pull_body("gemma2:2b"));
  ASSERT_EQ(pulled.status, 200) << pulled.body;
  EXPECT_EQ(pulled.response.header("Content-Type"), "application/x-ndjson");
  const auto records = ndjson_records(pulled.body);
  ASSERT_FALSE(records.empty());
  std::multiset<std::string> progress_from;
  for (const auto& record : records) {
    ASSERT_TRUE(record.contains("node")) << record.dump();
    EXPECT_NE(record.value("status", ""), "success") << "the fleet did not succeed everywhere";
    if (!record.contains("error")) {
      progress_from.insert(record["node"].get<std::string>());
    }
  }
  EXPECT_GT(progress_from.count("node-a"), 3U);
  EXPECT_GT(progress_from.count("node-b"), 3U);
  EXPECT_TRUE(std::any_of(records.begin(), records.end(), [](const json& record) {
    return record.value("status", "") == "node node-a: success";
  }));
  const auto& last = records.back();
  EXPECT_EQ(last["node"], "node-c");
  EXPECT_EQ(last["error"], "node node-c: pull model manifest: simulated failure (--fail-pull)");

  EXPECT_EQ(tags_of(client, fleet.sim(0).base_url()).count("gemma2:2b"), 1U);
  EXPECT_EQ(tags_of(client, fleet.sim(1).base_url()).count("gemma2:2b"), 1U);
  EXPECT_EQ(tags_of(client, fleet.sim(2).base_url()).count("gemma2:2b"), 0U);
  EXPECT_EQ(tags_of(client, fleet.url("")).count("gemma2:2b"), 1U);  // deduplicated
}

TEST(GatewayFleet, APullThatSucceedsEverywhereEndsWithOneSuccessAndHonoursXGatewayNodes) {
  Fleet fleet({holding({"llama3.2"}), holding({"phi3"}), holding({"phi3"})});
  net::HttpClient client;
  const auto pulled = post_json(client, fleet.url("/api/pull"), pull_body("gemma2:2b"), {},
                                {{"X-Gateway-Nodes", "node-c, node-a"}});
  ASSERT_EQ(pulled.status, 200) << pulled.body;
  const auto records = ndjson_records(pulled.body);
  ASSERT_FALSE(records.empty());
  EXPECT_EQ(records.back(), (json{{"status", "success"}}));
  std::set<std::string> nodes;
  for (std::size_t i = 0; i + 1 < records.size(); ++i) {
    EXPECT_FALSE(records[i].contains("error")) << records[i].dump();
    EXPECT_NE(records[i].value("status", ""), "success");
    nodes.insert(records[i]["node"].get<std::string>());
  }
  EXPECT_EQ(nodes, (std::set<std::string>{"node-a", "node-c"}));
  EXPECT_EQ(tags_of(client, fleet.sim(0).base_url()).count("gemma2:2b"), 1U);
  EXPECT_EQ(tags_of(client, fleet.sim(1).base_url()).count("gemma2:2b"), 0U);
  EXPECT_EQ(tags_of(client, fleet.sim(2).base_url()).count("gemma2:2b"), 1U);
}

TEST(GatewayFleet, PullWithoutStreamGivesOneAnswerNamingEachNode) {
  Fleet fleet({holding({"llama3.2"}), holding({"phi3"}, true)});
  net::HttpClient client;
  const auto ok = post_json(client, fleet.url("/api/pull"), pull_body("mistral", false), {},
                            {{"X-Gateway-Nodes", "node-a"}});
  ASSERT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["status"], "success");

  const auto failed = post_json(client, fleet.url("/api/pull"), pull_body("gemma2:2b", false));
  EXPECT_EQ(failed.status, 500) << failed.body;  // the failing node's own status
  const auto body = json::parse(failed.body);
  const auto error = body.at("error").get<std::string>();
  EXPECT_NE(error.find("node-b"), std::string::npos) << error;
  EXPECT_EQ(error.find("node-a"), std::string::npos) << error;
  EXPECT_EQ(body["nodes"][0], (json{{"node", "node-a"}, {"status", "success"}}));
  EXPECT_EQ(body["nodes"][1]["node"], "node-b");
  EXPECT_TRUE(body["nodes"][1].contains("error"));
  EXPECT_EQ(tags_of(client, fleet.sim(0).base_url()).count("gemma2:2b"), 1U);
}

TEST(GatewayFleet, DeleteRemovesTheModelWhereverItIsAnd404sWhenNoNodeHasIt) {
  Fleet fleet({holding({"llama3.2", "phi3"}), holding({"phi3"}), holding({"llama3.2"})});
  net::HttpClient client;
  const auto body = json{{"model", "phi3"}}.dump();
  const auto deleted = send(client, "DELETE", fleet.url("/api/delete"), body);
  ASSERT_EQ(deleted.status, 200) << deleted.body;
  EXPECT_EQ(json::parse(deleted.body)["nodes"],
            (json::array({{{"node", "node-a"}, {"status", "deleted"}},
                          {{"node", "node-b"}, {"status", "deleted"}},
                          {{"node", "node-c"}, {"status", "not found"}}})));
  EXPECT_EQ(tags_of(client, fleet.url("")).count("phi3:latest"), 0U);
  EXPECT_EQ(tags_of(client, fleet.sim(0).base_url()).count("llama3.2:latest"), 1U);

  const auto again = send(client, "DELETE", fleet.url("/api/delete"), body);
  EXPECT_EQ(again.status, 404) << again.body;
  EXPECT_EQ(json::parse(again.body), (json{{"error", "model 'phi3' not found"}}));
}

TEST(GatewayFleet, CopyGoesToEveryNodeHoldingTheSource) {
  Fleet fleet({holding({"llama3.2"}), holding({"phi3"}), holding({"llama3.2"})});
  net::HttpClient client;
  const auto copied = send(client, "POST", fleet.url("/api/copy"),
                           json{{"source", "llama3.2"}, {"destination", "my-llama"}}.dump());
  ASSERT_EQ(copied.status, 200) << copied.body;
  EXPECT_EQ(tags_of(client, fleet.sim(0).base_url()).count("my-llama:latest"), 1U);
  EXPECT_EQ(tags_of(client, fleet.sim(1).base_url()).count("my-llama:latest"), 0U);
  EXPECT_EQ(tags_of(client, fleet.sim(2).base_url()).count("my-llama:latest"), 1U);
}

TEST(GatewayFleet, AnUnknownOrEmptyXGatewayNodesIsA400NamingTheNodes) {
  Fleet fleet({holding({"llama3.2"}), holding({"phi3"})});
  net::HttpClient client;
  const auto unknown =
      get_url(client, fleet.url("/api/tags"), {{"X-Gateway-Nodes", "node-a, node-z"}});
  EXPECT_EQ(unknown.status, 400);
  const auto error = json::parse(unknown.body).at("error").get<std::string>();
  EXPECT_NE(error.find("node-z"), std::string::npos) << error;
  EXPECT_NE(error.find("node-a, node-b"), std::string::npos) << error;
  const auto empty = post_json(client, fleet.url("/api/pull"), pull_body("gemma2:2b"), {},
                               {{"X-Gateway-Nodes", " , "}});
  EXPECT_EQ(empty.status, 400);
  EXPECT_TRUE(json::parse(empty.body).contains("error"));
  const auto no_model = post_json(client, fleet.url("/api/pull"), R"({"stream":true})");
  EXPECT_EQ(no_model.status, 400);
  EXPECT_TRUE(json::parse(no_model.body).contains("error"));
  const auto not_json = send(client, "DELETE", fleet.url("/api/delete"), "not json");
  EXPECT_EQ(not_json.status, 400);
  // Nothing was pulled anywhere.
  EXPECT_EQ(tags_of(client, fleet.url("")).count("gemma2:2b"), 0U);
}

// A node that accepts connections and never answers; remembers when a connection was closed by
// the gateway.
class SilentNode {
 public:
  SilentNode() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::bind(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(fd_, 8) != 0) {
      throw std::runtime_error("cannot listen");
    }
    socklen_t length = sizeof address;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~SilentNode() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  SilentNode(const SilentNode&) = delete;
  SilentNode& operator=(const SilentNode&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  bool peer_closed() const { return peer_closed_.load(); }

 private:
  void serve() {
    const int connection = ::accept(fd_, nullptr, nullptr);
    if (connection < 0) {
      return;
    }
    char buffer[4096];
    while (::recv(connection, buffer, sizeof buffer, 0) > 0) {
    }
    peer_closed_ = true;  // the gateway closed its end (or the test ended)
    ::close(connection);
  }

  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::thread thread_;
  std::atomic<bool> peer_closed_{false};
};

TEST(GatewayFleet, TheMergedStreamIsNotBufferedAndASilentNodeTimesOut) {
  SilentNode silent;
  Fleet fleet({holding({"llama3.2"})}, {silent.url()}, [](config::GatewayConfig& config) {
    config.timeouts.first_byte = std::chrono::milliseconds{3'000};
  });
  net::HttpClient client;
  const auto sent = Clock::now();
  std::string body;
  std::optional<Clock::duration> node_a_done;
  const auto pulled = post_json(
      client, fleet.url("/api/pull"), pull_body("gemma2:2b"), {}, {}, [&](std::string_view bytes) {
        body.append(bytes);
        if (!node_a_done && body.find("node node-a: success") != std::string::npos) {
          node_a_done = Clock::now() - sent;
        }
        return true;
      });
  const auto ended = Clock::now() - sent;
  ASSERT_EQ(pulled.status, 200);
  ASSERT_TRUE(node_a_done.has_value()) << body;
  // node-a's records reached the client while node-b was still silent (not at the stream's end).
  EXPECT_LT(*node_a_done, ended - std::chrono::milliseconds{1'500}) << body;
  const auto records = ndjson_records(body);
  EXPECT_EQ(records.back()["node"], "node-b");
  EXPECT_NE(records.back()["error"].get<std::string>().find("no answer in time"), std::string::npos)
      << body;
}

TEST(GatewayFleet, AClientThatLeavesCancelsThePullsOnTheNodes) {
  SilentNode silent;
  Fleet fleet({holding({"llama3.2"})}, {silent.url()});
  {
    net::ClientOptions options;
    options.read_timeout = std::chrono::milliseconds{500};
    net::HttpClient client(options);
    EXPECT_THROW(post_json(client, fleet.url("/api/pull"), pull_body("gemma2:2b")),
                 net::TransportError);
  }  // the client closes its connection here
  const auto deadline = Clock::now() + std::chrono::seconds{3};
  while (!silent.peer_closed() && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  EXPECT_TRUE(silent.peer_closed()) << "the gateway kept the pull on the node open";
}

// A node behind an authenticating proxy: records the Authorization header of every request and
// answers pulls and deletes as Ollama does.
class RecordingNode {
 public:
  RecordingNode()
      : server_(
            {},
            [this](const net::ServerRequest& request,
                   net::ResponseStream& stream) -> boost::asio::awaitable<void> {
              {
                const std::lock_guard lock(mutex_);
                seen_.push_back(request.method + " " + std::string{request.path()} + " " +
                                std::string{request.header("Authorization").value_or("(none)")});
              }
              // Named before the co_await: GCC 12 miscompiles braced temporaries that live
              // across a suspension point.
              const bool pull = request.path() == "/api/pull";
              net::HttpHeaders headers;
              headers.push_back({"Content-Type", pull ? std::string{"application/x-ndjson"}
                                                      : std::string{"application/json"}});
              std::string body = pull ? std::string{"{\"status\":\"success\"}\n"} : std::string{};
              co_await stream.respond(200, std::move(headers), std::move(body));
            }) {
    server_.start();
  }
  std::string url() const { return server_.base_url(); }
  std::vector<std::string> seen() const {
    const std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::string> seen_;
  net::HttpServer server_;
};

TEST(GatewayFleet, PullAndDeleteCarryTheClientsAuthorizationToEveryNode) {
  RecordingNode node;
  Fleet fleet({holding({"llama3.2"})}, {node.url()});
  net::HttpClient client;
  const net::HttpHeaders headers{{"X-Gateway-Nodes", "node-b"},
                                 {"Authorization", "Bearer fleet-secret"}};
  const auto pulled = post_json(client, fleet.url("/api/pull"), pull_body("phi3"), {}, headers);
  EXPECT_EQ(pulled.status, 200) << pulled.body;
  const auto deleted =
      send(client, "DELETE", fleet.url("/api/delete"), json{{"model", "phi3"}}.dump(), headers);
  EXPECT_EQ(deleted.status, 200) << deleted.body;
  // Without one, none is made up.
  send(client, "DELETE", fleet.url("/api/delete"), json{{"model", "phi3"}}.dump(),
       {{"X-Gateway-Nodes", "node-b"}});
  const auto seen = node.seen();
  const auto has = [&seen](const std::string& line) {
    return std::find(seen.begin(), seen.end(), line) != seen.end();
  };
  EXPECT_TRUE(has("POST /api/pull Bearer fleet-secret")) << ::testing::PrintToString(seen);
  EXPECT_TRUE(has("DELETE /api/delete Bearer fleet-secret")) << ::testing::PrintToString(seen);
  EXPECT_TRUE(has("DELETE /api/delete (none)")) << ::testing::PrintToString(seen);
}

}  // namespace
}  // namespace llmgw::testing
