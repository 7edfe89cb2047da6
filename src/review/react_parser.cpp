#include "llmgw/review/react_parser.hpp"

#include <algorithm>
#include <cctype>
#include <optional>
#include <variant>

namespace llmgw::review {
namespace {

bool is_space(char c) {
  return std::isspace(static_cast<unsigned char>(c)) != 0;
}

std::string_view trim_space(std::string_view s) {
  while (!s.empty() && is_space(s.front())) {
    s.remove_prefix(1);
  }
  while (!s.empty() && is_space(s.back())) {
    s.remove_suffix(1);
  }
  return s;
}

// Removes a ``` fence (with an optional language tag) around `s`, and stray fence lines at its
// ends.
std::string_view strip_fences(std::string_view s) {
  s = trim_space(s);
  if (s.starts_with("```")) {
    const auto eol = s.find('\n');
    s = eol == std::string_view::npos ? std::string_view{} : s.substr(eol + 1);
  }
  s = trim_space(s);
  if (s.ends_with("```")) {
    s.remove_suffix(3);
  }
  return trim_space(s);
}

enum class Label { thought, action, action_input, final_answer, observation };

struct LabelHit {
  Label label;
  std::size_t line_begin;   // offset of the line holding the label
  std::size_t value_begin;  // offset just after the colon (and any markdown emphasis)
};

// Recognises "Thought:", "**Action:**", "## Action Input :", "Final_Answer:", "- Observation:" at
// the start of a line. Returns the label and the offset of its value within `line`.
std::optional<std::pair<Label, std::size_t>> match_label(std::string_view line) {
  std::size_t i = 0;
  while (i < line.size() && (is_space(line[i]) || line[i] == '*' || line[i] == '#' ||
                             line[i] == '>' || line[i] == '-' || line[i] == '_')) {
    ++i;
  }
  std::string word;
  while (i < line.size() && word.size() < 16 &&
         (std::isalpha(static_cast<unsigned char>(line[i])) != 0 || line[i] == ' ' ||
          line[i] == '_')) {
    if (line[i] != ' ' && line[i] != '_') {
      word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(line[i]))));
    }
    ++i;
  }
  while (i < line.size() && (line[i] == '*' || line[i] == '_' || line[i] == ' ')) {
    ++i;
  }
  if (i >= line.size() || line[i] != ':') {
    return std::nullopt;
  }
  ++i;
  while (i < line.size() && (line[i] == '*' || line[i] == '_')) {
    ++i;
  }
  if (word == "thought" || word == "thinking" || word == "reasoning") {
    return std::pair{Label::thought, i};
  }
  if (word == "action") {
    return std::pair{Label::action, i};
  }
  if (word == "actioninput" || word == "actionargs" || word == "actionarguments") {
    return std::pair{Label::action_input, i};
  }
  if (word == "finalanswer") {
    return std::pair{Label::final_answer, i};
  }
  if (word == "observation") {
    return std::pair{Label::observation, i};
  }
  return std::nullopt;
}

std::vector<LabelHit> find_labels(std::string_view text) {
  std::vector<LabelHit> hits;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = text.size();
    }
    if (const auto match = match_label(text.substr(pos, eol - pos))) {
      hits.push_back({match->first, pos, pos + match->second});
    }
    pos = eol + 1;
  }
  return hits;
}

// A JSON object found in text, or why none could be read.
using JsonOrError = std::variant<nlohmann::json, std::string>;

// Scans the balanced object that starts at text[start] == '{'. Copies it while escaping raw
// control characters inside strings (models put real newlines in comment bodies) and dropping
// trailing commas before '}' or ']'.
JsonOrError scan_object(std::string_view text, std::size_t start) {
  std::string out;
  int depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (std::size_t i = start; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (escaped) {
        escaped = false;
        out.push_back(c);
      } else if (c == '\\') {
        escaped = true;
        out.push_back(c);
      } else if (c == '"') {
        in_string = false;
        out.push_back(c);
      } else if (c == '\n') {
        out += "\\n";
      } else if (c == '\r') {
        out += "\\r";
      } else if (c == '\t') {
        out += "\\t";
      } else if (static_cast<unsigned char>(c) < 0x20) {
        out += ' ';
      } else {
        out.push_back(c);
      }
      continue;
    }
    if (c == ',') {
      auto next = i + 1;
      while (next < text.size() && is_space(text[next])) {
        ++next;
      }
      if (next < text.size() && (text[next] == '}' || text[next] == ']')) {
        continue;
      }
    }
    out.push_back(c);
    if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        auto value = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false,
                                           /*ignore_comments=*/true);
        if (value.is_discarded()) {
          return std::string{"the JSON could not be parsed"};
        }
        return value;
      }
    }
  }
  return std::string{"the JSON object is incomplete (no closing brace)"};
}

