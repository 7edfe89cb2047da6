// The admin API: bearer-token protected; adding a node moves sessions only to the new node,
// removing it moves them back; bad input is refused with the key path; the token is never logged;
// changes made at the same time all land.

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "support/gateway_fixture.hpp"
#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

using nlohmann::json;

constexpr std::string_view kToken = "adm1n-t0ken-never-logged";

// Captures everything spdlog's default logger writes while it lives; restores the old logger.
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(stream_);
    auto logger = std::make_shared<spdlog::logger>("capture", sink);
    logger->set_level(spdlog::level::trace);
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() {
    // set_default_logger registered the capture logger; drop it before its stream goes away.
    spdlog::set_default_logger(previous_);
    spdlog::drop("capture");
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::string text() {
    spdlog::default_logger()->flush();
    return stream_.str();
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream stream_;
};

net::ClientResponse admin_call(net::HttpClient& client, const std::string& method,
                               const std::string& url, const std::string& body = {},
                               std::string_view token = kToken) {
  net::ClientRequest request;
  request.method = method;
  request.url = url;
  if (!token.empty()) {
    request.headers.push_back({"Authorization", "Bearer " + std::string{token}});
  }
  if (!body.empty()) {
    request.headers.push_back({"Content-Type", "application/json"});
    request.body = body;
  }
  return client.send(request);
}

TEST(GatewayAdmin, RequiresTheBearerTokenAndNeverLogsIt) {
  LogCapture logs;
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
    config.log.access_log = true;
  }});
  net::HttpClient client;
  const auto none = admin_call(client, "GET", fixture.url("/admin/nodes"), {}, {});
  EXPECT_EQ(none.status, 401);
  EXPECT_TRUE(json::parse(none.body).contains("error"));
  const auto wrong = admin_call(client, "GET", fixture.url("/admin/nodes"), {}, "not-the-token");
  EXPECT_EQ(wrong.status, 401);
  const auto right = admin_call(client, "GET", fixture.url("/admin/nodes"));
  ASSERT_EQ(right.status, 200) << right.body;
  EXPECT_EQ(json::parse(right.body)["nodes"].size(), 3U);
  const auto bad_url =
      admin_call(client, "POST", fixture.url("/admin/nodes"), R"({"url":"ftp://nowhere"})");
  EXPECT_EQ(bad_url.status, 400);

  const std::string text = logs.text();
  EXPECT_NE(text.find("/admin/nodes"), std::string::npos) << "access log lines are missing";
  EXPECT_EQ(text.find(kToken), std::string::npos) << "the admin token was logged:\n" << text;
  for (const auto* body : {&none.body, &wrong.body, &right.body, &bad_url.body}) {
    EXPECT_EQ(body->find(kToken), std::string::npos) << *body;
  }
}

// The ring's minimal disruption, seen through routing.balance_by: requests (which at low load is
// the plain ring).
TEST(GatewayAdmin, AddingANodeMovesSessionsOnlyToItAndRemovingItMovesThemBack) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
    config.routing.balance_by = "requests";
  }});
  sim::OllamaSim extra(fast_sim_options());
  extra.start();
  net::HttpClient client;
  std::vector<std::string> sessions;
  for (int i = 0; i < 60; ++i) {
    sessions.push_back("admin-session-" + std::to_string(i));
  }
  const auto before = session_nodes(fixture, client, sessions);

  const auto added = admin_call(client, "POST", fixture.url("/admin/nodes"),
                                json{{"name", "node-d"}, {"url", extra.base_url()}}.dump());
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(json::parse(added.body)["nodes"].size(), 4U);

  // The expected owners on the four-node ring, computed independently of the gateway.
  std::vector<routing::RingMember> members;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    members.push_back({fixture.node_name(i), 1.0});
  }
  members.push_back({"node-d", 1.0});
  const routing::HashRing ring(members);

  // The sessions node-d now owns are preheated there (docs/DESIGN.md §2.4); until a session's
  // preheat has ended its turns stay on its old node, where its history is. Once every preheat
  // sent has ended, each session's turn goes to its owner on the four-node ring.
  const auto preheats = [&](std::string_view outcome) {
    return metric_sum(get_url(client, fixture.url("/metrics")).body, "llmgw_preheats_total",
                      {"outcome=\"" + std::string{outcome} + "\""});
  };
  ASSERT_TRUE(wait_until([&] {
    return preheats("sent") > 0 && preheats("completed") + preheats("failed") >= preheats("sent");
  })) << "the preheats of the sessions node-d now owns did not end";
  const auto after = session_nodes(fixture, client, sessions);
  int moved = 0;
  for (std::size_t i = 0; i < sessions.size(); ++i) {
    const auto owner = ring.owner(routing::ring_position(sessions[i]));
    ASSERT_TRUE(owner.has_value());
    EXPECT_EQ(after[i], members[*owner].id) << sessions[i];
    if (after[i] != before[i]) {
      ++moved;
      EXPECT_EQ(after[i], "node-d") << sessions[i] << " moved between two old nodes";
    }
  }
  EXPECT_GT(moved, 0) << "no session moved to the new node";
  EXPECT_LT(moved, 40) << "far more than a quarter of the sessions moved";

  const auto removed = admin_call(client, "DELETE", fixture.url("/admin/nodes/node-d"));
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(json::parse(removed.body)["nodes"].size(), 3U);
  EXPECT_EQ(session_nodes(fixture, client, sessions), before);

  const auto unknown = admin_call(client, "DELETE", fixture.url("/admin/nodes/node-z"));
  EXPECT_EQ(unknown.status, 404);
}

