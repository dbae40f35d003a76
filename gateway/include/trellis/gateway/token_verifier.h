// Access-token verification shared by the auth filter and live push: the bearer header, strict
// JWT verification (Ed25519 via the KeyCache, algorithm pinned, issuer, audience, exp/nbf with
// leeway) and the revocation check in Redis (jti and session keys written by the users service).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "trellis/common/jwt.h"
#include "trellis/common/revocation_keys.h"

namespace trellis::gateway {

class KeyCache;
class RedisClient;
struct RedisResult;

struct AuthFilterConfig {
  std::string issuer;
  std::string audience;
  int leeway_s = 30;
  // Tokens whose signature and claims were verified are remembered (until their exp + leeway, and
  // only while the key set is unchanged) so a client's next request skips the Ed25519 check.
  // 0 turns the cache off. Revocation is still checked on every request.
  size_t verified_cache_entries = 10000;
};

// "Bearer <token>", scheme case-insensitive (RFC 7235); empty when absent or another scheme.
std::string_view bearer_token(std::string_view header);

// The markers whose presence revokes a token: its own and, when it has one, its session's.
std::vector<std::string> revocation_markers(std::string_view token_id, std::string_view session_id);

enum class TokenStatus {
  kValid,
  kKeysUnavailable,  // no JWKS loaded yet: 503, never a pass
  kInvalid,          // verify error in `error`
};

// A verified token, shared (not copied) by every request that presents it.
struct VerifiedToken {
  jwt::Claims claims;
  std::vector<std::string> revocation_markers;  // revocation_markers(jti, sid)
};

struct TokenCheck {
  TokenStatus status = TokenStatus::kInvalid;
  std::string error;                           // jwt::to_string of the verify error when kInvalid
  std::shared_ptr<const VerifiedToken> token;  // when kValid
  const jwt::Claims& claims() const { return token->claims; }
};

enum class RevocationStatus { kNotRevoked, kRevoked, kUnavailable };

// What an MGET of a token's revocation markers answered: revoked when any marker exists,
// unavailable (with why in `error`) when Redis gave no usable reply. Callers fail closed.
RevocationStatus revocation_from_reply(const RedisResult& result, std::string& error);

class TokenVerifier {
 public:
  using Clock = std::function<int64_t()>;  // unix seconds; replaceable in tests
  TokenVerifier(AuthFilterConfig config, const KeyCache& keys, Clock clock = nullptr);

  // Signature and claims; synchronous, no I/O, and a map lookup when the token was seen before.
  TokenCheck verify(std::string_view token) const;
  size_t cached_tokens() const;
  // MGET of the token's and session's revocation keys. `done` runs once, on an io_context
  // thread (never inline); Redis not answering is kUnavailable (callers fail closed).
  static void check_revocation(RedisClient& redis, const std::string& token_id,
                               const std::string& session_id,
                               std::function<void(RevocationStatus, std::string error)> done);
  int64_t now() const { return clock_(); }

 private:
  struct Verified {
    std::shared_ptr<const VerifiedToken> token;
    std::shared_ptr<const jwt::KeySet> keys;  // the set that verified it (owned: no ABA on reuse)
  };
  // Looked up by the header's string_view: no copy of the token per request.
  struct TokenHash {
    using is_transparent = void;
    size_t operator()(std::string_view token) const { return std::hash<std::string_view>{}(token); }
  };
  void remember(std::string_view token, std::shared_ptr<const VerifiedToken> verified,
                std::shared_ptr<const jwt::KeySet> keys, int64_t now) const;

  AuthFilterConfig config_;
  const KeyCache& keys_;
  Clock clock_;
  mutable std::mutex mutex_;  // I/O threads share the cache; held for a lookup or an insert
  // Keyed by the whole token.
  mutable std::unordered_map<std::string, Verified, TokenHash, std::equal_to<>> verified_;
};

}  // namespace trellis::gateway
