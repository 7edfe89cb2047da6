#pragma once

// Helpers shared by the ollama-sim integration tests: an in-process emulator on an ephemeral port
// and small request helpers over net::HttpClient.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmgw/net/http_client.hpp"
#include "llmgw/sim/ollama_sim.hpp"

namespace llmgw::sim::testing {

// Fast defaults: every simulated delay is tiny, so the API tests run in milliseconds.
inline SimOptions fast_options() {
  SimOptions options;
  options.latency.time_scale = 0.001;
  options.output = {4, 12};
  options.seed = 42;
  return options;
}

class RunningSim {
 public:
  explicit RunningSim(SimOptions options = fast_options()) : sim_(std::move(options)) {
    sim_.start();
  }
  OllamaSim& operator*() { return sim_; }
  OllamaSim* operator->() { return &sim_; }
  std::string url(std::string_view path) const { return sim_.base_url() + std::string{path}; }

 private:
  OllamaSim sim_;
};

inline net::ClientResponse post(net::HttpClient& client, const std::string& url,
                                const std::string& body, const net::BodyCallback& on_body = {}) {
  net::ClientRequest request;
  request.method = "POST";
  request.url = url;
  request.headers = {{"Content-Type", "application/json"}};
  request.body = body;
  return client.send(request, on_body);
}

inline net::ClientResponse get(net::HttpClient& client, const std::string& url) {
  net::ClientRequest request;
  request.url = url;
  return client.send(request);
}

// The non-empty lines of an NDJSON body, parsed.
inline std::vector<nlohmann::json> ndjson_records(const std::string& body) {
  std::vector<nlohmann::json> records;
  std::size_t start = 0;
  while (start < body.size()) {
    const auto end = body.find('\n', start);
    const auto line =
        body.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!line.empty()) {
      records.push_back(nlohmann::json::parse(line));
    }
    if (end == std::string::npos) {
      break;
    }
    start = end + 1;
  }
  return records;
}

// The payloads of the "data: " events of an SSE body, in order.
inline std::vector<std::string> sse_payloads(const std::string& body) {
  std::vector<std::string> payloads;
  std::size_t start = 0;
  while (true) {
    const auto at = body.find("data: ", start);
    if (at == std::string::npos) {
      break;
    }
    const auto end = body.find("\n\n", at);
    payloads.push_back(
        body.substr(at + 6, end == std::string::npos ? std::string::npos : end - at - 6));
    if (end == std::string::npos) {
      break;
    }
    start = end + 2;
  }
  return payloads;
}

}  // namespace llmgw::sim::testing
