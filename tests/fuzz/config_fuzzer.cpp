// Fuzz target: YAML text -> config::parse_gateway_config. The contract under test: any text either
// yields a validated configuration or throws ConfigError (the CLI turns that into exit code 2);
// no other exception, crash, leak or undefined behaviour.

#include <cstddef>
#include <cstdint>
#include <string>

#include "llmgw/config/gateway_config.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const auto config = llmgw::config::parse_gateway_config(text);
    // A configuration that passed validation has every node resolved.
    for (const auto& node : config.nodes) {
      if (node.host.empty() || node.name.empty()) {
        __builtin_trap();
      }
    }
  } catch (const llmgw::config::ConfigError&) {
    // Refused with a message: the expected outcome for most inputs.
  }
  return 0;
}
