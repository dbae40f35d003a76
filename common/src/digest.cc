#include "trellis/common/digest.h"

#include <openssl/evp.h>

#include <cctype>
#include <stdexcept>

namespace trellis {

std::string to_hex(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex(bytes.size() * 2, '\0');  // sized once: ids and digests are hexed per request
  char* out = hex.data();
  for (unsigned char byte : bytes) {
    *out++ = kHex[byte >> 4];
    *out++ = kHex[byte & 0xf];
  }
  return hex;
}

namespace {

// OpenSSL 3's one-shot SHA256()/SHA1() look the algorithm up in the provider on every call,
// which costs more than hashing a short input (the gateway hashes a cache key per request).
const EVP_MD* fetched(const char* name) {
  const EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) throw std::runtime_error(std::string("OpenSSL has no ") + name);
  return md;  // kept for the life of the process
}

std::string digest(const EVP_MD* md, std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &length, md, nullptr) != 1) {
    throw std::runtime_error("digest failed");
  }
  return std::string(reinterpret_cast<const char*>(digest), length);
}

}  // namespace

std::string sha256(std::string_view data) {
  static const EVP_MD* const md = fetched("SHA256");
  return digest(md, data);
}

std::string sha256_hex(std::string_view data) {
  return to_hex(sha256(data));
}

std::string sha1_hex(std::string_view data) {
  static const EVP_MD* const md = fetched("SHA1");
  return to_hex(digest(md, data));
}

bool is_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    bool dash_position = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_position != (c == '-')) return false;
    if (!dash_position && !std::isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace trellis
