#pragma once

// The batch flood of `llmgw bench` (issue 11): priority classes and overload honesty under load.
//
// While the multi-turn chats of workload.hpp run (interactive: they send no priority header),
// `clients` closed-loop batch clients each send summarisation requests one after another: a
// fixed instruction plus a long document (`prompt_tokens`), a long answer (`output_tokens`, sent
// as num_predict), no session header, and `X-Request-Priority: batch` unless the mode runs
// without classes (then the header is left out and the gateway treats them as interactive, as it
// treats every request without the header). A client refused with 429 waits its Retry-After (at
// most until the flood stops) and sends the next; any other failure is recorded and it goes on.
// The flood stops when the chats are done; requests already sent are let finish.
//
// Offered load: a closed-loop client keeps one request in flight, so chats + clients is the
// concurrency offered; the fleet's capacity is the sum of the nodes' max_in_flight (with
// --spawn-sims: sims × num_parallel). 2x capacity: clients = 2 × capacity − sessions.
// class_report.hpp turns the records into the per-class report.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmgw/bench/workload.hpp"

namespace llmgw::bench {

struct BatchFloodOptions {
  std::size_t clients = 0;           // 0 = no flood
  std::size_t prompt_tokens = 2000;  // the document to summarise (4 bytes per token)
  std::size_t output_tokens = 256;   // num_predict of each summary
  std::string priority_header = "X-Request-Priority";
  std::string model = "llama3.2";
  std::chrono::milliseconds request_timeout{120'000};  // idle time allowed between bytes
};

// Runs `options.clients` batch clients against base_url until stop() (or destruction).
// `send_priority`: send `<priority_header>: batch` (false: no header, i.e. interactive).
class BatchFlood {
 public:
  BatchFlood(std::string base_url, BatchFloodOptions options, std::uint64_t seed,
             bool send_priority, ProgressCounter* progress = nullptr);
  ~BatchFlood();
  BatchFlood(const BatchFlood&) = delete;
  BatchFlood& operator=(const BatchFlood&) = delete;

  // Asks every client to stop after its current request, joins them and returns every request
  // (session = client index, turn = its request number) and the flood's wall time (from the
  // start to the last answer).
  WorkloadRun stop();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// What one spawned node showed: the most requests it held at once (running or in its own queue:
// ollama-sim's generations_peak) and the gateway's cap on it (nodes[].max_in_flight).
struct NodePeak {
  std::string node;
  std::size_t peak_in_flight = 0;
  std::size_t cap = 0;
};

}  // namespace llmgw::bench