// The value text of hits[index]: up to the next label's line (or the end).
std::string_view label_value(std::string_view text, const std::vector<LabelHit>& hits,
                             std::size_t index) {
  const auto begin = hits[index].value_begin;
  const auto end = index + 1 < hits.size() ? hits[index + 1].line_begin : text.size();
  return text.substr(begin, end > begin ? end - begin : 0);
}

// A tool name from "list_files", "`get_file_diff`", "\"read_file\"", "read_file(...)",
// "[search_code]"; empty when there is none.
std::string tool_name_from(std::string_view line) {
  line = trim_space(line);
  while (!line.empty() && (line.front() == '`' || line.front() == '"' || line.front() == '\'' ||
                           line.front() == '[' || line.front() == '*')) {
    line.remove_prefix(1);
  }
  std::string name;
  for (const char c : line) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-' || c == '.') {
      name.push_back(c);
    } else {
      break;
    }
  }
  while (!name.empty() && name.back() == '.') {
    name.pop_back();
  }
  return name;
}

ReactStep invalid(std::string error, std::string thought = {}) {
  ReactStep step;
  step.kind = ReactStep::Kind::invalid;
  step.error = std::move(error);
  step.thought = std::move(thought);
  return step;
}

constexpr std::string_view kFormatReminder =
    "Answer with 'Thought: ...' then 'Action: <tool name>' and 'Action Input: <JSON object>', or "
    "with 'Final Answer: ...' when you are done.";

// A bare JSON answer: {"action": "x", "action_input": {...}}, {"name": "x", "arguments": {...}},
// {"tool": "x", "parameters": {...}} or {"final_answer": "..."}.
std::optional<ReactStep> from_bare_json(const nlohmann::json& object) {
  if (!object.is_object()) {
    return std::nullopt;
  }
  for (const char* key : {"final_answer", "Final Answer", "answer"}) {
    if (const auto it = object.find(key); it != object.end() && it->is_string()) {
      ReactStep step;
      step.kind = ReactStep::Kind::final_answer;
      step.final_answer = it->get<std::string>();
      return step;
    }
  }
  std::string name;
  for (const char* key : {"action", "name", "tool", "function"}) {
    if (const auto it = object.find(key); it != object.end() && it->is_string()) {
      name = it->get<std::string>();
      break;
    }
  }
  if (name.empty()) {
    return std::nullopt;
  }
  ReactStep step;
  step.kind = ReactStep::Kind::action;
  step.action = name;
  step.input = nlohmann::json::object();
  for (const char* key : {"action_input", "arguments", "parameters", "args", "input"}) {
    if (const auto it = object.find(key); it != object.end()) {
      if (it->is_string()) {
        // OpenAI-style arguments: a JSON object encoded as a string.
        auto parsed = nlohmann::json::parse(it->get<std::string>(), nullptr, false);
        if (parsed.is_object()) {
          step.input = std::move(parsed);
          break;
        }
      }
      if (!it->is_object()) {
        return invalid("Action Input for '" + name + "' must be a JSON object.");
      }
      step.input = *it;
      break;
    }
  }
  if (const auto it = object.find("thought"); it != object.end() && it->is_string()) {
    step.thought = it->get<std::string>();
  }
  return step;
}

}  // namespace

std::optional<nlohmann::json> extract_json_object(std::string_view text) {
  for (auto brace = text.find('{'); brace != std::string_view::npos;
       brace = text.find('{', brace + 1)) {
    if (auto result = scan_object(text, brace); std::holds_alternative<nlohmann::json>(result)) {
      return std::get<nlohmann::json>(std::move(result));
    }
  }
  return std::nullopt;
}

