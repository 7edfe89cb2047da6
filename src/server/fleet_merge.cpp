// The pure parts of the fleet endpoints (fleet_endpoints.hpp): merging the nodes' listings,
// comparing versions, reading X-Gateway-Nodes, relaying a node's pull record.

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>
#include <utility>

#include "fleet_endpoints.hpp"
#include "llmgw/util/text.hpp"

namespace llmgw::server::detail {
namespace {

using nlohmann::json;

std::string string_field(const json& entry, const char* key) {
  const auto it = entry.find(key);
  return it != entry.end() && it->is_string() ? it->get<std::string>() : std::string{};
}

// The entries of `array_key` of every listing, in node order, with the node's name.
template <class Visit>
void for_each_entry(const std::vector<NodeListing>& listings, const char* array_key,
                    Visit&& visit) {
  for (const auto& listing : listings) {
    const auto it = listing.body.find(array_key);
    if (it == listing.body.end() || !it->is_array()) {
      continue;
    }
    for (const auto& entry : *it) {
      if (entry.is_object()) {
        visit(listing.node, entry);
      }
    }
  }
}

// "0.6.0-rc1" -> numbers {0, 6, 0} and suffix "-rc1".
std::pair<std::vector<unsigned long>, std::string_view> split_version(std::string_view text) {
  if (!text.empty() && (text.front() == 'v' || text.front() == 'V')) {
    text.remove_prefix(1);
  }
  std::vector<unsigned long> numbers;
  while (!text.empty() && std::isdigit(static_cast<unsigned char>(text.front())) != 0) {
    unsigned long number = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), number);
    numbers.push_back(error == std::errc{} ? number : 0);
    text.remove_prefix(static_cast<std::size_t>(end - text.data()));
    if (text.size() < 2 || text.front() != '.' ||
        std::isdigit(static_cast<unsigned char>(text[1])) == 0) {
      break;
    }
    text.remove_prefix(1);
  }
  return {std::move(numbers), text};
}

}  // namespace

json merge_tags(const std::vector<NodeListing>& listings) {
  json models = json::array();
  std::set<std::pair<std::string, std::string>> seen;
  for_each_entry(listings, "models", [&](const std::string&, const json& entry) {
    std::string name = string_field(entry, "name");
    if (name.empty()) {
      name = string_field(entry, "model");
    }
    if (seen.emplace(std::move(name), string_field(entry, "digest")).second) {
      models.push_back(entry);
    }
  });
  return json{{"models", std::move(models)}};
}

json merge_openai_models(const std::vector<NodeListing>& listings) {
  json data = json::array();
  std::set<std::string> seen;
  for_each_entry(listings, "data", [&](const std::string&, const json& entry) {
    if (seen.insert(string_field(entry, "id")).second) {
      data.push_back(entry);
    }
  });
  return json{{"object", "list"}, {"data", std::move(data)}};
}

json merge_ps(const std::vector<NodeListing>& listings) {
  json models = json::array();
  for_each_entry(listings, "models", [&](const std::string& node, const json& entry) {
    json annotated = entry;
    annotated["node"] = node;
    models.push_back(std::move(annotated));
  });
  return json{{"models", std::move(models)}};
}

int compare_versions(std::string_view a, std::string_view b) {
  const auto [a_numbers, a_suffix] = split_version(a);
  const auto [b_numbers, b_suffix] = split_version(b);
  for (std::size_t i = 0; i < std::max(a_numbers.size(), b_numbers.size()); ++i) {
    const auto x = i < a_numbers.size() ? a_numbers[i] : 0;
    const auto y = i < b_numbers.size() ? b_numbers[i] : 0;
    if (x != y) {
      return x < y ? -1 : 1;
    }
  }
  if (a_suffix.empty() != b_suffix.empty()) {
    return a_suffix.empty() ? 1 : -1;  // a pre-release comes before its release
  }
  return a_suffix.compare(b_suffix) < 0 ? -1 : (a_suffix == b_suffix ? 0 : 1);
}

NodeSelection parse_node_selection(std::string_view header, const std::vector<std::string>& known) {
  NodeSelection selection;
  std::vector<std::string> unknown;
  std::size_t start = 0;
  while (start <= header.size()) {
    const auto comma = std::min(header.find(',', start), header.size());
    const std::string name{util::trim(header.substr(start, comma - start))};
    start = comma + 1;
    if (name.empty()) {
      continue;
    }
    if (std::find(known.begin(), known.end(), name) == known.end()) {
      unknown.push_back(name);
    } else if (std::find(selection.names.begin(), selection.names.end(), name) ==
               selection.names.end()) {
      selection.names.push_back(name);
    }
  }
  if (!unknown.empty()) {
    selection.error = "X-Gateway-Nodes: unknown node" +
                      std::string{unknown.size() > 1 ? "s " : " "} + join_names(unknown) +
                      " (the nodes are " + join_names(known) + ")";
  } else if (selection.names.empty()) {
    selection.error = "X-Gateway-Nodes: no node named (the nodes are " + join_names(known) + ")";
  }
  return selection;
}

RelayedPullRecord relay_pull_record(std::string_view record, std::string_view node) {
  RelayedPullRecord relayed;
  auto parsed = json::parse(record, nullptr, false);
  if (!parsed.is_object()) {
    relayed.error = "sent a progress record that is not a JSON object";
    return relayed;
  }
  if (const auto error = parsed.find("error"); error != parsed.end()) {
    relayed.error = error->is_string() ? error->get<std::string>() : error->dump();
    return relayed;
  }
  if (string_field(parsed, "status") == "success") {
    relayed.success = true;
    parsed["status"] = "node " + std::string{node} + ": success";
  }
  parsed["node"] = node;
  relayed.line = parsed.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  return relayed;
}

std::string join_names(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& name : names) {
    joined += (joined.empty() ? "" : ", ") + name;
  }
  return joined;
}

int failure_status(const std::vector<const NodeAnswer*>& failed) {
  if (failed.empty()) {
    return 502;
  }
  const bool all_timed_out = std::all_of(
      failed.begin(), failed.end(), [](const NodeAnswer* answer) { return answer->timed_out; });
  if (all_timed_out) {
    return 504;
  }
  const int first = failed.front()->failure.empty() ? failed.front()->status : 0;
  const bool same = first >= 400 && std::all_of(failed.begin(), failed.end(), [&](const auto* a) {
                      return a->failure.empty() && a->status == first;
                    });
  return same ? first : 502;
}

}  // namespace llmgw::server::detail
