#include "trellis/common/jwt.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>

#include <unistd.h>

#include "trellis/common/base64url.h"

namespace trellis::jwt {
namespace {

using crypto::base64url_decode;
using crypto::base64url_encode;
using nlohmann::json;

constexpr int64_t kNow = 1'700'000'000;

// ---- base64url ----

TEST(Base64Url, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64url_encode(""), "");
  EXPECT_EQ(base64url_encode("f"), "Zg");
  EXPECT_EQ(base64url_encode("fo"), "Zm8");
  EXPECT_EQ(base64url_encode("foo"), "Zm9v");
  EXPECT_EQ(base64url_encode("foob"), "Zm9vYg");
  EXPECT_EQ(base64url_encode("fooba"), "Zm9vYmE");
  EXPECT_EQ(base64url_encode("foobar"), "Zm9vYmFy");
}

TEST(Base64Url, UsesUrlSafeAlphabet) {
  EXPECT_EQ(base64url_encode("\xfb\xff\xbf"), "-_-_");
  EXPECT_EQ(base64url_decode("-_-_"), std::string("\xfb\xff\xbf"));
}

TEST(Base64Url, RoundTripsEveryByteAtEveryLength) {
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  for (size_t length = 0; length <= all.size(); ++length) {
    std::string bytes = all.substr(all.size() - length);
    auto decoded = base64url_decode(base64url_encode(bytes));
    ASSERT_TRUE(decoded.has_value()) << length;
    EXPECT_EQ(*decoded, bytes);
  }
}

TEST(Base64Url, DecodesEmpty) {
  EXPECT_EQ(base64url_decode(""), std::string());
}

TEST(Base64Url, RejectsNonCanonicalOrForeignText) {
  for (std::string_view bad : {"Zg==", "Zg=", "Zm8=", "Zm9v+A", "Zm9v/A", " Zg", "Zg ", "Zg\n",
                               "Zm\t9v", "Z", "Zm9vY", "Zh", "Zm9", "Zm9vYh", "Z!", "Zg\xc3\xa9"}) {
    EXPECT_FALSE(base64url_decode(bad).has_value()) << bad;
  }
  EXPECT_FALSE(base64url_decode(std::string_view("Zg\0\0", 4)).has_value());
}

// ---- token helpers ----

Claims sample_claims() {
  Claims claims;
  claims.issuer = "trellis-test";
  claims.subject = "user-42";
  claims.audience = "trellis-api";
  claims.token_id = "jti-1";
  claims.session_id = "session-7";
  claims.roles = {"user", "admin"};
  claims.issued_at = kNow - 10;
  claims.expires_at = kNow + 300;
  return claims;
}

json sample_payload() {
  return {{"iss", "trellis-test"}, {"sub", "user-42"},  {"aud", "trellis-api"},
          {"iat", kNow - 10},      {"exp", kNow + 300}, {"jti", "jti-1"}};
}

json eddsa_header(const std::string& kid) {
  return {{"alg", "EdDSA"}, {"typ", "JWT"}, {"kid", kid}};
}

// Builds a token from raw header and payload text, signed by `key` whatever the header says.
std::string signed_text_token(const SigningKey& key, std::string_view header,
                              std::string_view payload) {
  std::string input = base64url_encode(header) + "." + base64url_encode(payload);
  return input + "." + base64url_encode(key.sign_bytes(input));
}

std::string signed_token(const SigningKey& key, const json& header, const json& payload) {
  return signed_text_token(key, header.dump(), payload.dump());
}

std::string unsigned_token(const json& header, const json& payload, std::string_view signature) {
  return base64url_encode(header.dump()) + "." + base64url_encode(payload.dump()) + "." +
         base64url_encode(signature);
}

std::vector<std::string> split(const std::string& token) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = token.find('.', start)) != std::string::npos; start = dot + 1) {
    parts.push_back(token.substr(start, dot - start));
  }
  parts.push_back(token.substr(start));
  return parts;
}

std::string hmac_sha256(std::string_view secret, std::string_view data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &length);
  return std::string(reinterpret_cast<char*>(out), length);
}

