#pragma once

// A routing table of `n` plain nodes named node-0 ... node-(n-1), for the routing unit tests.

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "llmgw/routing/router.hpp"

namespace llmgw::routing::fixtures {

inline RoutingTable make_table(int n, unsigned vnodes = 150) {
  std::vector<std::shared_ptr<NodeState>> nodes;
  for (int i = 0; i < n; ++i) {
    nodes.push_back(std::make_shared<NodeState>("node-" + std::to_string(i)));
  }
  return RoutingTable(std::move(nodes), vnodes);
}

}  // namespace llmgw::routing::fixtures
