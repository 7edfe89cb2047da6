#include "support/test_certs.hpp"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <memory>
#include <stdexcept>
#include <system_error>

#include "support/wait.hpp"

namespace llmgw::testing {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};
struct X509Free {
  void operator()(X509* cert) const { X509_free(cert); }
};
struct X509ExtensionFree {
  void operator()(X509_EXTENSION* extension) const { X509_EXTENSION_free(extension); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free_all(bio); }
};
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;

void check(bool ok, const char* step) {
  if (!ok) {
    throw std::runtime_error(std::string("test certificates: ") + step + " failed");
  }
}

Pkey make_key() {
  Pkey key{EVP_EC_gen("P-256")};
  check(key != nullptr, "EVP_EC_gen");
  return key;
}

void add_extension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, issuer, cert, nullptr, nullptr, 0);
  std::unique_ptr<X509_EXTENSION, X509ExtensionFree> extension{
      X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str())};
  check(extension != nullptr, "X509V3_EXT_conf_nid");
  check(X509_add_ext(cert, extension.get(), -1) == 1, "X509_add_ext");
}

// An unsigned certificate for `key` named `common_name`, issued by `issuer` (by itself when null).
Cert make_certificate(EVP_PKEY* key, const std::string& common_name, long serial, X509* issuer) {
  Cert cert{X509_new()};
  check(cert != nullptr, "X509_new");
  check(X509_set_version(cert.get(), X509_VERSION_3) == 1, "X509_set_version");
  check(ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial) == 1, "serial number");
  constexpr long kHourSeconds = 60L * 60;
  check(X509_gmtime_adj(X509_getm_notBefore(cert.get()), -kHourSeconds) != nullptr, "notBefore");
  check(X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30 * 24 * kHourSeconds) != nullptr,
        "notAfter");
  check(X509_set_pubkey(cert.get(), key) == 1, "X509_set_pubkey");
  X509_NAME* name = X509_get_subject_name(cert.get());
  check(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                   reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                   -1, 0) == 1,
        "subject name");
  X509* signer = issuer != nullptr ? issuer : cert.get();
  check(X509_set_issuer_name(cert.get(), X509_get_subject_name(signer)) == 1, "issuer name");
  return cert;
}

void sign(X509* cert, EVP_PKEY* key) {
  check(X509_sign(cert, key, EVP_sha256()) > 0, "X509_sign");
}

void write_pem(const std::filesystem::path& path, const std::vector<X509*>& certs, EVP_PKEY* key) {
  std::unique_ptr<BIO, BioFree> bio{BIO_new_file(path.c_str(), "w")};
  check(bio != nullptr, "BIO_new_file");
  for (X509* cert : certs) {
    check(PEM_write_bio_X509(bio.get(), cert) == 1, "PEM_write_bio_X509");
  }
  if (key != nullptr) {
    check(PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
          "PEM_write_bio_PrivateKey");
  }
}

}  // namespace

TestCertificates::TestCertificates(const CertificateSubject& subject)
    : directory_(make_temp_dir("llmgw-certs")) {
  try {
    const Pkey ca_key = make_key();
    const Cert ca = make_certificate(ca_key.get(), "llmgw test CA", 1, nullptr);
    add_extension(ca.get(), ca.get(), NID_basic_constraints, "critical,CA:TRUE");
    add_extension(ca.get(), ca.get(), NID_key_usage, "critical,keyCertSign,cRLSign");
    add_extension(ca.get(), ca.get(), NID_subject_key_identifier, "hash");
    sign(ca.get(), ca_key.get());

    std::string alt_names;
    for (const auto& dns : subject.dns_names) {
      alt_names += (alt_names.empty() ? "DNS:" : ",DNS:") + dns;
    }
    for (const auto& ip : subject.ip_addresses) {
      alt_names += (alt_names.empty() ? "IP:" : ",IP:") + ip;
    }
    const std::string common_name =
        !subject.dns_names.empty()
            ? subject.dns_names.front()
            : (!subject.ip_addresses.empty() ? subject.ip_addresses.front() : "llmgw test server");
    const Pkey server_key = make_key();
    const Cert server = make_certificate(server_key.get(), common_name, 2, ca.get());
    add_extension(server.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE");
    add_extension(server.get(), ca.get(), NID_key_usage, "critical,digitalSignature");
    add_extension(server.get(), ca.get(), NID_ext_key_usage, "serverAuth");
    add_extension(server.get(), ca.get(), NID_authority_key_identifier, "keyid:always");
    if (!alt_names.empty()) {
      add_extension(server.get(), ca.get(), NID_subject_alt_name, alt_names);
    }
    sign(server.get(), ca_key.get());

    write_pem(ca_file(), {ca.get()}, nullptr);
    write_pem(certificate_chain_file(), {server.get(), ca.get()}, nullptr);
    write_pem(private_key_file(), {}, server_key.get());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove_all(directory_, ignored);
    throw;
  }
}

TestCertificates::~TestCertificates() {
  std::error_code ignored;
  std::filesystem::remove_all(directory_, ignored);
}

std::string served_certificate_subject(std::uint16_t port, const std::string& ca_file) {
  namespace asio = boost::asio;
  asio::io_context io;
  asio::ssl::context context{asio::ssl::context::tls_client};
  context.load_verify_file(ca_file);
  context.set_verify_mode(asio::ssl::verify_peer);
  asio::ssl::stream<asio::ip::tcp::socket> stream{io, context};
  stream.next_layer().connect({asio::ip::make_address("127.0.0.1"), port});
  boost::system::error_code ec;
  stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) {
    throw std::runtime_error("TLS handshake with 127.0.0.1:" + std::to_string(port) +
                             " failed: " + ec.message());
  }
  const Cert peer{SSL_get1_peer_certificate(stream.native_handle())};
  check(peer != nullptr, "SSL_get1_peer_certificate");
  char* line = X509_NAME_oneline(X509_get_subject_name(peer.get()), nullptr, 0);
  check(line != nullptr, "X509_NAME_oneline");
  std::string subject{line};
  OPENSSL_free(line);
  stream.shutdown(ec);
  return subject;
}

}  // namespace llmgw::testing
