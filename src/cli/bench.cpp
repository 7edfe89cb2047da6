// `llmgw bench`: the multi-turn chat benchmark comparing routing modes (bench/README.md).
// Progress on stderr, the comparison table on stdout, report files with --out.

#include "llmgw/bench/bench.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <thread>

#include "llmgw/bench/class_report.hpp"
#include "llmgw/cli/commands.hpp"

namespace llmgw::cli {
namespace {

struct BenchCliOptions {
  std::size_t spawn_sims = 0;
  std::string target;
  std::vector<std::string> modes;
  std::size_t seed_count = 3;
  std::uint64_t first_seed = 1;
  unsigned think_ms = 50;
  std::optional<double> estimate_prefill_tps;
  std::string out_dir;
  bool quiet = false;
  bool verbose = false;
  bench::WorkloadOptions workload;
  bench::SpawnOptions spawn;
  double balance_factor = 1.25;
  bench::BatchFloodOptions flood;
  // The spawned gateways' admission limits (0 / unset: the gateway's defaults).
  std::optional<std::size_t> interactive_max_queue;
  std::optional<unsigned> interactive_max_wait_ms;
  std::optional<std::size_t> batch_max_queue;
  std::optional<unsigned> batch_max_wait_ms;
  std::optional<std::size_t> interactive_reserve;
};

void apply_admission_limits(const BenchCliOptions& cli, bench::SpawnAdmission& admission) {
  admission.interactive_max_queue = cli.interactive_max_queue;
  admission.batch_max_queue = cli.batch_max_queue;
  admission.interactive_reserve = cli.interactive_reserve;
  if (cli.interactive_max_wait_ms) {
    admission.interactive_max_wait = std::chrono::milliseconds{*cli.interactive_max_wait_ms};
  }
  if (cli.batch_max_wait_ms) {
    admission.batch_max_wait = std::chrono::milliseconds{*cli.batch_max_wait_ms};
  }
}

// The flood's and the spawned gateways' admission options (issue 11; bench/README.md).
void add_flood_options(CLI::App& cmd, BenchCliOptions& cli) {
  cmd.add_option("--batch-clients", cli.flood.clients,
                 "Closed-loop batch summarisation clients beside the chats (0 = none); modes "
                 "no_classes and unloaded compare against bounded")
      ->capture_default_str();
  cmd.add_option("--batch-prompt-tokens", cli.flood.prompt_tokens,
                 "Tokens of each document the batch clients summarise")
      ->capture_default_str()
      ->check(CLI::Range(1, 1'000'000));
  cmd.add_option("--batch-output-tokens", cli.flood.output_tokens,
                 "num_predict of each summary (spawned sims answer at least this long)")
      ->capture_default_str()
      ->check(CLI::Range(1, 100'000));
  cmd.add_option("--interactive-max-queue", cli.interactive_max_queue,
                 "Spawned gateways' admission.interactive.max_queue");
  cmd.add_option("--interactive-max-wait-ms", cli.interactive_max_wait_ms,
                 "Spawned gateways' admission.interactive.max_wait_ms");
  cmd.add_option("--batch-max-queue", cli.batch_max_queue,
                 "Spawned gateways' admission.batch.max_queue");
  cmd.add_option("--batch-max-wait-ms", cli.batch_max_wait_ms,
                 "Spawned gateways' admission.batch.max_wait_ms");
  cmd.add_option("--interactive-reserve", cli.interactive_reserve,
                 "Spawned gateways' admission.interactive_reserve (slots per node batch leaves "
                 "free)");
}

// Redraws a one-line bar on a terminal every 200 ms; elsewhere (CI logs) prints one line per run.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(const bench::BenchProgress& progress)
      : progress_(progress), tty_(isatty(fileno(stderr)) != 0), thread_([this] { loop(); }) {}

  ~ProgressPrinter() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
    draw(true);
  }

  ProgressPrinter(const ProgressPrinter&) = delete;
  ProgressPrinter& operator=(const ProgressPrinter&) = delete;

 private:
  void loop() {
    std::unique_lock lock(mutex_);
    while (!stopping_) {
      wake_.wait_for(lock, std::chrono::milliseconds{200});
      if (!stopping_) {
        draw(false);
      }
    }
  }

  void draw(bool final_line) {
    const std::size_t done = progress_.requests.completed.load();
    const std::size_t total = progress_.total.load();
    const std::size_t failed = progress_.requests.failed.load();
    const std::size_t run = std::min(progress_.runs_done.load() + 1, progress_.runs_total.load());
    const std::string label = progress_.label();
    if (tty_) {
      constexpr std::size_t kWidth = 30;
      const std::size_t filled = total > 0 ? done * kWidth / total : 0;
      std::cerr << fmt::format("\r[{:=<{}}{:<{}}] {:3}% {}/{} requests, {} failed, run {}/{}: {}",
                               "", filled, "", kWidth - filled, total > 0 ? done * 100 / total : 0,
                               done, total, failed, run, progress_.runs_total.load(), label)
                << "\x1b[K" << (final_line ? "\n" : "") << std::flush;
    } else if (label != last_label_ || final_line) {
      last_label_ = label;
      std::cerr << fmt::format("bench: {}/{} requests, {} failed; {}\n", done, total, failed,
                               final_line ? "done" : label);
    }
  }

  const bench::BenchProgress& progress_;
  const bool tty_;
  std::string last_label_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

int run_bench_command(BenchCliOptions& cli) {
  if (!cli.verbose) {
    spdlog::set_level(spdlog::level::warn);  // the in-process gateways' start/stop lines
  }
  bench::BenchOptions options;
  options.workload = cli.workload;
  options.workload.think_time = std::chrono::milliseconds{cli.think_ms};
  options.seeds.clear();
  for (std::size_t i = 0; i < cli.seed_count; ++i) {
    options.seeds.push_back(cli.first_seed + i);
  }
  options.balance_factor = cli.balance_factor;
  options.flood = cli.flood;
  options.flood.model = cli.workload.model;
  apply_admission_limits(cli, cli.spawn.admission);
  options.prefill_tokens_per_s = cli.estimate_prefill_tps;
  if (cli.spawn_sims > 0) {
    options.spawn = cli.spawn;
    options.spawn->sims = cli.spawn_sims;
    if (!cli.modes.empty()) {
      options.modes = cli.modes;
    }
  } else {
    options.target_url = cli.target;
    while (!options.target_url.empty() && options.target_url.back() == '/') {
      options.target_url.pop_back();
    }
    options.modes = cli.modes.empty() ? std::vector<std::string>{bench::kModeBounded} : cli.modes;
  }

  bench::BenchResult result;
  try {
    bench::BenchProgress progress;
    if (cli.quiet) {
      result = bench::run_bench(options, &progress);
    } else {
      const ProgressPrinter printer(progress);
      result = bench::run_bench(options, &progress);
    }
  } catch (const std::invalid_argument& e) {
    std::cerr << "llmgw bench: " << e.what() << '\n';
    return kExitUsage;
  } catch (const std::exception& e) {
    std::cerr << "llmgw bench: " << e.what() << '\n';
    return kExitFailure;
  }
  std::cout << bench::render_table(result.report) << bench::render_class_table(result.report)
            << std::flush;
  if (!cli.out_dir.empty()) {
    try {
      bench::write_report_files(result, cli.out_dir);
    } catch (const std::exception& e) {
      std::cerr << "llmgw bench: " << e.what() << '\n';
      return kExitFailure;
    }
    std::cerr << "llmgw bench: wrote " << cli.out_dir
              << "/report.json, report.html, requests.csv\n";
  }
  std::size_t errors = 0;
  bool dishonest = false;
  for (const auto& mode : result.report["modes"]) {
    if (mode.contains("honest")) {
      // A flood run: 429s with Retry-After are answers, not failures.
      dishonest = dishonest || !mode["honest"].get<bool>();
      continue;
    }
    errors += mode.value("errors", std::size_t{0});
    if (mode.value("mode", "") == bench::kModeModelBlind) {
      // Its 404s (a node without the model) are what that mode measures.
      errors -= std::min(errors, mode.value("not_found", std::size_t{0}));
    }
  }
  if (errors > 0) {
    std::cerr << "llmgw bench: " << errors << " requests failed (see requests.csv)\n";
    return kExitFailure;
  }
  if (dishonest) {
    std::cerr << "llmgw bench: a request failed, a 429 lacked Retry-After or came past its "
                 "class's max_wait, or a node held more than its cap (see the class table)\n";
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace

void add_bench_command(CLI::App& app, ExitCode& exit_code) {
  auto cli = std::make_shared<BenchCliOptions>();
  auto* cmd = app.add_subcommand(
      "bench", "Compare routing modes on a multi-turn chat workload (TTFT, throughput, cache)");
  cmd->footer(
      "Examples:\n"
      "  llmgw bench --spawn-sims 4 --out bench-out      # 4 modes x 3 seeds on in-process sims\n"
      "  llmgw bench --target http://127.0.0.1:8000 --mode bounded\n"
      "  llmgw bench --target http://127.0.0.1:8080 --api openai --mode prefix   # llama-server\n"
      "  llmgw bench --spawn-sims 4 --mode bounded,model_blind --fleet-models a,b,c \\\n"
      "      --models-per-node 2 --max-loaded-models 1 --load-s-per-gb 1\n"
      "See bench/README.md for the report format.");
  auto* spawn = cmd->add_option("--spawn-sims", cli->spawn_sims,
                                "Start N in-process ollama-sim nodes and a gateway per mode")
                    ->check(CLI::Range(1, 256));
  auto* target =
      cmd->add_option("--target", cli->target, "Base URL of a running gateway (one mode)");
  spawn->excludes(target);
  cmd->add_option(
         "--mode", cli->modes,
         "Modes to compare: round_robin, consistent_hash, bounded, bounded_requests, "
         "bounded_spill, prefix, no_classes, unloaded, model_blind, agent_header, prompt_cache_key "
         "(default: all four; with --target the label of the target's routing, default "
         "bounded)")
      ->delimiter(',');
  cmd->add_option("--seeds", cli->seed_count, "Number of session-id seeds to repeat over")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--first-seed", cli->first_seed, "First seed (seeds are consecutive)")
      ->capture_default_str();
  cmd->add_option("-s,--sessions", cli->workload.sessions, "Concurrent chat sessions")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  cmd->add_option("-t,--turns", cli->workload.turns, "Turns per session")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  cmd->add_option("--think-ms", cli->think_ms, "Think time between turns (ms)")
      ->capture_default_str();
  cmd->add_option("--concurrency", cli->workload.concurrency,
                  "Requests in flight at most (0 = one per session)")
      ->capture_default_str();
  cmd->add_option("--system-prompt-tokens", cli->workload.system_prompt_tokens,
                  "Shared system prompt length (0 = none)")
      ->capture_default_str();
  cmd->add_option("--user-tokens", cli->workload.user_message_tokens,
                  "Tokens of each new user message")
      ->capture_default_str();
  cmd->add_option("--max-tokens", cli->workload.max_output_tokens,
                  "Reply length limit sent as options.num_predict")
      ->capture_default_str();
  cmd->add_option("--model", cli->workload.model, "Model name")->capture_default_str();
  cmd->add_option("--models", cli->workload.models,
                  "Sessions spread over these models in turn (default: --model, or the "
                  "--fleet-models)")
      ->delimiter(',');
  cmd->add_option("--api", cli->workload.api,
                  "ollama: POST /api/chat; openai: POST /v1/chat/completions and read "
                  "usage.prompt_tokens_details.cached_tokens or timings.cache_n (llama-server, "
                  "vLLM)")
      ->capture_default_str()
      ->check(CLI::IsMember({bench::kApiOllama, bench::kApiOpenAi}));
  cmd->add_flag("--prompt-cache-key", cli->workload.session_id_in_body,
                "Send the session id as the body's prompt_cache_key instead of a header");
  cmd->add_option("--fleet-models", cli->spawn.fleet_models,
                  "Spawned sims' models, name[=size_gb], comma-separated (multi-model workload)")
      ->delimiter(',');
  cmd->add_option("--models-per-node", cli->spawn.models_per_node,
                  "Each spawned sim holds this many of --fleet-models, in turn (0 = all)")
      ->capture_default_str();
  cmd->add_option("--max-loaded-models", cli->spawn.max_loaded_models,
                  "Spawned sims' OLLAMA_MAX_LOADED_MODELS")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--load-s-per-gb", cli->spawn.load_seconds_per_gb,
                  "Spawned sims' model load time per GB, before --time-scale (0 = instant)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--preload", cli->spawn.preload,
                "Load each spawned sim's first --fleet-models model before the run (a fleet that "
                "has been running; not counted)");
  cmd->add_option("--num-parallel", cli->spawn.num_parallel, "KV slots per spawned sim")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_flag("--multiuser-cache", cli->spawn.multiuser_cache,
                "Spawned sims choose KV slots as Ollama with OLLAMA_MULTIUSER_CACHE=1 (a longer "
                "history survives a request sharing only its system prompt)");
  cmd->add_option("--prefill-tps", cli->spawn.prefill_tokens_per_s,
                  "Spawned sims' prefill rate (tokens/s)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--decode-tps", cli->spawn.decode_tokens_per_s,
                  "Spawned sims' decode rate (tokens/s)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--time-scale", cli->spawn.time_scale,
                  "Spawned sims' time scale (0.1 = ten times faster than the rates say)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--min-output-tokens", cli->spawn.min_output_tokens,
                  "Spawned sims' shortest natural reply")
      ->capture_default_str();
  cmd->add_option("--max-output-tokens", cli->spawn.max_output_tokens,
                  "Spawned sims' longest natural reply")
      ->capture_default_str();
  cmd->add_option("--gateway-workers", cli->spawn.gateway_workers,
                  "IO threads of each spawned gateway")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--balance-factor", cli->balance_factor, "c of the bounded modes")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--estimate-prefill-tps", cli->estimate_prefill_tps,
                  "Prefill rate for the cache estimate from prompt_eval_duration (default: "
                  "inferred from first turns)")
      ->check(CLI::PositiveNumber);
  add_flood_options(*cmd, *cli);
  cmd->add_option("-o,--out", cli->out_dir,
                  "Write report.json, report.html and requests.csv into this directory");
  cmd->add_flag("-q,--quiet", cli->quiet, "No progress on stderr");
  cmd->add_flag("-v,--verbose", cli->verbose, "Keep the in-process gateways' log lines");
  cmd->callback([cli, &exit_code] {
    if (cli->spawn_sims == 0 && cli->target.empty()) {
      std::cerr << "llmgw bench: give --spawn-sims N or --target URL\n";
      exit_code.value = kExitUsage;
      return;
    }
    exit_code.value = run_bench_command(*cli);
  });
}

}  // namespace llmgw::cli
