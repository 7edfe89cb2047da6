#include "llmgw/config/gateway_config.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>
#include <thread>

#include "gateway_config_internal.hpp"
#include "llmgw/config/client_keys.hpp"

extern char** environ;  // POSIX; read by llmgw_environment()

// Gathers raw values from YAML, the environment and --set (later wins), then hands them to the
// typed conversion and validation in gateway_config_values.cpp.
namespace llmgw::config::detail {
namespace {

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
    // Captured by name: clang 14 (the fuzz build) cannot capture a structured binding.
    const auto key = std::find_if(
        keys.begin(), keys.end(),
        [&name = variable](const auto& candidate) { return env_var_name(candidate.path) == name; });
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
  // Without `nodes`, the default node; with DNS discovery, none (DNS finds them).
  if (config.nodes.empty() && !config.discovery.dns.enabled()) {
    NodeConfig node;
    node.url = std::string{kDefaultNodeUrl};
    resolve_node(node);
    config.nodes.push_back(std::move(node));
  }
  return config;
}

// A secret given as a file: `file` (the key `parent.file_key`) replaced by the first line of the
// file it names, into `secret` (`parent.secret_key`). A relative file named in the YAML file is
// found next to that file, so a config directory can be moved as a whole.
struct SecretFile {
  std::string& secret;
  const std::string& file;
  std::string_view parent;      // "admin"
  std::string_view secret_key;  // "token"
  std::string_view file_key;    // "token_file"
  std::string_view what;        // "token"
};

void read_secret_file(const SecretFile& secret, const std::filesystem::path& base_dir,
                      Problems& problems) {
  if (secret.file.empty()) {
    return;
  }
  const std::string file_path = std::string{secret.parent} + "." + std::string{secret.file_key};
  if (!secret.secret.empty()) {
    problems.add(std::string{secret.parent}, std::string{secret.secret_key} + " and " +
                                                 std::string{secret.file_key} +
                                                 " are both set; use only one");
    return;
  }
  std::filesystem::path file{secret.file};
  if (file.is_relative() && !base_dir.empty()) {
    file = base_dir / file;
  }
  std::ifstream in{file};
  std::string first_line;
  if (!in || !std::getline(in, first_line)) {
    const int error = errno;
    problems.add(file_path, "cannot read " + quote_value(file.string()) +
                                (in.is_open() ? ": the file is empty"
                                              : ": " + std::string{std::strerror(error)}));
    return;
  }
  secret.secret = trim(first_line);
  if (secret.secret.empty()) {
    problems.add(file_path, quote_value(file.string()) + " holds no " + std::string{secret.what} +
                                " on its first line");
  }
}

void read_secret_files(GatewayConfig& config, const std::filesystem::path& base_dir,
                       Problems& problems) {
  // A file named by the environment or a flag is relative to the working directory.
  const auto base_of = [&](const std::string& key) {
    return problems.origin_of(key).empty() ? base_dir : std::filesystem::path{};
  };
  read_secret_file(
      {config.admin.token, config.admin.token_file, "admin", "token", "token_file", "token"},
      base_of("admin.token_file"), problems);
  read_secret_file(
      {config.routing.placement_store_password, config.routing.placement_store_password_file,
       "routing", "placement_store_password", "placement_store_password_file", "password"},
      base_of("routing.placement_store_password_file"), problems);
  if (!config.auth.keys_file.empty()) {
    std::filesystem::path file{config.auth.keys_file};
    if (const auto base = base_of("auth.keys_file"); file.is_relative() && !base.empty()) {
      file = base / file;
    }
    std::vector<std::string> key_problems;
    config.auth.keys = read_client_keys(file.string(), key_problems);
    for (const auto& problem : key_problems) {
      problems.add("auth.keys_file", problem);
    }
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
  read_secret_files(config, input.base_dir, problems);
  resolve_tls_paths(config, input.base_dir, problems);
  validate_into(config, problems);
  problems.throw_if_any();
  if (config.workers == 0) {
    config.workers = std::max(1U, std::thread::hardware_concurrency());
  }
  return config;
}

}  // namespace
}  // namespace llmgw::config::detail

namespace llmgw::config {

GatewayConfig parse_gateway_config(const std::string& yaml_text) {
  return detail::load(detail::LoadInput{yaml_text, "<config>", {}, nullptr, nullptr});
}

GatewayConfig load_gateway_config(const ConfigSources& sources) {
  detail::LoadInput input;
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
  return detail::load(input);
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

}  // namespace llmgw::config
