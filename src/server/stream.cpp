#include "stream.hpp"

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cerrno>

namespace llmgw::server::detail {

template <class NextLayer>
bool BasicStream<NextLayer>::prepare_client(const std::string& host, bool verify) {
  if (!tls_) {
    return true;
  }
  error_code not_an_address;
  boost::asio::ip::make_address(host, not_an_address);
  // RFC 6066 §3: no SNI for an address literal.
  if (not_an_address && SSL_set_tlsext_host_name(tls_->native_handle(), host.c_str()) != 1) {
    return false;
  }
  if (verify) {
    // OpenSSL checks the name during the chain's verification (what
    // asio::ssl::host_name_verification does in a callback), so a mismatch is the verify
    // result X509_V_ERR_HOSTNAME_MISMATCH / IP_ADDRESS_MISMATCH, named in the error.
    X509_VERIFY_PARAM* param = SSL_get0_param(tls_->native_handle());
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = not_an_address ? X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size())
                                   : X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
    if (set != 1) {
      return false;
    }
  }
  return true;
}

template class BasicStream<boost::asio::ip::tcp::socket>;
template class BasicStream<boost::beast::tcp_stream>;

bool peer_has_left(int native_socket, bool tls) noexcept {
  constexpr std::size_t kTlsRecordHeader = 5;
  constexpr std::size_t kLongestAlertPayload = 19;  // TLS 1.3: 2 + content type + 16-byte tag
  constexpr unsigned char kAlert = 21;
  std::array<unsigned char, 64> peeked{};
  const auto got =
      ::recv(native_socket, peeked.data(), tls ? peeked.size() : 1, MSG_PEEK | MSG_DONTWAIT);
  if (got == 0) {
    return true;  // end of stream
  }
  if (got < 0) {
    return errno != EAGAIN && errno != EWOULDBLOCK;  // reset and the like; EAGAIN: spurious
  }
  if (!tls || static_cast<std::size_t>(got) < kTlsRecordHeader) {
    return false;
  }
  const std::size_t payload = (std::size_t{peeked[3]} << 8U) | peeked[4];
  const bool one_record = static_cast<std::size_t>(got) == kTlsRecordHeader + payload;
  return one_record && (peeked[0] == kAlert || payload <= kLongestAlertPayload);
}

namespace {

template <class Tls>
std::string handshake_failure(Tls& tls, const boost::system::error_code& ec) {
  const long verdict = SSL_get_verify_result(tls.native_handle());
  if (verdict == X509_V_ERR_HOSTNAME_MISMATCH || verdict == X509_V_ERR_IP_ADDRESS_MISMATCH) {
    return "certificate verify failed: the certificate does not name the node's host";
  }
  if (verdict != X509_V_OK) {
    return std::string{"certificate verify failed: "} + X509_verify_cert_error_string(verdict);
  }
  return ec.message();
}

}  // namespace

std::string describe_handshake_failure(Stream::TlsLayer& tls, const boost::system::error_code& ec) {
  return handshake_failure(tls, ec);
}

std::string describe_handshake_failure(TimedStream::TlsLayer& tls,
                                       const boost::system::error_code& ec) {
  return handshake_failure(tls, ec);
}

}  // namespace llmgw::server::detail