// Under the default balance_by: sessions a live session keeps its node (and its cache) when a node
// joins; new sessions fill the new node; when it leaves, only its own sessions are placed again.
TEST(GatewayAdmin, UnderSessionPlacementAJoiningNodeTakesNewSessionsAndALeavingOneOnlyItsOwn) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
  }});
  sim::OllamaSim extra(fast_sim_options());
  extra.start();
  net::HttpClient client;
  const auto make_sessions = [](const std::string& prefix) {
    std::vector<std::string> sessions;
    for (int i = 0; i < 30; ++i) {
      sessions.push_back(prefix + std::to_string(i));
    }
    return sessions;
  };
  const auto old_sessions = make_sessions("placed-before-");
  const auto before = session_nodes(fixture, client, old_sessions);

  const auto added = admin_call(client, "POST", fixture.url("/admin/nodes"),
                                json{{"name", "node-d"}, {"url", extra.base_url()}}.dump());
  ASSERT_EQ(added.status, 201) << added.body;
  EXPECT_EQ(session_nodes(fixture, client, old_sessions), before) << "a live session moved";

  // 30 live sessions, 10 per old node: the fair share on 4 nodes stays <= 10 + 1 while the next 10
  // arrive, so the old nodes are full and every new session goes to node-d until it catches up.
  const auto new_sessions = make_sessions("placed-after-");
  const auto placed = session_nodes(fixture, client, new_sessions);
  const auto on_new = std::count(placed.begin(), placed.end(), "node-d");
  EXPECT_GE(on_new, 10) << "the new node did not take the new sessions";

  const auto removed = admin_call(client, "DELETE", fixture.url("/admin/nodes/node-d"));
  ASSERT_EQ(removed.status, 200) << removed.body;
  EXPECT_EQ(session_nodes(fixture, client, old_sessions), before)
      << "a session of an old node moved";
  const auto replaced = session_nodes(fixture, client, new_sessions);
  for (std::size_t i = 0; i < new_sessions.size(); ++i) {
    EXPECT_NE(replaced[i], "node-d") << new_sessions[i];
    if (placed[i] != "node-d") {
      EXPECT_EQ(replaced[i], placed[i]) << new_sessions[i] << " moved between two old nodes";
    }
  }
}

TEST(GatewayAdmin, ABadNodeUrlIsRefusedWithTheKeyPath) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
  }});
  net::HttpClient client;
  const auto response = admin_call(client, "POST", fixture.url("/admin/nodes"),
                                   R"({"name":"node-x","url":"ftp://nowhere:21"})");
  ASSERT_EQ(response.status, 400) << response.body;
  const auto message = json::parse(response.body)["error"].get<std::string>();
  EXPECT_NE(message.find("nodes[3].url"), std::string::npos) << message;
  const auto duplicate = admin_call(client, "POST", fixture.url("/admin/nodes"),
                                    json{{"name", "node-a"}, {"url", "http://127.0.0.1:9"}}.dump());
  EXPECT_EQ(duplicate.status, 400) << duplicate.body;
  const auto listed = admin_call(client, "GET", fixture.url("/admin/nodes"));
  EXPECT_EQ(json::parse(listed.body)["nodes"].size(), 3U) << "a refused change was applied";
}

