#include "llmgw/config/gateway_config.hpp"

#include <arpa/inet.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <limits>
#include <numeric>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>
#include <variant>

extern char** environ;  // POSIX; read by llmgw_environment()

namespace llmgw::config {
namespace {

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

// A member of the root struct as a Target; a macro so that each table row stays one line.
#define LLMGW_FIELD(Root, member) [](Root& root) -> Target { return &root.member; }
#define LLMGW_KEY(path, member, bound, description)                     \
  KeySpec<GatewayConfig> {                                              \
    path, LLMGW_FIELD(GatewayConfig, member), bound, false, description \
  }

const std::vector<KeySpec<GatewayConfig>>& gateway_keys() {
  using enum Bound;
  static const std::vector<KeySpec<GatewayConfig>> keys{
      LLMGW_KEY("listen.address", listen.address, kAny, "IP address to listen on"),
      LLMGW_KEY("listen.port", listen.port, kAny, "TCP port to listen on; 0 = ephemeral"),
      LLMGW_KEY("workers", workers, kAny, "I/O threads; 0 = one per core"),
      LLMGW_KEY("routing.virtual_nodes", routing.virtual_nodes, kPositive,
                "virtual nodes per node on the ring at weight 1"),
      LLMGW_KEY("routing.session_header", routing.session_header, kAny,
                "request header whose value is the session key"),
      LLMGW_KEY("routing.balance_factor", routing.balance_factor, kAny,
                "bounded-load factor c (>= 1); 0 = plain ring"),
      LLMGW_KEY("routing.max_attempts", routing.max_attempts, kPositive,
                "nodes tried for one request before 502/504"),
      LLMGW_KEY("timeouts.connect_ms", timeouts.connect, kPositive, "TCP connect to a node"),
      LLMGW_KEY("timeouts.first_byte_ms", timeouts.first_byte, kPositive,
                "request sent -> response head from the node"),
      LLMGW_KEY("timeouts.idle_ms", timeouts.idle, kNonNegative,
                "between two body reads; 0 = no limit"),
      LLMGW_KEY("timeouts.total_ms", timeouts.total, kNonNegative, "whole request; 0 = no limit"),
      LLMGW_KEY("timeouts.client_header_ms", timeouts.client_header, kNonNegative,
                "idle client connection -> request head read; 0 = no limit"),
      LLMGW_KEY("limits.max_header_bytes", limits.max_header_bytes, kPositive,
                "request head size; larger -> 431"),
      LLMGW_KEY("limits.max_body_bytes", limits.max_body_bytes, kPositive,
                "request body size; larger -> 413"),
      LLMGW_KEY("limits.max_connections", limits.max_connections, kPositive,
                "concurrent client connections, all workers together"),
      LLMGW_KEY("limits.max_idle_upstream_per_node", limits.max_idle_upstream_per_node, kPositive,
                "pooled keep-alive connections per node per worker"),
      LLMGW_KEY("health.path", health.path, kAny, "path probed on each node"),
      LLMGW_KEY("health.interval_ms", health.interval, kPositive, "time between probes"),
      LLMGW_KEY("health.timeout_ms", health.timeout, kPositive, "one probe's deadline"),
      LLMGW_KEY("health.unhealthy_threshold", health.unhealthy_threshold, kPositive,
                "consecutive failures before a node is ejected"),
      LLMGW_KEY("health.healthy_threshold", health.healthy_threshold, kPositive,
                "consecutive good probes before it is taken back"),
      LLMGW_KEY("shutdown.drain_ms", drain, kNonNegative,
                "after SIGTERM, time in-flight requests get to finish"),
      LLMGW_KEY("log.level", log.level, kAny, "trace, debug, info, warn, error or off"),
      LLMGW_KEY("log.format", log.format, kAny, "text or json"),
      LLMGW_KEY("log.access_log", log.access_log, kAny, "one log line per request"),
      KeySpec<GatewayConfig>{"admin.token", LLMGW_FIELD(GatewayConfig, admin.token), kAny, true,
                             "bearer token for /admin/*; empty disables the admin API"},
      LLMGW_KEY("admin.token_file", admin.token_file, kAny,
                "file whose first line is the admin token (instead of admin.token)"),
  };
  return keys;
}

const std::vector<KeySpec<NodeConfig>>& node_keys() {
  static const std::vector<KeySpec<NodeConfig>> keys{
      {"name", LLMGW_FIELD(NodeConfig, name), Bound::kAny, false,
       "stable id on the ring; default host:port"},
      {"url", LLMGW_FIELD(NodeConfig, url), Bound::kAny, false, "http://host[:port] (required)"},
      {"weight", LLMGW_FIELD(NodeConfig, weight), Bound::kPositive, false,
       "scales the node's virtual-node count"},
  };
  return keys;
}

#undef LLMGW_KEY
#undef LLMGW_FIELD

constexpr std::string_view kNodesPath = "nodes";
constexpr std::string_view kNodesEnv = "LLMGW_NODES";
constexpr std::string_view kOverrideOrigin = "--set";
constexpr std::string_view kDefaultNodeUrl = "http://127.0.0.1:11434";
constexpr unsigned kMaxWorkers = 1024;

// ---------------------------------------------------------------------------------------------
// Small text helpers

std::string trim(std::string_view text) {
  const auto is_space = [](unsigned char c) { return std::isspace(c) != 0; };
  while (!text.empty() && is_space(static_cast<unsigned char>(text.front()))) {
    text.remove_prefix(1);
  }
  while (!text.empty() && is_space(static_cast<unsigned char>(text.back()))) {
    text.remove_suffix(1);
  }
  return std::string{text};
}

std::string lower(std::string_view text) {
  std::string out{text};
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

// A value quoted for an error message; long values are cut so one bad key cannot flood the output.
std::string quote_value(std::string_view value) {
  constexpr std::size_t kMaxShown = 80;
  std::string shown{value.substr(0, kMaxShown)};
  if (value.size() > kMaxShown) {
    shown += "...";
  }
  std::ostringstream out;
  out << std::quoted(shown);
  return out.str();
}

std::string format_double(double value) {
  std::array<char, 64> buffer{};
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return std::string(buffer.data(), result.ptr);
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  std::iota(row.begin(), row.end(), std::size_t{0});
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// " (did you mean x?)" for the closest candidate within a few edits, else "".
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates) {
  const std::string needle = lower(word);
  const std::size_t allowed = std::max<std::size_t>(2, needle.size() / 4);
  const std::string* best = nullptr;
  std::size_t best_distance = allowed + 1;
  for (const auto& candidate : candidates) {
    const std::size_t distance = edit_distance(needle, lower(candidate));
    if (distance < best_distance) {
      best_distance = distance;
      best = &candidate;
    }
  }
  return best == nullptr ? std::string{} : " (did you mean " + *best + "?)";
}

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
// Typed values

std::string type_name(const Target& target) {
  struct Visitor {
    std::string operator()(std::string*) const { return "string"; }
    std::string operator()(std::uint16_t*) const { return "port"; }
    std::string operator()(unsigned*) const { return "integer"; }
    std::string operator()(std::size_t*) const { return "integer"; }
    std::string operator()(double*) const { return "number"; }
    std::string operator()(bool*) const { return "boolean"; }
    std::string operator()(Milliseconds*) const { return "milliseconds"; }
  };
  return std::visit(Visitor{}, target);
}

std::string expected_what(const Target& target) {
  if (std::holds_alternative<std::string*>(target)) {
    return "a string";
  }
  if (std::holds_alternative<double*>(target)) {
    return "a number";
  }
  if (std::holds_alternative<bool*>(target)) {
    return "true or false";
  }
  return "an integer";
}

std::string format_value(const Target& target) {
  struct Visitor {
    std::string operator()(std::string* value) const { return quote_value(*value); }
    std::string operator()(std::uint16_t* value) const { return std::to_string(*value); }
    std::string operator()(unsigned* value) const { return std::to_string(*value); }
    std::string operator()(std::size_t* value) const { return std::to_string(*value); }
    std::string operator()(double* value) const { return format_double(*value); }
    std::string operator()(bool* value) const { return *value ? "true" : "false"; }
    std::string operator()(Milliseconds* value) const { return std::to_string(value->count()); }
  };
  return std::visit(Visitor{}, target);
}

std::string bound_problem(Bound bound, double value, const std::string& shown) {
  if (bound == Bound::kPositive && !(value > 0)) {
    return "must be > 0, got " + shown;
  }
  if (bound == Bound::kNonNegative && value < 0) {
    return "must be >= 0, got " + shown;
  }
  return {};
}

// "" when the held value satisfies the bound, else the problem.
std::string check_bound(const Target& target, Bound bound) {
  if (bound == Bound::kAny) {
    return {};
  }
  struct Visitor {
    Bound bound;
    std::string operator()(std::string*) const { return {}; }
    std::string operator()(bool*) const { return {}; }
    std::string operator()(double* value) const {
      return bound_problem(bound, *value, format_double(*value));
    }
    std::string operator()(Milliseconds* value) const {
      return bound_problem(bound, static_cast<double>(value->count()),
                           std::to_string(value->count()));
    }
    std::string operator()(std::uint16_t* value) const { return integer(*value); }
    std::string operator()(unsigned* value) const { return integer(*value); }
    std::string operator()(std::size_t* value) const { return integer(*value); }
    std::string integer(std::uint64_t value) const {
      return bound_problem(bound, static_cast<double>(value), std::to_string(value));
    }
  };
  return std::visit(Visitor{bound}, target);
}

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

std::optional<bool> parse_bool(std::string_view text) {
  const std::string word = lower(text);
  if (word == "true" || word == "yes" || word == "on" || word == "1") {
    return true;
  }
  if (word == "false" || word == "no" || word == "off" || word == "0") {
    return false;
  }
  return std::nullopt;
}

// Stores `text` into an unsigned target, or returns the problem.
template <typename Unsigned>
std::string assign_unsigned(Unsigned* out, const std::string& text, Bound bound,
                            std::string_view range_text) {
  const auto is_digits =
      !text.empty() && std::all_of(text.begin() + (text[0] == '-' ? 1 : 0), text.end(),
                                   [](unsigned char c) { return std::isdigit(c) != 0; });
  if (!is_digits || text == "-") {
    return "expected an integer, got " + quote_value(text);
  }
  if (text[0] == '-') {
    return bound_problem(bound == Bound::kAny ? Bound::kNonNegative : bound, -1.0, text);
  }
  const auto value = parse_number<std::uint64_t>(text);
  if (!value || *value > std::numeric_limits<Unsigned>::max()) {
    return text + " is out of range " + std::string{range_text};
  }
  *out = static_cast<Unsigned>(*value);
  return {};
}

// Parses a scalar into the target; returns the problem, or "" when stored. Secret values are never
// quoted back.
std::string assign(const Target& target, const std::string& raw_text, Bound bound, bool secret) {
  if (auto* const* text_target = std::get_if<std::string*>(&target)) {
    **text_target = raw_text;
    return {};
  }
  const std::string text = trim(raw_text);
  const std::string shown = secret ? std::string{"(hidden)"} : quote_value(text);
  struct Visitor {
    const std::string& text;
    const std::string& shown;
    Bound bound;
    std::string operator()(std::string*) const { return {}; }
    std::string operator()(std::uint16_t* out) const {
      return assign_unsigned(out, text, bound, "(0-65535)");
    }
    std::string operator()(unsigned* out) const {
      return assign_unsigned(out, text, bound, "(max " + std::to_string(~0U) + ")");
    }
    std::string operator()(std::size_t* out) const {
      return assign_unsigned(
          out, text, bound,
          "(max " + std::to_string(std::numeric_limits<std::size_t>::max()) + ")");
    }
    std::string operator()(double* out) const {
      const auto value = parse_number<double>(text);
      if (!value || !std::isfinite(*value)) {
        return "expected a number, got " + shown;
      }
      *out = *value;
      return {};
    }
    std::string operator()(bool* out) const {
      const auto value = parse_bool(text);
      if (!value) {
        return "expected true or false, got " + shown;
      }
      *out = *value;
      return {};
    }
    std::string operator()(Milliseconds* out) const {
      const auto value = parse_number<std::int64_t>(text);
      if (!value) {
        return "expected an integer, got " + shown;
      }
      *out = Milliseconds{*value};
      return {};
    }
  };
  return std::visit(Visitor{text, shown, bound}, target);
}

std::string describe_yaml_kind(const YAML::Node& node) {
  if (node.IsMap()) {
    return "a map";
  }
  if (node.IsSequence()) {
    return "a list";
  }
  return quote_value(node.Scalar());
}

template <typename Root>
void assign_node(const KeySpec<Root>& key, Root& root, const YAML::Node& value,
                 const std::string& path, Problems& problems) {
  if (!value.IsDefined() || value.IsNull()) {
    return;  // `port:` with no value keeps the default
  }
  const Target target = key.target(root);
  if (!value.IsScalar()) {
    problems.add(path, "expected " + expected_what(target) + ", got " + describe_yaml_kind(value));
    return;
  }
  if (const std::string problem = assign(target, value.Scalar(), key.bound, key.secret);
      !problem.empty()) {
    problems.add(path, problem);
  }
}

// ---------------------------------------------------------------------------------------------
// Node URLs

struct NodeAddress {
  std::string host;  // without IPv6 brackets, ready for the resolver
  std::uint16_t port = 0;
  std::string id;  // "host:port", IPv6 in brackets
};

// The address of an http://host[:port][/] URL, or the problem in `problem`.
std::optional<NodeAddress> parse_node_url(const std::string& url, std::string& problem) {
  // Credentials in a URL would be echoed back; never show such a URL.
  const bool may_show = url.find('@') == std::string::npos;
  const std::string shown = may_show ? " " + quote_value(url) : std::string{};
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    problem = "not a valid URL" + shown + "; expected http://host:port";
    return std::nullopt;
  }
  const auto& view = *parsed;
  const std::string scheme = lower(std::string_view{view.scheme().data(), view.scheme().size()});
  if (scheme == "https") {
    problem = "https is not supported for nodes; use http://host:port";
    return std::nullopt;
  }
  if (scheme != "http") {
    problem = "the scheme must be http, got " + quote_value(scheme);
    return std::nullopt;
  }
  if (view.has_userinfo()) {
    problem = "credentials in node URLs are not supported";
    return std::nullopt;
  }
  const auto encoded_host = view.encoded_host();
  if (!view.has_authority() || encoded_host.empty()) {
    problem = "a host is required" + shown;
    return std::nullopt;
  }
  const auto path = view.encoded_path();
  if (!path.empty() && path != "/") {
    problem =
        "a node URL has no path (got " + quote_value(std::string{path.data(), path.size()}) + ")";
    return std::nullopt;
  }
  if (view.has_query() || view.has_fragment()) {
    problem = "a node URL has no query or fragment" + shown;
    return std::nullopt;
  }
  NodeAddress address;
  address.port = 80;
  if (const auto port_text = view.port(); view.has_port() && !port_text.empty()) {
    const auto port =
        parse_number<std::uint32_t>(std::string_view{port_text.data(), port_text.size()});
    if (!port || *port == 0 || *port > 65535) {
      problem =
          "port " + std::string{port_text.data(), port_text.size()} + " is out of range (1-65535)";
      return std::nullopt;
    }
    address.port = static_cast<std::uint16_t>(*port);
  }
  const auto host_address = view.host_address();
  address.host = lower(std::string_view{host_address.data(), host_address.size()});
  const std::string bracketed =
      view.host_type() == boost::urls::host_type::ipv6 ? "[" + address.host + "]" : address.host;
  address.id = bracketed + ":" + std::to_string(address.port);
  return address;
}

bool is_visible_ascii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](char c) { return c > ' ' && c < 0x7f; });
}

