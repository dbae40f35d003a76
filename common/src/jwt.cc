#include "trellis/common/jwt.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <climits>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "trellis/common/base64url.h"

namespace trellis::jwt {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

constexpr size_t kEd25519PublicKeyBytes = 32;
constexpr size_t kEd25519SignatureBytes = 64;

struct PkeyFree {
  void operator()(EVP_PKEY* pkey) const { EVP_PKEY_free(pkey); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

// Takes (and clears) OpenSSL's thread-local error queue so that a later, unrelated call does
// not report a stale error.
std::string openssl_error(const std::string& what) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return what;
  char text[256];
  ERR_error_string_n(code, text, sizeof text);
  return what + ": " + text;
}

const unsigned char* bytes_of(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}

bool ed25519_verify(EVP_PKEY* pkey, std::string_view data, std::string_view signature) {
  if (signature.size() != kEd25519SignatureBytes) return false;
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  // Ed25519 hashes internally, hence no digest (NULL md) and the one-shot EVP_DigestVerify.
  bool ok = ctx && EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, pkey) == 1 &&
            EVP_DigestVerify(ctx.get(), bytes_of(signature), signature.size(), bytes_of(data),
                             data.size()) == 1;
  ERR_clear_error();
  return ok;
}

// Stops OpenSSL from prompting on the terminal for the passphrase of an encrypted PEM.
int refuse_passphrase(char*, int, int, void*) {
  return -1;
}

// Parses a JSON object, rejecting duplicate member names at any depth: RFC 7515 §5.2 allows
// either rejecting them or taking the last, and rejecting leaves no room for two parsers to
// disagree about what a token says.
std::optional<json> parse_json_object(std::string_view text) {
  std::vector<std::set<std::string>> open_objects;
  bool duplicate = false;
  json::parser_callback_t track_keys = [&](int, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        open_objects.emplace_back();
        break;
      case json::parse_event_t::object_end:
        open_objects.pop_back();
        break;
      case json::parse_event_t::key:
        if (!open_objects.back().insert(parsed.get<std::string>()).second) duplicate = true;
        break;
      default:
        break;
    }
    return true;
  };
  json value = json::parse(text.begin(), text.end(), track_keys, /*allow_exceptions=*/false);
  if (duplicate || value.is_discarded() || !value.is_object()) return std::nullopt;
  return value;
}

// Reads typed members of a claims object; any member present with the wrong type marks the
// whole token malformed.
class MemberReader {
 public:
  explicit MemberReader(const json& object) : object_(object) {}

  std::optional<std::string> string(const char* name) {
    auto it = object_.find(name);
    if (it == object_.end()) return std::nullopt;
    if (!it->is_string()) return type_error();
    return it->get<std::string>();
  }

  // A NumericDate; only integers are accepted (Trellis never issues fractional seconds).
  std::optional<int64_t> seconds(const char* name) {
    auto it = object_.find(name);
    if (it == object_.end()) return std::nullopt;
    if (it->is_number_integer() && !it->is_number_unsigned()) return it->get<int64_t>();
    if (it->is_number_unsigned() && it->get<uint64_t>() <= uint64_t{INT64_MAX}) {
      return static_cast<int64_t>(it->get<uint64_t>());
    }
    return type_error();
  }

  // A string, or an array of strings (as "aud" may be).
  std::optional<std::vector<std::string>> strings(const char* name, bool single_allowed) {
    auto it = object_.find(name);
    if (it == object_.end()) return std::nullopt;
    if (single_allowed && it->is_string()) return std::vector{it->get<std::string>()};
    if (!it->is_array()) return type_error();
    std::vector<std::string> out;
    for (const auto& item : *it) {
      if (!item.is_string()) return type_error();
      out.push_back(item.get<std::string>());
    }
    return out;
  }

  bool malformed() const { return malformed_; }

 private:
  std::nullopt_t type_error() {
    malformed_ = true;
    return std::nullopt;
  }

  const json& object_;
  bool malformed_ = false;
};

int64_t saturating_add(int64_t a, int64_t b) {
  int64_t sum;
  if (!__builtin_add_overflow(a, b, &sum)) return sum;
  return b > 0 ? INT64_MAX : INT64_MIN;
}

VerifyResult failure(VerifyError error) {
  return VerifyResult{error, {}};
}