std::string public_pem(const SigningKey& key) {
  std::string pem = key.private_pem();
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), -1), BIO_free);
  EVP_PKEY* pkey = PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr);
  std::unique_ptr<BIO, decltype(&BIO_free)> out(BIO_new(BIO_s_mem()), BIO_free);
  PEM_write_bio_PUBKEY(out.get(), pkey);
  EVP_PKEY_free(pkey);
  char* data = nullptr;
  long length = BIO_get_mem_data(out.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

class JwtVerify : public ::testing::Test {
 protected:
  JwtVerify() : key_(SigningKey::generate("key-1")) {
    keys_.add(key_.public_jwk());
    options_.issuer = "trellis-test";
    options_.audience = "trellis-api";
  }

  VerifyError error_of(std::string_view token, int64_t now = kNow) const {
    return verify(token, keys_, options_, now).error;
  }
  VerifyError error_of_payload(const json& payload, int64_t now = kNow) const {
    return error_of(signed_token(key_, eddsa_header("key-1"), payload), now);
  }
  VerifyError error_of_header(const json& header) const {
    return error_of(signed_token(key_, header, sample_payload()));
  }

  SigningKey key_;
  KeySet keys_;
  VerifyOptions options_;
};

// ---- accepted tokens ----

TEST_F(JwtVerify, RoundTripReturnsEveryClaim) {
  Claims claims = sample_claims();
  claims.not_before = kNow - 5;
  auto result = verify(key_.sign(claims), keys_, options_, kNow);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  EXPECT_EQ(result.claims.issuer, "trellis-test");
  EXPECT_EQ(result.claims.subject, "user-42");
  EXPECT_EQ(result.claims.audience, "trellis-api");
  EXPECT_EQ(result.claims.token_id, "jti-1");
  EXPECT_EQ(result.claims.session_id, "session-7");
  EXPECT_EQ(result.claims.roles, (std::vector<std::string>{"user", "admin"}));
  EXPECT_EQ(result.claims.issued_at, kNow - 10);
  EXPECT_EQ(result.claims.not_before, kNow - 5);
  EXPECT_EQ(result.claims.expires_at, kNow + 300);
}

TEST_F(JwtVerify, SignWritesPinnedHeaderAndOmitsEmptyOptionalClaims) {
  Claims claims = sample_claims();
  claims.session_id.clear();
  auto parts = split(key_.sign(claims));
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(*base64url_decode(parts[0]), R"({"alg":"EdDSA","typ":"JWT","kid":"key-1"})");
  json payload = json::parse(*base64url_decode(parts[1]));
  EXPECT_FALSE(payload.contains("sid"));
  EXPECT_FALSE(payload.contains("nbf"));
  EXPECT_EQ(payload["roles"], json::array({"user", "admin"}));
  EXPECT_EQ(base64url_decode(parts[2])->size(), 64u);
  auto result = verify(key_.sign(claims), keys_, options_, kNow);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result.claims.session_id, "");
  EXPECT_EQ(result.claims.not_before, 0);
}

TEST_F(JwtVerify, AcceptsMissingTypAndOptionalClaims) {
  EXPECT_EQ(error_of_header({{"alg", "EdDSA"}, {"kid", "key-1"}}), VerifyError::kNone);
  auto result =
      verify(signed_token(key_, eddsa_header("key-1"), sample_payload()), keys_, options_, kNow);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result.claims.roles.empty());
}

TEST_F(JwtVerify, AcceptsAudienceArrayContainingAudience) {
  json payload = sample_payload();
  payload["aud"] = {"other-api", "trellis-api"};
  auto result = verify(signed_token(key_, eddsa_header("key-1"), payload), keys_, options_, kNow);
  ASSERT_TRUE(result.ok()) << to_string(result.error);
  EXPECT_EQ(result.claims.audience, "trellis-api");
}

TEST_F(JwtVerify, ExpiryHonoursLeewayExactly) {
  json payload = sample_payload();
  payload["exp"] = kNow - 30;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNone) << "within leeway";
  payload["exp"] = kNow - 31;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kExpired);
  options_.leeway_s = 0;
  payload["exp"] = kNow;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNone);
  EXPECT_EQ(error_of_payload(payload, kNow + 1), VerifyError::kExpired);
  options_.leeway_s = -100;  // treated as 0, never as extra strictness that overflows
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNone);
}

TEST_F(JwtVerify, NotBeforeHonoursLeeway) {
  json payload = sample_payload();
  payload["nbf"] = kNow + 30;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNone);
  payload["nbf"] = kNow + 31;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNotYetValid);
  payload["nbf"] = kNow + 3600;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNotYetValid);
}

TEST_F(JwtVerify, ExtremeTimesDoNotOverflow) {
  json payload = sample_payload();
  payload["exp"] = INT64_MAX;
  options_.leeway_s = INT64_MAX;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNone);
  payload["exp"] = INT64_MIN;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kExpired);
  payload["exp"] = kNow + 300;
  payload["nbf"] = INT64_MIN;
  EXPECT_EQ(error_of_payload(payload), VerifyError::kNone);
}

