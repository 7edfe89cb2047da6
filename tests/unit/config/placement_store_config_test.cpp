// routing.placement_store and its companions: the URL's forms, what is refused with which key
// path, the password from the URL, a variable or a file, and never a password in a message.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "llmgw/config/gateway_config.hpp"
#include "support/config_refusal.hpp"
#include "support/wait.hpp"

namespace llmgw::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

ConfigSources with_env(std::map<std::string, std::string> environment) {
  return ConfigSources{std::nullopt, std::move(environment), {}};
}

TEST(PlacementStoreUrl, ParsesHostPortDatabaseAndCredentials) {
  std::string problem;
  const auto full = parse_store_url("redis://app:p%40ss@redis.internal:6380/3", problem);
  ASSERT_TRUE(full) << problem;
  EXPECT_EQ(full->host, "redis.internal");
  EXPECT_EQ(full->port, 6380);
  EXPECT_EQ(full->database, 3U);
  EXPECT_EQ(full->user, "app");
  EXPECT_EQ(full->password, "p@ss");

  const auto plain = parse_store_url("redis://127.0.0.1", problem);
  ASSERT_TRUE(plain) << problem;
  EXPECT_EQ(plain->port, 6379);
  EXPECT_EQ(plain->database, 0U);
  EXPECT_TRUE(plain->user.empty());
  EXPECT_TRUE(plain->password.empty());

  const auto password_only = parse_store_url("redis://:secret@[::1]:7000/0", problem);
  ASSERT_TRUE(password_only) << problem;
  EXPECT_EQ(password_only->host, "::1");
  EXPECT_TRUE(password_only->user.empty());
  EXPECT_EQ(password_only->password, "secret");
}

TEST(PlacementStoreUrl, RefusesWhatItCannotUseWithoutEchoingThePassword) {
  std::string problem;
  EXPECT_FALSE(parse_store_url("rediss://u:topsecret@host:6380/0", problem));
  EXPECT_THAT(problem, HasSubstr("TLS"));
  EXPECT_THAT(problem, Not(HasSubstr("topsecret")));

  EXPECT_FALSE(parse_store_url("http://host:6379", problem));
  EXPECT_THAT(problem, HasSubstr("scheme must be redis"));

  EXPECT_FALSE(parse_store_url("redis://u:topsecret@host:6379/zero", problem));
  EXPECT_THAT(problem, HasSubstr("database number"));
  EXPECT_THAT(problem, Not(HasSubstr("topsecret")));

  EXPECT_FALSE(parse_store_url("redis://u:topsecret@host:99999", problem));
  EXPECT_THAT(problem, HasSubstr("out of range"));

  EXPECT_FALSE(parse_store_url("redis://u:topsecret@host:1/0?x=1", problem));
  EXPECT_THAT(problem, Not(HasSubstr("topsecret")));
}

TEST(PlacementStoreConfig, DefaultsToNoStoreAndATwentyMillisecondTimeout) {
  const auto config = parse_gateway_config("");
  EXPECT_TRUE(config.routing.placement_store.empty());
  EXPECT_EQ(config.routing.placement_store_timeout, std::chrono::milliseconds{20});
}

TEST(PlacementStoreConfig, ErrorsNameTheKeyAndHideThePassword) {
  const std::string message = llmgw::testing::config_refusal(
      with_env({{"LLMGW_ROUTING_PLACEMENT_STORE", "rediss://u:topsecret@host:6380/0"}}));
  EXPECT_THAT(message, HasSubstr("routing.placement_store: rediss:// (TLS) is not supported"));
  EXPECT_THAT(message, HasSubstr("(from LLMGW_ROUTING_PLACEMENT_STORE)"));
  EXPECT_THAT(message, Not(HasSubstr("topsecret")));
}

TEST(PlacementStoreConfig, NeedsPlacementsToShare) {
  EXPECT_THAT(llmgw::testing::config_refusal(
                  with_env({{"LLMGW_ROUTING_PLACEMENT_STORE", "redis://127.0.0.1:6379"},
                            {"LLMGW_ROUTING_BALANCE_BY", "requests"}})),
              HasSubstr("routing.placement_store: needs routing.balance_by: sessions"));
  EXPECT_THAT(llmgw::testing::config_refusal(
                  with_env({{"LLMGW_ROUTING_PLACEMENT_STORE", "redis://127.0.0.1:6379"},
                            {"LLMGW_ROUTING_BALANCE_FACTOR", "0"}})),
              HasSubstr("routing.placement_store: needs routing.balance_by: sessions"));
}

TEST(PlacementStoreConfig, PasswordFromAVariableOrAFileButOnlyOnce) {
  const auto from_env =
      load_gateway_config(with_env({{"LLMGW_ROUTING_PLACEMENT_STORE", "redis://127.0.0.1:6379/1"},
                                    {"LLMGW_ROUTING_PLACEMENT_STORE_PASSWORD", "from-env"}}));
  EXPECT_EQ(from_env.routing.placement_store_password, "from-env");

  const std::string dir = llmgw::testing::make_temp_dir("llmgw-store-config");
  const std::string file = dir + "/redis-password";
  std::ofstream{file} << "  from-file  \n";
  const auto from_file =
      load_gateway_config(with_env({{"LLMGW_ROUTING_PLACEMENT_STORE", "redis://127.0.0.1:6379/1"},
                                    {"LLMGW_ROUTING_PLACEMENT_STORE_PASSWORD_FILE", file}}));
  EXPECT_EQ(from_file.routing.placement_store_password, "from-file");

  const std::string both = llmgw::testing::config_refusal(
      with_env({{"LLMGW_ROUTING_PLACEMENT_STORE", "redis://u:in-url@127.0.0.1:6379"},
                {"LLMGW_ROUTING_PLACEMENT_STORE_PASSWORD_FILE", file}}));
  EXPECT_THAT(both, HasSubstr("routing.placement_store: the URL holds a password"));
  EXPECT_THAT(both, Not(HasSubstr("in-url")));
  EXPECT_THAT(both, Not(HasSubstr("from-file")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace llmgw::config
