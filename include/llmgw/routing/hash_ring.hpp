#pragma once

// The consistent-hash ring (DESIGN.md §2): a pure, immutable value built from a node set.
//
// Each member `id` with weight w owns round(vnodes × w) (at least 1) virtual nodes, the strings
// "<id>#0", "<id>#1", ... . A position is the first 8 bytes of MD5(string) read big-endian. A key
// is owned by the first virtual node whose position is >= the key's position, wrapping past the
// largest position to the smallest. Equal positions are ordered by member id, so the ring depends
// only on the set of (id, weight) pairs, never on the order they were given in.
//
// Worked example with two virtual nodes per member:
//   "a#0" -> 0x1f..., "a#1" -> 0xc2..., "b#0" -> 0x70..., "b#1" -> 0xf0...
//   sorted: 0x1f(a) 0x70(b) 0xc2(a) 0xf0(b)
//   key at 0x20 -> b (first >= is 0x70); key at 0xf5 -> wraps to a (0x1f); key at 0x70 -> b.
//
// Thread safety: immutable after construction; any number of threads may read one ring.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace llmgw::routing {

// First 8 bytes of MD5(key), big-endian. MD5 from OpenSSL's EVP interface.
std::uint64_t ring_position(std::string_view key) noexcept;

struct RingMember {
  std::string id;
  double weight = 1.0;
};

class HashRing {
 public:
  static constexpr unsigned kDefaultVirtualNodes = 150;

  HashRing() = default;
  HashRing(std::span<const RingMember> members, unsigned virtual_nodes = kDefaultVirtualNodes);

  // Index (into the members given at construction) of the owner of `position`; nullopt when empty.
  std::optional<std::size_t> owner(std::uint64_t position) const noexcept;

  // Calls visit(member_index) for each distinct member in clockwise order starting at the owner of
  // `position`, until visit returns false or every member was visited.
  template <typename Visitor>
  void walk_clockwise(std::uint64_t position, Visitor&& visit) const;

  // All members in clockwise order from `position` (owner first).
  std::vector<std::size_t> clockwise_members(std::uint64_t position) const;

  std::size_t member_count() const noexcept { return virtual_node_counts_.size(); }
  std::size_t virtual_node_count() const noexcept { return positions_.size(); }
  unsigned virtual_nodes_of(std::size_t member) const { return virtual_node_counts_.at(member); }
  // Position of the i-th point on the ring and its member (for tests and /health).
  std::uint64_t point_position(std::size_t i) const { return positions_.at(i); }
  std::size_t point_member(std::size_t i) const { return point_members_.at(i); }

 private:
  std::size_t first_point_at_or_after(std::uint64_t position) const noexcept;

  // Structure of arrays: the binary search touches only positions_.
  std::vector<std::uint64_t> positions_;
  std::vector<std::uint32_t> point_members_;
  std::vector<unsigned> virtual_node_counts_;
};

template <typename Visitor>
void HashRing::walk_clockwise(std::uint64_t position, Visitor&& visit) const {
  const std::size_t points = positions_.size();
  const std::size_t members = virtual_node_counts_.size();
  if (points == 0) {
    return;
  }
  // Small fixed bitset for the common case; members beyond 64 use the vector.
  std::uint64_t seen_small = 0;
  std::vector<bool> seen_large(members > 64 ? members : 0, false);
  std::size_t distinct = 0;
  std::size_t index = first_point_at_or_after(position);
  for (std::size_t step = 0; step < points && distinct < members; ++step) {
    const std::uint32_t member = point_members_[index];
    bool already;
    if (members <= 64) {
      already = (seen_small >> member) & 1U;
      seen_small |= std::uint64_t{1} << member;
    } else {
      already = seen_large[member];
      seen_large[member] = true;
    }
    if (!already) {
      ++distinct;
      if (!visit(static_cast<std::size_t>(member))) {
        return;
      }
    }
    index = index + 1 == points ? 0 : index + 1;
  }
}

}  // namespace llmgw::routing