TEST_F(JwtVerify, KeyRotationAcceptsTokensOfEitherKey) {
  SigningKey next = SigningKey::generate("key-2");
  keys_.add(next.public_jwk());
  EXPECT_EQ(keys_.size(), 2u);
  EXPECT_EQ(error_of(key_.sign(sample_claims())), VerifyError::kNone);
  EXPECT_EQ(error_of(next.sign(sample_claims())), VerifyError::kNone);

  KeySet retired;  // key-1 withdrawn
  retired.add(next.public_jwk());
  EXPECT_EQ(verify(key_.sign(sample_claims()), retired, options_, kNow).error,
            VerifyError::kUnknownKey);
  EXPECT_TRUE(verify(next.sign(sample_claims()), retired, options_, kNow).ok());
}

// ---- algorithm pinning ----

TEST_F(JwtVerify, RejectsAlgNone) {
  json header = {{"alg", "none"}, {"typ", "JWT"}, {"kid", "key-1"}};
  EXPECT_EQ(error_of(unsigned_token(header, sample_payload(), "")),
            VerifyError::kUnsupportedAlgorithm);
  EXPECT_EQ(error_of(base64url_encode(header.dump()) + "." +
                     base64url_encode(sample_payload().dump()) + "."),
            VerifyError::kUnsupportedAlgorithm);
  EXPECT_EQ(error_of_header(header), VerifyError::kUnsupportedAlgorithm)
      << "even with a valid Ed25519 signature";
  for (std::string_view spelling : {"None", "NONE", "nOnE"}) {
    header["alg"] = spelling;
    EXPECT_EQ(error_of(unsigned_token(header, sample_payload(), "")),
              VerifyError::kUnsupportedAlgorithm);
  }
}

// The classic confusion attack: HS256 "signed" with the public key as the HMAC secret.
TEST_F(JwtVerify, RejectsHs256SignedWithPublicKey) {
  json header = {{"alg", "HS256"}, {"typ", "JWT"}, {"kid", "key-1"}};
  std::string input =
      base64url_encode(header.dump()) + "." + base64url_encode(sample_payload().dump());
  PublicJwk jwk = key_.public_jwk();
  for (const std::string& secret :
       {*base64url_decode(jwk.x), jwk.x, public_pem(key_), keys_.to_jwks_json()}) {
    std::string token = input + "." + base64url_encode(hmac_sha256(secret, input));
    EXPECT_EQ(error_of(token), VerifyError::kUnsupportedAlgorithm);
  }
}

TEST_F(JwtVerify, RejectsEveryOtherAlgorithm) {
  for (std::string_view alg :
       {"HS256", "HS384", "HS512", "RS256", "RS512", "PS256", "ES256", "ES384", "ES512", "Ed25519",
        "eddsa", "EDDSA", "EdDSA ", " EdDSA", ""}) {
    json header = {{"alg", alg}, {"typ", "JWT"}, {"kid", "key-1"}};
    EXPECT_EQ(error_of_header(header), VerifyError::kUnsupportedAlgorithm) << alg;
    EXPECT_EQ(error_of(unsigned_token(header, sample_payload(), std::string(256, 'x'))),
              VerifyError::kUnsupportedAlgorithm)
        << alg;
  }
}

TEST_F(JwtVerify, RejectsMissingOrNonStringAlg) {
  EXPECT_EQ(error_of_header({{"typ", "JWT"}, {"kid", "key-1"}}),
            VerifyError::kUnsupportedAlgorithm);
  EXPECT_EQ(error_of_header({{"alg", nullptr}, {"kid", "key-1"}}),
            VerifyError::kUnsupportedAlgorithm);
  EXPECT_EQ(error_of_header({{"alg", json::array({"EdDSA"})}, {"kid", "key-1"}}),
            VerifyError::kUnsupportedAlgorithm);
  EXPECT_EQ(error_of_header({{"alg", {{"name", "EdDSA"}}}, {"kid", "key-1"}}),
            VerifyError::kUnsupportedAlgorithm);
}

// ---- keys ----

