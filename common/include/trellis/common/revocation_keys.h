// The Redis keys that revoke access tokens: written by the users service (logout, refresh-token
// reuse) with the token's remaining lifetime as TTL, read by the gateway on every authenticated
// request. One spelling for both sides.
#pragma once

#include <string>
#include <string_view>

namespace trellis {

// Every revocation marker starts with this (the gateway keeps local copies of these keys).
inline constexpr std::string_view kRevokedKeyPrefix = "trellis:revoked:";

// Revokes one access token (its jti).
inline std::string revoked_token_key(std::string_view token_id) {
  std::string key;
  key.reserve(kRevokedKeyPrefix.size() + 4 + token_id.size());
  return key.append(kRevokedKeyPrefix).append("jti:").append(token_id);
}

// Revokes every access token of a session (its sid).
inline std::string revoked_session_key(std::string_view session_id) {
  std::string key;
  key.reserve(kRevokedKeyPrefix.size() + 4 + session_id.size());
  return key.append(kRevokedKeyPrefix).append("sid:").append(session_id);
}

}  // namespace trellis
