// Micro benchmarks of the routing hot path: the MD5 position of a session key, the ring lookup,
// the bounded-load pick, the session table, round-robin and the ring build. Every figure is time
// per operation.
//
//   ./build/bench-release/bench/llmgw_micro_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)
//
// Lookups cycle through a fixed table of pre-hashed keys so that the benchmark measures the
// binary search over realistic, cache-cold-ish positions rather than one hot key.

#include <benchmark/benchmark.h>

#include <cstdint>
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
using llmgw::routing::RingMember;
using llmgw::routing::RoutingPolicy;
using llmgw::routing::RoutingTable;

constexpr std::size_t kKeyCount = 4096;  // a power of two: the index wraps with a mask

std::vector<RingMember> members(std::size_t count) {
  std::vector<RingMember> result;
  result.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    result.push_back({"node-" + std::to_string(i) + ":11434", 1.0});
  }
  return result;
}

std::vector<std::string> session_keys() {
  std::vector<std::string> keys;
  keys.reserve(kKeyCount);
  std::mt19937_64 rng(42);
  for (std::size_t i = 0; i < kKeyCount; ++i) {
    keys.push_back("session-" + std::to_string(rng()));
  }
  return keys;
}

std::vector<std::uint64_t> key_positions() {
  std::vector<std::uint64_t> positions;
  positions.reserve(kKeyCount);
  for (const auto& key : session_keys()) {
    positions.push_back(llmgw::routing::ring_position(key));
  }
  return positions;
}

RoutingTable routing_table(std::size_t count) {
  std::vector<std::shared_ptr<NodeState>> nodes;
  for (const auto& member : members(count)) {
    nodes.push_back(std::make_shared<NodeState>(member.id));
  }
  return RoutingTable(std::move(nodes), HashRing::kDefaultVirtualNodes);
}

void BM_RingPosition(benchmark::State& state) {
  const auto keys = session_keys();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(llmgw::routing::ring_position(keys[i++ & (kKeyCount - 1)]));
  }
}
BENCHMARK(BM_RingPosition);

void BM_RingOwner(benchmark::State& state) {
  const HashRing ring(members(static_cast<std::size_t>(state.range(0))));
  const auto positions = key_positions();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(ring.owner(positions[i++ & (kKeyCount - 1)]));
  }
  state.counters["vnodes"] = static_cast<double>(ring.virtual_node_count());
}
BENCHMARK(BM_RingOwner)->Arg(3)->Arg(8)->Arg(16)->Arg(32)->Arg(64);

// The whole per-request routing cost of a keyed request: MD5 of the session id plus the lookup.
void BM_RingOwnerFromKey(benchmark::State& state) {
  const HashRing ring(members(static_cast<std::size_t>(state.range(0))));
  const auto keys = session_keys();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        ring.owner(llmgw::routing::ring_position(keys[i++ & (kKeyCount - 1)])));
  }
}
BENCHMARK(BM_RingOwnerFromKey)->Arg(16);

// plan_keyed with bounded loads. range(1) selects the load: 0 = idle (the owner always has room),
// 1 = every node at its cap except one, so each pick walks the ring until it finds that node.
void BM_PlanKeyedBounded(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const RoutingTable table = routing_table(count);
  const RoutingPolicy policy{.balance_factor = 1.25, .max_attempts = 3};
  std::int64_t total_in_flight = 0;
  if (state.range(1) == 1) {
    const std::int64_t per_node = 8;
    total_in_flight = per_node * static_cast<std::int64_t>(count - 1);
    const auto cap =
        llmgw::routing::bounded_load_cap(table, 0, total_in_flight, policy.balance_factor);
    for (std::size_t n = 0; n + 1 < count; ++n) {
      table.node(n).in_flight.store(cap);
    }
  }
  const auto positions = key_positions();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(llmgw::routing::plan_keyed(table, positions[i++ & (kKeyCount - 1)],
                                                        total_in_flight, policy));
  }
}
BENCHMARK(BM_PlanKeyedBounded)
    ->ArgNames({"nodes", "saturated"})
    ->Args({3, 0})
    ->Args({16, 0})
    ->Args({64, 0})
    ->Args({16, 1})
    ->Args({64, 1});

void BM_PlanKeyedPlainRing(benchmark::State& state) {
  const RoutingTable table = routing_table(static_cast<std::size_t>(state.range(0)));
  const RoutingPolicy policy{.balance_factor = 0.0, .max_attempts = 3};
  const auto positions = key_positions();
  std::size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(
        llmgw::routing::plan_keyed(table, positions[i++ & (kKeyCount - 1)], 0, policy));
  }
}
BENCHMARK(BM_PlanKeyedPlainRing)->Arg(16);

// SessionTable::plan (balance_by: sessions, the default) for 4096 live sessions on 16 nodes, the
// key's MD5 position precomputed as above: a hash-map lookup under a mutex plus plan_keyed.
void BM_SessionTablePlan(benchmark::State& state) {
  const RoutingTable table = routing_table(16);
  const RoutingPolicy policy{.balance_factor = 1.25, .max_attempts = 3};
  llmgw::routing::SessionTable sessions({});
  const auto positions = key_positions();
  const auto now = llmgw::routing::SessionTable::Clock::now();
  for (std::size_t k = 0; k < kKeyCount; ++k) {
    sessions.plan(table, positions[k], 0, policy, now);
  }
  std::size_t i = 0;
  for (auto _ : state) {
    const std::size_t k = i++ & (kKeyCount - 1);
    benchmark::DoNotOptimize(sessions.plan(table, positions[k], 0, policy, now));
  }
}
BENCHMARK(BM_SessionTablePlan);

void BM_PlanRoundRobin(benchmark::State& state) {
  const RoutingTable table = routing_table(static_cast<std::size_t>(state.range(0)));
  const RoutingPolicy policy;
  std::uint64_t ticket = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(llmgw::routing::plan_round_robin(table, ticket++, policy));
  }
}
BENCHMARK(BM_PlanRoundRobin)->Arg(3)->Arg(16)->Arg(64);

// Building a ring happens off the request path (membership changes), but it bounds how fast the
// admin API and health transitions can publish a new snapshot.
void BM_RingBuild(benchmark::State& state) {
  const auto nodes = members(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    const HashRing ring(nodes);
    benchmark::DoNotOptimize(ring.virtual_node_count());
  }
}
BENCHMARK(BM_RingBuild)->Arg(3)->Arg(16)->Arg(64)->Unit(benchmark::kMicrosecond);

}  // namespace