// Each change is a read-modify-publish of the node list; two at once must not both start from the
// same list (the second would drop the first's node).
TEST(GatewayAdmin, ConcurrentChangesAllLand) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
    config.workers = 4;
  }});
  constexpr int kAdded = 20;
  std::vector<std::future<int>> posts;
  for (int i = 0; i < kAdded; ++i) {
    posts.push_back(std::async(std::launch::async, [&fixture, i] {
      net::HttpClient client;
      const auto body = json{{"name", "added-" + std::to_string(i)},
                             {"url", "http://127.0.0.1:" + std::to_string(20'000 + i)}};
      return admin_call(client, "POST", fixture.url("/admin/nodes"), body.dump()).status;
    }));
  }
  for (auto& post : posts) {
    EXPECT_EQ(post.get(), 201);
  }
  net::HttpClient client;
  const auto listed = json::parse(admin_call(client, "GET", fixture.url("/admin/nodes")).body);
  std::set<std::string> names;
  for (const auto& node : listed["nodes"]) {
    names.insert(node["name"].get<std::string>());
  }
  for (int i = 0; i < kAdded; ++i) {
    EXPECT_TRUE(names.contains("added-" + std::to_string(i))) << "added-" << i << " was lost";
  }
  EXPECT_EQ(names.size(), fixture.node_count() + kAdded);

  // Removals at once too: every one lands, and the original nodes stay.
  std::vector<std::future<int>> deletes;
  for (int i = 0; i < kAdded; ++i) {
    deletes.push_back(std::async(std::launch::async, [&fixture, i] {
      net::HttpClient delete_client;
      return admin_call(delete_client, "DELETE",
                        fixture.url("/admin/nodes/added-" + std::to_string(i)))
          .status;
    }));
  }
  for (auto& removal : deletes) {
    EXPECT_EQ(removal.get(), 200);
  }
  const auto left = json::parse(admin_call(client, "GET", fixture.url("/admin/nodes")).body);
  EXPECT_EQ(left["nodes"].size(), fixture.node_count());
}

// admin.listen: /admin/* only on its own address (404 on the main listener, which serves the rest
// as before); the admin listener serves nothing else and still wants the token.
TEST(GatewayAdmin, OnItsOwnListenerTheAdminApiIsServedOnlyThere) {
  GatewayFixture fixture({.configure = [](config::GatewayConfig& config) {
    config.admin.token = std::string{kToken};
    config.admin.listen = {"127.0.0.1", 0, {}};
  }});
  const auto admin_port = fixture.gateway().admin_port();
  ASSERT_NE(admin_port, 0);
  ASSERT_NE(admin_port, fixture.gateway().port());
  const auto admin_url = [&](std::string_view path) {
    return "http://127.0.0.1:" + std::to_string(admin_port) + std::string{path};
  };
  net::HttpClient client;

  const auto listed = admin_call(client, "GET", admin_url("/admin/nodes"));
  ASSERT_EQ(listed.status, 200) << listed.body;
  EXPECT_EQ(json::parse(listed.body)["nodes"].size(), 3U);
  EXPECT_EQ(admin_call(client, "GET", admin_url("/admin/nodes"), {}, "wrong-token").status, 401);
  const auto patched = admin_call(
      client, "PATCH", admin_url("/admin/nodes/" + fixture.node_name(0)), R"({"weight": 2})");
  EXPECT_EQ(patched.status, 200) << patched.body;

  // The main listener: no admin API, everything else as before.
  const auto main_admin = admin_call(client, "GET", fixture.url("/admin/nodes"));
  EXPECT_EQ(main_admin.status, 404);
  EXPECT_EQ(json::parse(main_admin.body)["error"],
            "not found: the admin API listens on its own address (admin.listen)");
  EXPECT_EQ(
      admin_call(client, "DELETE", fixture.url("/admin/nodes/" + fixture.node_name(1))).status,
      404);
  EXPECT_EQ(get_url(client, fixture.url("/health")).status, 200);
  EXPECT_EQ(get_url(client, fixture.url("/metrics")).status, 200);
  const auto generated =
      post_json(client, fixture.url("/api/generate"), generate_body("hi", false));
  EXPECT_EQ(generated.status, 200) << generated.body;

  // The admin listener: nothing but the admin API.
  for (const std::string path : {"/health", "/metrics", "/api/tags", "/"}) {
    const auto other = get_url(client, admin_url(path));
    EXPECT_EQ(other.status, 404) << path;
    EXPECT_EQ(json::parse(other.body)["error"],
              "not found: this listener serves the admin API (/admin/*) only")
        << path;
  }
  EXPECT_EQ(post_json(client, admin_url("/api/generate"), generate_body("hi", false)).status, 404);
  std::uint64_t inference = 0;
  for (std::size_t i = 0; i < fixture.node_count(); ++i) {
    inference += fixture.sim(i).stats().inference_requests;
  }
  EXPECT_EQ(inference, 1U) << "only the main listener's request reached a node";
  // The change made through the admin listener is the one the main listener routes with.
  const auto health = json::parse(get_url(client, fixture.url("/health")).body);
  EXPECT_EQ(health["nodes"][0]["weight"], 2.0);
}

}  // namespace
}  // namespace llmgw::testing
