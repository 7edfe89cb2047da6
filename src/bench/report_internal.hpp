#pragma once

// Internal to the bench report (report.cpp: the tables and CSV; report_html.cpp: the page): reading
// report.json values with defaults, and milliseconds as the report prints them.

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace llmgw::bench::detail {

using nlohmann::json;

// The member `key` of `object`, or an empty object: a reference, so that `.items()` of the result
// can be iterated (items() of a temporary dangles).
inline const json& object_at(const json& object, std::string_view key) {
  static const json empty = json::object();
  const auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : empty;
}

inline double number_at(const json& object, std::string_view key, double fallback = 0.0) {
  const auto it = object.find(key);
  return it != object.end() && it->is_number() ? it->get<double>() : fallback;
}

inline std::string milliseconds(double seconds) {
  return fmt::format("{:.1f}", seconds * 1e3);
}

}  // namespace llmgw::bench::detail
