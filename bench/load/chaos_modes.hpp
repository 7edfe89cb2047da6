#pragma once

// The modes of llmgw_load that `make chaos` (bench/chaos/run.sh) drives against a gateway while
// it kills, hangs and floods nodes and the gateway itself. Each returns one JSON object.

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>

namespace llmgw::bench::load {

// requests: closed-loop generation requests on keep-alive connections, with what a client would
// notice counted per request: the status, the gateway's X-Gateway-Route and X-Gateway-Node, and
// for a 200 whether its body ended properly ({"done":true} / data: [DONE]), with an error record
// ({"error":...}) or cut short (the connection closed inside the body). A connection the server
// closed or broke is opened again for the next request.
struct RequestsOptions {
  std::string url;
  std::string path = "/api/chat";  // /api/chat, /api/generate or /v1/chat/completions
  std::size_t connections = 8;
  double duration_s = 0.0;     // stop starting requests after this long (0 = no time bound)
  std::size_t requests = 0;    // stop after this many requests in all (0 = no count bound)
  bool stream = true;          // "stream": true (NDJSON / SSE) or a single JSON body
  std::size_t tokens = 8;      // options.num_predict / max_tokens
  std::string session_prefix;  // connection i sends X-Session-ID: <prefix><i>; empty = none
  double timeout_s = 30.0;     // one request: write, head and whole body
  double think_ms = 0.0;       // pause between two requests of one connection
};
nlohmann::json run_requests(const RequestsOptions& options);

// slowloris: connections that send a request head one byte per interval and never finish it,
// until duration_s; reports how many the server closed and after how long.
struct SlowlorisOptions {
  std::string url;
  std::size_t connections = 500;
  double duration_s = 20.0;
  double interval_ms = 1000.0;
  double connect_per_s = 1000.0;
};
nlohmann::json run_slowloris(const SlowlorisOptions& options);

// flood: connections that each POST one large body (Content-Length announced up front) at a
// steady pace over send_s, reading the answer meanwhile; statuses and the server's memory
// (VmRSS sampled every 50 ms, VmHWM) when pid is given.
struct FloodOptions {
  std::string url;
  std::string path = "/api/show";
  std::size_t connections = 32;
  std::size_t body_bytes = 15 * 1024 * 1024;
  double send_s = 8.0;
  double timeout_s = 60.0;
  int pid = 0;
};
nlohmann::json run_flood(const FloodOptions& options);

}  // namespace llmgw::bench::load
