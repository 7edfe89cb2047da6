#include "llmgw/eval/judge.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "llmgw/net/http_client.hpp"
#include "llmgw/review/react_parser.hpp"

namespace llmgw::eval {
namespace {

constexpr std::string_view kJudgeSystem =
    "You are a strict, fair and consistent evaluator of AI-written pull request summaries and code "
    "reviews. Judge only by the rubric and the pull request context given. Do not reward length. "
    "Answer with the JSON object asked for and nothing else.";

std::string criteria_text(const Rubric& rubric) {
  std::string text;
  for (const auto& criterion : rubric.criteria) {
    text += "- " + criterion.name + ": " + criterion.description + "\n";
  }
  return text;
}

std::string score_prompt(const EvalCase& item, const Rubric& rubric) {
  std::string prompt;
  if (!rubric.instructions.empty()) {
    prompt += rubric.instructions + "\n\n";
  }
  prompt += "Score the candidate on each criterion from " + std::to_string(rubric.min_score) +
            " (worst) to " + std::to_string(rubric.max_score) +
            " (best), giving the reason first and then the score:\n" + criteria_text(rubric);
  prompt += "\n<pull_request>\n" + item.context + "\n</pull_request>\n";
  if (item.reference) {
    prompt += "\n<reference_answer>\n" + *item.reference + "\n</reference_answer>\n";
  }
  prompt += "\n<candidate>\n" + item.candidate.value_or("") + "\n</candidate>\n";
  return prompt;
}

std::string pairwise_prompt(const EvalCase& item, const Rubric& rubric, const std::string& first,
                            const std::string& second) {
  std::string prompt;
  if (!rubric.instructions.empty()) {
    prompt += rubric.instructions + "\n\n";
  }
  prompt += "Compare candidates A and B on these criteria taken together:\n" +
            criteria_text(rubric) +
            "Say which is better overall (winner \"A\" or \"B\"), or \"tie\" if neither is "
            "clearly better. The order in which they are shown means nothing.\n";
  prompt += "\n<pull_request>\n" + item.context + "\n</pull_request>\n";
  prompt += "\n<candidate_A>\n" + first + "\n</candidate_A>\n";
  prompt += "\n<candidate_B>\n" + second + "\n</candidate_B>\n";
  return prompt;
}

nlohmann::json ask_json(llm::ChatClient& judge, const std::string& prompt,
                        const nlohmann::json& schema, const EvalOptions& options, int sample) {
  llm::ChatRequest request;
  request.messages = {llm::Message::system(std::string{kJudgeSystem}), llm::Message::user(prompt)};
  request.json_schema = schema;
  request.temperature = options.temperature;
  request.seed = options.seed + sample;
  request.max_tokens = 1024;
  const auto result = judge.chat(request);
  auto parsed = nlohmann::json::parse(result.content, nullptr, false);
  if (parsed.is_object()) {
    return parsed;
  }
  if (auto extracted = review::extract_json_object(result.content)) {
    return std::move(*extracted);
  }
  throw std::invalid_argument("the judge's answer is not JSON");
}

Verdict swap(Verdict verdict) {
  return verdict == Verdict::a ? Verdict::b : verdict == Verdict::b ? Verdict::a : Verdict::tie;
}

void progress(const EvalOptions& options, const std::string& line) {
  if (options.on_progress) {
    options.on_progress(line);
  }
}

// A judge answer that is not the JSON asked for costs one sample, not the run. Provider errors
// (ApiError, TransportError) are not caught: the judge itself is unusable then.
void record_unreadable(CaseResult& result, const EvalCase& item, int sample, const char* what,
                       const EvalOptions& options) {
  ++result.failed_samples;
  result.samples.push_back({{"error", what}});
  progress(options, "  " + item.id + " sample " + std::to_string(sample + 1) + ": " + what);
}

CaseResult judge_scored(const EvalCase& item, const Rubric& rubric, llm::ChatClient& judge,
                        const EvalOptions& options) {
  CaseResult result;
  result.id = item.id;
  std::vector<double> overall;
  std::map<std::string, std::vector<double>> per_criterion;
  const auto prompt = score_prompt(item, rubric);
  const auto schema = score_schema(rubric);
  for (int sample = 0; sample < options.samples; ++sample) {
    try {
      const auto answer = ask_json(judge, prompt, schema, options, sample);
      const auto scores = parse_scores(answer, rubric);
      nlohmann::json record = nlohmann::json::object();
      for (const auto& [name, score] : scores) {
        per_criterion[name].push_back(score.score);
        record[name] = {{"score", score.score}, {"reason", score.reason}};
      }
      overall.push_back(weighted_score(scores, rubric));
      result.samples.push_back({{"scores", std::move(record)}, {"overall", overall.back()}});
    } catch (const std::exception& error) {
      if (dynamic_cast<const llm::ApiError*>(&error) != nullptr ||
          dynamic_cast<const net::TransportError*>(&error) != nullptr) {
        throw;  // the judge is unusable (auth, quota, unreachable): not a bad sample
      }
      ++result.failed_samples;
      result.samples.push_back({{"error", error.what()}});
      progress(options,
               "  " + item.id + " sample " + std::to_string(sample + 1) + ": " + error.what());
    }
  }
  result.overall = spread_of(overall);
  for (const auto& [name, values] : per_criterion) {
    result.criteria[name] = spread_of(values);
  }
  if (overall.empty()) {
    result.error = "no judge answer could be read";
  }
  return result;
}

CaseResult judge_pairwise(const EvalCase& item, const Rubric& rubric, llm::ChatClient& judge,
                          const EvalOptions& options) {
  CaseResult result;
  result.id = item.id;
  result.pairwise = true;
  const auto schema = pairwise_schema();
  const auto forward = pairwise_prompt(item, rubric, *item.candidate_a, *item.candidate_b);
  const auto reverse = pairwise_prompt(item, rubric, *item.candidate_b, *item.candidate_a);
  for (int sample = 0; sample < options.samples; ++sample) {
    try {
      const auto first = ask_json(judge, forward, schema, options, sample);
      const auto second = ask_json(judge, reverse, schema, options, sample);
      const auto in_order = parse_verdict(first);
      const auto swapped_back = swap(parse_verdict(second));  // B shown first: map back to A/B
      const auto verdict = in_order == swapped_back ? in_order : Verdict::tie;
      (verdict == Verdict::a   ? result.tally.a
       : verdict == Verdict::b ? result.tally.b
                               : result.tally.tie)++;
      result.samples.push_back(
          {{"a_first", {{"winner", to_string(in_order)}, {"reason", first.value("reason", "")}}},
           {"b_first",
            {{"winner", to_string(swapped_back)}, {"reason", second.value("reason", "")}}},
           {"verdict", to_string(verdict)}});
    } catch (const std::invalid_argument& error) {
      record_unreadable(result, item, sample, error.what(), options);
    } catch (const nlohmann::json::exception& error) {
      record_unreadable(result, item, sample, error.what(), options);
    }
  }
  const auto& tally = result.tally;
  result.verdict = tally.a > tally.b && tally.a > tally.tie   ? Verdict::a
                   : tally.b > tally.a && tally.b > tally.tie ? Verdict::b
                                                              : Verdict::tie;
  if (tally.a + tally.b + tally.tie == 0) {
    result.error = "no judge answer could be read";
  }
  return result;
}

nlohmann::json spread_json(const Spread& spread) {
  return {{"mean", spread.mean},
          {"stddev", spread.stddev},
          {"min", spread.min},
          {"max", spread.max},
          {"n", spread.n}};
}

}  // namespace

Spread spread_of(const std::vector<double>& values) {
  Spread spread;
  spread.n = static_cast<int>(values.size());
  if (values.empty()) {
    return spread;
  }
  spread.mean = std::accumulate(values.begin(), values.end(), 0.0) / spread.n;
  double squares = 0;
  for (const double value : values) {
    squares += (value - spread.mean) * (value - spread.mean);
  }
  spread.stddev = std::sqrt(squares / spread.n);
  const auto [min, max] = std::minmax_element(values.begin(), values.end());
  spread.min = *min;
  spread.max = *max;
  return spread;
}

EvalReport run_eval(const std::vector<EvalCase>& cases, const Rubric& rubric,
                    llm::ChatClient& judge, const EvalOptions& options) {
  EvalReport report;
  std::vector<double> case_means;
  std::map<std::string, std::vector<double>> criterion_means;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    const auto& item = cases[i];
    progress(options, fmt::format("[{}/{}] {}{}", i + 1, cases.size(), item.id,
                                  item.pairwise() ? " (pairwise)" : ""));
    auto result = item.pairwise() ? judge_pairwise(item, rubric, judge, options)
                                  : judge_scored(item, rubric, judge, options);
    if (!result.error.empty()) {
      ++report.failed_cases;
    } else if (result.pairwise) {
      (result.verdict == Verdict::a   ? report.pairwise.a
       : result.verdict == Verdict::b ? report.pairwise.b
                                      : report.pairwise.tie)++;
    } else {
      case_means.push_back(result.overall.mean);
      for (const auto& [name, spread] : result.criteria) {
        criterion_means[name].push_back(spread.mean);
      }
    }
    report.cases.push_back(std::move(result));
  }
  report.overall = spread_of(case_means);
  for (const auto& [name, values] : criterion_means) {
    report.criteria[name] = spread_of(values);
  }
  return report;
}

