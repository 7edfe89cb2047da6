#include "request_identity.hpp"

#include <algorithm>
#include <cstdint>
#include <random>

namespace llmgw::server::detail {
namespace {

constexpr std::size_t kMaxRequestId = 200;

bool lower_hex(std::string_view text) noexcept {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool all_zero(std::string_view text) noexcept {
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '0'; });
}

// Random lowercase hex, never all zeros (both trace and span ids forbid that). SplitMix64 over
// a per-thread state seeded from std::random_device: ids must be unique, not secret, and this
// costs a few instructions per 16 digits where mt19937_64 and fmt::format cost ~900 per request
// (callgrind, bench/RESULTS.md §12.8).
std::uint64_t next_random() noexcept {
  thread_local std::uint64_t state =
      (std::uint64_t{std::random_device{}()} << 32) ^ std::uint64_t{std::random_device{}()};
  state += 0x9e3779b97f4a7c15ULL;
  std::uint64_t z = state;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string random_hex(std::size_t digits) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  std::string hex(digits, '0');
  do {
    std::uint64_t bits = 0;
    for (std::size_t i = 0; i < digits; ++i) {
      if (i % 16 == 0) {
        bits = next_random();
      }
      hex[i] = kDigits[bits & 0xF];
      bits >>= 4;
    }
  } while (all_zero(hex));
  return hex;
}

}  // namespace

bool valid_request_id(std::string_view value) noexcept {
  return !value.empty() && value.size() <= kMaxRequestId &&
         std::all_of(value.begin(), value.end(),
                     [](char c) { return c > ' ' && c < 0x7f && c != '"' && c != '\\'; });
}

TraceParent parse_traceparent(std::string_view value) {
  // version "-" trace-id "-" parent-id "-" flags: 2 + 1 + 32 + 1 + 16 + 1 + 2 = 55 characters.
  if (value.size() < 55 || value[2] != '-' || value[35] != '-' || value[52] != '-') {
    return {};
  }
  const auto version = value.substr(0, 2);
  const auto trace_id = value.substr(3, 32);
  const auto parent_id = value.substr(36, 16);
  const auto flags = value.substr(53, 2);
  if (!lower_hex(version) || version == "ff" || !lower_hex(trace_id) || all_zero(trace_id) ||
      !lower_hex(parent_id) || all_zero(parent_id) || !lower_hex(flags)) {
    return {};
  }
  if (version == "00" ? value.size() != 55 : (value.size() > 55 && value[55] != '-')) {
    return {};
  }
  return {std::string{trace_id}, std::string{flags}};
}

RequestIdentity identify(std::string_view request_id, std::string_view traceparent) {
  RequestIdentity identity;
  identity.request_id = valid_request_id(request_id) ? std::string{request_id} : random_hex(32);
  auto parent = parse_traceparent(traceparent);
  identity.trace_id = parent.trace_id.empty() ? random_hex(32) : std::move(parent.trace_id);
  identity.span_id = random_hex(16);
  // A trace the gateway starts is not sampled: it records nothing itself, and leaves the
  // decision to a caller that does.
  const std::string_view flags =
      parent.flags.empty() ? std::string_view{"00"} : std::string_view{parent.flags};
  std::string& header = identity.traceparent;
  header.reserve(55);
  header.append("00-").append(identity.trace_id).push_back('-');
  header.append(identity.span_id).push_back('-');
  header.append(flags);
  return identity;
}

}  // namespace llmgw::server::detail