TEST_F(JwtVerify, RejectsMissingOrUnknownKid) {
  EXPECT_EQ(error_of_header({{"alg", "EdDSA"}, {"typ", "JWT"}}), VerifyError::kUnknownKey);
  EXPECT_EQ(error_of_header({{"alg", "EdDSA"}, {"kid", 1}}), VerifyError::kUnknownKey);
  EXPECT_EQ(error_of_header(eddsa_header("")), VerifyError::kUnknownKey);
  EXPECT_EQ(error_of_header(eddsa_header("key-2")), VerifyError::kUnknownKey);
  EXPECT_EQ(error_of_header(eddsa_header("KEY-1")), VerifyError::kUnknownKey);
  EXPECT_EQ(verify(key_.sign(sample_claims()), KeySet(), options_, kNow).error,
            VerifyError::kUnknownKey);
}

TEST_F(JwtVerify, IgnoresKeysOfferedByTheToken) {
  SigningKey attacker = SigningKey::generate("key-1");  // same kid, different key
  json header = eddsa_header("key-1");
  PublicJwk attacker_jwk = attacker.public_jwk();
  header["jwk"] = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", attacker_jwk.x}};
  header["jku"] = "https://attacker.example/jwks.json";
  EXPECT_EQ(error_of(signed_token(attacker, header, sample_payload())), VerifyError::kBadSignature);
  EXPECT_EQ(error_of(attacker.sign(sample_claims())), VerifyError::kBadSignature);
}

// ---- integrity ----

TEST_F(JwtVerify, RejectsTamperedPayload) {
  auto parts = split(key_.sign(sample_claims()));
  json payload = json::parse(*base64url_decode(parts[1]));
  payload["roles"] = {"user", "admin", "root"};
  EXPECT_EQ(error_of(parts[0] + "." + base64url_encode(payload.dump()) + "." + parts[2]),
            VerifyError::kBadSignature);
  payload = json::parse(*base64url_decode(parts[1]));
  payload["sub"] = "user-43";
  EXPECT_EQ(error_of(parts[0] + "." + base64url_encode(payload.dump()) + "." + parts[2]),
            VerifyError::kBadSignature);
}

TEST_F(JwtVerify, RejectsTamperedHeader) {
  auto parts = split(key_.sign(sample_claims()));
  json header = json::parse(*base64url_decode(parts[0]));
  header["x5u"] = "https://attacker.example";
  EXPECT_EQ(error_of(base64url_encode(header.dump()) + "." + parts[1] + "." + parts[2]),
            VerifyError::kBadSignature);
}

TEST_F(JwtVerify, RejectsBadSignatureBytes) {
  auto parts = split(key_.sign(sample_claims()));
  std::string signature = *base64url_decode(parts[2]);
  std::string input = parts[0] + "." + parts[1] + ".";
  for (size_t i : {size_t{0}, size_t{31}, size_t{32}, size_t{63}}) {
    std::string flipped = signature;
    flipped[i] = static_cast<char>(flipped[i] ^ 0x01);
    EXPECT_EQ(error_of(input + base64url_encode(flipped)), VerifyError::kBadSignature) << i;
  }
  EXPECT_EQ(error_of(input), VerifyError::kBadSignature) << "empty signature";
  EXPECT_EQ(error_of(input + base64url_encode(signature.substr(0, 63))),
            VerifyError::kBadSignature);
  EXPECT_EQ(error_of(input + base64url_encode(signature + "x")), VerifyError::kBadSignature);
  EXPECT_EQ(error_of(input + base64url_encode(std::string(64, '\0'))), VerifyError::kBadSignature);
}

// Any change to a valid token's text makes it invalid (base64url decoding is canonical, so no
// two texts carry the same bytes), and verify never throws on the results.
TEST_F(JwtVerify, RandomMutationsNeverVerify) {
  const std::string token = key_.sign(sample_claims());
  ASSERT_EQ(error_of(token), VerifyError::kNone);
  const std::string alphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \x00\xff";
  std::mt19937 random(12345);
  for (int round = 0; round < 3000; ++round) {
    std::string mutated = token;
    int edits = 1 + static_cast<int>(random() % 3);
    for (int e = 0; e < edits; ++e) {
      size_t at = random() % mutated.size();
      char c = alphabet[random() % alphabet.size()];
      switch (random() % 3) {
        case 0:
          mutated[at] = c;
          break;
        case 1:
          mutated.insert(mutated.begin() + static_cast<long>(at), c);
          break;
        default:
          mutated.erase(at, 1);
          break;
      }
    }
    if (mutated == token) continue;
    EXPECT_NE(error_of(mutated), VerifyError::kNone) << mutated;
  }
}

// ---- structure ----

