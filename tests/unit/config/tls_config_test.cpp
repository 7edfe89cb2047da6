// listen.tls, admin.listen.tls, upstream_tls and https:// node URLs: what the loader accepts, and
// every refusal naming the key's path and the file.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>

#include "llmgw/config/gateway_config.hpp"
#include "support/config_refusal.hpp"
#include "support/serve_process.hpp"
#include "support/test_certs.hpp"

namespace llmgw::config::tls_config_test {

using ::testing::HasSubstr;

using testing::yaml_refusal;

std::string listen_tls(const std::string& cert, const std::string& key) {
  return "listen: {tls: {cert_file: '" + cert + "', key_file: '" + key + "'}}\n";
}

TEST(TlsConfig, HttpsNodesDefaultToPort443AndAreTls) {
  const auto config = parse_gateway_config(
      "nodes: ['https://gpu-1.internal', {name: b, url: 'https://10.0.0.2:8443/'}]");
  EXPECT_TRUE(config.nodes[0].tls);
  EXPECT_EQ(config.nodes[0].port, 443);
  EXPECT_EQ(config.nodes[0].name, "gpu-1.internal:443");
  EXPECT_TRUE(config.nodes[1].tls);
  EXPECT_EQ(config.nodes[1].port, 8443);
  EXPECT_FALSE(config.upstream_tls.insecure_skip_verify);
}

TEST(TlsConfig, AListenerCertificateAndItsKeyAreAccepted) {
  const testing::TestCertificates certificates;
  const auto config = parse_gateway_config(
      listen_tls(certificates.certificate_chain_file(), certificates.private_key_file()));
  EXPECT_TRUE(config.listen.tls.enabled());
  EXPECT_EQ(config.listen.tls.key_file, certificates.private_key_file());
}

TEST(TlsConfig, MissingFilesAreRefusedWithTheKeyPathAndTheFile) {
  const testing::TestCertificates certificates;
  EXPECT_EQ(yaml_refusal(listen_tls("/nonexistent/cert.pem", certificates.private_key_file())),
            "listen.tls.cert_file: cannot read the certificate chain /nonexistent/cert.pem: No "
            "such file or directory");
  EXPECT_EQ(yaml_refusal(listen_tls(certificates.certificate_chain_file(), "/nonexistent/key.pem")),
            "listen.tls.key_file: cannot read the private key /nonexistent/key.pem: No such file "
            "or directory");
  EXPECT_EQ(
      yaml_refusal("listen: {tls: {cert_file: '" + certificates.certificate_chain_file() + "'}}"),
      "listen.tls: cert_file and key_file go together (the listener's certificate and its "
      "private key)");
}

TEST(TlsConfig, AKeyOfAnotherCertificateIsRefused) {
  const testing::TestCertificates first;
  const testing::TestCertificates second;
  EXPECT_EQ(yaml_refusal(listen_tls(first.certificate_chain_file(), second.private_key_file())),
            "listen.tls.key_file: the private key in " + second.private_key_file() +
                " does not match the certificate in " + first.certificate_chain_file());
}

TEST(TlsConfig, FilesThatAreNotPemAreRefusedWithoutShowingTheirContents) {
  const testing::TestCertificates certificates;
  const testing::TempDir dir("llmgw-tls-config");
  const std::string junk = dir.write("junk.pem", "secret-looking-junk\n");
  const std::string encrypted =
      dir.write("encrypted.pem",
                "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE "
                "KEY-----\n");
  const std::string not_a_cert = yaml_refusal(listen_tls(junk, certificates.private_key_file()));
  EXPECT_THAT(not_a_cert,
              HasSubstr("listen.tls.cert_file: no usable certificate chain (PEM) in " + junk));
  EXPECT_THAT(not_a_cert, ::testing::Not(HasSubstr("secret-looking-junk")));
  EXPECT_THAT(yaml_refusal(listen_tls(certificates.certificate_chain_file(), encrypted)),
              HasSubstr("listen.tls.key_file: the private key in " + encrypted +
                        " is encrypted; llmgw reads an unencrypted key"));
}

TEST(TlsConfig, TheAdminListenerNeedsItsOwnAddressForTls) {
  const testing::TestCertificates certificates;
  EXPECT_THAT(
      yaml_refusal("admin: {listen: {tls: {cert_file: '" + certificates.certificate_chain_file() +
                   "', key_file: '" + certificates.private_key_file() + "'}}}"),
      HasSubstr("admin.listen.tls: needs admin.listen.address"));
  const auto config =
      parse_gateway_config("admin: {listen: {address: 127.0.0.1, port: 0, tls: {cert_file: '" +
                           certificates.certificate_chain_file() + "', key_file: '" +
                           certificates.private_key_file() + "'}}}");
  EXPECT_TRUE(config.admin.listen.tls.enabled());
}

TEST(TlsConfig, AnUnreadableCaFileIsRefused) {
  const testing::TempDir dir("llmgw-tls-config");
  const std::string junk = dir.write("ca.pem", "not a certificate\n");
  EXPECT_THAT(yaml_refusal("upstream_tls: {ca_file: /nonexistent/ca.pem}"),
              HasSubstr("upstream_tls.ca_file: cannot read the CA file /nonexistent/ca.pem"));
  EXPECT_THAT(yaml_refusal("upstream_tls: {ca_file: '" + junk + "'}"),
              HasSubstr("upstream_tls.ca_file: no usable CA certificate (PEM) in " + junk));
}

TEST(TlsConfig, RelativeFilesAreFoundNextToTheConfigFile) {
  const testing::TestCertificates certificates;
  const testing::TempDir config_dir("llmgw-tls-config");
  const std::string file = config_dir.write(
      "gateway.yaml", "listen: {tls: {cert_file: '" + certificates.certificate_chain_file() +
                          "', key_file: '" + certificates.private_key_file() +
                          "'}}\nupstream_tls: {ca_file: ca.pem}\n");
  config_dir.write("ca.pem", [&] {
    std::ifstream in{certificates.ca_file()};
    return std::string{std::istreambuf_iterator<char>{in}, {}};
  }());
  const auto config = load_gateway_config({file, {}, {}});
  EXPECT_EQ(config.upstream_tls.ca_file, config_dir.path() + "/ca.pem");
}

}  // namespace llmgw::config::tls_config_test
