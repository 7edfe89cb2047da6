// The pure parts of the fleet endpoints: merging listings, the fleet's version, X-Gateway-Nodes,
// and how a node's pull record is relayed in the merged stream.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "server/fleet_endpoints.hpp"

namespace llmgw::server::detail {
namespace {

using nlohmann::json;

json tag(std::string_view name, std::string_view digest) {
  return json{{"name", name}, {"model", name}, {"digest", digest}, {"size", 1}};
}

TEST(FleetMerge, TagsKeepOneEntryPerNameAndDigestInNodeOrder) {
  const std::vector<NodeListing> listings{
      {"a", json{{"models", json::array({tag("llama3.2", "d1"), tag("phi3", "d2")})}}},
      {"b", json{{"models", json::array({tag("llama3.2", "d1"), tag("llama3.2", "d9")})}}},
      {"c", json{{"models", "not an array"}}}};
  const auto merged = merge_tags(listings);
  ASSERT_EQ(merged["models"].size(), 3U);
  EXPECT_EQ(merged["models"][0], tag("llama3.2", "d1"));
  EXPECT_EQ(merged["models"][1], tag("phi3", "d2"));
  EXPECT_EQ(merged["models"][2], tag("llama3.2", "d9"));  // same name, another digest: both
}

TEST(FleetMerge, OpenAiModelsKeepOneEntryPerId) {
  const auto model = [](std::string_view id) {
    return json{{"id", id}, {"object", "model"}, {"created", 1}, {"owned_by", "library"}};
  };
  const auto merged = merge_openai_models(
      {{"a", json{{"object", "list"}, {"data", json::array({model("x"), model("y")})}}},
       {"b", json{{"object", "list"}, {"data", json::array({model("y"), model("z")})}}}});
  EXPECT_EQ(merged, (json{{"object", "list"},
                          {"data", json::array({model("x"), model("y"), model("z")})}}));
}

TEST(FleetMerge, PsKeepsEveryEntryAndSaysItsNode) {
  const auto merged = merge_ps({{"a", json{{"models", json::array({tag("llama3.2", "d1")})}}},
                                {"b", json{{"models", json::array({tag("llama3.2", "d1")})}}}});
  ASSERT_EQ(merged["models"].size(), 2U);
  EXPECT_EQ(merged["models"][0]["node"], "a");
  EXPECT_EQ(merged["models"][1]["node"], "b");
  EXPECT_EQ(merged["models"][1]["name"], "llama3.2");
}

TEST(FleetMerge, VersionsCompareNumericallyAndPreReleasesComeFirst) {
  EXPECT_LT(compare_versions("0.5.7", "0.6.0"), 0);
  EXPECT_LT(compare_versions("0.9.9", "0.10.1"), 0);
  EXPECT_GT(compare_versions("1.0", "0.99.99"), 0);
  EXPECT_EQ(compare_versions("v0.6.0", "0.6.0"), 0);
  EXPECT_EQ(compare_versions("0.6", "0.6.0"), 0);
  EXPECT_LT(compare_versions("0.6.0-rc1", "0.6.0"), 0);
  EXPECT_LT(compare_versions("0.6.0-rc1", "0.6.0-rc2"), 0);
  EXPECT_GT(compare_versions("0.6.1-rc1", "0.6.0"), 0);
}

TEST(FleetMerge, NodeSelectionTrimsDropsDuplicatesAndNamesUnknownNodes) {
  const std::vector<std::string> known{"a", "b", "c"};
  const auto picked = parse_node_selection(" c ,a,c,, ", known);
  EXPECT_TRUE(picked.error.empty()) << picked.error;
  EXPECT_EQ(picked.names, (std::vector<std::string>{"c", "a"}));
  const auto unknown = parse_node_selection("a, x, y", known);
  EXPECT_EQ(unknown.error, "X-Gateway-Nodes: unknown nodes x, y (the nodes are a, b, c)");
  EXPECT_FALSE(parse_node_selection(" , ", known).error.empty());
}

TEST(FleetMerge, PullRecordsGainTheirNodeAndANodesSuccessIsNotTheFleets) {
  const auto progress =
      relay_pull_record(R"({"status":"pulling abc","total":10,"completed":5})", "a");
  EXPECT_TRUE(progress.error.empty());
  EXPECT_FALSE(progress.success);
  EXPECT_EQ(json::parse(progress.line),
            (json{{"status", "pulling abc"}, {"total", 10}, {"completed", 5}, {"node", "a"}}));
  EXPECT_EQ(progress.line.back(), '\n');

  const auto success = relay_pull_record(R"({"status":"success"})", "a");
  EXPECT_TRUE(success.success);
  EXPECT_EQ(json::parse(success.line), (json{{"status", "node a: success"}, {"node", "a"}}));

  const auto error =
      relay_pull_record(R"({"error":"pull model manifest: file does not exist"})", "b");
  EXPECT_EQ(error.error, "pull model manifest: file does not exist");
  EXPECT_TRUE(error.line.empty());
  EXPECT_FALSE(relay_pull_record("not json", "b").error.empty());
}

TEST(FleetMerge, FailureStatusIsTheNodesWhenTheyAgree) {
  NodeAnswer a{"a", 500, "{}", {}, false};
  NodeAnswer b{"b", 500, "{}", {}, false};
  NodeAnswer c{"c", 404, "{}", {}, false};
  NodeAnswer down{"d", 0, {}, "could not connect", false};
  NodeAnswer slow{"e", 0, {}, "no answer in time", true};
  EXPECT_EQ(failure_status({&a, &b}), 500);
  EXPECT_EQ(failure_status({&a, &c}), 502);
  EXPECT_EQ(failure_status({&a, &down}), 502);
  EXPECT_EQ(failure_status({&slow}), 504);
}

}  // namespace
}  // namespace llmgw::server::detail
