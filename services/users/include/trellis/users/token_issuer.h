// Signs access tokens with the active key and publishes every key of the key directory, so that
// tokens signed by the previous key keep verifying during a rotation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "trellis/common/jwt.h"
#include "trellis/users/config.h"
#include "trellis/users/user_store.h"

namespace trellis::users {

struct AccessToken {
  std::string token;
  std::string token_id;
  int64_t expires_at = 0;
  int expires_in = 0;
};

class TokenIssuer {
 public:
  // Loads <keys_dir>/*.pem; throws when the directory has no key named active_kid.
  explicit TokenIssuer(const TokenConfig& config);

  AccessToken issue(const UserRecord& user, const std::string& session_id) const;
  // Every key of the directory (the active one and those kept for rotation), for the JWKS.
  const std::vector<jwt::PublicJwk>& published_keys() const { return published_; }

 private:
  TokenConfig config_;
  std::vector<jwt::PublicJwk> published_;  // filled while signing_key_ is initialized: keep first
  jwt::SigningKey signing_key_;
};

}  // namespace trellis::users