TEST_F(JwtVerify, RejectsWrongNumberOfParts) {
  auto parts = split(key_.sign(sample_claims()));
  EXPECT_EQ(error_of(""), VerifyError::kMalformed);
  EXPECT_EQ(error_of(parts[0]), VerifyError::kMalformed);
  EXPECT_EQ(error_of(parts[0] + "." + parts[1]), VerifyError::kMalformed);
  EXPECT_EQ(error_of(parts[0] + "." + parts[1] + "." + parts[2] + "."), VerifyError::kMalformed);
  EXPECT_EQ(error_of(parts[0] + "." + parts[1] + "." + parts[2] + "." + parts[2]),
            VerifyError::kMalformed);
  EXPECT_EQ(error_of(".."), VerifyError::kMalformed);
}

TEST_F(JwtVerify, RejectsNonBase64UrlCharacters) {
  const std::string token = key_.sign(sample_claims());
  auto parts = split(token);
  for (int part = 0; part < 3; ++part) {
    for (std::string_view bad : {"+", "/", "=", " ", "\n", "%", "\xc3\xa9"}) {
      auto changed = parts;
      changed[part].insert(changed[part].size() / 2, bad);
      EXPECT_EQ(error_of(changed[0] + "." + changed[1] + "." + changed[2]), VerifyError::kMalformed)
          << "part " << part << " with " << bad;
    }
  }
  EXPECT_EQ(error_of(" " + token), VerifyError::kMalformed);
  EXPECT_EQ(error_of(token + "\n"), VerifyError::kMalformed);
  EXPECT_EQ(error_of("Bearer " + token), VerifyError::kMalformed);
}

TEST_F(JwtVerify, RejectsPaddedBase64) {
  // A header whose length is not a multiple of 3, so that standard base64 would pad it.
  json header = eddsa_header("key-1");
  header["x-pad"] = "";
  while (header.dump().size() % 3 == 0) header["x-pad"] = header["x-pad"].get<std::string>() + "p";
  std::string token = signed_token(key_, header, sample_payload());
  ASSERT_EQ(error_of(token), VerifyError::kNone);
  auto parts = split(token);
  std::string padded_header = parts[0] + std::string(4 - parts[0].size() % 4, '=');
  EXPECT_EQ(error_of(padded_header + "." + parts[1] + "." + parts[2]), VerifyError::kMalformed);
  EXPECT_EQ(error_of(parts[0] + "." + parts[1] + "." + parts[2] + "="), VerifyError::kMalformed);
}

TEST_F(JwtVerify, RejectsOversizedToken) {
  json payload = sample_payload();
  payload["roles"] = json::array();
  std::string token;
  // Grow the (validly signed) token until it just exceeds the limit.
  while (true) {
    token = signed_token(key_, eddsa_header("key-1"), payload);
    if (token.size() > kMaxTokenBytes) break;
    ASSERT_EQ(error_of(token), VerifyError::kNone) << token.size();
    payload["roles"].push_back("role-" + std::to_string(payload["roles"].size()));
  }
  EXPECT_GT(token.size(), kMaxTokenBytes);
  EXPECT_LT(token.size(), kMaxTokenBytes + 30);
  EXPECT_EQ(error_of(token), VerifyError::kMalformed);
  EXPECT_EQ(error_of(std::string(1 << 20, 'A')), VerifyError::kMalformed);
}

TEST_F(JwtVerify, RejectsPayloadThatIsNotAJsonObject) {
  std::string header = eddsa_header("key-1").dump();
  for (std::string_view payload :
       {"not json", "", "[1,2]", "\"text\"", "42", "null", "{\"sub\":\"a\"",
        "{\"iss\":\"x\"} trailing", "{\"sub\":\"\xff\"}", "{/*c*/}"}) {
    EXPECT_EQ(error_of(signed_text_token(key_, header, payload)), VerifyError::kMalformed)
        << payload;
  }
}

TEST_F(JwtVerify, RejectsHeaderThatIsNotAJsonObject) {
  for (std::string_view header : {"not json", "", "[\"EdDSA\"]", "{\"alg\":\"EdDSA\""}) {
    EXPECT_EQ(error_of(signed_text_token(key_, header, sample_payload().dump())),
              VerifyError::kMalformed)
        << header;
  }
}

