#pragma once

// Prometheus' standard process metrics, under the names every exporter uses so that stock
// dashboards and alerts work: process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds, process_start_time_seconds.
// prometheus-cpp 1.0 has no process collector, so this one reads Linux's /proc at scrape time.
//
// Thread safety: Collect() reads files only; call it from any thread.

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::metrics {

// The fields of /proc/<pid>/stat that the metrics need, in base units.
struct ProcessStat {
  double cpu_seconds = 0;  // utime + stime
  double start_seconds_after_boot = 0;
  double virtual_memory_bytes = 0;   // vsize
  double resident_memory_bytes = 0;  // rss pages x page size
};

// Parses one /proc/<pid>/stat line (proc(5)); the command name may hold spaces and parentheses,
// so the fields are counted from its last ')'. nullopt when the line is cut short.
std::optional<ProcessStat> parse_proc_stat(std::string_view line, double ticks_per_second,
                                           double page_bytes);

// The `btime` line of /proc/stat: boot time in seconds since the epoch; nullopt without one.
std::optional<double> parse_boot_time(std::string_view proc_stat);

class ProcessCollector final : public prometheus::Collectable {
 public:
  // `proc` is the procfs root (a test may point it elsewhere).
  explicit ProcessCollector(std::string proc = "/proc");

  // The families that could be read now; a missing file drops its metrics, never throws.
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  std::string proc_;
};

}  // namespace llmgw::metrics
