// The default placement table (SessionTable, routing.balance_by: sessions) at 100,000 live
// sessions (issue 14): memory per placement, and the routing decision's time per call with one
// and two threads contending for the table, as two gateway workers do. Per-call percentiles are
// measured with steady_clock around each call (its own ~20 ns included) and reported as counters
// p50_ns / p99_ns; Google Benchmark's time column is the mean.
//
//   ./build/release/bench/llmgw_micro_bench --benchmark_filter=SessionTable100k

#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "llmgw/routing/hash_ring.hpp"
#include "llmgw/routing/router.hpp"
#include "llmgw/routing/session_table.hpp"

namespace {

using llmgw::routing::HashRing;
using llmgw::routing::NodeState;
using llmgw::routing::RoutingPolicy;
using llmgw::routing::RoutingTable;
using llmgw::routing::SessionTable;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kLiveSessions = 100'000;

// Resident memory of this process in bytes (/proc/self/statm's second field, in pages).
std::size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::size_t pages = 0;
  std::size_t resident = 0;
  statm >> pages >> resident;
  return resident * static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
}

RoutingTable three_nodes() {
  std::vector<std::shared_ptr<NodeState>> nodes;
  for (int i = 0; i < 3; ++i) {
    nodes.push_back(std::make_shared<NodeState>("node-" + std::to_string(i) + ":11434"));
  }
  return RoutingTable(std::move(nodes), HashRing::kDefaultVirtualNodes);
}

std::vector<std::uint64_t> session_positions(std::size_t count) {
  std::vector<std::uint64_t> positions;
  positions.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    positions.push_back(llmgw::routing::ring_position("session-" + std::to_string(i)));
  }
  return positions;
}

// One table shared by every thread of a run, filled with kLiveSessions placements once.
struct Fixture {
  RoutingTable table = three_nodes();
  RoutingPolicy policy{.balance_factor = 1.25, .max_attempts = 3};
  SessionTable sessions{{}};
  std::vector<std::uint64_t> positions = session_positions(kLiveSessions);
  std::size_t bytes_per_session = 0;

  Fixture() {
    const auto before = resident_bytes();
    const auto now = Clock::now();
    for (const auto position : positions) {
      sessions.plan(table, position, 0, policy, now);
    }
    bytes_per_session = (resident_bytes() - before) / kLiveSessions;
  }
};

Fixture& fixture() {
  static Fixture instance;
  return instance;
}

// Each thread routes turns of the live sessions (a different stride per thread, so that the two
// threads touch different placements as two workers would), timing every call; the percentiles
// are each thread's, averaged over the threads.
void BM_SessionTable100k(benchmark::State& state) {
  Fixture& f = fixture();
  std::vector<std::int64_t> durations;
  durations.reserve(1 << 20);
  std::mt19937_64 rng(static_cast<std::uint64_t>(state.thread_index()) + 1);
  std::size_t i = rng() % kLiveSessions;
  const std::size_t stride = 7919 + 2 * static_cast<std::size_t>(state.thread_index());
  for (auto _ : state) {
    i = (i + stride) % kLiveSessions;
    const auto start = Clock::now();
    benchmark::DoNotOptimize(f.sessions.plan(f.table, f.positions[i], 0, f.policy, start));
    const auto took = Clock::now() - start;
    if (durations.size() < durations.capacity()) {
      durations.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
    }
  }
  std::sort(durations.begin(), durations.end());
  if (!durations.empty()) {
    const auto at = [&](std::size_t per_mille) {
      return static_cast<double>(durations[durations.size() * per_mille / 1000]);
    };
    state.counters["p50_ns"] = benchmark::Counter(at(500), benchmark::Counter::kAvgThreads);
    state.counters["p99_ns"] = benchmark::Counter(at(990), benchmark::Counter::kAvgThreads);
    state.counters["p999_ns"] = benchmark::Counter(at(999), benchmark::Counter::kAvgThreads);
  }
  if (state.thread_index() == 0) {  // counters are summed over threads: one thread sets these
    state.counters["live_sessions"] = static_cast<double>(f.sessions.live_sessions(Clock::now()));
    state.counters["bytes_per_session"] = static_cast<double>(f.bytes_per_session);
  }
}
BENCHMARK(BM_SessionTable100k)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
