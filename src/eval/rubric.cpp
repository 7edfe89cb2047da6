#include "llmgw/eval/rubric.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <set>

namespace llmgw::eval {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw std::invalid_argument(path + ": " + problem);
}

void refuse_unknown_keys(const YAML::Node& node, const std::string& path,
                         std::initializer_list<std::string_view> known) {
  for (const auto& entry : node) {
    const auto key = entry.first.as<std::string>();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      fail(path.empty() ? key : path + "." + key, "unknown key");
    }
  }
}

std::string scalar(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) {
    fail(path, "must be text");
  }
  return node.as<std::string>();
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

std::optional<std::string> optional_text(const nlohmann::json& object, const char* key) {
  const auto it = object.find(key);
  if (it == object.end() || it->is_null()) {
    return std::nullopt;
  }
  if (!it->is_string()) {
    throw std::invalid_argument(std::string{key} + " must be a string");
  }
  return it->get<std::string>();
}

}  // namespace

Rubric parse_rubric(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string{yaml_text});
  } catch (const YAML::Exception& error) {
    throw std::invalid_argument(std::string{"rubric: not valid YAML: "} + error.what());
  }
  if (!root.IsMap()) {
    fail("rubric", "must be a mapping with a 'criteria' list");
  }
  refuse_unknown_keys(root, "", {"name", "instructions", "scale", "criteria"});
  Rubric rubric;
  if (root["name"]) {
    rubric.name = scalar(root["name"], "name");
  }
  if (root["instructions"]) {
    rubric.instructions = scalar(root["instructions"], "instructions");
  }
  if (const auto scale = root["scale"]) {
    if (!scale.IsMap()) {
      fail("scale", "must be a mapping {min, max}");
    }
    refuse_unknown_keys(scale, "scale", {"min", "max"});
    try {
      rubric.min_score = scale["min"] ? scale["min"].as<int>() : rubric.min_score;
      rubric.max_score = scale["max"] ? scale["max"].as<int>() : rubric.max_score;
    } catch (const YAML::Exception&) {
      fail("scale", "min and max must be integers");
    }
    if (rubric.min_score >= rubric.max_score) {
      fail("scale", "min must be below max");
    }
  }
  const auto criteria = root["criteria"];
  if (!criteria || !criteria.IsSequence() || criteria.size() == 0) {
    fail("criteria", "must be a non-empty list");
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < criteria.size(); ++i) {
    const std::string path = "criteria[" + std::to_string(i) + "]";
    const auto node = criteria[i];
    if (!node.IsMap()) {
      fail(path, "must be a mapping {name, description, weight}");
    }
    refuse_unknown_keys(node, path, {"name", "description", "weight"});
    Criterion criterion;
    if (!node["name"]) {
      fail(path + ".name", "is required");
    }
    criterion.name = scalar(node["name"], path + ".name");
    if (criterion.name.empty() || !names.insert(criterion.name).second) {
      fail(path + ".name", "must be unique and not empty");
    }
    if (node["description"]) {
      criterion.description = scalar(node["description"], path + ".description");
    }
    if (node["weight"]) {
      try {
        criterion.weight = node["weight"].as<double>();
      } catch (const YAML::Exception&) {
        fail(path + ".weight", "must be a positive number");
      }
      if (!(criterion.weight > 0)) {
        fail(path + ".weight", "must be a positive number");
      }
    }
    rubric.criteria.push_back(std::move(criterion));
  }
  return rubric;
}

std::vector<EvalCase> parse_dataset(std::string_view jsonl) {
  std::vector<EvalCase> cases;
  std::size_t line_number = 0;
  std::size_t pos = 0;
  while (pos < jsonl.size()) {
    auto eol = jsonl.find('\n', pos);
    if (eol == std::string_view::npos) {
      eol = jsonl.size();
    }
    const auto line = jsonl.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_number;
    const auto first = line.find_first_not_of(" \t\r");
    if (first == std::string_view::npos || line[first] == '#') {
      continue;
    }
    const std::string where = "line " + std::to_string(line_number);
    const auto json = nlohmann::json::parse(line, nullptr, false);
    if (!json.is_object()) {
      throw std::invalid_argument(where + ": not a JSON object");
    }
    EvalCase item;
    try {
      item.id = optional_text(json, "id").value_or("case-" + std::to_string(cases.size() + 1));
      item.context = optional_text(json, "context").value_or("");
      item.candidate = optional_text(json, "candidate");
      item.reference = optional_text(json, "reference");
      item.candidate_a = optional_text(json, "candidate_a");
      item.candidate_b = optional_text(json, "candidate_b");
    } catch (const std::invalid_argument& error) {
      throw std::invalid_argument(where + ": " + error.what());
    }
    if (item.candidate_a.has_value() != item.candidate_b.has_value()) {
      throw std::invalid_argument(where +
                                  ": a pairwise case needs both candidate_a and candidate_b");
    }
    if (!item.candidate && !item.candidate_a) {
      throw std::invalid_argument(where + ": needs 'candidate' or 'candidate_a' and 'candidate_b'");
    }
    if (item.candidate && item.candidate_a) {
      throw std::invalid_argument(where + ": give 'candidate' or a pair, not both");
    }
    cases.push_back(std::move(item));
  }
  return cases;
}