bool is_http_token(std::string_view text) {
  constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return !text.empty() && std::all_of(text.begin(), text.end(), [&](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
           kSymbols.find(c) != std::string_view::npos;
  });
}

bool is_ip_address(const std::string& text) {
  std::array<unsigned char, 16> buffer{};
  return inet_pton(AF_INET, text.c_str(), buffer.data()) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer.data()) == 1;
}

std::string join(const std::vector<std::string>& words, std::string_view separator) {
  std::string out;
  for (const auto& word : words) {
    if (!out.empty()) {
      out += separator;
    }
    out += word;
  }
  return out;
}

void check_one_of(const std::string& path, const std::string& value,
                  const std::vector<std::string>& allowed, Problems& problems) {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    problems.add(path, "must be one of " + join(allowed, ", ") + "; got " + quote_value(value));
  }
}

void validate_nodes(const std::vector<NodeConfig>& nodes, Problems& problems) {
  if (nodes.empty()) {
    problems.add(std::string{kNodesPath}, "at least one node is required");
  }
  std::map<std::string, std::size_t> index_by_name;
  std::map<std::string, std::size_t> index_by_address;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const NodeConfig& node = nodes[i];
    const std::string path = std::string{kNodesPath} + "[" + std::to_string(i) + "]";
    NodeConfig copy = node;  // the table's targets point into a mutable struct
    for (const auto& key : node_keys()) {
      if (const std::string problem = check_bound(key.target(copy), key.bound); !problem.empty()) {
        problems.add(path + "." + key.path, problem);
      }
    }
    std::string url_problem;
    const auto address = parse_node_url(node.url, url_problem);
    if (node.url.empty()) {
      problems.add(path + ".url", "is required");
    } else if (!address) {
      problems.add(path + ".url", url_problem);
    } else if (address->host != node.host || address->port != node.port) {
      problems.add(path, "host and port do not match the url (resolve_node was not called)");
    }
    bool duplicate_address = false;
    if (address) {
      const auto [it, inserted] = index_by_address.emplace(address->id, i);
      if (!inserted) {
        duplicate_address = true;
        problems.add(path + ".url", "duplicate node URL " + quote_value(node.url) +
                                        " (also nodes[" + std::to_string(it->second) + "])");
      }
    }
    if (node.name.empty()) {
      if (address) {
        problems.add(path + ".name", "must not be empty");
      }
      continue;
    }
    if (!is_visible_ascii(node.name) || node.name.find_first_of(",=\"") != std::string::npos) {
      problems.add(path + ".name", quote_value(node.name) +
                                       " must be visible ASCII without spaces, ',', '=' or '\"'");
    }
    const auto [it, inserted] = index_by_name.emplace(node.name, i);
    if (!inserted && !duplicate_address) {
      problems.add(path + ".name", "duplicate node name " + quote_value(node.name) +
                                       " (also nodes[" + std::to_string(it->second) + "])");
    }
  }
}

