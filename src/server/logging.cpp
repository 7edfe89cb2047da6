#include "llmgw/server/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>

namespace llmgw::server {
namespace {

constexpr std::string_view kAccessLoggerName = "access";

// `%*` in the JSON pattern: `"message":"<escaped text>"`, or `"access":<object>` for the access
// logger, whose messages are serialised JSON objects already (a different key, so that a log
// store never sees "message" as a string on one line and an object on the next).
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm& /*time*/,
              spdlog::memory_buf_t& dest) override {
    const std::string_view text{msg.payload.data(), msg.payload.size()};
    if (msg.logger_name == kAccessLoggerName) {
      append(dest, R"("access":)");
      append(dest, text);
      return;
    }
    append(dest, R"("message":)");
    append(dest, nlohmann::json(std::string{text})
                     .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }

 private:
  static void append(spdlog::memory_buf_t& dest, std::string_view text) {
    dest.append(text.data(), text.data() + text.size());
  }
};

std::unique_ptr<spdlog::formatter> make_formatter(const std::string& format) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (format == "json") {
    formatter->add_flag<JsonMessageFlag>('*').set_pattern(
        R"({"time":"%Y-%m-%dT%H:%M:%S.%e","level":"%l",%*})");
  } else {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  }
  return formatter;
}

std::mutex setup_mutex;
std::shared_ptr<spdlog::logger> main_logger;    // guarded by setup_mutex
std::shared_ptr<spdlog::logger> access_holder;  // keeps *access alive; guarded by setup_mutex
std::atomic<spdlog::logger*> access{nullptr};   // read on every request without a lock

}  // namespace

void configure_logging(const config::LogConfig& log) {
  std::lock_guard lock(setup_mutex);
  if (!main_logger) {
    // One sink for both loggers: one formatter, and lines never interleave.
    auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    main_logger = std::make_shared<spdlog::logger>("llmgw", sink);
    access_holder = std::make_shared<spdlog::logger>(std::string{kAccessLoggerName}, sink);
    spdlog::set_default_logger(main_logger);
    access.store(access_holder.get(), std::memory_order_release);
  }
  const auto level = spdlog::level::from_str(log.level);
  main_logger->set_level(level);
  access_holder->set_level(level);
  // Both loggers share the sink: setting the formatter once sets it for both.
  main_logger->set_formatter(make_formatter(log.format));
}

void update_logging(const config::LogConfig& log) {
  {
    std::lock_guard lock(setup_mutex);
    if (!main_logger) {
      return;
    }
  }
  configure_logging(log);
}

spdlog::logger& access_logger() {
  if (auto* logger = access.load(std::memory_order_acquire)) {
    return *logger;
  }
  return *spdlog::default_logger_raw();
}

}  // namespace llmgw::server
