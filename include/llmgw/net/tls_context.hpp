#pragma once

// TLS contexts made from files (OpenSSL through Asio), for the gateway's listeners and its
// https:// nodes, the emulator and the test fakes. TLS 1.2 and later only.
//
// Errors name the file and what is wrong with it ("the private key in /etc/llmgw/key.pem does not
// match the certificate in /etc/llmgw/cert.pem"); they never contain a key's bytes. A key is read
// without a passphrase prompt: an encrypted key is refused with that reason instead of OpenSSL
// asking on the terminal.

#include <memory>
#include <stdexcept>
#include <string>

namespace boost::asio::ssl {
class context;
}

namespace llmgw::net {

class TlsSetupError : public std::runtime_error {
 public:
  // `file_is_key`: the problem is with the private key file (else with the certificate file).
  TlsSetupError(const std::string& message, bool file_is_key)
      : std::runtime_error(message), key(file_is_key) {}
  bool key;
};

// A server context: the certificate chain (PEM, leaf first) and its private key (PEM, not
// encrypted), checked to belong together. Throws TlsSetupError.
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(
    const std::string& certificate_chain_file, const std::string& private_key_file);

// A client context: the system's CA store (OpenSSL honours SSL_CERT_FILE / SSL_CERT_DIR) plus
// `ca_file` (a PEM bundle) when not empty; peers are verified unless `verify` is false. Host
// names are checked per connection (net::verify_host_name in the caller). Throws TlsSetupError
// (key = false) when `ca_file` cannot be read or holds no certificate.
std::shared_ptr<boost::asio::ssl::context> make_client_tls_context(const std::string& ca_file,
                                                                   bool verify);

// The subject and serial number of the certificate in `certificate_file` ("CN=a, serial 0x2"),
// for log lines after a reload. "" when it cannot be read.
std::string describe_certificate_file(const std::string& certificate_file);

}  // namespace llmgw::net
