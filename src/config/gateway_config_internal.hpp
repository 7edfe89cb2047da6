// Private to src/config: what the gateway_config*.cpp files share. gateway_config.cpp gathers raw
// values from YAML, the environment and --set; gateway_config_values.cpp converts and validates
// them; gateway_config_keys.cpp holds the key table and describes it (--help-config).
#pragma once

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::config::detail {

using Milliseconds = std::chrono::milliseconds;

// Where a key's value lives in its struct. The alternative held is also the key's type, so the
// table below is the only place that lists the fields: YAML keys, LLMGW_* variables, `--set`
// overrides, bounds checks and `--help-config` all read it.
using Target = std::variant<std::string*, std::uint16_t*, unsigned*, std::size_t*, double*, bool*,
                            Milliseconds*>;

enum class Bound { kAny, kNonNegative, kPositive };

template <typename Root>
struct KeySpec {
  std::string path;
  Target (*target)(Root&);
  Bound bound;
  bool secret;
  std::string description;
};

const std::vector<KeySpec<GatewayConfig>>& gateway_keys();
const std::vector<KeySpec<NodeConfig>>& node_keys();

inline constexpr std::string_view kNodesPath = "nodes";
inline constexpr std::string_view kNodesEnv = "LLMGW_NODES";
inline constexpr std::string_view kOverrideOrigin = "--set";
inline constexpr std::string_view kDefaultNodeUrl = "http://127.0.0.1:11434";
inline constexpr unsigned kMaxWorkers = 1024;

// ---------------------------------------------------------------------------------------------
// Small text helpers (gateway_config_keys.cpp)

std::string trim(std::string_view text);
std::string lower(std::string_view text);
// A value quoted for an error message; long values are cut so one bad key cannot flood the output.
std::string quote_value(std::string_view value);
std::string format_double(double value);
// " (did you mean x?)" for the closest candidate within a few edits, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

// ---------------------------------------------------------------------------------------------
// Problems: every error found, each "<path>: <problem>", with where an overridden value came from.

class Problems {
 public:
  void note_origin(const std::string& path, std::string origin) {
    origins_[path] = std::move(origin);
  }

  void add(const std::string& path, const std::string& problem) {
    std::string line = path + ": " + problem;
    if (const std::string origin = origin_of(path); !origin.empty()) {
      line += " (from " + origin + ")";
    }
    lines_.push_back(std::move(line));
  }

  void throw_if_any() const {
    if (lines_.empty()) {
      return;
    }
    std::string message;
    for (const auto& line : lines_) {
      if (!message.empty()) {
        message += '\n';
      }
      message += line;
    }
    throw ConfigError(message);
  }

  // The origin of the path or of its nearest enclosing key: "nodes[1].url" falls back to
  // "nodes[1]" (a node from LLMGW_NODES) and then "nodes".
  std::string origin_of(std::string path) const {
    while (!path.empty()) {
      if (const auto it = origins_.find(path); it != origins_.end()) {
        return it->second;
      }
      const auto cut = path.find_last_of(".[");
      if (cut == std::string::npos) {
        break;
      }
      path.resize(cut);
    }
    return {};
  }

 private:
  std::map<std::string, std::string> origins_;
  std::vector<std::string> lines_;
};

// ---------------------------------------------------------------------------------------------
// Typed values (gateway_config_values.cpp)

std::string type_name(const Target& target);
std::string expected_what(const Target& target);
std::string format_value(const Target& target);
// "" when the held value satisfies the bound, else the problem.
std::string check_bound(const Target& target, Bound bound);
// Parses a scalar into the target; returns the problem, or "" when stored. Secret values are never
// quoted back.
std::string assign(const Target& target, const std::string& raw_text, Bound bound, bool secret);

template <typename Number>
std::optional<Number> parse_number(std::string_view text) {
  Number value{};
  const auto* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, value);
  if (result.ec != std::errc{} || result.ptr != end) {
    return std::nullopt;
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Node URLs and validation (gateway_config_values.cpp)

struct NodeAddress {
  std::string host;        // without IPv6 brackets, ready for the resolver
  std::uint16_t port = 0;  // 80 for http, 443 for https when the URL has none
  std::string id;          // "host:port", IPv6 in brackets
  bool tls = false;        // https
};

// The address of an http(s)://host[:port][/] URL, or the problem in `problem`.
std::optional<NodeAddress> parse_node_url(const std::string& url, std::string& problem);

bool is_ip_address(const std::string& text);
// Adds "<path>: must be one of a, b; got "x"" when `value` is not one of `allowed`.
void check_one_of(const std::string& path, const std::string& value,
                  const std::vector<std::string>& allowed, Problems& problems);

void validate_into(const GatewayConfig& config, Problems& problems);
// discovery.dns (discovery_config.cpp).
void validate_discovery(const GatewayConfig& config, Problems& problems);
// routing.placement_store and its password (store_url.cpp).
void validate_placement_store(const GatewayConfig& config, Problems& problems);
// listen.tls, admin.listen.tls and upstream_tls (tls_config.cpp): the files are read and checked
// (a certificate, its key, that they match; a CA bundle), so a bad one stops the start or the
// reload with the key's path.
void validate_tls(const GatewayConfig& config, Problems& problems);
// Makes the TLS file paths named in the YAML file absolute against `base_dir` (those from the
// environment or a flag stay relative to the working directory).
void resolve_tls_paths(GatewayConfig& config, const std::filesystem::path& base_dir,
                       const Problems& problems);

}  // namespace llmgw::config::detail