void validate_into(const GatewayConfig& config, Problems& problems) {
  GatewayConfig copy = config;  // the table's targets point into a mutable struct
  for (const auto& key : gateway_keys()) {
    if (const std::string problem = check_bound(key.target(copy), key.bound); !problem.empty()) {
      problems.add(key.path, problem);
    }
  }
  if (!is_ip_address(config.listen.address)) {
    problems.add("listen.address",
                 "expected an IPv4 or IPv6 address, got " + quote_value(config.listen.address));
  }
  if (config.workers > kMaxWorkers) {
    problems.add("workers", "must be at most " + std::to_string(kMaxWorkers) + ", got " +
                                std::to_string(config.workers));
  }
  validate_nodes(config.nodes, problems);
  if (!is_http_token(config.routing.session_header)) {
    problems.add("routing.session_header",
                 quote_value(config.routing.session_header) + " is not a valid HTTP header name");
  }
  const double factor = config.routing.balance_factor;
  if (!std::isfinite(factor) || (factor != 0.0 && factor < 1.0)) {
    problems.add("routing.balance_factor",
                 "must be 0 (plain ring) or >= 1, got " + format_double(factor));
  }
  if (config.health.path.empty() || config.health.path.front() != '/') {
    problems.add("health.path", "must start with '/', got " + quote_value(config.health.path));
  }
  check_one_of("log.level", config.log.level, {"trace", "debug", "info", "warn", "error", "off"},
               problems);
  check_one_of("log.format", config.log.format, {"text", "json"}, problems);
  if (!is_visible_ascii(config.admin.token)) {
    problems.add("admin.token", "must be visible ASCII without spaces");  // never the value
  }
}

