#include "llmgw/routing/hash_ring.hpp"

#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numeric>
#include <stdexcept>

namespace llmgw::routing {
namespace {

// OpenSSL 3 looks an algorithm up on every EVP_md5() call unless it is fetched once; the context
// is per thread so the hot path allocates nothing.
const EVP_MD* md5_algorithm() {
  static EVP_MD* const algorithm = EVP_MD_fetch(nullptr, "MD5", nullptr);
  return algorithm;
}

struct DigestContext {
  EVP_MD_CTX* context = EVP_MD_CTX_new();
  ~DigestContext() { EVP_MD_CTX_free(context); }
};

}  // namespace

std::uint64_t ring_position(std::string_view key) noexcept {
  thread_local DigestContext digest;
  std::array<unsigned char, EVP_MAX_MD_SIZE> bytes{};
  unsigned int length = 0;
  if (digest.context == nullptr || md5_algorithm() == nullptr ||
      EVP_DigestInit_ex2(digest.context, md5_algorithm(), nullptr) != 1 ||
      EVP_DigestUpdate(digest.context, key.data(), key.size()) != 1 ||
      EVP_DigestFinal_ex(digest.context, bytes.data(), &length) != 1 || length < 8) {
    return 0;  // Only when OpenSSL has no MD5 at all; startup checks catch that (see ring tests).
  }
  std::uint64_t position = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    position = (position << 8) | bytes[i];
  }
  return position;
}

HashRing::HashRing(std::span<const RingMember> members, unsigned virtual_nodes) {
  if (members.size() > std::numeric_limits<std::uint32_t>::max()) {
    throw std::invalid_argument("too many ring members");
  }
  struct Point {
    std::uint64_t position;
    std::uint32_t member;
  };
  std::vector<Point> points;
  virtual_node_counts_.reserve(members.size());
  for (std::size_t m = 0; m < members.size(); ++m) {
    const double scaled = std::round(static_cast<double>(virtual_nodes) * members[m].weight);
    const unsigned count = scaled < 1.0 ? 1U : static_cast<unsigned>(scaled);
    virtual_node_counts_.push_back(count);
    std::string label = members[m].id + '#';
    const std::size_t prefix = label.size();
    for (unsigned i = 0; i < count; ++i) {
      label.resize(prefix);
      label += std::to_string(i);
      points.push_back({ring_position(label), static_cast<std::uint32_t>(m)});
    }
  }
  std::sort(points.begin(), points.end(), [&members](const Point& a, const Point& b) {
    if (a.position != b.position) {
      return a.position < b.position;
    }
    return members[a.member].id < members[b.member].id;
  });
  positions_.reserve(points.size());
  point_members_.reserve(points.size());
  for (const auto& point : points) {
    positions_.push_back(point.position);
    point_members_.push_back(point.member);
  }
}

std::size_t HashRing::first_point_at_or_after(std::uint64_t position) const noexcept {
  const auto it = std::lower_bound(positions_.begin(), positions_.end(), position);
  return it == positions_.end() ? 0 : static_cast<std::size_t>(it - positions_.begin());
}

std::optional<std::size_t> HashRing::owner(std::uint64_t position) const noexcept {
  if (positions_.empty()) {
    return std::nullopt;
  }
  return point_members_[first_point_at_or_after(position)];
}

std::vector<std::size_t> HashRing::clockwise_members(std::uint64_t position) const {
  std::vector<std::size_t> order;
  order.reserve(member_count());
  walk_clockwise(position, [&order](std::size_t member) {
    order.push_back(member);
    return true;
  });
  return order;
}

}  // namespace llmgw::routing
