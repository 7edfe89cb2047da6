#pragma once

// The whole message of a gateway configuration that must be refused (config tests).

#include <string>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::testing {

// load_gateway_config's ConfigError message for `sources`; fails the test (and returns "") when
// the configuration is accepted.
std::string config_refusal(const config::ConfigSources& sources);

// parse_gateway_config's ConfigError message for `yaml`; fails the test (and returns "") when
// the text is accepted.
std::string yaml_refusal(const std::string& yaml);

}  // namespace llmgw::testing
