// Trellis access tokens: compact JWS (RFC 7515/7519) signed with Ed25519 ("EdDSA", RFC 8037),
// and the JWKS (RFC 7517) through which verifiers learn the public keys. The users service signs;
// the gateway verifies. Verification pins the algorithm to EdDSA and takes keys only from the
// KeySet, never from the token, so algorithm-confusion and embedded-key attacks have nothing to
// work with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace trellis::jwt {

// All that Trellis access tokens carry.
struct Claims {
  std::string issuer;      // iss
  std::string subject;     // sub: the user id
  std::string audience;    // aud
  std::string token_id;    // jti
  std::string session_id;  // sid: optional, omitted from the token when empty
  std::vector<std::string> roles;
  int64_t issued_at = 0;   // iat, seconds since the epoch
  int64_t not_before = 0;  // nbf, 0 = absent
  int64_t expires_at = 0;  // exp
};

// The public half of a signing key as published in the JWKS: kty OKP, crv Ed25519, alg EdDSA,
// use sig; `x` is the base64url raw 32-byte public key.
struct PublicJwk {
  std::string kid;
  std::string x;
};

// An Ed25519 private key and its key id. Copies share the underlying key (cheap, thread-safe to
// use concurrently). Factories throw std::runtime_error.
class SigningKey {
 public:
  // PEM "PRIVATE KEY" (PKCS#8) of an Ed25519 key, as `openssl genpkey -algorithm ed25519` writes;
  // encrypted PEMs are refused rather than prompting for a passphrase. `kid` must be non-empty.
  static SigningKey from_pem(std::string_view pem, std::string kid);
  static SigningKey load_pem_file(const std::string& path, std::string kid);
  // A fresh random key, for tests and tools.
  static SigningKey generate(std::string kid);

  const std::string& kid() const { return kid_; }

  // A compact JWS with header {"alg":"EdDSA","typ":"JWT","kid":kid()}.
  std::string sign(const Claims& claims) const;
  // The raw 64-byte Ed25519 signature of `data`. Lets tests and tools build tokens with
  // arbitrary headers and payloads.
  std::string sign_bytes(std::string_view data) const;

  PublicJwk public_jwk() const;
  std::string private_pem() const;

 private:
  struct Key;
  SigningKey(std::shared_ptr<const Key> key, std::string kid);

  std::shared_ptr<const Key> key_;
  std::string kid_;
};

// Verification keys by kid. Copies share the keys; add() on one copy never affects another, so a
// KeySet handed to verifiers behaves as immutable.
class KeySet {
 public:
  KeySet();

  // Throws std::invalid_argument when kid is empty or already present, or when x does not decode
  // to a 32-byte Ed25519 public key.
  void add(const PublicJwk& jwk);

  // Parses {"keys":[...]} and keeps the keys verify() can use: kty OKP, crv Ed25519, alg EdDSA or
  // absent, use sig or absent, with a kid. Other keys are skipped. Throws std::invalid_argument on
  // malformed JSON, a wrongly typed member, or an Ed25519 key whose x is invalid.
  static KeySet from_jwks_json(std::string_view json);
  std::string to_jwks_json() const;

  std::vector<std::string> kids() const;  // sorted
  size_t size() const;

 private:
  struct Keys;
  std::shared_ptr<const Keys> keys_;

  friend struct KeySetAccess;
};

// What a verifier insists on. Empty issuer or audience match no token (fail closed).
struct VerifyOptions {
  std::string issuer;
  std::string audience;
  int64_t leeway_s = 30;  // clock skew tolerated for exp and nbf; negative counts as 0
};

enum class VerifyError {
  kNone,
  kMalformed,             // size, structure, encoding, JSON, claim types, crit header
  kUnsupportedAlgorithm,  // alg missing or not exactly "EdDSA"
  kUnknownKey,            // kid missing or not in the KeySet
  kBadSignature,
  kExpired,
  kNotYetValid,
  kWrongIssuer,
  kWrongAudience,
  kMissingClaim,  // exp, iat, iss, aud, sub or jti absent (sub and jti also when empty)
};

// Stable snake_case names for logs and metrics: "none", "malformed", "unsupported_algorithm",
// "unknown_key", "bad_signature", "expired", "not_yet_valid", "wrong_issuer", "wrong_audience",
// "missing_claim".
std::string_view to_string(VerifyError error);

struct VerifyResult {
  VerifyError error = VerifyError::kNone;
  Claims claims;  // filled only when ok(); audience is the one that matched
  bool ok() const { return error == VerifyError::kNone; }
};

inline constexpr size_t kMaxTokenBytes = 8 * 1024;

// Strict verification of a compact JWS at time `now_s` (seconds since the epoch): exactly three
// base64url parts of at most kMaxTokenBytes in all; header with alg "EdDSA", typ "JWT" if present,
// no crit, a kid found in `keys`; a valid signature by that key; then claims: exp required and
// now <= exp + leeway, nbf if present now >= nbf - leeway, iat required, iss equal to
// options.issuer, aud equal to options.audience or an array containing it, sub and jti non-empty.
// JSON with duplicate member names is malformed. Never throws.
VerifyResult verify(std::string_view token, const KeySet& keys, const VerifyOptions& options,
                    int64_t now_s);

}  // namespace trellis::jwt
