#include "support/config_refusal.hpp"

#include <gtest/gtest.h>

namespace llmgw::testing {

std::string config_refusal(const config::ConfigSources& sources) {
  try {
    config::load_gateway_config(sources);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the configuration was accepted";
  return {};
}

std::string yaml_refusal(const std::string& yaml) {
  try {
    config::parse_gateway_config(yaml);
  } catch (const config::ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "the configuration was accepted:\n" << yaml;
  return {};
}

}  // namespace llmgw::testing
