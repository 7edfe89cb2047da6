// Prometheus' standard process metrics (llmgw/metrics/process_metrics.hpp): the /proc parsing on
// fixed lines, and values read from this very process that agree with what the OS says.

#include "llmgw/metrics/process_metrics.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <map>

#include "llmgw/metrics/gateway_metrics.hpp"

namespace llmgw::metrics {
namespace {

// A real stat line with a command name holding spaces and a ')' (proc(5) fields 14, 15, 22-24:
// utime 250, stime 50, starttime 1000, vsize 4096000, rss 300 pages).
constexpr std::string_view kStatLine =
    "4242 (a) b c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 1000 4096000 300 "
    "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";

TEST(ProcessMetrics, ParsesStatFieldsAfterTheLastParenthesis) {
  const auto stat = parse_proc_stat(kStatLine, 100.0, 4096.0);
  ASSERT_TRUE(stat.has_value());
  EXPECT_DOUBLE_EQ(stat->cpu_seconds, 3.0);                // (250 + 50) / 100
  EXPECT_DOUBLE_EQ(stat->start_seconds_after_boot, 10.0);  // 1000 / 100
  EXPECT_DOUBLE_EQ(stat->virtual_memory_bytes, 4096000.0);
  EXPECT_DOUBLE_EQ(stat->resident_memory_bytes, 300.0 * 4096.0);
}

TEST(ProcessMetrics, RefusesCutLinesAndFindsBootTime) {
  EXPECT_FALSE(parse_proc_stat("4242 (x) S 1 2 3", 100.0, 4096.0).has_value());
  EXPECT_FALSE(parse_proc_stat("no parenthesis", 100.0, 4096.0).has_value());
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1700000000.0);
  EXPECT_FALSE(parse_boot_time("cpu  1 2 3\n").has_value());
}

TEST(ProcessMetrics, ReadsThisProcessUnderTheStandardNames) {
  const int extra = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(extra, 0);
  std::map<std::string, double> values;
  for (const auto& family : ProcessCollector{}.Collect()) {
    ASSERT_EQ(family.metric.size(), 1U) << family.name;
    const auto& metric = family.metric.front();
    values[family.name] =
        family.type == prometheus::MetricType::Counter ? metric.counter.value : metric.gauge.value;
  }
  ::close(extra);
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  ASSERT_EQ(values.size(), 6U);
  EXPECT_GE(values["process_cpu_seconds_total"], 0.0);
  EXPECT_GT(values["process_resident_memory_bytes"], 1e6);
  EXPECT_GE(values["process_virtual_memory_bytes"], values["process_resident_memory_bytes"]);
  EXPECT_GE(values["process_open_fds"], 4.0);  // stdin, stdout, stderr, /dev/null
  EXPECT_GE(values["process_max_fds"], values["process_open_fds"]);
  EXPECT_LE(values["process_start_time_seconds"], now + 1);
  EXPECT_GT(values["process_start_time_seconds"], now - 3600);  // this test started recently
}

TEST(ProcessMetrics, ExpositionCarriesBuildInfoAndProcessFamilies) {
  const std::string text = GatewayMetrics{}.serialize();
  EXPECT_NE(text.find("# TYPE llmgw_build_info gauge"), std::string::npos);
  EXPECT_NE(text.find("llmgw_build_info{"), std::string::npos);
  EXPECT_NE(text.find("version=\""), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
  EXPECT_NE(text.find("# TYPE process_start_time_seconds gauge"), std::string::npos);
}

}  // namespace
}  // namespace llmgw::metrics
