// base64url (RFC 4648 §5) without padding, the encoding of JWT parts, JWK key material and
// opaque tokens. Decoding is strict so that every byte string has exactly one accepted text form:
// a token cannot be altered into a different text that still decodes to the same bytes.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace trellis::crypto {

std::string base64url_encode(std::string_view bytes);

// nullopt unless `text` is canonical unpadded base64url: only [A-Za-z0-9_-], no '=', no
// whitespace, a length that is not 1 mod 4, and zero bits in the unused low bits of the last
// character.
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace trellis::crypto