std::string render_table(const EvalReport& report, const Rubric& rubric) {
  std::size_t id_width = 4;
  for (const auto& result : report.cases) {
    id_width = std::max(id_width, result.id.size());
  }
  std::string out = fmt::format("{:<{}}  {:>6}  {:>6}  {:>5}  {:>5}  {}\n", "case", id_width,
                                "mean", "stddev", "min", "max", "notes");
  for (const auto& result : report.cases) {
    if (!result.error.empty()) {
      out += fmt::format("{:<{}}  {:>6}  {:>6}  {:>5}  {:>5}  error: {}\n", result.id, id_width,
                         "-", "-", "-", "-", result.error);
    } else if (result.pairwise) {
      out += fmt::format("{:<{}}  {:>6}  {:>6}  {:>5}  {:>5}  pairwise: {} (A {}, B {}, tie {})\n",
                         result.id, id_width, "-", "-", "-", "-",
                         result.verdict == Verdict::tie
                             ? "tie"
                             : "winner " + std::string{to_string(result.verdict)},
                         result.tally.a, result.tally.b, result.tally.tie);
    } else {
      out += fmt::format("{:<{}}  {:>6.2f}  {:>6.2f}  {:>5.1f}  {:>5.1f}  {} samples{}\n",
                         result.id, id_width, result.overall.mean, result.overall.stddev,
                         result.overall.min, result.overall.max, result.overall.n,
                         result.failed_samples > 0
                             ? ", " + std::to_string(result.failed_samples) + " unreadable"
                             : "");
    }
  }
  if (report.overall.n > 0) {
    out += fmt::format(
        "\nmean score {:.2f} over {} scored cases (stddev {:.2f}, min {:.2f}, max "
        "{:.2f})\n",
        report.overall.mean, report.overall.n, report.overall.stddev, report.overall.min,
        report.overall.max);
    for (const auto& criterion : rubric.criteria) {
      if (const auto it = report.criteria.find(criterion.name); it != report.criteria.end()) {
        out += fmt::format("  {:<16} {:.2f}\n", criterion.name, it->second.mean);
      }
    }
  }
  const auto& pairs = report.pairwise;
  if (pairs.a + pairs.b + pairs.tie > 0) {
    out += fmt::format("\npairwise: A won {}, B won {}, ties {}\n", pairs.a, pairs.b, pairs.tie);
  }
  if (report.failed_cases > 0) {
    out += fmt::format("\n{} case(s) could not be judged\n", report.failed_cases);
  }
  return out;
}