namespace {

// The reasoning: the last Thought before the decision, else whatever prose came before any label.
std::string thought_before(std::string_view text, const std::vector<LabelHit>& hits,
                           std::size_t decisive_index) {
  std::string thought;
  for (std::size_t i = 0; i < decisive_index; ++i) {
    if (hits[i].label == Label::thought) {
      thought = std::string{trim_space(label_value(text, hits, i))};
    }
  }
  if (thought.empty()) {
    const auto first = hits.empty() ? text.size() : hits.front().line_begin;
    thought = std::string{strip_fences(text.substr(0, first))};
  }
  return thought;
}

// No Action or Final Answer label: a bare JSON answer, or an error that reminds the format.
ReactStep without_labels(std::string_view text) {
  if (trim_space(text).empty()) {
    return invalid(std::string{"Your answer was empty. "} + std::string{kFormatReminder});
  }
  if (const auto object = extract_json_object(text)) {
    if (auto step = from_bare_json(*object)) {
      return std::move(*step);
    }
  }
  return invalid(std::string{"No 'Action:' or 'Final Answer:' line was found. "} +
                     std::string{kFormatReminder},
                 std::string{trim_space(text)});
}

// Action: the tool's name is on the label's line; "Action: read_file Action Input: {...}" and
// "Action: read_file({...})" carry the input on the same line.
ReactStep parse_action(std::string_view text, const std::vector<LabelHit>& hits,
                       std::size_t decisive_index, std::string thought) {
  const auto* decisive = &hits[decisive_index];
  const auto value_begin = decisive->value_begin;
  auto eol = text.find('\n', value_begin);
  if (eol == std::string_view::npos) {
    eol = text.size();
  }
  std::string_view action_line = text.substr(value_begin, eol - value_begin);
  const std::size_t next_label =
      decisive_index + 1 < hits.size() ? hits[decisive_index + 1].line_begin : text.size();
  std::optional<std::size_t> input_from;  // where the input's JSON should start
  std::size_t input_region_end = next_label;
  bool explicit_input = true;  // false: we only guess that JSON under the action is its input
  if (const auto same_line = action_line.find("Input:"); same_line != std::string_view::npos) {
    input_from = value_begin + same_line + 6;
    action_line = action_line.substr(0, same_line);
  }
  const std::string name = tool_name_from(action_line);
  if (name.empty()) {
    return invalid("'Action:' must name one tool. " + std::string{kFormatReminder}, thought);
  }
  const auto after_name = action_line.find(name) + name.size();
  if (!input_from && after_name < action_line.size() && action_line[after_name] == '(') {
    input_from = value_begin + after_name;
  }
  // An explicit "Action Input:" label after the action and before the next action/answer.
  for (std::size_t i = decisive_index + 1; i < hits.size() && !input_from; ++i) {
    if (hits[i].label == Label::action || hits[i].label == Label::final_answer) {
      break;
    }
    if (hits[i].label == Label::action_input) {
      input_from = hits[i].value_begin;
      input_region_end = i + 1 < hits.size() ? hits[i + 1].line_begin : text.size();
    }
  }
  if (!input_from) {
    input_from = std::min(eol + 1, text.size());
    explicit_input = false;
  }

  ReactStep step;
  step.kind = ReactStep::Kind::action;
  step.thought = std::move(thought);
  step.action = name;
  step.input = nlohmann::json::object();

  const auto brace = text.find('{', *input_from);
  if (brace == std::string_view::npos || brace >= input_region_end) {
    const auto given = strip_fences(text.substr(*input_from, input_region_end - *input_from));
    const bool nothing_given =
        given.empty() || given == "()" || given == "none" || given == "None" || given == "null";
    if (nothing_given || !explicit_input) {
      return step;  // a tool without arguments (prose under a bare action is not an input)
    }
    return invalid("Action Input for '" + name + "' must be a JSON object, for example " +
                       R"({"path": "src/main.cpp"}.)",
                   step.thought);
  }
  // Only fences, a language tag or a parenthesis may stand between the label and the JSON.
  if (explicit_input && strip_fences(text.substr(*input_from, brace - *input_from)).size() > 12) {
    return invalid("Action Input for '" + name + "' must be a JSON object, not prose.",
                   step.thought);
  }
  auto parsed = scan_object(text, brace);
  if (auto* error = std::get_if<std::string>(&parsed)) {
    return invalid("Action Input for '" + name + "' is not valid JSON: " + *error + ". " +
                       "Send one JSON object with double-quoted keys and strings.",
                   step.thought);
  }
  step.input = std::get<nlohmann::json>(std::move(parsed));
  return step;
}

}  // namespace

ReactStep parse_react(std::string_view model_output) {
  const std::string_view text = model_output;
  const auto hits = find_labels(text);
  const auto decisive = std::find_if(hits.begin(), hits.end(), [](const LabelHit& hit) {
    return hit.label == Label::action || hit.label == Label::final_answer;
  });
  if (decisive == hits.end()) {
    return without_labels(text);
  }
  const auto decisive_index = static_cast<std::size_t>(decisive - hits.begin());
  std::string thought = thought_before(text, hits, decisive_index);
  if (decisive->label == Label::final_answer) {
    ReactStep step;
    step.kind = ReactStep::Kind::final_answer;
    step.thought = std::move(thought);
    step.final_answer = std::string{strip_fences(label_value(text, hits, decisive_index))};
    return step;
  }
  return parse_action(text, hits, decisive_index, std::move(thought));
}

std::string react_instructions(const std::vector<llm::ToolSpec>& tools) {
  std::string names;
  std::string listing;
  for (const auto& tool : tools) {
    names += names.empty() ? "" : ", ";
    names += tool.name;
    listing += "- " + tool.name + ": " + tool.description +
               "\n  Arguments (JSON Schema): " + tool.parameters.dump() + "\n";
  }
  return "You can use these tools:\n" + listing +
         "\nUse this format, exactly one action per answer:\n"
         "Thought: what you will do next and why\n"
         "Action: the tool to use, one of [" +
         names +
         "]\n"
         "Action Input: the arguments as one JSON object\n"
         "Then stop. The tool's result comes back to you as 'Observation: ...'.\n"
         "When you have finished, answer instead:\n"
         "Thought: why you are done\n"
         "Final Answer: your final answer\n";
}

}  // namespace llmgw::review