VerifyResult check_claims(const json& payload, const VerifyOptions& options, int64_t now_s) {
  MemberReader reader(payload);
  auto issuer = reader.string("iss");
  auto subject = reader.string("sub");
  auto token_id = reader.string("jti");
  auto session_id = reader.string("sid");
  auto audiences = reader.strings("aud", /*single_allowed=*/true);
  auto roles = reader.strings("roles", /*single_allowed=*/false);
  auto expires_at = reader.seconds("exp");
  auto not_before = reader.seconds("nbf");
  auto issued_at = reader.seconds("iat");
  if (reader.malformed()) return failure(VerifyError::kMalformed);

  if (!expires_at || !issued_at || !issuer || !audiences || !subject || subject->empty() ||
      !token_id || token_id->empty()) {
    return failure(VerifyError::kMissingClaim);
  }
  int64_t leeway = std::max<int64_t>(options.leeway_s, 0);
  if (now_s > saturating_add(*expires_at, leeway)) return failure(VerifyError::kExpired);
  if (not_before && now_s < saturating_add(*not_before, -leeway)) {
    return failure(VerifyError::kNotYetValid);
  }
  if (options.issuer.empty() || *issuer != options.issuer) {
    return failure(VerifyError::kWrongIssuer);
  }
  if (options.audience.empty() ||
      std::find(audiences->begin(), audiences->end(), options.audience) == audiences->end()) {
    return failure(VerifyError::kWrongAudience);
  }

  VerifyResult result;
  result.claims.issuer = std::move(*issuer);
  result.claims.subject = std::move(*subject);
  result.claims.audience = options.audience;
  result.claims.token_id = std::move(*token_id);
  result.claims.session_id = session_id.value_or("");
  result.claims.roles = roles.value_or(std::vector<std::string>{});
  result.claims.issued_at = *issued_at;
  result.claims.not_before = not_before.value_or(0);
  result.claims.expires_at = *expires_at;
  return result;
}

}  // namespace

// ---- SigningKey ----

struct SigningKey::Key {
  explicit Key(EVP_PKEY* owned) : pkey(owned) {}
  ~Key() { EVP_PKEY_free(pkey); }
  Key(const Key&) = delete;
  Key& operator=(const Key&) = delete;

  EVP_PKEY* pkey;
};

SigningKey::SigningKey(std::shared_ptr<const Key> key, std::string kid)
    : key_(std::move(key)), kid_(std::move(kid)) {
  if (kid_.empty()) throw std::runtime_error("signing key needs a non-empty kid");
}

SigningKey SigningKey::from_pem(std::string_view pem, std::string kid) {
  if (pem.size() > INT_MAX) throw std::runtime_error("PEM too large for key " + kid);
  BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) throw std::runtime_error(openssl_error("BIO_new_mem_buf"));
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, refuse_passphrase, nullptr);
  if (pkey == nullptr) {
    throw std::runtime_error(openssl_error("no unencrypted PEM private key for kid " + kid));
  }
  auto key = std::make_shared<const Key>(pkey);
  if (!EVP_PKEY_is_a(pkey, "ED25519")) {
    throw std::runtime_error("key for kid " + kid + " is not Ed25519");
  }
  return SigningKey(std::move(key), std::move(kid));
}

SigningKey SigningKey::load_pem_file(const std::string& path, std::string kid) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open signing key file " + path);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) throw std::runtime_error("cannot read signing key file " + path);
  std::string pem = std::move(text).str();
  try {
    auto key = from_pem(pem, std::move(kid));
    OPENSSL_cleanse(pem.data(), pem.size());
    return key;
  } catch (const std::runtime_error& e) {
    OPENSSL_cleanse(pem.data(), pem.size());
    throw std::runtime_error(path + ": " + e.what());
  }
}

SigningKey SigningKey::generate(std::string kid) {
  EVP_PKEY* pkey = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (pkey == nullptr) throw std::runtime_error(openssl_error("Ed25519 key generation failed"));
  return SigningKey(std::make_shared<const Key>(pkey), std::move(kid));
}

std::string SigningKey::sign_bytes(std::string_view data) const {
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  std::string signature(kEd25519SignatureBytes, '\0');
  size_t length = signature.size();
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, key_->pkey) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(signature.data()), &length,
                     bytes_of(data), data.size()) != 1 ||
      length != kEd25519SignatureBytes) {
    throw std::runtime_error(openssl_error("Ed25519 signing failed"));
  }
  return signature;
}

