#pragma once

// Throwaway X.509 material for TLS tests, generated at test time with OpenSSL (no files in the
// repository, nothing that expires in CI). A fresh temporary directory per instance, removed again
// by the destructor, so tests running in parallel never share files.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace llmgw::testing {

struct CertificateSubject {
  std::vector<std::string> dns_names{"localhost"};
  std::vector<std::string> ip_addresses{"127.0.0.1"};
};

class TestCertificates {
 public:
  // Generates a self-signed CA and a server certificate signed by it for `subject` (EC P-256,
  // valid from an hour ago for 30 days). Throws std::runtime_error naming the OpenSSL step that
  // failed.
  explicit TestCertificates(const CertificateSubject& subject = {});
  ~TestCertificates();
  TestCertificates(const TestCertificates&) = delete;
  TestCertificates& operator=(const TestCertificates&) = delete;

  const std::filesystem::path& directory() const noexcept { return directory_; }
  // PEM files, for ClientOptions::ca_file and ServerTlsOptions.
  std::string ca_file() const { return (directory_ / "ca.pem").string(); }
  std::string certificate_chain_file() const { return (directory_ / "server-chain.pem").string(); }
  std::string private_key_file() const { return (directory_ / "server-key.pem").string(); }

 private:
  std::filesystem::path directory_;
};

// The subject (OpenSSL's one-line form, "/CN=first.test") of the certificate that the TLS server on
// 127.0.0.1:`port` presents to a new connection, verified against `ca_file`. Throws
// std::runtime_error when the connection or the handshake fails.
std::string served_certificate_subject(std::uint16_t port, const std::string& ca_file);

}  // namespace llmgw::testing
