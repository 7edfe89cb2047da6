// Reading the routing fields of a request body (issue 9, "cost of reading the body"): the
// gateway's scan_body (simdjson On-Demand, in place) against the nlohmann SAX scan it replaced,
// for 1 KB, 100 KB and 1 MB chat bodies with "model" first and last. bench/RESULTS.md keeps the
// figures. Run: build/release/bench/llmgw_micro_bench --benchmark_filter=BodyScan

#include <benchmark/benchmark.h>

#include <nlohmann/json.hpp>
#include <string>

#include "llmgw/routing/session_key.hpp"

namespace {

using llmgw::routing::BodyFields;

// The candidate that lost: nlohmann's SAX parser with a handler that keeps only the wanted
// fields. Its lexer still copies every string token whole before the handler sees it.
class NlohmannScanner : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit NlohmannScanner(BodyFields& out) : out_(out) {}
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
  bool start_object(std::size_t) override { return ++depth_ > 0; }
  bool end_object() override { return --depth_ >= 0; }
  bool start_array(std::size_t) override { return ++depth_ > 0; }
  bool end_array() override { return --depth_ >= 0; }
  bool key(string_t& name) override {
    key_ = name;
    return true;
  }
  bool string(string_t& value) override {
    if (depth_ == 1 && key_ == "model") {
      out_.model = value;
    } else if (depth_ == 3 && key_ == "content" && out_.first_user.empty()) {
      out_.first_user.assign(value, 0, 1024);
    }
    return true;
  }

 private:
  BodyFields& out_;
  int depth_ = 0;
  std::string key_;
};

// A chat body of about `bytes` bytes: one long user message, "model" first or last.
std::string chat_body(std::size_t bytes, bool model_last) {
  const nlohmann::json messages =
      nlohmann::json::array({{{"role", "system"}, {"content", "You are terse."}},
                             {{"role", "user"}, {"content", std::string(bytes, 'a')}}});
  const std::string model = R"("model":"llama3.2:latest")";
  const std::string rest = R"("messages":)" + messages.dump() + R"(,"stream":true)";
  return model_last ? "{" + rest + "," + model + "}" : "{" + model + "," + rest + "}";
}

// The body as the gateway holds it: padded for simdjson (request_reader.cpp reserves it).
std::string padded(std::string body) {
  body.reserve(body.size() + llmgw::routing::body_scan_padding());
  return body;
}

void BM_BodyScanSimdjson(benchmark::State& state) {
  const std::string body =
      padded(chat_body(static_cast<std::size_t>(state.range(0)), state.range(1) != 0));
  for (auto _ : state) {
    auto fields = llmgw::routing::scan_body(body, 1024);
    benchmark::DoNotOptimize(fields);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

void BM_BodyScanSimdjsonModelOnly(benchmark::State& state) {
  const std::string body =
      padded(chat_body(static_cast<std::size_t>(state.range(0)), state.range(1) != 0));
  for (auto _ : state) {
    auto fields = llmgw::routing::scan_body(body, 1024, true);
    benchmark::DoNotOptimize(fields);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

void BM_BodyScanNlohmannSax(benchmark::State& state) {
  const std::string body = chat_body(static_cast<std::size_t>(state.range(0)), state.range(1) != 0);
  for (auto _ : state) {
    BodyFields fields;
    NlohmannScanner scanner(fields);
    fields.valid_json = nlohmann::json::sax_parse(body, &scanner);
    benchmark::DoNotOptimize(fields);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * body.size()));
}

void body_sizes(benchmark::internal::Benchmark* bench) {
  bench->ArgNames({"bytes", "model_last"});
  for (const std::int64_t bytes : {1'000, 100'000, 1'000'000}) {
    bench->Args({bytes, 0})->Args({bytes, 1});
  }
  bench->Unit(benchmark::kMicrosecond);
}

}  // namespace

BENCHMARK(BM_BodyScanSimdjson)->Apply(body_sizes);
BENCHMARK(BM_BodyScanSimdjsonModelOnly)->Apply(body_sizes);
BENCHMARK(BM_BodyScanNlohmannSax)->Apply(body_sizes);