// ---------------------------------------------------------------------------------------------
// Raw values: the YAML document with the environment and overrides laid over it, before types.

struct RawNode {
  std::map<std::string, YAML::Node> fields;  // name, url, weight
};

struct RawConfig {
  std::map<std::string, YAML::Node> values;   // by key path
  std::optional<std::vector<RawNode>> nodes;  // nullopt: not given
};

// Every key and section name, as candidates for "did you mean".
std::vector<std::string> known_paths() {
  std::vector<std::string> paths{std::string{kNodesPath}};
  for (const auto& key : gateway_keys()) {
    paths.push_back(key.path);
    if (const auto dot = key.path.find('.'); dot != std::string::npos) {
      paths.push_back(key.path.substr(0, dot));
    }
  }
  std::sort(paths.begin(), paths.end());
  paths.erase(std::unique(paths.begin(), paths.end()), paths.end());
  return paths;
}

std::vector<std::string> node_field_paths(const std::string& node_path) {
  std::vector<std::string> paths;
  for (const auto& key : node_keys()) {
    paths.push_back(node_path + "." + key.path);
  }
  return paths;
}

const KeySpec<GatewayConfig>* find_key(std::string_view path) {
  const auto& keys = gateway_keys();
  const auto it =
      std::find_if(keys.begin(), keys.end(), [&](const auto& key) { return key.path == path; });
  return it == keys.end() ? nullptr : &*it;
}