TEST_F(JwtVerify, RejectsDuplicateMemberNames) {
  std::string payload = sample_payload().dump();
  std::string duplicate_sub = payload.substr(0, payload.size() - 1) + ",\"sub\":\"admin\"}";
  EXPECT_EQ(error_of(signed_text_token(key_, eddsa_header("key-1").dump(), duplicate_sub)),
            VerifyError::kMalformed);
  std::string duplicate_alg = R"({"alg":"none","alg":"EdDSA","kid":"key-1"})";
  EXPECT_EQ(error_of(signed_text_token(key_, duplicate_alg, payload)), VerifyError::kMalformed);
  // Same name in different objects is fine.
  std::string nested = payload.substr(0, payload.size() - 1) + ",\"ext\":{\"sub\":\"x\"}}";
  EXPECT_EQ(error_of(signed_text_token(key_, eddsa_header("key-1").dump(), nested)),
            VerifyError::kNone);
}

TEST_F(JwtVerify, RejectsOtherTypAndCriticalExtensions) {
  json header = eddsa_header("key-1");
  header["typ"] = "at+jwt";
  EXPECT_EQ(error_of_header(header), VerifyError::kMalformed);
  header["typ"] = 1;
  EXPECT_EQ(error_of_header(header), VerifyError::kMalformed);
  header = eddsa_header("key-1");
  header["crit"] = {"b64"};
  header["b64"] = false;
  EXPECT_EQ(error_of_header(header), VerifyError::kMalformed);
}

// ---- claims ----

TEST_F(JwtVerify, RejectsWrongIssuer) {
  json payload = sample_payload();
  payload["iss"] = "someone-else";
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongIssuer);
  payload["iss"] = "trellis-test ";
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongIssuer);
  payload["iss"] = "";
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongIssuer);
}

TEST_F(JwtVerify, RejectsWrongAudience) {
  json payload = sample_payload();
  payload["aud"] = "other-api";
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongAudience);
  payload["aud"] = {"other-api", "trellis-api-2"};
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongAudience);
  payload["aud"] = json::array();
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongAudience);
}

TEST_F(JwtVerify, EmptyExpectedIssuerOrAudienceMatchesNothing) {
  json payload = sample_payload();
  payload["iss"] = "";
  payload["aud"] = "";
  options_.issuer = "";
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongIssuer);
  options_.issuer = "trellis-test";
  payload["iss"] = "trellis-test";
  options_.audience = "";
  EXPECT_EQ(error_of_payload(payload), VerifyError::kWrongAudience);
}

TEST_F(JwtVerify, RejectsMissingRequiredClaims) {
  for (const char* name : {"exp", "iat", "iss", "aud", "sub", "jti"}) {
    json payload = sample_payload();
    payload.erase(name);
    EXPECT_EQ(error_of_payload(payload), VerifyError::kMissingClaim) << name;
  }
  for (const char* name : {"sub", "jti"}) {
    json payload = sample_payload();
    payload[name] = "";
    EXPECT_EQ(error_of_payload(payload), VerifyError::kMissingClaim) << name;
  }
  EXPECT_EQ(error_of_payload(json::object()), VerifyError::kMissingClaim);
}

TEST_F(JwtVerify, RejectsWronglyTypedClaims) {
  const std::vector<std::pair<std::string, json>> cases = {
      {"exp", "1700000300"},
      {"exp", 1700000300.5},
      {"exp", nullptr},
      {"exp", 1e30},
      {"iat", true},
      {"nbf", "0"},
      {"iss", 1},
      {"sub", json::array({"user-42"})},
      {"jti", 7},
      {"sid", 7},
      {"aud", 1},
      {"aud", {{"a", "b"}}},
      {"aud", {"trellis-api", 1}},
      {"roles", "admin"},
      {"roles", {"user", 2}},
      {"exp", json::parse("18446744073709551615")}};
  for (const auto& [name, value] : cases) {
    json payload = sample_payload();
    payload[name] = value;
    EXPECT_EQ(error_of_payload(payload), VerifyError::kMalformed) << name << "=" << value.dump();
  }
}

TEST(VerifyErrorNames, AreStableSnakeCase) {
  EXPECT_EQ(to_string(VerifyError::kNone), "none");
  EXPECT_EQ(to_string(VerifyError::kMalformed), "malformed");
  EXPECT_EQ(to_string(VerifyError::kUnsupportedAlgorithm), "unsupported_algorithm");
  EXPECT_EQ(to_string(VerifyError::kUnknownKey), "unknown_key");
  EXPECT_EQ(to_string(VerifyError::kBadSignature), "bad_signature");
  EXPECT_EQ(to_string(VerifyError::kExpired), "expired");
  EXPECT_EQ(to_string(VerifyError::kNotYetValid), "not_yet_valid");
  EXPECT_EQ(to_string(VerifyError::kWrongIssuer), "wrong_issuer");
  EXPECT_EQ(to_string(VerifyError::kWrongAudience), "wrong_audience");
  EXPECT_EQ(to_string(VerifyError::kMissingClaim), "missing_claim");
}

