// The `ollama-sim` command line (declared in llmgw/sim/ollama_sim.hpp).

#include <pthread.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <iostream>

#include "llmgw/sim/ollama_sim.hpp"
#include "llmgw/version.hpp"
#include "model_flags.hpp"

namespace llmgw::sim {

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;
constexpr int kExitUsage = 2;

}  // namespace

int run_cli(int argc, char** argv) {
  CLI::App app{
      "ollama-sim: an emulated Ollama worker (Ollama's API, KV cache reuse and latency, "
      "no GPU)"};
  SimOptions options;
  options.port = 11434;
  std::string fault = "none";
  app.add_option("--host", options.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", options.port, "Port to listen on (0 = ephemeral, printed on start)")
      ->capture_default_str();
  const detail::ModelFlags model_flags(app, options);
  app.add_option("--num-parallel", options.num_parallel, "KV slots per model")
      ->envname("OLLAMA_NUM_PARALLEL")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}))
      ->capture_default_str();
  app.add_flag("--multiuser-cache", options.multiuser_cache,
               "Choose KV slots as Ollama does with OLLAMA_MULTIUSER_CACHE=1: a slot holding a "
               "longer history is not overwritten by a prompt sharing only its start")
      ->envname("OLLAMA_MULTIUSER_CACHE");
  app.add_option("--queue-size", options.queue_size,
                 "Requests that may wait for a slot per model before 503")
      ->envname("OLLAMA_MAX_QUEUE")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--prefill-tps", options.latency.prefill_tokens_per_s,
                 "Prompt tokens evaluated per second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--decode-tps", options.latency.decode_tokens_per_s,
                 "Output tokens generated per second")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--time-scale", options.latency.time_scale,
                 "Multiplier on every simulated delay (0.01 = 100x faster)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--min-output-tokens", options.output.min_tokens, "Shortest natural reply")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_option("--max-output-tokens", options.output.max_tokens, "Longest natural reply")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1'000'000}))
      ->capture_default_str();
  app.add_flag("--ignore-eos", options.output.ignore_eos,
               "Never end a reply early: it runs to num_predict tokens, or without one until the "
               "context (num_ctx) is full; with --time-scale 0, as fast as the node can write "
               "(throughput benchmarks)");
  app.add_option("--seed", options.seed, "Seed of the generated text and lengths")
      ->capture_default_str();
  app.add_option("--threads", options.threads, "Server threads")
      ->check(CLI::Range(1u, 256u))
      ->capture_default_str();
  app.add_option("--fault", fault, "Fault to inject into inference requests")
      ->check(CLI::IsMember(
          {"none", "error500", "hang", "close_mid_stream", "error_mid_stream", "slow"}))
      ->capture_default_str();
  app.add_option("--slow-factor", options.fault.slow_factor, "Delay multiplier of the slow fault")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--fault-after-tokens", options.fault.after_tokens,
                 "Tokens streamed before a mid-stream fault strikes")
      ->capture_default_str();
  std::int64_t keep_alive_timeout_ms = options.keep_alive_timeout.count();
  app.add_option("--keep-alive-timeout-ms", keep_alive_timeout_ms,
                 "Close a connection idle this long between requests (real servers close idle "
                 "keep-alive connections: uvicorn and Node.js after 5 s)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{86'400'000}))
      ->capture_default_str();
  app.add_flag("--close-after-stream", options.close_after_stream,
               "Close the connection after every streamed response while announcing keep-alive, "
               "as llama.cpp's server does");
  auto* tls_cert = app.add_option("--tls-cert", options.tls_certificate_file,
                                  "Serve HTTPS with this PEM certificate chain (with --tls-key)");
  auto* tls_key =
      app.add_option("--tls-key", options.tls_key_file, "The PEM private key of --tls-cert");
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  std::string flavor = "ollama";
  app.add_option("--flavor", flavor,
                 "What to emulate: ollama, or llama-server (GET /health, /v1/* only; /api/* "
                 "answers 404)")
      ->check(CLI::IsMember({"ollama", "llama-server"}))
      ->capture_default_str();
  app.set_version_flag("--version", std::string{kVersion});
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version are "successes" (exit code 0); anything else is a usage error.
    const int code = app.exit(e);
    return e.get_exit_code() == 0 ? code : kExitUsage;
  }
  options.keep_alive_timeout = std::chrono::milliseconds{keep_alive_timeout_ms};
  if (!model_flags.apply(options)) {
    return kExitUsage;
  }
  if (options.output.min_tokens > options.output.max_tokens) {
    std::cerr << "ollama-sim: --min-output-tokens must not exceed --max-output-tokens\n";
    return kExitUsage;
  }
  options.fault.mode = parse_fault_mode(fault).value_or(FaultMode::none);
  options.flavor = flavor == "llama-server" ? SimFlavor::llama_server : SimFlavor::ollama;

  // SIGINT and SIGTERM are blocked before any server thread exists (threads inherit the mask) and
  // taken synchronously below, so no handler runs in signal context.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    OllamaSim sim(options);
    sim.start();
    std::cout << "ollama-sim listening on "
              << (options.tls_certificate_file.empty() ? "http://" : "https://") << options.host
              << ':' << sim.port() << std::endl;
    int received = 0;
    sigwait(&signals, &received);
    sim.stop();
  } catch (const std::exception& e) {
    std::cerr << "ollama-sim: " << e.what() << '\n';
    return kExitFailure;
  }
  return kExitOk;
}

}  // namespace llmgw::sim