nlohmann::json score_schema(const Rubric& rubric) {
  nlohmann::json properties = nlohmann::json::object();
  auto required = nlohmann::json::array();
  for (const auto& criterion : rubric.criteria) {
    properties[criterion.name] = {
        {"type", "object"},
        {"properties",
         {{"score",
           {{"type", "integer"}, {"minimum", rubric.min_score}, {"maximum", rubric.max_score}}},
          {"reason", {{"type", "string"}}}}},
        {"required", {"reason", "score"}}};
    required.push_back(criterion.name);
  }
  return {{"type", "object"},
          {"properties",
           {{"scores",
             {{"type", "object"}, {"properties", std::move(properties)}, {"required", required}}}}},
          {"required", {"scores"}}};
}

nlohmann::json pairwise_schema() {
  return {{"type", "object"},
          {"properties",
           {{"reason", {{"type", "string"}}},
            {"winner", {{"type", "string"}, {"enum", {"A", "B", "tie"}}}}}},
          {"required", {"reason", "winner"}}};
}

std::map<std::string, CriterionScore> parse_scores(const nlohmann::json& answer,
                                                   const Rubric& rubric) {
  const nlohmann::json* scores = &answer;
  if (const auto it = answer.find("scores"); answer.is_object() && it != answer.end()) {
    scores = &*it;
  }
  if (!scores->is_object()) {
    throw std::invalid_argument("the answer has no 'scores' object");
  }
  std::map<std::string, CriterionScore> out;
  for (const auto& criterion : rubric.criteria) {
    const auto it = scores->find(criterion.name);
    if (it == scores->end()) {
      throw std::invalid_argument("no score for '" + criterion.name + "'");
    }
    CriterionScore score;
    nlohmann::json value = *it;
    if (it->is_object()) {
      value = it->value("score", nlohmann::json{});
      score.reason = it->value("reason", std::string{});
    }
    double number = 0;
    if (value.is_number()) {
      number = value.get<double>();
    } else if (value.is_string()) {
      try {
        number = std::stod(value.get<std::string>());
      } catch (const std::exception&) {
        throw std::invalid_argument("the score for '" + criterion.name + "' is not a number");
      }
    } else {
      throw std::invalid_argument("the score for '" + criterion.name + "' is not a number");
    }
    if (number < rubric.min_score || number > rubric.max_score) {
      throw std::invalid_argument("the score for '" + criterion.name + "' is outside " +
                                  std::to_string(rubric.min_score) + "-" +
                                  std::to_string(rubric.max_score));
    }
    score.score = static_cast<int>(number + 0.5);
    out.emplace(criterion.name, std::move(score));
  }
  return out;
}

Verdict parse_verdict(const nlohmann::json& answer) {
  const auto it = answer.is_object() ? answer.find("winner") : answer.end();
  if (it == answer.end() || !it->is_string()) {
    throw std::invalid_argument("the answer has no 'winner'");
  }
  auto winner = lowercase(it->get<std::string>());
  if (winner.starts_with("candidate ")) {
    winner = winner.substr(10);
  }
  if (winner == "a") {
    return Verdict::a;
  }
  if (winner == "b") {
    return Verdict::b;
  }
  if (winner == "tie" || winner == "equal" || winner == "none" || winner == "draw") {
    return Verdict::tie;
  }
  throw std::invalid_argument("'winner' must be A, B or tie");
}

std::string_view to_string(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::a:
      return "A";
    case Verdict::b:
      return "B";
    case Verdict::tie:
      break;
  }
  return "tie";
}

double weighted_score(const std::map<std::string, CriterionScore>& scores, const Rubric& rubric) {
  double total = 0;
  double weights = 0;
  for (const auto& criterion : rubric.criteria) {
    if (const auto it = scores.find(criterion.name); it != scores.end()) {
      total += criterion.weight * it->second.score;
      weights += criterion.weight;
    }
  }
  return weights > 0 ? total / weights : 0;
}

}  // namespace llmgw::eval
