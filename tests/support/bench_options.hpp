#pragma once

// Short `llmgw bench` runs for the tests: a workload of a few sessions and turns without think
// time, one seed, and spawned sims two slots wide that answer in a fraction of real time.

#include <chrono>
#include <cstddef>

#include "llmgw/bench/bench.hpp"

namespace llmgw::testing {

inline bench::BenchOptions quick_bench(std::size_t sessions, std::size_t turns,
                                       std::size_t user_message_tokens,
                                       std::size_t max_output_tokens) {
  bench::BenchOptions options;
  options.workload.sessions = sessions;
  options.workload.turns = turns;
  options.workload.think_time = std::chrono::milliseconds{0};
  options.workload.user_message_tokens = user_message_tokens;
  options.workload.max_output_tokens = max_output_tokens;
  options.seeds = {1};
  return options;
}

// Two sims at `time_scale`, each answering min..max output tokens.
inline bench::SpawnOptions quick_sims(double time_scale, std::size_t min_output_tokens,
                                      std::size_t max_output_tokens) {
  bench::SpawnOptions spawn;
  spawn.sims = 2;
  spawn.num_parallel = 2;
  spawn.time_scale = time_scale;
  spawn.min_output_tokens = min_output_tokens;
  spawn.max_output_tokens = max_output_tokens;
  return spawn;
}

}  // namespace llmgw::testing