// ---- KeySet and JWKS ----

TEST(KeySet, JwksRoundTrip) {
  SigningKey a = SigningKey::generate("a");
  SigningKey b = SigningKey::generate("b");
  KeySet keys;
  keys.add(b.public_jwk());
  keys.add(a.public_jwk());
  json document = json::parse(keys.to_jwks_json());
  ASSERT_EQ(document["keys"].size(), 2u);
  EXPECT_EQ(document["keys"][0], (json{{"kty", "OKP"},
                                       {"crv", "Ed25519"},
                                       {"alg", "EdDSA"},
                                       {"use", "sig"},
                                       {"kid", "a"},
                                       {"x", a.public_jwk().x}}));

  KeySet parsed = KeySet::from_jwks_json(keys.to_jwks_json());
  EXPECT_EQ(parsed.kids(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(parsed.to_jwks_json(), keys.to_jwks_json());
  VerifyOptions options{"trellis-test", "trellis-api"};
  EXPECT_TRUE(verify(a.sign(sample_claims()), parsed, options, kNow).ok());
  EXPECT_TRUE(verify(b.sign(sample_claims()), parsed, options, kNow).ok());
}

TEST(KeySet, FromJwksKeepsOnlyUsableEd25519Keys) {
  SigningKey good = SigningKey::generate("good");
  std::string x = good.public_jwk().x;
  json document = {
      {"keys",
       {{{"kty", "RSA"}, {"kid", "rsa"}, {"n", "AQAB"}, {"e", "AQAB"}, {"alg", "RS256"}},
        {{"kty", "EC"}, {"kid", "ec"}, {"crv", "P-256"}, {"x", "AA"}, {"y", "AA"}},
        {{"kty", "oct"}, {"kid", "hmac"}, {"k", x}},
        {{"kty", "OKP"}, {"crv", "X25519"}, {"kid", "ecdh"}, {"x", x}},
        {{"kty", "OKP"}, {"crv", "Ed448"}, {"kid", "ed448"}, {"x", "AA"}},
        {{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", "wrong-alg"}, {"alg", "HS256"}, {"x", x}},
        {{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", "enc"}, {"use", "enc"}, {"x", x}},
        {{"kty", "OKP"}, {"crv", "Ed25519"}, {"x", x}},
        {{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", "bare"}, {"x", x}, {"key_ops", {"verify"}}},
        {{"kty", "OKP"},
         {"crv", "Ed25519"},
         {"kid", "good"},
         {"alg", "EdDSA"},
         {"use", "sig"},
         {"x", x}}}}};
  KeySet keys = KeySet::from_jwks_json(document.dump());
  EXPECT_EQ(keys.kids(), (std::vector<std::string>{"bare", "good"}));
  EXPECT_TRUE(verify(good.sign(sample_claims()), keys, {"trellis-test", "trellis-api"}, kNow).ok());
  EXPECT_EQ(KeySet::from_jwks_json(R"({"keys":[]})").size(), 0u);
}

TEST(KeySet, FromJwksRejectsMalformedDocuments) {
  std::string x = SigningKey::generate("k").public_jwk().x;
  auto ed25519 = [&](json extra) {
    json key = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", "k"}, {"x", x}};
    if (extra.is_object()) key.update(extra);
    return key;
  };
  json no_x = {{"kty", "OKP"}, {"crv", "Ed25519"}, {"kid", "k"}};
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      "{}",
      R"({"keys":{}})",
      R"({"keys":[1]})",
      R"({"keys":[]} trailing)",
      json{{"keys", json::array({ed25519({{"kid", 5}})})}}.dump(),
      json{{"keys", json::array({ed25519({{"kty", nullptr}})})}}.dump(),
      json{{"keys", json::array({ed25519({{"x", x.substr(1)}})})}}.dump(),
      json{{"keys", json::array({ed25519({{"x", x + "AA"}})})}}.dump(),
      json{{"keys", json::array({ed25519({{"x", x + "="}})})}}.dump(),
      json{{"keys", json::array({no_x})}}.dump(),
      json{{"keys", json::array({ed25519({}), ed25519({})})}}.dump(),
  };
  for (const auto& document : bad) {
    EXPECT_THROW(KeySet::from_jwks_json(document), std::invalid_argument) << document;
  }
}

TEST(KeySet, AddValidatesKeys) {
  KeySet keys;
  std::string x = SigningKey::generate("k").public_jwk().x;
  EXPECT_THROW(keys.add({"", x}), std::invalid_argument);
  EXPECT_THROW(keys.add({"k", ""}), std::invalid_argument);
  EXPECT_THROW(keys.add({"k", x.substr(0, 42)}), std::invalid_argument);
  EXPECT_THROW(keys.add({"k", base64url_encode(std::string(33, 'a'))}), std::invalid_argument);
  EXPECT_THROW(keys.add({"k", "+" + x.substr(1)}), std::invalid_argument);
  EXPECT_EQ(keys.size(), 0u);
  keys.add({"k", x});
  EXPECT_THROW(keys.add({"k", x}), std::invalid_argument);
  EXPECT_EQ(keys.size(), 1u);
}

TEST(KeySet, CopiesAreIndependent) {
  KeySet original;
  original.add(SigningKey::generate("a").public_jwk());
  KeySet copy = original;
  copy.add(SigningKey::generate("b").public_jwk());
  EXPECT_EQ(original.kids(), (std::vector<std::string>{"a"}));
  EXPECT_EQ(copy.kids(), (std::vector<std::string>{"a", "b"}));
}

// ---- SigningKey ----

std::string pem_of(EVP_PKEY* pkey, const EVP_CIPHER* cipher = nullptr) {
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new(BIO_s_mem()), BIO_free);
  unsigned char passphrase[] = "secret";
  PEM_write_bio_PrivateKey(bio.get(), pkey, cipher, cipher ? passphrase : nullptr, cipher ? 6 : 0,
                           nullptr, nullptr);
  char* data = nullptr;
  long length = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(length));
}

TEST(SigningKey, PemRoundTripKeepsTheKey) {
  SigningKey key = SigningKey::generate("k1");
  std::string pem = key.private_pem();
  EXPECT_NE(pem.find("-----BEGIN PRIVATE KEY-----"), std::string::npos);
  SigningKey again = SigningKey::from_pem(pem, "k1");
  EXPECT_EQ(again.kid(), "k1");
  EXPECT_EQ(again.public_jwk().x, key.public_jwk().x);
  EXPECT_EQ(again.sign_bytes("data"), key.sign_bytes("data")) << "Ed25519 is deterministic";
}

TEST(SigningKey, LoadsPemFile) {
  SigningKey key = SigningKey::generate("file-key");
  auto path = std::filesystem::temp_directory_path() /
              ("trellis_jwt_test_" + std::to_string(::getpid()) + ".pem");
  std::ofstream(path) << key.private_pem();
  SigningKey loaded = SigningKey::load_pem_file(path.string(), "file-key");
  std::filesystem::remove(path);
  EXPECT_EQ(loaded.public_jwk().x, key.public_jwk().x);
  EXPECT_THROW(SigningKey::load_pem_file(path.string(), "file-key"), std::runtime_error);
}

TEST(SigningKey, RefusesWhatIsNotAnUnencryptedEd25519Key) {
  EXPECT_THROW(SigningKey::from_pem("", "k"), std::runtime_error);
  EXPECT_THROW(
      SigningKey::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "k"),
      std::runtime_error);
  EVP_PKEY* ec = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  ASSERT_NE(ec, nullptr);
  EXPECT_THROW(SigningKey::from_pem(pem_of(ec), "k"), std::runtime_error);
  EVP_PKEY_free(ec);
  // Encrypted keys fail instead of prompting for a passphrase on the terminal.
  EVP_PKEY* ed = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  ASSERT_NE(ed, nullptr);
  std::string encrypted = pem_of(ed, EVP_aes_256_cbc());
  ASSERT_NE(encrypted.find("ENCRYPTED"), std::string::npos);
  EXPECT_THROW(SigningKey::from_pem(encrypted, "k"), std::runtime_error);
  EXPECT_NO_THROW(SigningKey::from_pem(pem_of(ed), "k"));
  EVP_PKEY_free(ed);
  EXPECT_THROW(SigningKey::from_pem(SigningKey::generate("x").private_pem(), ""),
               std::runtime_error);
}

TEST(SigningKey, CopiesShareTheKey) {
  SigningKey key = SigningKey::generate("k");
  SigningKey copy = key;
  EXPECT_EQ(copy.public_jwk().x, key.public_jwk().x);
  EXPECT_NE(SigningKey::generate("k").public_jwk().x, key.public_jwk().x);
}

}  // namespace
}  // namespace trellis::jwt
