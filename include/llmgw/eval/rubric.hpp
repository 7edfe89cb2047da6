#pragma once

// Rubrics and datasets for LLM-as-judge evaluation (`llmgw eval`).
//
// A rubric (YAML, e.g. config/eval/rubric.yaml) names the criteria a judge scores, each on an
// integer scale (1-10 by default) with a reason:
//   name: review-quality
//   instructions: "The candidate is a code review of the pull request."   # optional
//   scale: {min: 1, max: 10}                                               # optional
//   criteria:
//     - {name: accuracy, description: "Every claim is supported by the diff.", weight: 1}
// A dataset is JSONL, one case per line:
//   {"id": "...", "context": "<PR title, description, diff>", "candidate": "...",
//    "reference": "..."}                                 (scored; reference optional), or
//   {"id": "...", "context": "...", "candidate_a": "...", "candidate_b": "..."}   (pairwise)

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::eval {

struct Criterion {
  std::string name;
  std::string description;
  double weight = 1.0;
};

struct Rubric {
  std::string name;
  std::string instructions;
  int min_score = 1;
  int max_score = 10;
  std::vector<Criterion> criteria;
};

// Parses a rubric from YAML (JSON is YAML too). Throws std::invalid_argument naming the key path of
// the first problem ("criteria[2].weight: must be a positive number", "colour: unknown key").
Rubric parse_rubric(std::string_view yaml_text);

struct EvalCase {
  std::string id;
  std::string context;
  std::optional<std::string> candidate;
  std::optional<std::string> reference;
  std::optional<std::string> candidate_a;
  std::optional<std::string> candidate_b;

  bool pairwise() const noexcept { return candidate_a.has_value(); }
};

// Parses JSONL; blank lines and lines starting with '#' are skipped. Throws std::invalid_argument
// "line N: ..." for a line that is not a case (bad JSON, no candidate, only one of a pair).
std::vector<EvalCase> parse_dataset(std::string_view jsonl);

struct CriterionScore {
  int score = 0;
  std::string reason;
};

// The JSON Schema a judge answers with when scoring:
//   {"scores": {"<criterion>": {"score": int, "reason": string}, ...}}
nlohmann::json score_schema(const Rubric& rubric);
// The JSON Schema of a pairwise verdict: {"winner": "A" | "B" | "tie", "reason": string}.
nlohmann::json pairwise_schema();

// Reads a judge's scores, checking that every criterion is present and within the scale. Accepts
// a score given as a number or numeric string and {"scores": ...} or the map itself. Throws
// std::invalid_argument saying what is wrong.
std::map<std::string, CriterionScore> parse_scores(const nlohmann::json& answer,
                                                   const Rubric& rubric);

enum class Verdict { a, b, tie };
// "A"/"B"/"tie" (any case, also "candidate a", "equal"); throws std::invalid_argument otherwise.
Verdict parse_verdict(const nlohmann::json& answer);
std::string_view to_string(Verdict verdict) noexcept;

// The weighted mean of the scores by the rubric's weights.
double weighted_score(const std::map<std::string, CriterionScore>& scores, const Rubric& rubric);

}  // namespace llmgw::eval