const KeySpec<NodeConfig>* find_node_key(std::string_view field) {
  const auto& keys = node_keys();
  const auto it =
      std::find_if(keys.begin(), keys.end(), [&](const auto& key) { return key.path == field; });
  return it == keys.end() ? nullptr : &*it;
}

bool is_section(const std::string& path) {
  const std::string prefix = path + ".";
  return std::any_of(gateway_keys().begin(), gateway_keys().end(),
                     [&](const auto& key) { return key.path.starts_with(prefix); });
}

std::string first_key_under(const std::string& section) {
  const auto& keys = gateway_keys();
  const auto it = std::find_if(keys.begin(), keys.end(), [&](const auto& key) {
    return key.path.starts_with(section + ".");
  });
  return it == keys.end() ? section : it->path;
}

std::string join_path(const std::string& prefix, const std::string& key) {
  return prefix.empty() ? key : prefix + "." + key;
}

RawNode raw_node_from_yaml(const YAML::Node& item, const std::string& path, Problems& problems) {
  RawNode node;
  if (item.IsScalar()) {
    node.fields["url"] = item;
    return node;
  }
  if (!item.IsMap()) {
    problems.add(path, "expected a URL or a map with name, url, weight");
    return node;
  }
  for (const auto& entry : item) {
    const std::string field = entry.first.Scalar();
    if (find_node_key(field) == nullptr) {
      problems.add(path + "." + field,
                   "unknown key" + did_you_mean(path + "." + field, node_field_paths(path)));
      continue;
    }
    if (!node.fields.emplace(field, entry.second).second) {
      problems.add(path + "." + field, "duplicate key");
    }
  }
  return node;
}

// "name=http://h:p,http://h2:p2" (the LLMGW_NODES and `--set nodes=` syntax).
std::vector<RawNode> raw_nodes_from_list(const std::string& text) {
  std::vector<RawNode> nodes;
  std::istringstream items{text};
  std::string item;
  while (std::getline(items, item, ',')) {
    item = trim(item);
    if (item.empty()) {
      continue;
    }
    RawNode node;
    const auto equals = item.find('=');
    if (equals != std::string::npos && equals < item.find("://")) {
      node.fields["name"] = YAML::Node(trim(item.substr(0, equals)));
      item = trim(item.substr(equals + 1));
    }
    node.fields["url"] = YAML::Node(item);
    nodes.push_back(std::move(node));
  }
  return nodes;
}

