#include "llmgw/review/repo_config.hpp"

#include <yaml-cpp/yaml.h>

#include <array>

namespace llmgw::review {
namespace {

constexpr std::array<std::string_view, 6> kKeys = {
    "model", "instructions", "ignore", "default_ignores", "max_comments", "severity_threshold"};
constexpr std::array<std::string_view, 4> kSeverities = {"info", "suggestion", "warning", "error"};

[[noreturn]] void fail(const std::string& path, const std::string& problem) {
  throw RepoConfigError(path + ": " + problem);
}

std::string scalar_string(const YAML::Node& node, const std::string& path) {
  if (!node.IsScalar()) {
    fail(path, "must be a string");
  }
  return node.as<std::string>();
}

std::string join_keys() {
  std::string out;
  for (const auto key : kKeys) {
    out += (out.empty() ? "" : ", ") + std::string{key};
  }
  return out;
}

}  // namespace

int severity_rank(std::string_view severity) {
  for (std::size_t i = 0; i < kSeverities.size(); ++i) {
    if (kSeverities[i] == severity) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

RepoConfig parse_repo_config(std::string_view yaml_text) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string{yaml_text});
  } catch (const YAML::Exception& e) {
    fail("(file)", "not valid YAML: " + e.msg + " (line " + std::to_string(e.mark.line + 1) + ")");
  }
  RepoConfig config;
  if (root.IsNull()) {
    return config;
  }
  if (!root.IsMap()) {
    fail("(top level)", "must be a mapping of settings");
  }
  for (const auto& entry : root) {
    const auto key = entry.first.as<std::string>();
    const auto& value = entry.second;
    if (key == "model") {
      config.model = scalar_string(value, key);
      if (config.model->empty()) {
        fail(key, "must not be empty");
      }
    } else if (key == "instructions") {
      config.instructions = scalar_string(value, key);
      if (config.instructions->size() > kMaxInstructionsBytes) {
        fail(key, "is longer than " + std::to_string(kMaxInstructionsBytes) + " bytes");
      }
    } else if (key == "ignore") {
      if (!value.IsSequence()) {
        fail(key, "must be a list of globs");
      }
      for (std::size_t i = 0; i < value.size(); ++i) {
        const auto path = key + "[" + std::to_string(i) + "]";
        auto glob = scalar_string(value[i], path);
        if (glob.empty()) {
          fail(path, "must not be empty");
        }
        config.ignore.push_back(std::move(glob));
      }
    } else if (key == "default_ignores") {
      bool flag = false;
      if (!value.IsScalar() || !YAML::convert<bool>::decode(value, flag)) {
        fail(key, "must be true or false");
      }
      config.default_ignores = flag;
    } else if (key == "max_comments") {
      int count = 0;
      if (!value.IsScalar() || !YAML::convert<int>::decode(value, count) || count < 1 ||
          count > 50) {
        fail(key, "must be a whole number from 1 to 50");
      }
      config.max_comments = count;
    } else if (key == "severity_threshold") {
      auto severity = scalar_string(value, key);
      if (severity_rank(severity) < 0) {
        fail(key, "must be one of info, suggestion, warning, error (got '" + severity + "')");
      }
      config.severity_threshold = std::move(severity);
    } else {
      fail(key, "unknown key (known: " + join_keys() + ")");
    }
  }
  return config;
}

}  // namespace llmgw::review
