#pragma once

// An asynchronous DNS resolver on an Asio io_context: c-ares (Debian's libc-ares) asks and parses,
// Asio waits. c-ares tells which sockets it wants watched (its socket-state callback); each is
// watched by the io_context's reactor and handed back to ares_process_fd when readable or
// writable, and one timer, set from ares_timeout after every step, drives its retries and
// timeouts. So nothing blocks the thread that runs the io_context, and no DNS message is built or
// parsed here.
//
// Outcomes are values: NXDOMAIN, no records of the type (NODATA), SERVFAIL, REFUSED, a timeout and
// an unreachable server each have their own, so a caller can tell "the name is gone" from "the
// server did not answer".
//
// Thread safety: none. Construct, call and destroy on the io_context's thread (or while it does not
// run). Callbacks run on that thread, never inside the call that started the query. Destroying the
// resolver (or cancel()) drops the queries in flight without calling their callbacks.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace llmgw::net {

enum class DnsOutcome : std::uint8_t {
  ok,           // records found
  nxdomain,     // the name does not exist
  no_records,   // the name exists but has no record of the type asked (NODATA)
  servfail,     // the server failed (SERVFAIL)
  refused,      // the server refused to answer (REFUSED)
  timeout,      // no answer within the timeout, retries included
  unreachable,  // the server could not be reached (connection refused)
  error,        // anything else (a malformed answer, out of memory, ...)
};
inline constexpr std::size_t kDnsOutcomeCount = 8;
std::string_view to_string(DnsOutcome outcome) noexcept;

struct DnsAddresses {
  DnsOutcome outcome = DnsOutcome::error;
  std::string detail;                  // c-ares' words for a failure
  std::vector<std::string> addresses;  // IPv4 and IPv6 text, sorted, no duplicates
};

struct DnsSrvRecord {
  std::string target;  // without the final dot
  std::uint16_t port = 0;
  std::uint16_t priority = 0;
  std::uint16_t weight = 0;
};

struct DnsSrvRecords {
  DnsOutcome outcome = DnsOutcome::error;
  std::string detail;
  std::vector<DnsSrvRecord> records;
};

struct DnsResolverOptions {
  // "ip:port" servers in c-ares' CSV form ("127.0.0.1:5353", "[::1]:53"); empty: the system's
  // (/etc/resolv.conf: servers, search domains, ndots).
  std::string servers;
  // One query's whole budget: c-ares tries each server up to 2 times within it.
  std::chrono::milliseconds timeout{2'000};
};

class DnsResolver {
 public:
  // Throws std::runtime_error when c-ares cannot start (bad servers, out of memory).
  DnsResolver(boost::asio::io_context& io, const DnsResolverOptions& options);
  ~DnsResolver();
  DnsResolver(const DnsResolver&) = delete;
  DnsResolver& operator=(const DnsResolver&) = delete;

  // The A and AAAA records of `name` (search domains applied as for getaddrinfo).
  void resolve_addresses(const std::string& name, std::function<void(DnsAddresses)> done);
  // The SRV records of `name` (search domains applied).
  void resolve_srv(const std::string& name, std::function<void(DnsSrvRecords)> done);
  // Drops every query in flight; their callbacks are not called.
  void cancel();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace llmgw::net
