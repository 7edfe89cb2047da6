#pragma once

// A real DNS server for tests: Debian's dnsmasq on an ephemeral loopback port, answering only from
// a hosts file the test rewrites (A/AAAA records; re-read on SIGHUP) and from SRV records given on
// its command line (changed by a restart on the same port). Names under the test's domain that it
// does not know get NXDOMAIN; it asks no other server. Started and waited for with a bound,
// stopped by PID. Tests skip with a clear message when the binary is missing (scripts/install-deps
// installs dnsmasq-base, so CI never skips).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "support/child_process.hpp"
#include "support/serve_process.hpp"

namespace llmgw::testing {

class DnsServer {
 public:
  static constexpr const char* kBinary = "/usr/sbin/dnsmasq";
  static bool installed();

  // `hosts`: hosts-file lines ("127.0.0.2 sims.test"); `srv`: dnsmasq --srv-host values
  // ("_ollama._tcp.sims.test,sim-a.test,8080"); `domain`: answered locally only ("test").
  // Throws std::runtime_error when dnsmasq does not come up.
  DnsServer(const std::string& hosts, std::vector<std::string> srv = {},
            std::string domain = "test");
  ~DnsServer();
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  std::uint16_t port() const { return port_; }
  // "127.0.0.1:PORT", for discovery.dns.server.
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Rewrites the hosts file and makes dnsmasq read it again (SIGHUP), waiting for its log line.
  void set_hosts(const std::string& hosts);
  // Restarts dnsmasq on the same port with these SRV records.
  void set_srv(std::vector<std::string> srv);
  // Kills dnsmasq (its port then answers nothing); start() brings it back on the same port.
  void stop();
  void start();

 private:
  void launch();

  TempDir dir_{"llmgw-dns"};
  std::string hosts_file_;
  std::vector<std::string> srv_;
  std::string domain_;
  std::uint16_t port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace llmgw::testing
