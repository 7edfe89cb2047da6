// auth.keys_file: parsing, hashing and constant-time matching of inbound client keys.
#include "llmgw/config/client_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "gateway_config_internal.hpp"

namespace llmgw::config {
namespace {

constexpr std::size_t kMaxNameBytes = 64;
constexpr std::size_t kMinKeyBytes = 16;
constexpr std::size_t kMaxKeyBytes = 4096;
constexpr std::size_t kMaxFileBytes = 1024 * 1024;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

bool is_key_char(char c) {
  return c > ' ' && c < 127;
}

std::vector<std::string_view> split_words(std::string_view text) {
  std::vector<std::string_view> words;
  std::size_t at = 0;
  while (at < text.size()) {
    while (at < text.size() && (text[at] == ' ' || text[at] == '\t')) {
      ++at;
    }
    const std::size_t start = at;
    while (at < text.size() && text[at] != ' ' && text[at] != '\t') {
      ++at;
    }
    if (at > start) {
      words.push_back(text.substr(start, at - start));
    }
  }
  return words;
}

// One line's key, or the problem with it (never quoting the key).
std::string parse_line(std::string_view line, ClientKey& key) {
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    return "expected `NAME: KEY` or `NAME: KEY interactive|batch`";
  }
  const std::string name = detail::trim(line.substr(0, colon));
  if (name.empty() || name.size() > kMaxNameBytes ||
      !std::all_of(name.begin(), name.end(), is_name_char)) {
    return "the name must be 1-64 letters, digits, '_', '-' or '.', got " +
           detail::quote_value(name);
  }
  if (name == "none") {
    return "the name \"none\" is reserved (requests without a key)";
  }
  const auto words = split_words(line.substr(colon + 1));
  if (words.empty()) {
    return "key " + name + " has no key after the colon";
  }
  if (words.size() > 2) {
    return "key " + name + ": expected `NAME: KEY` or `NAME: KEY interactive|batch`";
  }
  const std::string_view secret = words[0];
  if (secret.size() < kMinKeyBytes || secret.size() > kMaxKeyBytes) {
    return "key " + name + " must be 16 to 4096 characters long, got " +
           std::to_string(secret.size());
  }
  if (!std::all_of(secret.begin(), secret.end(), is_key_char)) {
    return "key " + name + " must be visible ASCII";
  }
  if (words.size() == 2) {
    if (words[1] != "interactive" && words[1] != "batch") {
      return "key " + name + ": the priority class must be interactive or batch, got " +
             detail::quote_value(words[1]);
    }
    key.priority = std::string{words[1]};
  }
  key.name = name;
  key.sha256 = sha256_of(secret);
  return {};
}

}  // namespace

std::array<unsigned char, 32> sha256_of(std::string_view text) {
  std::array<unsigned char, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

std::vector<ClientKey> parse_client_keys(std::string_view text,
                                         std::vector<std::string>& problems) {
  std::vector<ClientKey> keys;
  std::size_t line_number = 0;
  while (!text.empty()) {
    ++line_number;
    const auto end = text.find('\n');
    std::string line = detail::trim(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line.front() == '#') {
      continue;
    }
    ClientKey key;
    std::string problem = parse_line(line, key);
    const auto same = [&](const ClientKey& other) {
      return other.name == key.name || other.sha256 == key.sha256;
    };
    if (problem.empty()) {
      if (const auto it = std::find_if(keys.begin(), keys.end(), same); it != keys.end()) {
        problem = it->name == key.name ? "the name " + key.name + " is used twice"
                                       : "key " + key.name + " is the same key as " + it->name;
      }
    }
    if (!problem.empty()) {
      problems.push_back("line " + std::to_string(line_number) + ": " + problem);
      continue;
    }
    keys.push_back(std::move(key));
  }
  return keys;
}

std::vector<ClientKey> read_client_keys(const std::string& path,
                                        std::vector<std::string>& problems) {
  const std::string shown = detail::quote_value(path);
  std::ifstream in{path, std::ios::binary};
  if (!in) {
    problems.push_back("cannot read " + shown + ": " + std::strerror(errno));
    return {};
  }
  // Bounded: a path such as /dev/zero must not take the loader's memory.
  std::string text(kMaxFileBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxFileBytes) {
    problems.push_back(shown + " is larger than 1 MiB");
    return {};
  }
  std::vector<std::string> line_problems;
  auto keys = parse_client_keys(text, line_problems);
  if (line_problems.empty() && keys.empty()) {
    line_problems.emplace_back("holds no key (expected lines `NAME: KEY`)");
  }
  for (const auto& problem : line_problems) {
    problems.push_back(shown + " " + problem);
  }
  return keys;
}

std::vector<ClientKey> load_client_keys(const std::string& path) {
  std::vector<std::string> problems;
  auto keys = read_client_keys(path, problems);
  if (!problems.empty()) {
    std::string message;
    for (const auto& problem : problems) {
      message += (message.empty() ? "" : "\n") + std::string{"auth.keys_file: "} + problem;
    }
    throw ConfigError(message);
  }
  return keys;
}

const ClientKey* match_client_key(const std::vector<ClientKey>& keys, std::string_view presented) {
  if (presented.empty() || presented.size() > kMaxKeyBytes) {
    return nullptr;
  }
  const auto digest = sha256_of(presented);
  const ClientKey* found = nullptr;
  for (const auto& key : keys) {
    // Every key is compared, even after a match.
    if (CRYPTO_memcmp(digest.data(), key.sha256.data(), digest.size()) == 0) {
      found = &key;
    }
  }
  return found;
}

}  // namespace llmgw::config