void collect_nodes(const YAML::Node& value, RawConfig& raw, Problems& problems) {
  const std::string path{kNodesPath};
  if (value.IsNull()) {
    return;
  }
  if (value.IsScalar()) {
    raw.nodes = raw_nodes_from_list(value.Scalar());
    return;
  }
  if (!value.IsSequence()) {
    problems.add(path, "expected a list of nodes, got a map");
    return;
  }
  raw.nodes.emplace();
  for (std::size_t i = 0; i < value.size(); ++i) {
    raw.nodes->push_back(
        raw_node_from_yaml(value[i], path + "[" + std::to_string(i) + "]", problems));
  }
}

void collect_yaml(const YAML::Node& map, const std::string& prefix, RawConfig& raw,
                  Problems& problems) {
  std::set<std::string> seen;
  for (const auto& entry : map) {
    if (!entry.first.IsScalar()) {
      problems.add(prefix.empty() ? "(top level)" : prefix, "keys must be plain names");
      continue;
    }
    const std::string path = join_path(prefix, entry.first.Scalar());
    if (!seen.insert(path).second) {
      problems.add(path, "duplicate key");
      continue;
    }
    const YAML::Node& value = entry.second;
    if (path == kNodesPath) {
      collect_nodes(value, raw, problems);
    } else if (find_key(path) != nullptr) {
      raw.values[path] = value;
    } else if (is_section(path)) {
      if (value.IsMap()) {
        collect_yaml(value, path, raw, problems);
      } else if (!value.IsNull()) {
        problems.add(path, "expected a map, got " + describe_yaml_kind(value));
      }
    } else {
      problems.add(path, "unknown key" + did_you_mean(path, known_paths()));
    }
  }
}

// The sections' environment prefixes ("LLMGW_LISTEN_"): a variable under one of them that names no
// key is a typo worth refusing; other LLMGW_* variables belong to other parts of the program.
bool is_under_config_section(const std::string& variable) {
  return std::any_of(gateway_keys().begin(), gateway_keys().end(), [&](const auto& key) {
    const auto dot = key.path.find('.');
    return dot != std::string::npos &&
           variable.starts_with(env_var_name(key.path.substr(0, dot)) + "_");
  });
}

void apply_environment(const std::map<std::string, std::string>& environment, RawConfig& raw,
                       Problems& problems) {
  std::vector<std::string> known_variables{std::string{kNodesEnv}};
  for (const auto& key : gateway_keys()) {
    known_variables.push_back(env_var_name(key.path));
  }
  for (const auto& [variable, value] : environment) {
    // An empty variable counts as unset, as docker-compose leaves `VAR:` entries empty.
    if (value.empty()) {
      continue;
    }
    if (variable == kNodesEnv) {
      raw.nodes = raw_nodes_from_list(value);
      problems.note_origin(std::string{kNodesPath}, variable);
      continue;
    }
    const auto& keys = gateway_keys();
    const auto key = std::find_if(keys.begin(), keys.end(), [&](const auto& candidate) {
      return env_var_name(candidate.path) == variable;
    });
    if (key != keys.end()) {
      raw.values[key->path] = YAML::Node(value);
      problems.note_origin(key->path, variable);
    } else if (is_under_config_section(variable)) {
      problems.add(variable, "unknown setting" + did_you_mean(variable, known_variables));
    }
  }
}

// "nodes[3].weight" -> (3, "weight"); nullopt when the path has another shape.
std::optional<std::pair<std::size_t, std::string>> split_node_path(const std::string& path) {
  const std::string prefix = std::string{kNodesPath} + "[";
  if (!path.starts_with(prefix)) {
    return std::nullopt;
  }
  const auto close = path.find("].", prefix.size());
  if (close == std::string::npos) {
    return std::nullopt;
  }
  const auto index = parse_number<std::size_t>(
      std::string_view{path}.substr(prefix.size(), close - prefix.size()));
  if (!index) {
    return std::nullopt;
  }
  return std::pair{*index, path.substr(close + 2)};
}

void apply_node_override(std::size_t index, const std::string& field, const std::string& path,
                         const std::string& value, RawConfig& raw, Problems& problems) {
  const std::string origin{kOverrideOrigin};
  problems.note_origin(path, origin);
  if (find_node_key(field) == nullptr) {
    const std::string node_path = path.substr(0, path.size() - field.size() - 1);
    problems.add(path, "unknown key" + did_you_mean(path, node_field_paths(node_path)));
    return;
  }
  if (!raw.nodes) {
    raw.nodes.emplace();
  }
  if (index > raw.nodes->size()) {
    problems.add(path, "no such node; there are " + std::to_string(raw.nodes->size()) +
                           " (an index equal to the count appends one)");
    return;
  }
  if (index == raw.nodes->size()) {
    raw.nodes->emplace_back();
  }
  (*raw.nodes)[index].fields[field] = YAML::Node(value);
}

