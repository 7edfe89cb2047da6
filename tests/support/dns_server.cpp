#include "support/dns_server.hpp"

#include <pwd.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <stdexcept>

#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

std::string user_name() {
  const passwd* entry = ::getpwuid(::getuid());
  return entry != nullptr ? entry->pw_name : "root";
}

}  // namespace

bool DnsServer::installed() {
  return std::filesystem::exists(kBinary);
}

DnsServer::DnsServer(const std::string& hosts, std::vector<std::string> srv, std::string domain)
    : srv_(std::move(srv)), domain_(std::move(domain)) {
  hosts_file_ = dir_.write("hosts", hosts);
  for (int attempt = 0; attempt < 3 && !process_; ++attempt) {
    port_ = free_loopback_port(true);
    try {
      launch();
    } catch (const std::runtime_error&) {
      if (attempt == 2) {
        throw;
      }
    }
  }
}

DnsServer::~DnsServer() = default;  // the child is killed and reaped

void DnsServer::launch() {
  std::vector<std::string> args{"--no-daemon",
                                "--port=" + std::to_string(port_),
                                "--listen-address=127.0.0.1",
                                "--bind-interfaces",
                                "--no-resolv",
                                "--no-hosts",
                                "--addn-hosts=" + hosts_file_,
                                "--local=/" + domain_ + "/",
                                "--cache-size=0",
                                "--log-facility=-",
                                "--pid-file=",
                                "--user=" + user_name()};
  for (const auto& record : srv_) {
    args.push_back("--srv-host=" + record);
  }
  auto process = std::make_unique<ChildProcess>(kBinary, std::move(args));
  const std::string ready = "read " + hosts_file_;
  const std::string output = process->read_until(ready, std::chrono::seconds{10});
  if (output.find(ready) == std::string::npos) {
    throw std::runtime_error("dnsmasq did not start on port " + std::to_string(port_) + ": " +
                             output);
  }
  process_ = std::move(process);
}

void DnsServer::set_hosts(const std::string& hosts) {
  dir_.write("hosts", hosts);
  if (process_) {
    const std::size_t before = process_->output().size();
    process_->signal(SIGHUP);
    // Its "read FILE" line again: the new records are served from then on.
    const std::string ready = "read " + hosts_file_;
    for (int i = 0; i < 50 && process_->output().find(ready, before) == std::string::npos; ++i) {
      process_->read_until(std::string{"\x01never"}, std::chrono::milliseconds{100});  // reads on
    }
    if (process_->output().find(ready, before) == std::string::npos) {
      throw std::runtime_error("dnsmasq did not read its hosts file again after SIGHUP");
    }
  }
}

void DnsServer::set_srv(std::vector<std::string> srv) {
  srv_ = std::move(srv);
  stop();
  start();
}

void DnsServer::stop() {
  process_.reset();  // SIGKILL and reap
}

void DnsServer::start() {
  if (!process_) {
    launch();
  }
}

}  // namespace llmgw::testing
