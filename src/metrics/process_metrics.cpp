#include "llmgw/metrics/process_metrics.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace llmgw::metrics {
namespace {

std::optional<std::string> read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

prometheus::MetricFamily family(std::string name, std::string help, prometheus::MetricType type,
                                double value) {
  prometheus::ClientMetric metric;
  if (type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  return {std::move(name), std::move(help), type, {metric}};
}

std::optional<double> open_fds(const std::string& fd_dir) {
  std::error_code error;
  std::filesystem::directory_iterator it(fd_dir, error);
  if (error) {
    return std::nullopt;
  }
  double count = 0;
  for (; it != std::filesystem::directory_iterator{}; it.increment(error)) {
    if (error) {
      return std::nullopt;
    }
    ++count;
  }
  return count;
}

}  // namespace

std::optional<ProcessStat> parse_proc_stat(std::string_view line, double ticks_per_second,
                                           double page_bytes) {
  // Fields after "pid (comm)": 3 state, ... 14 utime, 15 stime, ... 22 starttime, 23 vsize,
  // 24 rss (proc(5), 1-based over the whole line).
  const auto close = line.rfind(')');
  if (close == std::string_view::npos || ticks_per_second <= 0) {
    return std::nullopt;
  }
  std::string_view rest = line.substr(close + 1);
  std::vector<double> fields;  // fields[0] is field 3 (state, read as 0)
  while (!rest.empty() && fields.size() < 22) {
    const auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(start);
    const auto end = std::min(rest.find(' '), rest.size());
    double value = 0;
    std::from_chars(rest.data(), rest.data() + end, value);
    fields.push_back(value);
    rest.remove_prefix(end);
  }
  if (fields.size() < 22) {
    return std::nullopt;
  }
  const auto field = [&](std::size_t number) { return fields[number - 3]; };
  return ProcessStat{(field(14) + field(15)) / ticks_per_second, field(22) / ticks_per_second,
                     field(23), field(24) * page_bytes};
}

std::optional<double> parse_boot_time(std::string_view proc_stat) {
  constexpr std::string_view kKey = "\nbtime ";
  const auto at = proc_stat.find(kKey);
  if (at == std::string_view::npos) {
    return std::nullopt;
  }
  const auto digits = proc_stat.substr(at + kKey.size());
  double value = 0;
  const auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (error != std::errc{}) {
    return std::nullopt;
  }
  return value;
}

ProcessCollector::ProcessCollector(std::string proc) : proc_(std::move(proc)) {}

std::vector<prometheus::MetricFamily> ProcessCollector::Collect() const {
  using prometheus::MetricType;
  std::vector<prometheus::MetricFamily> families;
  const auto stat_line = read_file(proc_ + "/self/stat");
  const auto stat = stat_line
                        ? parse_proc_stat(*stat_line, static_cast<double>(sysconf(_SC_CLK_TCK)),
                                          static_cast<double>(sysconf(_SC_PAGESIZE)))
                        : std::nullopt;
  if (stat) {
    families.push_back(family("process_cpu_seconds_total",
                              "Total user and system CPU time spent in seconds.",
                              MetricType::Counter, stat->cpu_seconds));
    families.push_back(family("process_resident_memory_bytes", "Resident memory size in bytes.",
                              MetricType::Gauge, stat->resident_memory_bytes));
    families.push_back(family("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                              MetricType::Gauge, stat->virtual_memory_bytes));
    const auto system_stat = read_file(proc_ + "/stat");
    const auto boot = system_stat ? parse_boot_time(*system_stat) : std::nullopt;
    if (boot) {
      families.push_back(family("process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.",
                                MetricType::Gauge, *boot + stat->start_seconds_after_boot));
    }
  }
  if (const auto fds = open_fds(proc_ + "/self/fd")) {
    families.push_back(
        family("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, *fds));
  }
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    const double max_fds =
        limit.rlim_cur == RLIM_INFINITY ? 0.0 : static_cast<double>(limit.rlim_cur);
    families.push_back(family("process_max_fds", "Maximum number of open file descriptors.",
                              MetricType::Gauge, max_fds));
  }
  return families;
}

}  // namespace llmgw::metrics