void apply_overrides(const std::vector<std::string>& overrides, RawConfig& raw,
                     Problems& problems) {
  const std::string origin{kOverrideOrigin};
  for (std::size_t i = 0; i < overrides.size(); ++i) {
    const std::string& entry = overrides[i];
    const auto equals = entry.find('=');
    if (equals == std::string::npos) {
      // The entry is not echoed: it might be a secret typed with the wrong separator.
      problems.add(origin + " #" + std::to_string(i + 1), "expected path=value");
      continue;
    }
    const std::string path = trim(entry.substr(0, equals));
    const std::string value = trim(entry.substr(equals + 1));
    if (path == kNodesPath) {
      raw.nodes = raw_nodes_from_list(value);
      problems.note_origin(path, origin);
    } else if (const auto node_path = split_node_path(path)) {
      apply_node_override(node_path->first, node_path->second, path, value, raw, problems);
    } else if (find_key(path) != nullptr) {
      raw.values[path] = YAML::Node(value);
      problems.note_origin(path, origin);
    } else if (is_section(path)) {
      problems.note_origin(path, origin);
      problems.add(path, "is a section; set one of its keys, e.g. " + first_key_under(path));
    } else {
      problems.note_origin(path, origin);
      problems.add(path, "unknown key" + did_you_mean(path, known_paths()));
    }
  }
}

GatewayConfig build_config(const RawConfig& raw, Problems& problems) {
  GatewayConfig config;
  for (const auto& key : gateway_keys()) {
    if (const auto it = raw.values.find(key.path); it != raw.values.end()) {
      assign_node(key, config, it->second, key.path, problems);
    }
  }
  if (raw.nodes) {
    for (std::size_t i = 0; i < raw.nodes->size(); ++i) {
      const std::string path = std::string{kNodesPath} + "[" + std::to_string(i) + "]";
      NodeConfig node;
      for (const auto& key : node_keys()) {
        if (const auto it = (*raw.nodes)[i].fields.find(key.path);
            it != (*raw.nodes)[i].fields.end()) {
          assign_node(key, node, it->second, path + "." + key.path, problems);
        }
      }
      node.url = trim(node.url);
      node.name = trim(node.name);
      try {
        resolve_node(node, path);
      } catch (const ConfigError&) {
        // validate_into reports the URL's problem once, with the same words.
      }
      config.nodes.push_back(std::move(node));
    }
  }
  if (config.nodes.empty()) {
    NodeConfig node;
    node.url = std::string{kDefaultNodeUrl};
    resolve_node(node);
    config.nodes.push_back(std::move(node));
  }
  return config;
}

// Replaces admin.token_file by the token it holds. A relative file named in the YAML file is
// found next to that file, so a config directory can be moved as a whole.
void read_token_file(GatewayConfig& config, const std::filesystem::path& base_dir,
                     Problems& problems) {
  if (config.admin.token_file.empty()) {
    return;
  }
  if (!config.admin.token.empty()) {
    problems.add("admin", "token and token_file are both set; use only one");
    return;
  }
  std::filesystem::path file{config.admin.token_file};
  if (file.is_relative() && !base_dir.empty()) {
    file = base_dir / file;
  }
  std::ifstream in{file};
  std::string first_line;
  if (!in || !std::getline(in, first_line)) {
    const int error = errno;
    problems.add("admin.token_file", "cannot read " + quote_value(file.string()) +
                                         (in.is_open() ? ": the file is empty"
                                                       : ": " + std::string{std::strerror(error)}));
    return;
  }
  config.admin.token = trim(first_line);
  if (config.admin.token.empty()) {
    problems.add("admin.token_file",
                 quote_value(file.string()) + " holds no token on its first line");
  }
}

YAML::Node parse_yaml(const std::string& text, const std::string& name) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    throw ConfigError(name + ":" + std::to_string(e.mark.line + 1) + ":" +
                      std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
  }
}

struct LoadInput {
  std::string yaml_text;
  std::string source_name;         // for syntax errors
  std::filesystem::path base_dir;  // relative token_file in the YAML is found here
  const std::map<std::string, std::string>* environment = nullptr;
  const std::vector<std::string>* overrides = nullptr;
};