std::string SigningKey::sign(const Claims& claims) const {
  ordered_json header = {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", kid_}};
  ordered_json payload = {{"iss", claims.issuer},     {"sub", claims.subject},
                          {"aud", claims.audience},   {"iat", claims.issued_at},
                          {"exp", claims.expires_at}, {"jti", claims.token_id}};
  if (claims.not_before != 0) payload["nbf"] = claims.not_before;
  if (!claims.session_id.empty()) payload["sid"] = claims.session_id;
  payload["roles"] = claims.roles;
  std::string signing_input;
  try {
    signing_input =
        crypto::base64url_encode(header.dump()) + "." + crypto::base64url_encode(payload.dump());
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("claims cannot be encoded as JSON: ") + e.what());
  }
  return signing_input + "." + crypto::base64url_encode(sign_bytes(signing_input));
}

PublicJwk SigningKey::public_jwk() const {
  std::string raw(kEd25519PublicKeyBytes, '\0');
  size_t length = raw.size();
  if (EVP_PKEY_get_raw_public_key(key_->pkey, reinterpret_cast<unsigned char*>(raw.data()),
                                  &length) != 1 ||
      length != kEd25519PublicKeyBytes) {
    throw std::runtime_error(openssl_error("cannot read Ed25519 public key"));
  }
  return PublicJwk{kid_, crypto::base64url_encode(raw)};
}

std::string SigningKey::private_pem() const {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio ||
      PEM_write_bio_PrivateKey(bio.get(), key_->pkey, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    throw std::runtime_error(openssl_error("cannot write private key PEM"));
  }
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

// ---- KeySet ----

struct KeySet::Keys {
  struct Entry {
    std::string x;
    std::shared_ptr<EVP_PKEY> pkey;
  };
  std::map<std::string, Entry, std::less<>> by_kid;
};

// The one door through which verify() reaches the keys without widening KeySet's public API.
struct KeySetAccess {
  static EVP_PKEY* find(const KeySet& keys, std::string_view kid) {
    auto it = keys.keys_->by_kid.find(kid);
    return it == keys.keys_->by_kid.end() ? nullptr : it->second.pkey.get();
  }
};

KeySet::KeySet() : keys_(std::make_shared<const Keys>()) {}

void KeySet::add(const PublicJwk& jwk) {
  if (jwk.kid.empty()) throw std::invalid_argument("JWK without kid");
  if (keys_->by_kid.count(jwk.kid) != 0) {
    throw std::invalid_argument("duplicate JWK kid " + jwk.kid);
  }
  auto raw = crypto::base64url_decode(jwk.x);
  if (!raw || raw->size() != kEd25519PublicKeyBytes) {
    throw std::invalid_argument("JWK " + jwk.kid + ": x is not a base64url 32-byte Ed25519 key");
  }
  EVP_PKEY* pkey =
      EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, bytes_of(*raw), raw->size());
  if (pkey == nullptr) {
    throw std::invalid_argument(openssl_error("JWK " + jwk.kid + ": unusable Ed25519 key"));
  }
  // Copy on write: copies of this KeySet already handed out keep their keys unchanged.
  auto next = std::make_shared<Keys>(*keys_);
  next->by_kid.emplace(jwk.kid, Keys::Entry{jwk.x, std::shared_ptr<EVP_PKEY>(pkey, PkeyFree{})});
  keys_ = std::move(next);
}

KeySet KeySet::from_jwks_json(std::string_view text) {
  json document;
  try {
    document = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("JWKS is not valid JSON: ") + e.what());
  }
  auto keys = document.is_object() ? document.find("keys") : document.end();
  if (keys == document.end() || !keys->is_array()) {
    throw std::invalid_argument("JWKS must be an object with a \"keys\" array");
  }
  KeySet out;
  for (const auto& key : *keys) {
    if (!key.is_object()) throw std::invalid_argument("JWKS key is not an object");
    MemberReader reader(key);
    auto kty = reader.string("kty");
    auto crv = reader.string("crv");
    auto alg = reader.string("alg");
    auto use = reader.string("use");
    auto kid = reader.string("kid");
    auto x = reader.string("x");
    if (reader.malformed()) throw std::invalid_argument("JWKS key member of the wrong type");
    bool usable = kty == "OKP" && crv == "Ed25519" && (!alg || *alg == "EdDSA") &&
                  (!use || *use == "sig") && kid && !kid->empty();
    if (!usable) continue;
    if (!x) throw std::invalid_argument("JWKS Ed25519 key " + *kid + " has no x");
    out.add(PublicJwk{*kid, *x});
  }
  return out;
}

