// Typed conversion of raw values and validation of the result.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <boost/url/parse.hpp>
#include <cctype>
#include <cmath>
#include <limits>
#include <map>

#include "gateway_config_internal.hpp"
#include "llmgw/config/gateway_config.hpp"
#include "llmgw/net/url.hpp"
#include "llmgw/routing/session_key.hpp"

namespace llmgw::config::detail {
namespace {

std::string bound_problem(Bound bound, double value, const std::string& shown) {
  if (bound == Bound::kPositive && !(value > 0)) {
    return "must be > 0, got " + shown;
  }
  if (bound == Bound::kNonNegative && value < 0) {
    return "must be >= 0, got " + shown;
  }
  return {};
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

void validate_nodes(const std::vector<NodeConfig>& nodes, bool discovery, Problems& problems) {
  if (nodes.empty() && !discovery) {
    problems.add(std::string{kNodesPath}, "at least one node is required (or discovery.dns.name)");
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
    check_one_of(path + ".api", node.api, {"ollama", "openai"}, problems);
    if (node.max_in_flight > 0 && node.max_in_flight_per_model > node.max_in_flight) {
      problems.add(path + ".max_in_flight_per_model",
                   "must be <= max_in_flight (" + std::to_string(node.max_in_flight) + "), got " +
                       std::to_string(node.max_in_flight_per_model));
    }
    if (!node.health_path.empty() && node.health_path.front() != '/') {
      problems.add(path + ".health_path",
                   "must start with '/', got " + quote_value(node.health_path));
    }
    std::string url_problem;
    const auto address = parse_node_url(node.url, url_problem);
    if (node.url.empty()) {
      problems.add(path + ".url", "is required");
    } else if (!address) {
      problems.add(path + ".url", url_problem);
    } else if (address->host != node.host || address->port != node.port ||
               address->tls != node.tls) {
      problems.add(path, "host and port do not match the url (resolve_node was not called)");
    }
    bool duplicate_address = false;
    if (address) {
      const auto [it, inserted] = index_by_address.emplace(address->id, i);
      if (!inserted) {
        duplicate_address = true;
        problems.add(path + ".url", "duplicate node URL " + quote_value(net::redact_url(node.url)) +
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

}  // namespace

bool is_ip_address(const std::string& text) {
  std::array<unsigned char, 16> buffer{};
  return inet_pton(AF_INET, text.c_str(), buffer.data()) == 1 ||
         inet_pton(AF_INET6, text.c_str(), buffer.data()) == 1;
}

void check_one_of(const std::string& path, const std::string& value,
                  const std::vector<std::string>& allowed, Problems& problems) {
  if (std::find(allowed.begin(), allowed.end(), value) == allowed.end()) {
    problems.add(path, "must be one of " + join(allowed, ", ") + "; got " + quote_value(value));
  }
}

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

// ---------------------------------------------------------------------------------------------
// Node URLs

std::optional<NodeAddress> parse_node_url(const std::string& url, std::string& problem) {
  // Credentials in a URL would be echoed back; never show such a URL.
  const bool may_show = url.find('@') == std::string::npos;
  const std::string shown = may_show ? " " + quote_value(url) : std::string{};
  const auto parsed = boost::urls::parse_uri(url);
  if (!parsed) {
    problem = "not a valid URL" + shown + "; expected http://host:port or https://host:port";
    return std::nullopt;
  }
  const auto& view = *parsed;
  const std::string scheme = lower(std::string_view{view.scheme().data(), view.scheme().size()});
  if (scheme != "http" && scheme != "https") {
    problem = "the scheme must be http or https, got " + quote_value(scheme);
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
  address.tls = scheme == "https";
  address.port = address.tls ? 443 : 80;
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
  if (const auto& admin = config.admin.listen; !admin.address.empty()) {
    if (!is_ip_address(admin.address)) {
      problems.add("admin.listen.address",
                   "expected an IPv4 or IPv6 address, got " + quote_value(admin.address));
    } else if (admin.port != 0 && admin.port == config.listen.port &&
               (admin.address == config.listen.address || config.listen.address == "0.0.0.0" ||
                config.listen.address == "::")) {
      problems.add("admin.listen", "must differ from listen (" + config.listen.address + ":" +
                                       std::to_string(config.listen.port) + ")");
    }
  }
  if (config.workers > kMaxWorkers) {
    problems.add("workers", "must be at most " + std::to_string(kMaxWorkers) + ", got " +
                                std::to_string(config.workers));
  }
  validate_nodes(config.nodes, config.discovery.dns.enabled(), problems);
  validate_discovery(config, problems);
  if (!is_http_token(config.routing.session_header)) {
    problems.add("routing.session_header",
                 quote_value(config.routing.session_header) + " is not a valid HTTP header name");
  }
  if (const auto parsed =
          routing::parse_key_sources(config.routing.key_sources, config.routing.session_header);
      !parsed.error.empty()) {
    problems.add("routing.key_sources" +
                     (parsed.error_index ? "[" + std::to_string(*parsed.error_index) + "]" : ""),
                 parsed.error);
  }
  const double factor = config.routing.balance_factor;
  if (!std::isfinite(factor) || (factor != 0.0 && factor < 1.0)) {
    problems.add("routing.balance_factor",
                 "must be 0 (plain ring) or >= 1, got " + format_double(factor));
  }
  if (config.limits.max_buffered_body_bytes < config.limits.max_body_bytes) {
    problems.add("limits.max_buffered_body_bytes",
                 "must be >= limits.max_body_bytes (" +
                     std::to_string(config.limits.max_body_bytes) + "), got " +
                     std::to_string(config.limits.max_buffered_body_bytes));
  }
  check_one_of("routing.balance_by", config.routing.balance_by, {"sessions", "requests"}, problems);
  check_one_of("admission.warm_wait", config.admission.warm_wait, {"estimate", "never"}, problems);
  if (!is_http_token(config.admission.priority_header)) {
    problems.add("admission.priority_header", quote_value(config.admission.priority_header) +
                                                  " is not a valid HTTP header name");
  }
  validate_placement_store(config, problems);
  validate_tls(config, problems);
  if (config.health.path.empty() || config.health.path.front() != '/') {
    problems.add("health.path", "must start with '/', got " + quote_value(config.health.path));
  }
  check_one_of("log.level", config.log.level, {"trace", "debug", "info", "warn", "error", "off"},
               problems);
  check_one_of("log.format", config.log.format, {"text", "json"}, problems);
  if (!is_visible_ascii(config.admin.token)) {
    problems.add("admin.token", "must be visible ASCII without spaces");  // never the value
  }
  if (config.status.require_token && config.admin.token.empty()) {
    problems.add("status.require_token",
                 "needs admin.token or admin.token_file (the page asks for it)");
  }
}

}  // namespace llmgw::config::detail

namespace llmgw::config {

const std::string& health_path_of(const NodeConfig& node, const HealthConfig& health) {
  static const std::string kOpenAiHealth = "/health";
  if (!node.health_path.empty()) {
    return node.health_path;
  }
  return node.api == "openai" ? kOpenAiHealth : health.path;
}

void resolve_node(NodeConfig& node, const std::string& path) {
  std::string problem;
  const auto address = detail::parse_node_url(node.url, problem);
  if (!address) {
    throw ConfigError(path + ".url: " + (node.url.empty() ? std::string{"is required"} : problem));
  }
  node.host = address->host;
  node.port = address->port;
  node.tls = address->tls;
  if (node.name.empty()) {
    node.name = address->id;
  }
}

void validate(const GatewayConfig& config) {
  detail::Problems problems;
  detail::validate_into(config, problems);
  problems.throw_if_any();
}

}  // namespace llmgw::config
