// `llmgw eval --dataset FILE --rubric FILE`: LLM-as-judge over a dataset of PR summaries or
// reviews. A table goes to stdout, the full results to --out; the exit code is 1 when the mean
// score is below --min-score (or a case could not be judged), so that CI can gate on it, and 3
// when the judge cannot be reached at all (nothing was judged; not a verdict on the candidates).

#include <CLI/CLI.hpp>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "llmgw/cli/command_support.hpp"
#include "llmgw/cli/commands.hpp"
#include "llmgw/eval/judge.hpp"
#include "llmgw/eval/rubric.hpp"
#include "llmgw/llm/chat_client.hpp"
#include "llmgw/net/http_client.hpp"

namespace llmgw::cli {
namespace {

constexpr std::string_view kDefaultJudgeModel = "llama3.2";
constexpr int kExitJudgeUnreachable = 3;

struct EvalCliOptions {
  std::string dataset;
  std::string rubric;
  int samples = 3;
  double temperature = 0.7;
  std::int64_t seed = 42;
  std::optional<double> min_score;
  std::optional<std::string> out;
  std::optional<std::string> ca_file;
  llm::ProviderOverrides provider;
};

std::string read_file(const std::string& path, const char* what) {
  std::ifstream file{path, std::ios::binary};
  if (!file) {
    throw std::invalid_argument(std::string{what} + ": cannot read " + path);
  }
  std::ostringstream text;
  text << file.rdbuf();
  return text.str();
}

int run_eval_command(const EvalCliOptions& options) {
  eval::Rubric rubric;
  try {
    rubric = eval::parse_rubric(read_file(options.rubric, "--rubric"));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(options.rubric + ": " + e.what());
  }
  std::vector<eval::EvalCase> cases;
  try {
    cases = eval::parse_dataset(read_file(options.dataset, "--dataset"));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(options.dataset + ": " + e.what());
  }
  if (cases.empty()) {
    throw std::invalid_argument(options.dataset + ": no cases");
  }

  auto provider_config = llm::resolve_provider_config(
      llm::Provider::ollama, std::string{kDefaultJudgeModel}, options.provider);
  if (options.ca_file) {
    provider_config.ca_file = *options.ca_file;
  }
  require_api_key(provider_config);
  auto judge = llm::make_chat_client(provider_config);
  std::cerr << "Judging " << cases.size() << " case(s) x " << options.samples << " sample(s) with "
            << judge->describe() << "\n";

  eval::EvalOptions eval_options;
  eval_options.samples = options.samples;
  eval_options.temperature = options.temperature;
  eval_options.seed = options.seed;
  eval_options.on_progress = [](const std::string& line) { std::cerr << line << "\n"; };
  eval::EvalReport report;
  try {
    report = eval::run_eval(cases, rubric, *judge, eval_options);
  } catch (const net::TransportError& e) {
    // Not a verdict on the candidates: nothing was judged.
    std::cerr << "llmgw eval: the judge is unreachable: " << e.what() << "\n";
    return kExitJudgeUnreachable;
  }

  std::cout << eval::render_table(report, rubric);
  if (options.out) {
    std::ofstream out{*options.out, std::ios::binary | std::ios::trunc};
    out << eval::to_json(report, rubric).dump(2) << "\n";
    if (!out) {
      throw std::runtime_error("--out: cannot write " + *options.out);
    }
    std::cerr << "Full results written to " << *options.out << "\n";
  }
  if (report.failed_cases > 0) {
    std::cerr << "llmgw eval: " << report.failed_cases << " case(s) could not be judged\n";
    return kExitFailure;
  }
  if (options.min_score && report.overall.n > 0 && report.overall.mean < *options.min_score) {
    std::cerr << "llmgw eval: mean score " << report.overall.mean << " is below --min-score "
              << *options.min_score << "\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_eval_command(CLI::App& app, ExitCode& exit_code) {
  auto options = std::make_shared<EvalCliOptions>();
  auto* cmd = app.add_subcommand(
      "eval", "Judge PR summaries or reviews with an LLM against a rubric (LLM-as-judge)");
  cmd->add_option("--dataset", options->dataset,
                  "JSONL cases: {context, candidate[, reference]} or {context, candidate_a, "
                  "candidate_b} (example: config/eval/dataset.jsonl)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--rubric", options->rubric,
                  "YAML rubric of criteria scored 1-10 (example: config/eval/rubric.yaml)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--samples,-k", options->samples, "Judge answers per case, averaged")
      ->check(CLI::Range(1, 50))
      ->capture_default_str();
  cmd->add_option("--temperature", options->temperature, "Judge sampling temperature")
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  cmd->add_option("--seed", options->seed, "Seed of the first sample (sample i uses seed + i)")
      ->capture_default_str();
  cmd->add_option("--min-score", options->min_score,
                  "Exit with 1 when the mean score of the scored cases is below this")
      ->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--out", options->out, "Write every score, reason and verdict here as JSON");
  cmd->add_option("--ca-file", options->ca_file, "Extra PEM CA bundle trusted for the provider")
      ->check(CLI::ExistingFile);
  add_provider_options(*cmd, options->provider, llm::Provider::ollama, kDefaultJudgeModel);
  cmd->callback([options, &exit_code] {
    exit_code.value = run_command("eval", [&] { return run_eval_command(*options); });
  });
}

}  // namespace llmgw::cli
