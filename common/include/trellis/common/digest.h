// Small helpers over OpenSSL digests and identifiers that several components need.
#pragma once

#include <string>
#include <string_view>

namespace trellis {

// Lowercase hex of arbitrary bytes.
std::string to_hex(std::string_view bytes);
// SHA-256 as 32 raw bytes, and as hex.
std::string sha256(std::string_view data);
std::string sha256_hex(std::string_view data);
std::string sha1_hex(std::string_view data);
// Canonical 8-4-4-4-12 hex UUID text.
bool is_uuid(std::string_view text);

}  // namespace trellis
