#include "trellis/common/page_cursor.h"

#include "trellis/common/base64url.h"
#include "trellis/common/digest.h"

namespace trellis {
namespace {

constexpr unsigned char kVersion = 1;
constexpr size_t kPositionBytes = 1 + 8;  // version, big-endian seq
constexpr size_t kCheckBytes = 8;

std::string check_value(std::string_view listing, std::string_view position,
                        std::string_view scope) {
  std::string input(listing);
  input.push_back('\0');
  input.append(scope);
  input.push_back('\0');
  input.append(position);
  return sha256(input).substr(0, kCheckBytes);
}

}  // namespace

std::string encode_page_cursor(std::string_view listing, int64_t last_seq, std::string_view scope) {
  std::string position(1, static_cast<char>(kVersion));
  auto value = static_cast<uint64_t>(last_seq);
  for (int shift = 56; shift >= 0; shift -= 8) {
    position.push_back(static_cast<char>((value >> shift) & 0xFF));
  }
  return crypto::base64url_encode(position + check_value(listing, position, scope));
}

std::optional<int64_t> decode_page_cursor(std::string_view listing, std::string_view token,
                                          std::string_view scope) {
  auto bytes = crypto::base64url_decode(token);
  if (!bytes || bytes->size() != kPositionBytes + kCheckBytes) return std::nullopt;
  auto position = std::string_view(*bytes).substr(0, kPositionBytes);
  if (static_cast<unsigned char>(position[0]) != kVersion) return std::nullopt;
  // Constant time is not needed: the check protects no secret.
  if (bytes->compare(kPositionBytes, kCheckBytes, check_value(listing, position, scope)) != 0) {
    return std::nullopt;
  }
  uint64_t value = 0;
  for (size_t i = 1; i < kPositionBytes; ++i) {
    value = (value << 8) | static_cast<unsigned char>(position[i]);
  }
  auto seq = static_cast<int64_t>(value);
  if (seq <= 0) return std::nullopt;
  return seq;
}

std::string check_page_size(bool present, int requested, int& out) {
  if (!present) {
    out = kDefaultPageSize;
    return {};
  }
  if (requested < 1 || requested > kMaxPageSize) {
    return "limit must be between 1 and " + std::to_string(kMaxPageSize);
  }
  out = requested;
  return {};
}

}  // namespace trellis