std::string KeySet::to_jwks_json() const {
  ordered_json keys = ordered_json::array();
  for (const auto& [kid, entry] : keys_->by_kid) {
    keys.push_back({{"kty", "OKP"},
                    {"crv", "Ed25519"},
                    {"alg", "EdDSA"},
                    {"use", "sig"},
                    {"kid", kid},
                    {"x", entry.x}});
  }
  return ordered_json{{"keys", keys}}.dump();
}

std::vector<std::string> KeySet::kids() const {
  std::vector<std::string> out;
  for (const auto& [kid, entry] : keys_->by_kid) out.push_back(kid);
  return out;
}

size_t KeySet::size() const {
  return keys_->by_kid.size();
}

// ---- verify ----

std::string_view to_string(VerifyError error) {
  switch (error) {
    case VerifyError::kNone:
      return "none";
    case VerifyError::kMalformed:
      return "malformed";
    case VerifyError::kUnsupportedAlgorithm:
      return "unsupported_algorithm";
    case VerifyError::kUnknownKey:
      return "unknown_key";
    case VerifyError::kBadSignature:
      return "bad_signature";
    case VerifyError::kExpired:
      return "expired";
    case VerifyError::kNotYetValid:
      return "not_yet_valid";
    case VerifyError::kWrongIssuer:
      return "wrong_issuer";
    case VerifyError::kWrongAudience:
      return "wrong_audience";
    case VerifyError::kMissingClaim:
      return "missing_claim";
  }
  return "unknown";
}

namespace {

VerifyResult verify_or_throw(std::string_view token, const KeySet& keys,
                             const VerifyOptions& options, int64_t now_s) {
  if (token.size() > kMaxTokenBytes) return failure(VerifyError::kMalformed);
  size_t first_dot = token.find('.');
  size_t second_dot = first_dot == token.npos ? token.npos : token.find('.', first_dot + 1);
  if (second_dot == token.npos || token.find('.', second_dot + 1) != token.npos) {
    return failure(VerifyError::kMalformed);
  }
  auto header_bytes = crypto::base64url_decode(token.substr(0, first_dot));
  auto payload_bytes =
      crypto::base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
  auto signature = crypto::base64url_decode(token.substr(second_dot + 1));
  if (!header_bytes || !payload_bytes || !signature) return failure(VerifyError::kMalformed);

  auto header = parse_json_object(*header_bytes);
  if (!header) return failure(VerifyError::kMalformed);
  // The algorithm is pinned: whatever the header claims, only EdDSA with a KeySet key is tried.
  auto alg = header->find("alg");
  if (alg == header->end() || *alg != "EdDSA") return failure(VerifyError::kUnsupportedAlgorithm);
  auto typ = header->find("typ");
  if (typ != header->end() && *typ != "JWT") return failure(VerifyError::kMalformed);
  // No extension is understood, so any critical one must be refused (RFC 7515 §4.1.11).
  if (header->contains("crit")) return failure(VerifyError::kMalformed);
  auto kid = header->find("kid");
  if (kid == header->end() || !kid->is_string()) return failure(VerifyError::kUnknownKey);
  EVP_PKEY* key = KeySetAccess::find(keys, kid->get_ref<const std::string&>());
  if (key == nullptr) return failure(VerifyError::kUnknownKey);
  if (!ed25519_verify(key, token.substr(0, second_dot), *signature)) {
    return failure(VerifyError::kBadSignature);
  }

  // Only now, with the signature checked, is the payload worth parsing.
  auto payload = parse_json_object(*payload_bytes);
  if (!payload) return failure(VerifyError::kMalformed);
  return check_claims(*payload, options, now_s);
}

}  // namespace

VerifyResult verify(std::string_view token, const KeySet& keys, const VerifyOptions& options,
                    int64_t now_s) {
  try {
    return verify_or_throw(token, keys, options, now_s);
  } catch (...) {
    // Only allocation failure can get here; a token that cannot be checked is not valid.
    return failure(VerifyError::kMalformed);
  }
}

}  // namespace trellis::jwt
