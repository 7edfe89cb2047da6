#pragma once

// llmgw_load keyed: an open-loop load of multi-turn sessions at a fixed arrival rate, each request
// to a replica chosen at random, with latency split between a session's first turn and its later
// ones (bench/RESULTS.md §7.2: what a shared placement store adds to a first turn, and that later
// turns cost the same as without it).
//
// Arrival k is sent at start + k / rate whatever happened to the earlier ones (open loop: a slow
// answer does not slow the arrivals, and a request's latency is measured from its scheduled
// arrival, so time spent waiting for a free connection counts). Arrival k belongs to session
// slot k mod W (W = --window), turn (k / W) mod T: each session's turns are W arrivals apart
// (100 ms at 1,000/s with W = 100), and after T turns its slot starts a new session.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace llmgw::bench::load {

struct KeyedOptions {
  std::vector<std::string> urls;  // the replicas; each request goes to one at random
  double rate = 1000.0;           // arrivals per second
  double duration_s = 10.0;       // stop scheduling arrivals after this long
  std::size_t turns = 4;          // turns per session
  std::size_t window = 100;       // sessions in progress at once (arrivals between two turns)
  std::string session_prefix = "keyed-";
  std::size_t tokens = 1;  // options.num_predict of each /api/generate
  double warmup_s = 1.0;   // arrivals in the first warmup_s are sent but not measured
  unsigned seed = 1;       // replica choice
};

nlohmann::json run_keyed(const KeyedOptions& options);

}  // namespace llmgw::bench::load
