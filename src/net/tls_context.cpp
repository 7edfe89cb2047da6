#include "llmgw/net/tls_context.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <boost/asio/ssl/context.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

namespace llmgw::net {
namespace {

namespace ssl = boost::asio::ssl;

constexpr auto kTls12AndLater = ssl::context::default_workarounds | ssl::context::no_sslv2 |
                                ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                                ssl::context::no_tlsv1_1;

// The file's contents, or a TlsSetupError naming it.
std::string read_file(const std::string& path, std::string_view what, bool is_key) {
  if (path.empty()) {
    throw TlsSetupError(std::string{what} + " file is not set", is_key);
  }
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    throw TlsSetupError(
        "cannot read " + std::string{what} + " " + path + ": " + std::strerror(errno), is_key);
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// OpenSSL's reason for the last failure (the error queue is emptied).
std::string openssl_reason(const boost::system::error_code& ec) {
  std::string reason;
  while (const unsigned long code = ERR_get_error()) {
    if (const char* text = ERR_reason_error_string(code); text != nullptr && reason.empty()) {
      reason = text;
    }
  }
  return reason.empty() ? ec.message() : reason;
}

}  // namespace

std::shared_ptr<ssl::context> make_server_tls_context(const std::string& certificate_chain_file,
                                                      const std::string& private_key_file) {
  read_file(certificate_chain_file, "the certificate chain", false);
  const std::string key_text = read_file(private_key_file, "the private key", true);
  if (key_text.find("ENCRYPTED") != std::string::npos) {
    throw TlsSetupError("the private key in " + private_key_file +
                            " is encrypted; llmgw reads an unencrypted key (protect the file "
                            "with its permissions instead)",
                        true);
  }
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  context->set_options(kTls12AndLater);
  // Never a passphrase prompt on the terminal: an encrypted key fails (caught above).
  context->set_password_callback([](std::size_t, ssl::context::password_purpose) { return ""; });
  boost::system::error_code ec;
  ERR_clear_error();
  context->use_certificate_chain_file(certificate_chain_file, ec);
  if (ec) {
    throw TlsSetupError("no usable certificate chain (PEM) in " + certificate_chain_file + ": " +
                            openssl_reason(ec),
                        false);
  }
  context->use_private_key_file(private_key_file, ssl::context::pem, ec);
  if (ec) {
    const std::string reason = openssl_reason(ec);
    if (reason.find("key values mismatch") != std::string::npos) {
      throw TlsSetupError("the private key in " + private_key_file +
                              " does not match the certificate in " + certificate_chain_file,
                          true);
    }
    throw TlsSetupError("no usable private key (PEM) in " + private_key_file + ": " + reason, true);
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    ERR_clear_error();
    throw TlsSetupError("the private key in " + private_key_file +
                            " does not match the certificate in " + certificate_chain_file,
                        true);
  }
  return context;
}

std::shared_ptr<ssl::context> make_client_tls_context(const std::string& ca_file, bool verify) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  context->set_options(kTls12AndLater);
  boost::system::error_code ec;
  context->set_default_verify_paths(ec);  // no system store is not fatal: ca_file may suffice
  if (!ca_file.empty()) {
    read_file(ca_file, "the CA file", false);
    ERR_clear_error();
    context->load_verify_file(ca_file, ec);
    if (ec) {
      throw TlsSetupError(
          "no usable CA certificate (PEM) in " + ca_file + ": " + openssl_reason(ec), false);
    }
  }
  context->set_verify_mode(verify ? ssl::verify_peer : ssl::verify_none);
  return context;
}

std::string describe_certificate_file(const std::string& certificate_file) {
  BIO* bio = BIO_new_file(certificate_file.c_str(), "r");
  if (bio == nullptr) {
    ERR_clear_error();
    return {};
  }
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) {
    ERR_clear_error();
    return {};
  }
  std::string out;
  if (char* subject = X509_NAME_oneline(X509_get_subject_name(cert), nullptr, 0)) {
    out = subject;
    OPENSSL_free(subject);
  }
  if (BIGNUM* serial = ASN1_INTEGER_to_BN(X509_get_serialNumber(cert), nullptr)) {
    if (char* hex = BN_bn2hex(serial)) {
      out += std::string{", serial "} + hex;
      OPENSSL_free(hex);
    }
    BN_free(serial);
  }
  X509_free(cert);
  return out;
}

}  // namespace llmgw::net
