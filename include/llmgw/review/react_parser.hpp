#pragma once

// The text form of ReAct, for providers without native tool calling. The model is asked to answer
//
//   Thought: <reasoning>
//   Action: <tool name>
//   Action Input: <JSON object>
//
// or `Final Answer: <text>` when it is done. Real models wander from this: they drop the Thought,
// wrap the JSON in ```json fences, bold the labels, write prose after the JSON, put literal
// newlines inside JSON strings, invent an "Observation:" of their own, or answer with a bare JSON
// object. parse_react accepts all of these; when it cannot find an action it says why, in words
// meant to be sent back to the model as the next observation.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/llm/chat_client.hpp"

namespace llmgw::review {

struct ReactStep {
  enum class Kind { action, final_answer, invalid };
  Kind kind = Kind::invalid;
  std::string thought;       // may be empty
  std::string action;        // kind == action: the tool's name
  nlohmann::json input;      // kind == action: the arguments (an object; {} when none were given)
  std::string final_answer;  // kind == final_answer
  std::string error;         // kind == invalid: what was wrong, addressed to the model
};

// Parses one model turn. Never throws. The first Action or Final Answer in the text wins; anything
// after the action's input (a made-up Observation, further steps) is ignored.
ReactStep parse_react(std::string_view model_output);

// The instructions that teach a model the text format for `tools` (names, descriptions, JSON
// Schemas of their arguments), for the system prompt.
std::string react_instructions(const std::vector<llm::ToolSpec>& tools);

// The first balanced JSON object in `text` (strings and escapes respected), with raw control
// characters inside strings escaped so that it parses; nullopt when there is none.
std::optional<nlohmann::json> extract_json_object(std::string_view text);

}  // namespace llmgw::review
