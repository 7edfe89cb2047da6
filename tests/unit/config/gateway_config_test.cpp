#include "llmgw/config/gateway_config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/wait.hpp"

namespace llmgw::config {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in{text};
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  return lines;
}

// The problem lines of a configuration that must be refused.
std::vector<std::string> problems_of(const ConfigSources& sources) {
  try {
    load_gateway_config(sources);
  } catch (const ConfigError& e) {
    return lines_of(e.what());
  }
  ADD_FAILURE() << "the configuration was accepted";
  return {};
}

std::vector<std::string> problems_of(const std::string& yaml) {
  try {
    parse_gateway_config(yaml);
  } catch (const ConfigError& e) {
    return lines_of(e.what());
  }
  ADD_FAILURE() << "the configuration was accepted:\n" << yaml;
  return {};
}

// A temporary directory removed when the test ends.
class TempDir {
 public:
  TempDir() : path_{llmgw::testing::make_temp_dir("llmgw-config-test")} {}
  ~TempDir() {
    std::error_code ignored;
    std::filesystem::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  std::string write(const std::string& name, const std::string& content) const {
    const auto file = path_ / name;
    std::ofstream{file} << content;
    return file.string();
  }
  std::string path(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

TEST(GatewayConfig, EmptyFileGivesTheDocumentedDefaults) {
  const GatewayConfig config = parse_gateway_config("");
  EXPECT_EQ(config.listen.address, "0.0.0.0");
  EXPECT_EQ(config.listen.port, 8000);
  EXPECT_EQ(config.workers, std::max(1U, std::thread::hardware_concurrency()));
  ASSERT_THAT(config.nodes, SizeIs(1));
  EXPECT_EQ(config.nodes[0].name, "127.0.0.1:11434");
  EXPECT_EQ(config.nodes[0].url, "http://127.0.0.1:11434");
  EXPECT_EQ(config.nodes[0].host, "127.0.0.1");
  EXPECT_EQ(config.nodes[0].port, 11434);
  EXPECT_EQ(config.nodes[0].weight, 1.0);
  EXPECT_EQ(config.routing.virtual_nodes, 150U);
  EXPECT_EQ(config.routing.session_header, "X-Session-ID");
  EXPECT_EQ(config.routing.balance_factor, 1.25);
  EXPECT_EQ(config.routing.balance_by, "sessions");
  EXPECT_EQ(config.routing.session_idle, std::chrono::milliseconds{300'000});
  EXPECT_EQ(config.routing.max_sessions, 100'000U);
  EXPECT_EQ(config.timeouts.connect, std::chrono::milliseconds{2'000});
  EXPECT_EQ(config.drain, std::chrono::milliseconds{30'000});
  EXPECT_EQ(config.log.level, "info");
  EXPECT_EQ(config.log.format, "text");
  EXPECT_TRUE(config.admin.token.empty());
}

TEST(GatewayConfig, EmptySectionsAndNullValuesKeepDefaults) {
  const GatewayConfig config =
      parse_gateway_config("listen:\nrouting:\n  virtual_nodes:\nnodes:\n");
  EXPECT_EQ(config.listen.port, 8000);
  EXPECT_EQ(config.routing.virtual_nodes, 150U);
  ASSERT_THAT(config.nodes, SizeIs(1));
}

TEST(GatewayConfig, FullExampleParsesEveryField) {
  const GatewayConfig config = parse_gateway_config(R"(
listen: {address: "::1", port: 9000}
workers: 3
nodes:
  - {name: gpu-a, url: "http://10.0.0.1:11434", weight: 2}
  - http://gpu-b.internal
routing: {virtual_nodes: 40, session_header: X-Conversation, balance_factor: 0, max_attempts: 1}
timeouts: {connect_ms: 10, first_byte_ms: 20, idle_ms: 0, total_ms: 40, client_header_ms: 50}
limits: {max_header_bytes: 100, max_body_bytes: 200, max_connections: 300,
         max_idle_upstream_per_node: 4}
health: {path: /healthz, interval_ms: 60, timeout_ms: 70, unhealthy_threshold: 5,
         healthy_threshold: 6}
shutdown: {drain_ms: 80}
log: {level: debug, format: json, access_log: false}
admin: {token: abc123}
)");
  EXPECT_EQ(config.listen.address, "::1");
  EXPECT_EQ(config.listen.port, 9000);
  EXPECT_EQ(config.workers, 3U);
  ASSERT_THAT(config.nodes, SizeIs(2));
  EXPECT_EQ(config.nodes[0].name, "gpu-a");
  EXPECT_EQ(config.nodes[0].host, "10.0.0.1");
  EXPECT_EQ(config.nodes[0].weight, 2.0);
  EXPECT_EQ(config.nodes[1].name, "gpu-b.internal:80");
  EXPECT_EQ(config.nodes[1].port, 80);
  EXPECT_EQ(config.routing.virtual_nodes, 40U);
  EXPECT_EQ(config.routing.session_header, "X-Conversation");
  EXPECT_EQ(config.routing.balance_factor, 0.0);
  EXPECT_EQ(config.routing.max_attempts, 1U);
  EXPECT_EQ(config.timeouts.connect.count(), 10);
  EXPECT_EQ(config.timeouts.first_byte.count(), 20);
  EXPECT_EQ(config.timeouts.idle.count(), 0);
  EXPECT_EQ(config.timeouts.total.count(), 40);
  EXPECT_EQ(config.timeouts.client_header.count(), 50);
  EXPECT_EQ(config.limits.max_header_bytes, 100U);
  EXPECT_EQ(config.limits.max_body_bytes, 200U);
  EXPECT_EQ(config.limits.max_connections, 300U);
  EXPECT_EQ(config.limits.max_idle_upstream_per_node, 4U);
  EXPECT_EQ(config.health.path, "/healthz");
  EXPECT_EQ(config.health.interval.count(), 60);
  EXPECT_EQ(config.health.timeout.count(), 70);
  EXPECT_EQ(config.health.unhealthy_threshold, 5U);
  EXPECT_EQ(config.health.healthy_threshold, 6U);
  EXPECT_EQ(config.drain.count(), 80);
  EXPECT_EQ(config.log.level, "debug");
  EXPECT_EQ(config.log.format, "json");
  EXPECT_FALSE(config.log.access_log);
  EXPECT_EQ(config.admin.token, "abc123");
}

TEST(GatewayConfig, ShippedGatewayYamlParsesToTheDefaults) {
  const GatewayConfig config =
      load_gateway_config({LLMGW_SOURCE_DIR "/config/gateway.yaml", {}, {}});
  const GatewayConfig defaults = parse_gateway_config("");
  EXPECT_EQ(config.listen.port, defaults.listen.port);
  EXPECT_EQ(config.routing.virtual_nodes, defaults.routing.virtual_nodes);
  EXPECT_EQ(config.timeouts.first_byte, defaults.timeouts.first_byte);
  EXPECT_EQ(config.limits.max_body_bytes, defaults.limits.max_body_bytes);
  ASSERT_THAT(config.nodes, SizeIs(1));
  EXPECT_EQ(config.nodes[0].url, "http://127.0.0.1:11434");
}

TEST(GatewayConfig, ShippedGatewayYamlDocumentsEveryKey) {
  std::ifstream in{LLMGW_SOURCE_DIR "/config/gateway.yaml"};
  std::stringstream text;
  text << in.rdbuf();
  for (const auto& key : config_keys()) {
    if (!key.env_var.empty()) {
      EXPECT_THAT(text.str(), HasSubstr(key.env_var)) << key.path;
    }
  }
}

TEST(GatewayConfig, PreheatKeysAndANodesDrainingFlagParseAndAreBounded) {
  const GatewayConfig config = parse_gateway_config(
      "preheat:\n  max_bytes: 1000\n  max_per_node: 3\n  max_wait_ms: 50\n"
      "nodes:\n  - {url: 'http://a:1', draining: true}\n  - http://b:1\n");
  EXPECT_EQ(config.preheat.max_bytes, 1000U);
  EXPECT_EQ(config.preheat.max_per_node, 3U);
  EXPECT_EQ(config.preheat.max_wait.count(), 50);
  EXPECT_EQ(config.preheat.max_total, GatewayConfig{}.preheat.max_total);
  EXPECT_TRUE(config.nodes[0].draining);
  EXPECT_FALSE(config.nodes[1].draining);
  EXPECT_THAT(problems_of("preheat:\n  max_per_node: 0\n"),
              Contains(HasSubstr("preheat.max_per_node")));
  EXPECT_THAT(problems_of("nodes:\n  - {url: 'http://a:1', draining: maybe}\n"),
              Contains(HasSubstr("nodes[0].draining")));
}

TEST(GatewayConfig, ShippedDemoYamlFrontsThreeSims) {
  const GatewayConfig config = load_gateway_config({LLMGW_SOURCE_DIR "/config/demo.yaml", {}, {}});
  EXPECT_EQ(config.listen.address, "127.0.0.1");
  EXPECT_EQ(config.listen.port, 8000);
  EXPECT_EQ(config.workers, 2U);
  EXPECT_EQ(config.log.format, "text");
  ASSERT_THAT(config.nodes, SizeIs(3));
  EXPECT_EQ(config.nodes[0].name, "sim-a");
  EXPECT_EQ(config.nodes[1].name, "sim-b");
  EXPECT_EQ(config.nodes[2].name, "sim-c");
  EXPECT_EQ(config.nodes[2].port, 11503);
}

TEST(GatewayConfigValidation, UnknownKeysSuggestTheNearestKnownOne) {
  const auto problems = problems_of("listen:\n  prot: 1\nroutng:\n  x: 1\nfrobnicate: 2\n");
  EXPECT_THAT(problems, Contains("listen.prot: unknown key (did you mean listen.port?)"));
  EXPECT_THAT(problems, Contains("routng: unknown key (did you mean routing?)"));
  EXPECT_THAT(problems, Contains("frobnicate: unknown key"));
  EXPECT_THAT(problems_of("nodes:\n  - {url: 'http://a:1', wieght: 2}\n"),
              Contains("nodes[0].wieght: unknown key (did you mean nodes[0].weight?)"));
}

TEST(GatewayConfigValidation, WrongTypesNameTheKeyAndTheValue) {
  const auto problems = problems_of(R"(
listen: {port: abc}
routing: {balance_factor: high, virtual_nodes: [1]}
log: {access_log: maybe}
timeouts: {idle_ms: 1.5}
health: 3
)");
  EXPECT_THAT(problems, Contains("listen.port: expected an integer, got \"abc\""));
  EXPECT_THAT(problems, Contains("routing.balance_factor: expected a number, got \"high\""));
  EXPECT_THAT(problems, Contains("routing.virtual_nodes: expected an integer, got a list"));
  EXPECT_THAT(problems, Contains("log.access_log: expected true or false, got \"maybe\""));
  EXPECT_THAT(problems, Contains("timeouts.idle_ms: expected an integer, got \"1.5\""));
  EXPECT_THAT(problems, Contains("health: expected a map, got \"3\""));
}

TEST(GatewayConfigValidation, PortOutOfRange) {
  EXPECT_THAT(problems_of("listen: {port: 70000}"),
              ElementsAre("listen.port: 70000 is out of range (0-65535)"));
  EXPECT_THAT(problems_of("nodes: ['http://a:70000']"),
              ElementsAre("nodes[0].url: port 70000 is out of range (1-65535)"));
}

TEST(GatewayConfigValidation, BadNodeUrls) {
  EXPECT_THAT(
      problems_of("nodes: ['not a url']"),
      ElementsAre("nodes[0].url: not a valid URL \"not a url\"; expected http://host:port or "
                  "https://host:port"));
  EXPECT_THAT(problems_of("nodes: ['ftp://a:21']"),
              ElementsAre("nodes[0].url: the scheme must be http or https, got \"ftp\""));
  EXPECT_THAT(problems_of("nodes: ['http://']"),
              ElementsAre("nodes[0].url: a host is required \"http://\""));
  EXPECT_THAT(problems_of("nodes: ['http://a:1/api']"),
              ElementsAre("nodes[0].url: a node URL has no path (got \"/api\")"));
  EXPECT_THAT(problems_of("nodes: [{name: x}]"), ElementsAre("nodes[0].url: is required"));
}

TEST(GatewayConfigValidation, NodeUrlDefaultsToPort80AndAcceptsATrailingSlash) {
  const GatewayConfig config = parse_gateway_config("nodes: ['http://gpu-1/', 'http://[::1]:9']");
  EXPECT_EQ(config.nodes[0].port, 80);
  EXPECT_FALSE(config.nodes[0].tls);
  EXPECT_EQ(config.nodes[0].name, "gpu-1:80");
  EXPECT_EQ(config.nodes[1].host, "::1");
  EXPECT_EQ(config.nodes[1].name, "[::1]:9");
}

TEST(GatewayConfigValidation, DuplicateNodeNamesIncludingDerivedOnes) {
  EXPECT_THAT(problems_of("nodes: [{name: a, url: 'http://h:1'}, {name: a, url: 'http://h:2'}]"),
              ElementsAre("nodes[1].name: duplicate node name \"a\" (also nodes[0])"));
  EXPECT_THAT(problems_of("nodes: ['http://h:1', {name: 'h:1', url: 'http://other:1'}]"),
              ElementsAre("nodes[1].name: duplicate node name \"h:1\" (also nodes[0])"));
}

TEST(GatewayConfigValidation, DuplicateNodeUrls) {
  EXPECT_THAT(problems_of("nodes: [{name: a, url: 'http://h:1'}, {name: b, url: 'http://H:1/'}]"),
              ElementsAre("nodes[1].url: duplicate node URL \"http://H:1/\" (also nodes[0])"));
}

TEST(GatewayConfigValidation, NonPositiveCountsAreRefused) {
  const auto problems = problems_of(R"(
routing: {virtual_nodes: 0, max_attempts: -1}
health: {unhealthy_threshold: 0, healthy_threshold: 0, interval_ms: 0}
limits: {max_header_bytes: 0, max_body_bytes: 0, max_connections: 0,
         max_idle_upstream_per_node: 0}
nodes: [{url: 'http://a:1', weight: 0}, {url: 'http://b:1', weight: -2}]
)");
  EXPECT_THAT(problems, Contains("routing.virtual_nodes: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("routing.max_attempts: must be > 0, got -1"));
  EXPECT_THAT(problems, Contains("health.unhealthy_threshold: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("health.healthy_threshold: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("health.interval_ms: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("limits.max_header_bytes: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("limits.max_body_bytes: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("limits.max_connections: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("limits.max_idle_upstream_per_node: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("nodes[0].weight: must be > 0, got 0"));
  EXPECT_THAT(problems, Contains("nodes[1].weight: must be > 0, got -2"));
}

TEST(GatewayConfigValidation, TheBodyBudgetHoldsAtLeastOneBody) {
  EXPECT_THAT(
      problems_of("limits: {max_body_bytes: 2048, max_buffered_body_bytes: 1024}\n"),
      ElementsAre(
          "limits.max_buffered_body_bytes: must be >= limits.max_body_bytes (2048), got 1024"));
  EXPECT_THAT(problems_of("limits: {max_buffered_body_bytes: 0}\n"),
              Contains("limits.max_buffered_body_bytes: must be > 0, got 0"));
  EXPECT_EQ(parse_gateway_config("limits: {max_buffered_body_bytes: 33554432}\n")
                .limits.max_buffered_body_bytes,
            33554432U);
}

TEST(GatewayConfigValidation, TimeoutBounds) {
  const auto problems = problems_of(
      "timeouts: {connect_ms: 0, first_byte_ms: 0, idle_ms: -1, total_ms: -2}\n"
      "shutdown: {drain_ms: -3}\n");
  EXPECT_THAT(problems, ElementsAre("timeouts.connect_ms: must be > 0, got 0",
                                    "timeouts.first_byte_ms: must be > 0, got 0",
                                    "timeouts.idle_ms: must be >= 0, got -1",
                                    "timeouts.total_ms: must be >= 0, got -2",
                                    "shutdown.drain_ms: must be >= 0, got -3"));
}

TEST(GatewayConfigValidation, BalanceFactorIsZeroOrAtLeastOne) {
  EXPECT_THAT(problems_of("routing: {balance_factor: 0.5}"),
              ElementsAre("routing.balance_factor: must be 0 (plain ring) or >= 1, got 0.5"));
  EXPECT_EQ(parse_gateway_config("routing: {balance_factor: 1}").routing.balance_factor, 1.0);
}

TEST(GatewayConfigValidation, SessionBalancingKeys) {
  const auto config = parse_gateway_config(
      "routing: {balance_by: requests, session_idle_ms: 60000, max_sessions: 500}");
  EXPECT_EQ(config.routing.balance_by, "requests");
  EXPECT_EQ(config.routing.session_idle, std::chrono::milliseconds{60'000});
  EXPECT_EQ(config.routing.max_sessions, 500U);
  EXPECT_THAT(problems_of("routing: {balance_by: tokens, session_idle_ms: 0, max_sessions: 0}"),
              ElementsAre("routing.session_idle_ms: must be > 0, got 0",
                          "routing.max_sessions: must be > 0, got 0",
                          "routing.balance_by: must be one of sessions, requests; got \"tokens\""));
}

TEST(GatewayConfigValidation, EnumerationsAndHeaderName) {
  const auto problems = problems_of(
      "log: {level: verbose, format: xml}\nrouting: {session_header: 'X Session'}\n"
      "listen: {address: localhost}\nhealth: {path: version}\n");
  EXPECT_THAT(problems, Contains("log.level: must be one of trace, debug, info, warn, error, off; "
                                 "got \"verbose\""));
  EXPECT_THAT(problems, Contains("log.format: must be one of text, json; got \"xml\""));
  EXPECT_THAT(problems,
              Contains("routing.session_header: \"X Session\" is not a valid HTTP header name"));
  EXPECT_THAT(problems,
              Contains("listen.address: expected an IPv4 or IPv6 address, got \"localhost\""));
  EXPECT_THAT(problems, Contains("health.path: must start with '/', got \"version\""));
}

TEST(GatewayConfigValidation, YamlSyntaxErrorGivesLineAndColumn) {
  const auto problems = problems_of("listen:\n  port: 1\n  address: [oops\n");
  ASSERT_THAT(problems, SizeIs(1));
  EXPECT_THAT(problems[0],
              ::testing::MatchesRegex("<config>:[0-9]+:[0-9]+: YAML syntax error: .*"));
}

TEST(GatewayConfigValidation, MissingConfigFileNamesIt) {
  const TempDir dir;
  const std::string missing = dir.path("absent.yaml");
  const auto problems = problems_of(ConfigSources{missing, {}, {}});
  ASSERT_THAT(problems, SizeIs(1));
  EXPECT_THAT(problems[0], HasSubstr(missing + ": cannot read the config file"));
}

TEST(GatewayConfigValidation, AllProblemsAreReportedTogether) {
  const auto problems =
      problems_of("listen: {port: x}\nworkers: -1\nnodes: ['ftp://a']\nlog: {level: loud}\n");
  EXPECT_THAT(problems, SizeIs(4));
}

TEST(GatewayConfigEnvironment, VariablesOverrideTheFile) {
  const TempDir dir;
  const std::string file = dir.write("g.yaml", "listen: {port: 1000}\nlog: {format: text}\n");
  const GatewayConfig config = load_gateway_config(
      {file,
       {{"LLMGW_LISTEN_PORT", "2000"},
        {"LLMGW_LOG_FORMAT", "json"},
        {"LLMGW_TIMEOUTS_IDLE_MS", "5"},
        {"LLMGW_LOG_ACCESS_LOG", "0"},
        {"LLMGW_ROUTING_BALANCE_FACTOR", ""},  // empty = unset
        {"LLMGW_CONFIG", "elsewhere"}},        // not a config key: someone else's variable
       {}});
  EXPECT_EQ(config.listen.port, 2000);
  EXPECT_EQ(config.log.format, "json");
  EXPECT_EQ(config.timeouts.idle.count(), 5);
  EXPECT_FALSE(config.log.access_log);
  EXPECT_EQ(config.routing.balance_factor, 1.25);
}

TEST(GatewayConfigEnvironment, ProblemsSayWhichVariable) {
  const auto problems = problems_of(ConfigSources{
      std::nullopt,
      {{"LLMGW_LISTEN_PORT", "abc"}, {"LLMGW_LISTEN_PROT", "1"}, {"LLMGW_NODES", "a=http://x:1,b"}},
      {}});
  EXPECT_THAT(problems,
              Contains("listen.port: expected an integer, got \"abc\" (from LLMGW_LISTEN_PORT)"));
  EXPECT_THAT(problems,
              Contains("LLMGW_LISTEN_PROT: unknown setting (did you mean LLMGW_LISTEN_PORT?)"));
  EXPECT_THAT(problems, Contains("nodes[1].url: not a valid URL \"b\"; expected http://host:port "
                                 "or https://host:port (from LLMGW_NODES)"));
}

TEST(GatewayConfigEnvironment, NodesShorthandWithAndWithoutNames) {
  const GatewayConfig config =
      load_gateway_config({std::nullopt, {{"LLMGW_NODES", "a=http://h1:1, http://h2:2"}}, {}});
  ASSERT_THAT(config.nodes, SizeIs(2));
  EXPECT_EQ(config.nodes[0].name, "a");
  EXPECT_EQ(config.nodes[0].url, "http://h1:1");
  EXPECT_EQ(config.nodes[1].name, "h2:2");
  EXPECT_EQ(config.nodes[1].port, 2);
}

TEST(GatewayConfigOverrides, FlagsBeatEnvironmentBeatFile) {
  const TempDir dir;
  const std::string file =
      dir.write("g.yaml", "listen: {port: 1000}\nworkers: 1\nlog: {level: warn}\n");
  const std::map<std::string, std::string> environment{{"LLMGW_LISTEN_PORT", "2000"},
                                                       {"LLMGW_WORKERS", "2"}};
  const GatewayConfig config = load_gateway_config({file, environment, {"listen.port=3000"}});
  EXPECT_EQ(config.listen.port, 3000);
  EXPECT_EQ(config.workers, 2U);
  EXPECT_EQ(config.log.level, "warn");
}

TEST(GatewayConfigOverrides, NodesListAndOneNodeField) {
  const GatewayConfig config = load_gateway_config(
      {std::nullopt,
       {{"LLMGW_NODES", "http://env:1"}},
       {"nodes=a=http://h1:1,b=http://h2:2", "nodes[1].weight=2.5", "nodes[2].url=http://h3:3"}});
  ASSERT_THAT(config.nodes, SizeIs(3));
  EXPECT_EQ(config.nodes[0].name, "a");
  EXPECT_EQ(config.nodes[1].weight, 2.5);
  EXPECT_EQ(config.nodes[2].name, "h3:3");
}

TEST(GatewayConfigOverrides, ProblemsSayTheyCameFromFlags) {
  const auto problems = problems_of(ConfigSources{
      std::nullopt,
      {},
      {"routing.virtual_nodes=0", "nodes[4].weight=2", "listen.prot=1", "oops", "shutdown=5"}});
  EXPECT_THAT(problems, Contains("routing.virtual_nodes: must be > 0, got 0 (from --set)"));
  EXPECT_THAT(problems, Contains("nodes[4].weight: no such node; there are 0 (an index equal to "
                                 "the count appends one) (from --set)"));
  EXPECT_THAT(problems,
              Contains("listen.prot: unknown key (did you mean listen.port?) (from --set)"));
  EXPECT_THAT(problems, Contains("--set #4: expected path=value"));
  EXPECT_THAT(problems, Contains("shutdown: is a section; set one of its keys, e.g. "
                                 "shutdown.drain_ms (from --set)"));
}

TEST(GatewayConfigAdmin, TokenAndTokenFileTogetherAreRefused) {
  const TempDir dir;
  const std::string token_file = dir.write("token", "from-file\n");
  EXPECT_THAT(problems_of("admin: {token: inline, token_file: '" + token_file + "'}"),
              ElementsAre("admin: token and token_file are both set; use only one"));
}

TEST(GatewayConfigAdmin, TokenFileFirstLineTrimmedRelativeToTheConfigFile) {
  const TempDir dir;
  dir.write("token", "  s3cret-token  \nsecond line\n");
  const std::string file = dir.write("g.yaml", "admin: {token_file: token}\n");
  EXPECT_EQ(load_gateway_config({file, {}, {}}).admin.token, "s3cret-token");
}

TEST(GatewayConfigAdmin, UnreadableTokenFileIsNamed) {
  const TempDir dir;
  const std::string missing = dir.path("no-such-token");
  const auto problems =
      problems_of(ConfigSources{std::nullopt, {{"LLMGW_ADMIN_TOKEN_FILE", missing}}, {}});
  ASSERT_THAT(problems, SizeIs(1));
  EXPECT_THAT(problems[0], HasSubstr("admin.token_file: cannot read \"" + missing + "\""));
  EXPECT_THAT(problems[0], HasSubstr("(from LLMGW_ADMIN_TOKEN_FILE)"));
}

TEST(GatewayConfigAdmin, AStatusPageBehindATokenNeedsAToken) {
  EXPECT_THAT(problems_of("status: {require_token: true}"),
              ElementsAre("status.require_token: needs admin.token or admin.token_file (the page "
                          "asks for it)"));
  EXPECT_TRUE(parse_gateway_config("status: {require_token: true}\nadmin: {token: t0k3n}")
                  .status.require_token);
  const TempDir dir;
  dir.write("token", "from-file\n");
  const std::string file =
      dir.write("g.yaml", "status: {require_token: true}\nadmin: {token_file: token}\n");
  EXPECT_EQ(load_gateway_config({file, {}, {}}).admin.token, "from-file");
}

TEST(GatewayConfigAdmin, TheAdminListenerIsAnAddressApartFromListen) {
  EXPECT_TRUE(parse_gateway_config("").admin.listen.address.empty());  // on listen by default
  const auto config = parse_gateway_config("admin: {listen: {address: 127.0.0.1, port: 9100}}");
  EXPECT_EQ(config.admin.listen.address, "127.0.0.1");
  EXPECT_EQ(config.admin.listen.port, 9100);
  EXPECT_EQ(parse_gateway_config("admin: {listen: {address: '::1'}}").admin.listen.port, 9001);
  EXPECT_THAT(problems_of("admin: {listen: {address: localhost}}"),
              ElementsAre("admin.listen.address: expected an IPv4 or IPv6 address, got "
                          "\"localhost\""));
  EXPECT_THAT(problems_of("listen: {port: 9001}\nadmin: {listen: {address: 127.0.0.1}}"),
              ElementsAre("admin.listen: must differ from listen (0.0.0.0:9001)"));
  EXPECT_THAT(problems_of("admin: {listen: {adress: 127.0.0.1}}"),
              ElementsAre(HasSubstr("admin.listen.adress: unknown key (did you mean "
                                    "admin.listen.address?)")));
}

TEST(GatewayConfigAdmin, SecretsNeverAppearInMessages) {
  const std::string secret = "hunter2 with spaces";
  const TempDir dir;
  const std::string token_file = dir.write("token", secret + "\n");
  const std::vector<ConfigSources> cases{
      {std::nullopt, {{"LLMGW_ADMIN_TOKEN", secret}}, {}},
      {std::nullopt, {}, {"admin.token=" + secret}},
      {std::nullopt, {}, {"admin.token:" + secret}},
      {std::nullopt, {}, {"admin.tokn=" + secret}},
      {std::nullopt, {{"LLMGW_ADMIN_TOKEN_FILE", token_file}}, {}},
  };
  for (const auto& sources : cases) {
    const auto problems = problems_of(sources);
    ASSERT_THAT(problems, Not(::testing::IsEmpty()));
    for (const auto& line : problems) {
      EXPECT_THAT(line, Not(HasSubstr("hunter2")));
    }
  }
  EXPECT_THAT(problems_of("admin: {token: '" + secret + "'}"),
              ElementsAre("admin.token: must be visible ASCII without spaces"));
}

TEST(GatewayConfigApi, ValidateChecksNodesChangedAtRunTime) {
  GatewayConfig config = parse_gateway_config("");
  NodeConfig extra;
  extra.url = "http://127.0.0.1:11434";
  resolve_node(extra, "nodes[1]");
  EXPECT_EQ(extra.name, "127.0.0.1:11434");
  config.nodes.push_back(extra);
  try {
    validate(config);
    FAIL() << "a duplicate node was accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("nodes[1].url: duplicate node URL"));
  }
  NodeConfig bad;
  bad.url = "ftp://x";
  EXPECT_THROW(resolve_node(bad, "nodes[2]"), ConfigError);
}

TEST(GatewayConfigApi, DescribeConfigKeysListsEveryKeyWithItsVariableAndDefault) {
  const std::string table = describe_config_keys();
  for (const auto& key : config_keys()) {
    EXPECT_THAT(table, HasSubstr(key.path));
  }
  EXPECT_THAT(table, HasSubstr("LLMGW_LISTEN_PORT"));
  EXPECT_THAT(table, HasSubstr("LLMGW_NODES"));
  EXPECT_THAT(table, HasSubstr("\"X-Session-ID\""));
  EXPECT_EQ(env_var_name("routing.balance_factor"), "LLMGW_ROUTING_BALANCE_FACTOR");
}

TEST(GatewayConfigAdmission, ParsesCapsClassesAndWarmWaitFromEverySource) {
  const GatewayConfig defaults = parse_gateway_config("");
  EXPECT_EQ(defaults.nodes[0].max_in_flight, 4U);
  EXPECT_EQ(defaults.nodes[0].max_in_flight_per_model, 0U);
  EXPECT_EQ(defaults.admission.priority_header, "X-Request-Priority");
  EXPECT_EQ(defaults.admission.warm_wait, "estimate");
  const GatewayConfig config = parse_gateway_config(
      "nodes:\n  - {url: 'http://a:1', max_in_flight: 8, max_in_flight_per_model: 2}\n"
      "admission:\n  warm_wait: never\n  batch_aging_ms: 500\n  interactive_reserve: 2\n"
      "  interactive_reserve_idle_ms: 900\n"
      "  interactive:\n    max_queue: 3\n    max_wait_ms: 700\n"
      "  batch:\n    max_queue: 9\n");
  EXPECT_EQ(config.nodes[0].max_in_flight, 8U);
  EXPECT_EQ(config.nodes[0].max_in_flight_per_model, 2U);
  EXPECT_EQ(config.admission.warm_wait, "never");
  EXPECT_EQ(config.admission.batch_aging.count(), 500);
  EXPECT_EQ(defaults.admission.interactive_reserve, 1U);
  EXPECT_EQ(config.admission.interactive_reserve, 2U);
  EXPECT_EQ(config.admission.interactive_reserve_idle.count(), 900);
  EXPECT_EQ(config.admission.interactive.max_queue, 3U);
  EXPECT_EQ(config.admission.interactive.max_wait.count(), 700);
  EXPECT_EQ(config.admission.batch.max_queue, 9U);
  EXPECT_EQ(config.admission.batch.max_wait, defaults.admission.batch.max_wait);
  const GatewayConfig overridden = load_gateway_config(
      {std::nullopt,
       {{"LLMGW_ADMISSION_BATCH_MAX_WAIT_MS", "1234"}},
       {"nodes=http://a:1", "nodes[0].max_in_flight=1", "admission.priority_header=X-Class"}});
  EXPECT_EQ(overridden.admission.batch.max_wait.count(), 1234);
  EXPECT_EQ(overridden.nodes[0].max_in_flight, 1U);
  EXPECT_EQ(overridden.admission.priority_header, "X-Class");
}

TEST(GatewayConfigAdmission, BadValuesNameTheirKeyPath) {
  EXPECT_THAT(problems_of("admission:\n  warm_wait: sometimes\n"),
              Contains(HasSubstr("admission.warm_wait")));
  EXPECT_THAT(problems_of("admission:\n  priority_header: 'bad header'\n"),
              Contains(HasSubstr("admission.priority_header")));
  EXPECT_THAT(problems_of("admission:\n  batch:\n    max_queue: -1\n"),
              Contains(HasSubstr("admission.batch.max_queue")));
  EXPECT_THAT(
      problems_of(
          "nodes:\n  - {url: 'http://a:1', max_in_flight: 2, max_in_flight_per_model: 3}\n"),
      Contains("nodes[0].max_in_flight_per_model: must be <= max_in_flight (2), got 3"));
  EXPECT_THAT(problems_of("admission:\n  interactve:\n    max_queue: 1\n"),
              Contains(HasSubstr("admission.interactve: unknown key")));
}

}  // namespace
}  // namespace llmgw::config
