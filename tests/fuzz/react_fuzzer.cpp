// Fuzz target: one model turn -> review::parse_react (documented never to throw) and the JSON
// object extractor it uses. The text comes from a model, so it is untrusted.

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "llmgw/review/react_parser.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using Kind = llmgw::review::ReactStep::Kind;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const auto step = llmgw::review::parse_react(text);
  // What the agent relies on: an action has a name and object arguments; an invalid turn says
  // why (the text goes back to the model).
  if (step.kind == Kind::action && (step.action.empty() || !step.input.is_object())) {
    __builtin_trap();
  }
  if (step.kind == Kind::invalid && step.error.empty()) {
    __builtin_trap();
  }
  if (const auto object = llmgw::review::extract_json_object(text);
      object && !object->is_object()) {
    __builtin_trap();
  }
  return 0;
}
