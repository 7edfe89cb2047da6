#pragma once

// The gateway's log output: spdlog to stderr, as text or as one JSON object per line
// (log.format). Every line goes through one formatter, so in JSON format every line is JSON: the
// listening line, ejections, warnings, reload errors and shutdown as much as access lines.
//
//   text: 2026-11-29T15:00:00.123 info llmgw listening on 0.0.0.0:8000 ...
//   json: {"time":"2026-11-29T15:00:00.123","level":"info","message":"llmgw listening on ..."}
//   json access line:
//   {"time":"...","level":"info","access":{"client":"10.0.0.7","method":"POST",...}}
//
// A message is escaped into a JSON string by nlohmann::json (quotes, control characters, invalid
// UTF-8 replaced), never by hand. Access lines go through their own logger (access_logger()),
// whose messages are JSON objects already and are embedded as one.
//
// Thread safety: configure_logging() may be called again while other threads log (a SIGHUP
// reload); spdlog swaps the formatter under the sink's lock.

#include <spdlog/logger.h>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::server {

// The first call installs a stderr logger as spdlog's default and the access logger on the same
// sink; later calls change the level and the format in place.
void configure_logging(const config::LogConfig& log);

// A reload's new level and format, applied only when configure_logging() installed the loggers
// (`llmgw serve`); a program that embeds the Gateway keeps its own logging.
void update_logging(const config::LogConfig& log);

// The logger for access lines: in JSON format its message must be one serialised JSON object.
// Before configure_logging() it is spdlog's default logger.
spdlog::logger& access_logger();

}  // namespace llmgw::server