GatewayConfig load(const LoadInput& input) {
  const YAML::Node document = parse_yaml(input.yaml_text, input.source_name);
  Problems problems;
  RawConfig raw;
  if (document.IsMap()) {
    collect_yaml(document, "", raw, problems);
  } else if (document.IsDefined() && !document.IsNull()) {
    problems.add(input.source_name, "expected a map of settings at the top level");
  }
  if (input.environment != nullptr) {
    apply_environment(*input.environment, raw, problems);
  }
  if (input.overrides != nullptr) {
    apply_overrides(*input.overrides, raw, problems);
  }
  GatewayConfig config = build_config(raw, problems);
  const bool token_file_from_yaml = problems.origin_of("admin.token_file").empty();
  read_token_file(config, token_file_from_yaml ? input.base_dir : std::filesystem::path{},
                  problems);
  validate_into(config, problems);
  problems.throw_if_any();
  if (config.workers == 0) {
    config.workers = std::max(1U, std::thread::hardware_concurrency());
  }
  return config;
}

}  // namespace

std::string env_var_name(const std::string& path) {
  std::string name = "LLMGW_";
  for (const char c : path) {
    name += c == '.' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

void resolve_node(NodeConfig& node, const std::string& path) {
  std::string problem;
  const auto address = parse_node_url(node.url, problem);
  if (!address) {
    throw ConfigError(path + ".url: " + (node.url.empty() ? std::string{"is required"} : problem));
  }
  node.host = address->host;
  node.port = address->port;
  if (node.name.empty()) {
    node.name = address->id;
  }
}

void validate(const GatewayConfig& config) {
  Problems problems;
  validate_into(config, problems);
  problems.throw_if_any();
}

GatewayConfig parse_gateway_config(const std::string& yaml_text) {
  return load(LoadInput{yaml_text, "<config>", {}, nullptr, nullptr});
}

GatewayConfig load_gateway_config(const ConfigSources& sources) {
  LoadInput input;
  input.environment = &sources.environment;
  input.overrides = &sources.overrides;
  input.source_name = "<no file>";
  if (sources.file) {
    std::ifstream in{*sources.file, std::ios::binary};
    if (!in) {
      throw ConfigError(*sources.file + ": cannot read the config file: " + std::strerror(errno));
    }
    std::ostringstream text;
    text << in.rdbuf();
    input.yaml_text = text.str();
    input.source_name = *sources.file;
    input.base_dir = std::filesystem::path{*sources.file}.parent_path();
  }
  return load(input);
}

std::map<std::string, std::string> llmgw_environment() {
  std::map<std::string, std::string> variables;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const std::string_view text{*entry};
    const auto equals = text.find('=');
    if (equals != std::string_view::npos && text.starts_with("LLMGW_")) {
      variables.emplace(text.substr(0, equals), text.substr(equals + 1));
    }
  }
  return variables;
}

std::vector<ConfigKey> config_keys() {
  GatewayConfig defaults;
  std::vector<ConfigKey> keys;
  for (const auto& key : gateway_keys()) {
    const Target target = key.target(defaults);
    keys.push_back({key.path, type_name(target), format_value(target), env_var_name(key.path),
                    key.description});
    if (key.path == "workers") {  // the nodes come next in the YAML layout
      keys.push_back({std::string{kNodesPath}, "list", std::string{kDefaultNodeUrl},
                      std::string{kNodesEnv},
                      "nodes behind the gateway; env/--set form: name=url,url,..."});
      NodeConfig node_defaults;
      for (const auto& node_key : node_keys()) {
        const Target node_target = node_key.target(node_defaults);
        const bool is_weight = std::holds_alternative<double*>(node_target);
        keys.push_back({"nodes[i]." + node_key.path, type_name(node_target),
                        is_weight ? format_value(node_target) : "", "", node_key.description});
      }
    }
  }
  return keys;
}

std::string describe_config_keys() {
  const auto keys = config_keys();
  std::array<std::size_t, 4> widths{std::string_view{"key"}.size(), 4, 7, 3};
  for (const auto& key : keys) {
    widths[0] = std::max(widths[0], key.path.size());
    widths[1] = std::max(widths[1], key.type.size());
    widths[2] = std::max(widths[2], key.default_value.size());
    widths[3] = std::max(widths[3], key.env_var.size());
  }
  std::ostringstream out;
  const auto row = [&](const std::string& path, const std::string& type, const std::string& value,
                       const std::string& env, const std::string& description) {
    out << std::left << std::setw(static_cast<int>(widths[0] + 2)) << path
        << std::setw(static_cast<int>(widths[1] + 2)) << type
        << std::setw(static_cast<int>(widths[2] + 2)) << value
        << std::setw(static_cast<int>(widths[3] + 2)) << env << description << '\n';
  };
  row("key", "type", "default", "env", "meaning");
  for (const auto& key : keys) {
    row(key.path, key.type, key.default_value, key.env_var.empty() ? "-" : key.env_var,
        key.description);
  }
  out << "\nOverride any key with --set path=value (nodes[i].field for one node). Precedence: "
         "--set > environment > file > default. Durations are milliseconds.\n";
  return out.str();
}

}  // namespace llmgw::config
