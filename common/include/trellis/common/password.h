// Password hashing with Argon2id (libsodium crypto_pwhash, ALG_ARGON2ID13). Hashes are PHC
// strings ("$argon2id$v=19$m=...,t=...,p=1$salt$hash") that carry their own salt and cost, so
// costs can be raised later: needs_rehash() tells when a stored hash was made with other costs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace trellis::password {

// Defaults follow OWASP's Argon2id recommendation: 19 MiB, 2 passes, parallelism 1 (libsodium
// always uses 1).
struct Params {
  uint64_t ops_limit = 2;
  size_t mem_limit_bytes = 19u * 1024 * 1024;
};

// A new random salt every call. Throws std::invalid_argument when params are below libsodium's
// minimum (1 pass, 8 KiB) or above its maximum, std::runtime_error when hashing fails (memory).
std::string hash(std::string_view password, const Params& params);

// True only when `encoded` is an Argon2id PHC string made from `password`. False on mismatch or
// malformed encoding; never throws.
bool verify(std::string_view encoded, std::string_view password);

// True when `encoded` is not an Argon2id hash with exactly these costs (malformed included).
bool needs_rehash(std::string_view encoded, const Params& params);

}  // namespace trellis::password
