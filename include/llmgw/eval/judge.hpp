#pragma once

// LLM-as-judge over a dataset: k samples per case, scores averaged with their spread; pairwise
// cases judged in both orders so that position bias cancels (a disagreement counts as a tie).

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/eval/rubric.hpp"
#include "llmgw/llm/chat_client.hpp"

namespace llmgw::eval {

// Mean, population standard deviation, min and max of n values (all 0 when n == 0).
struct Spread {
  double mean = 0;
  double stddev = 0;
  double min = 0;
  double max = 0;
  int n = 0;
};
Spread spread_of(const std::vector<double>& values);

struct PairwiseTally {
  int a = 0;  // samples where both orders preferred candidate A
  int b = 0;
  int tie = 0;  // the judge said tie, or the two orders disagreed
};

struct CaseResult {
  std::string id;
  bool pairwise = false;
  // Scored cases.
  Spread overall;                          // the weighted score over the samples
  std::map<std::string, Spread> criteria;  // per criterion over the samples
  // Pairwise cases.
  PairwiseTally tally;
  Verdict verdict = Verdict::tie;  // the majority of the samples' verdicts; tie on a draw
  // Every judge answer (scores and reasons, or verdicts per order), for --out.
  nlohmann::json samples = nlohmann::json::array();
  int failed_samples = 0;  // answers that were not the JSON asked for
  std::string error;       // set when no sample succeeded
};

struct EvalReport {
  std::vector<CaseResult> cases;
  Spread overall;  // over the scored cases' mean scores
  std::map<std::string, Spread> criteria;
  PairwiseTally pairwise;  // over the pairwise cases' verdicts
  int failed_cases = 0;
};

struct EvalOptions {
  int samples = 3;           // k judge calls per case (per order for pairwise)
  double temperature = 0.7;  // > 0 so that samples differ and the spread means something
  std::int64_t seed = 42;    // sample i uses seed + i: repeatable, yet distinct
  std::function<void(const std::string&)> on_progress;
};

EvalReport run_eval(const std::vector<EvalCase>& cases, const Rubric& rubric,
                    llm::ChatClient& judge, const EvalOptions& options);

// A plain-text table: one row per case (id, mean, stddev, min, max, or the pairwise verdict),
// then the overall mean and per-criterion means.
std::string render_table(const EvalReport& report, const Rubric& rubric);

nlohmann::json to_json(const EvalReport& report, const Rubric& rubric);

}  // namespace llmgw::eval