nlohmann::json to_json(const EvalReport& report, const Rubric& rubric) {
  auto cases = nlohmann::json::array();
  for (const auto& result : report.cases) {
    nlohmann::json item{{"id", result.id},
                        {"pairwise", result.pairwise},
                        {"samples", result.samples},
                        {"failed_samples", result.failed_samples}};
    if (!result.error.empty()) {
      item["error"] = result.error;
    }
    if (result.pairwise) {
      item["verdict"] = to_string(result.verdict);
      item["tally"] = {{"a", result.tally.a}, {"b", result.tally.b}, {"tie", result.tally.tie}};
    } else {
      item["overall"] = spread_json(result.overall);
      nlohmann::json criteria = nlohmann::json::object();
      for (const auto& [name, spread] : result.criteria) {
        criteria[name] = spread_json(spread);
      }
      item["criteria"] = std::move(criteria);
    }
    cases.push_back(std::move(item));
  }
  nlohmann::json criteria = nlohmann::json::object();
  for (const auto& [name, spread] : report.criteria) {
    criteria[name] = spread_json(spread);
  }
  return {{"rubric", rubric.name},
          {"overall", spread_json(report.overall)},
          {"criteria", std::move(criteria)},
          {"pairwise",
           {{"a", report.pairwise.a}, {"b", report.pairwise.b}, {"tie", report.pairwise.tie}}},
          {"failed_cases", report.failed_cases},
          {"cases", std::move(cases)}};
}

}  // namespace llmgw::eval
