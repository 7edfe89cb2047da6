#pragma once

// Inbound client keys (auth.keys_file): the file's format, hashing, and matching a presented key.
//
// The file has one key per line, `NAME: KEY` or `NAME: KEY CLASS`:
//
//   # who          key (visible ASCII, 16+ characters)     priority class when none is asked for
//   chat-ui:       c2VjcmV0LWtleS1mb3ItdGhlLWNoYXQtdWk      interactive
//   nightly-eval:  bmlnaHRseS1ldmFsLXNlY3JldC1rZXk          batch
//   alice:         YWxpY2Utc2VjcmV0LWtleQ
//
// Blank lines and lines starting with '#' are skipped. NAME is a label value on
// llmgw_requests_total (letters, digits, '_', '-', '.'; at most 64; not "none"); names and keys are
// unique. Only SHA-256 digests are kept in memory; no message ever quotes a key.

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "llmgw/config/gateway_config.hpp"

namespace llmgw::config {

// SHA-256 of `text` (OpenSSL EVP).
std::array<unsigned char, 32> sha256_of(std::string_view text);

// The keys of a keys file's text. Each problem is appended to `problems` as "line N: ..." (the
// caller adds the file); the lines without problems are still returned.
std::vector<ClientKey> parse_client_keys(std::string_view text, std::vector<std::string>& problems);

// Reads and parses the file `path`; each problem is appended as "\"<path>\" line N: ..." (or
// "cannot read ...", "holds no key").
std::vector<ClientKey> read_client_keys(const std::string& path,
                                        std::vector<std::string>& problems);

// Reads and parses `path`. Throws ConfigError ("auth.keys_file: ...") when the file cannot be read,
// has a bad line or holds no key.
std::vector<ClientKey> load_client_keys(const std::string& path);

// The configured key `presented` is, or nullptr. Hashes `presented` and compares the digest with
// every configured one (CRYPTO_memcmp, all of them, whichever matches), so the time taken does not
// depend on how much of a key was right, nor on which key it was.
const ClientKey* match_client_key(const std::vector<ClientKey>& keys, std::string_view presented);

}  // namespace llmgw::config
