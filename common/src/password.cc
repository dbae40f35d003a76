#include "trellis/common/password.h"

#include <sodium.h>

#include <stdexcept>
#include <string>

namespace trellis::password {
namespace {

constexpr std::string_view kArgon2idPrefix = crypto_pwhash_argon2id_STRPREFIX;

// sodium_init() selects the fastest Argon2 implementation for this CPU and seeds the RNG; a
// function-local static runs it exactly once, thread-safely, on first use.
bool sodium_ready() {
  static const bool ready = sodium_init() >= 0;
  return ready;
}

// libsodium wants a NUL-terminated string. A NUL inside, an oversized string or another
// algorithm cannot be one of our hashes.
bool plausible_hash(std::string_view encoded) {
  return encoded.size() < crypto_pwhash_STRBYTES && encoded.find('\0') == std::string_view::npos &&
         encoded.starts_with(kArgon2idPrefix);
}

// An empty string_view may have a null data(); libsodium is given a real (empty) string instead.
const char* bytes_of(std::string_view text) {
  return text.empty() ? "" : text.data();
}

}  // namespace

std::string hash(std::string_view password, const Params& params) {
  if (params.ops_limit < crypto_pwhash_argon2id_OPSLIMIT_MIN ||
      params.ops_limit > crypto_pwhash_argon2id_OPSLIMIT_MAX ||
      params.mem_limit_bytes < crypto_pwhash_argon2id_MEMLIMIT_MIN ||
      params.mem_limit_bytes > crypto_pwhash_argon2id_MEMLIMIT_MAX) {
    throw std::invalid_argument("Argon2id parameters out of range");
  }
  if (password.size() > crypto_pwhash_argon2id_PASSWD_MAX) {
    throw std::invalid_argument("password too long");
  }
  if (!sodium_ready()) throw std::runtime_error("libsodium initialisation failed");
  char encoded[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str_alg(encoded, bytes_of(password), password.size(), params.ops_limit,
                            params.mem_limit_bytes, crypto_pwhash_ALG_ARGON2ID13) != 0) {
    throw std::runtime_error("Argon2id hashing failed (out of memory?)");
  }
  return encoded;
}

bool verify(std::string_view encoded, std::string_view password) {
  try {
    if (!plausible_hash(encoded) || !sodium_ready()) return false;
    std::string terminated(encoded);
    return crypto_pwhash_str_verify(terminated.c_str(), bytes_of(password), password.size()) == 0;
  } catch (...) {
    return false;  // allocating the copy failed: nothing was verified
  }
}

bool needs_rehash(std::string_view encoded, const Params& params) {
  try {
    if (!plausible_hash(encoded) || !sodium_ready()) return true;
    std::string terminated(encoded);
    return crypto_pwhash_str_needs_rehash(terminated.c_str(), params.ops_limit,
                                          params.mem_limit_bytes) != 0;
  } catch (...) {
    return true;
  }
}

}  // namespace trellis::password
