// The last-prompt store of cache preheating (routing/prompt_store.hpp) at 10,000 live sessions
// with 8k-token histories (~32 KB of chat body each): what it costs in memory with a cap that
// holds them all, and that the default 64 MiB cap holds (bench/RESULTS.md §9).
//
//   llmgw_micro_bench --benchmark_filter=PromptStore
//
// Counters: kept (sessions kept), store_MiB (what the store counts against preheat.max_bytes),
// rss_MiB (the process's resident memory growth while filling it, /proc/self/statm).

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <string>

#include "llmgw/routing/prompt_store.hpp"

namespace {

constexpr std::size_t kSessions = 10'000;
constexpr std::size_t kBodyBytes = 8'000 * 4;  // 8k tokens at 4 bytes per token

double resident_mib() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages_total = 0;
  std::size_t pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

void fill(benchmark::State& state, std::size_t max_bytes) {
  const std::string body(kBodyBytes, 'x');
  for (auto _ : state) {
    const double before = resident_mib();
    llmgw::routing::PromptStore store({max_bytes, std::chrono::minutes{5}});
    const auto now = std::chrono::steady_clock::now();
    for (std::uint64_t key = 0; key < kSessions; ++key) {
      std::string copy = body;
      copy[0] = static_cast<char>('a' + key % 26);  // a distinct allocation each
      store.remember(key * 0x9E3779B97F4A7C15ULL, "/api/chat", std::move(copy), "node-a", now);
    }
    state.counters["kept"] = static_cast<double>(store.size(now));
    state.counters["store_MiB"] = static_cast<double>(store.bytes()) / (1024.0 * 1024.0);
    state.counters["rss_MiB"] = resident_mib() - before;
    state.counters["evictions"] = static_cast<double>(store.evictions());
  }
}

void BM_PromptStore10kSessionsUncapped(benchmark::State& state) {
  fill(state, std::size_t{1} << 40);
}
BENCHMARK(BM_PromptStore10kSessionsUncapped)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_PromptStore10kSessionsDefaultCap(benchmark::State& state) {
  fill(state, 64 * 1024 * 1024);
}
BENCHMARK(BM_PromptStore10kSessionsDefaultCap)->Iterations(1)->Unit(benchmark::kMillisecond);

}  // namespace
