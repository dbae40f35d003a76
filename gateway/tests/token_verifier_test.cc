// The verified-token cache must never accept what a full verification would refuse: expired
// tokens, tokens signed by a key that left the JWKS, or tokens it has not seen.
#include "trellis/gateway/token_verifier.h"

#include <gtest/gtest.h>

#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/redis_client.h"

namespace trellis::gateway {
namespace {

class TokenVerifierTest : public ::testing::Test {
 protected:
  TokenVerifierTest() { trust({&signing_}); }

  void trust(std::initializer_list<const jwt::SigningKey*> signers) {
    jwt::KeySet set;
    for (const auto* signer : signers) set.add(signer->public_jwk());
    keys_.update(std::move(set));
  }

  TokenVerifier verifier(size_t cache_entries = 100) {
    return TokenVerifier(AuthFilterConfig{"iss", "aud", 30, cache_entries}, keys_,
                         [this] { return now_; });
  }

  std::string token(const std::string& jti, int64_t expires_at,
                    const jwt::SigningKey* signer = nullptr) {
    jwt::Claims claims;
    claims.issuer = "iss";
    claims.audience = "aud";
    claims.subject = "user-1";
    claims.token_id = jti;
    claims.issued_at = expires_at - 900;
    claims.expires_at = expires_at;
    return (signer ? *signer : signing_).sign(claims);
  }

  int64_t now_ = 1'800'000'000;
  jwt::SigningKey signing_ = jwt::SigningKey::generate("k1");
  KeyCache keys_;
};

TEST_F(TokenVerifierTest, RemembersVerifiedTokensWithTheirClaims) {
  auto v = verifier();
  auto t = token("a", now_ + 900);
  auto first = v.verify(t);
  ASSERT_EQ(first.status, TokenStatus::kValid);
  EXPECT_EQ(v.cached_tokens(), 1u);
  auto again = v.verify(t);
  ASSERT_EQ(again.status, TokenStatus::kValid);
  EXPECT_EQ(again.claims().token_id, "a");
  EXPECT_EQ(again.claims().subject, "user-1");
  EXPECT_EQ(again.claims().expires_at, now_ + 900);
  EXPECT_EQ(v.cached_tokens(), 1u);
  // One shared object per token, with its revocation markers worked out once.
  EXPECT_EQ(again.token, first.token);
  EXPECT_EQ(again.token->revocation_markers, revocation_markers("a", ""));
}

TEST_F(TokenVerifierTest, NeverCachesRefusals) {
  auto v = verifier();
  auto t = token("a", now_ + 900);
  auto tampered = t;
  auto& c = tampered[tampered.size() - 10];  // inside the signature
  c = c == 'A' ? 'B' : 'A';
  EXPECT_EQ(v.verify(tampered).status, TokenStatus::kInvalid);
  EXPECT_EQ(v.verify(tampered).status, TokenStatus::kInvalid);
  EXPECT_EQ(v.cached_tokens(), 0u);
  // A prefix or near-copy of a cached token is not a hit: the whole token is the key.
  ASSERT_EQ(v.verify(t).status, TokenStatus::kValid);
  EXPECT_EQ(v.verify(t.substr(0, t.size() - 1)).status, TokenStatus::kInvalid);
}

TEST_F(TokenVerifierTest, ACachedTokenStillExpires) {
  auto v = verifier();
  auto t = token("a", now_ + 60);
  ASSERT_EQ(v.verify(t).status, TokenStatus::kValid);
  now_ += 60 + 30;  // exp + leeway: still accepted
  EXPECT_EQ(v.verify(t).status, TokenStatus::kValid);
  now_ += 1;
  auto late = v.verify(t);
  EXPECT_EQ(late.status, TokenStatus::kInvalid);
  EXPECT_EQ(late.error, "expired");
  EXPECT_EQ(v.cached_tokens(), 0u);
}

TEST_F(TokenVerifierTest, AKeyLeavingTheJwksInvalidatesWhatItSigned) {
  auto v = verifier();
  auto t = token("a", now_ + 900);
  ASSERT_EQ(v.verify(t).status, TokenStatus::kValid);
  jwt::SigningKey next = jwt::SigningKey::generate("k2");
  trust({&next});  // k1 withdrawn (e.g. compromised)
  auto after = v.verify(t);
  EXPECT_EQ(after.status, TokenStatus::kInvalid);
  EXPECT_EQ(after.error, "unknown_key");
  EXPECT_EQ(v.verify(token("b", now_ + 900, &next)).status, TokenStatus::kValid);
}

TEST_F(TokenVerifierTest, TheCacheIsBounded) {
  auto v = verifier(8);
  for (int i = 0; i < 50; ++i) {
    ASSERT_EQ(v.verify(token("t" + std::to_string(i), now_ + 900)).status, TokenStatus::kValid);
    EXPECT_LE(v.cached_tokens(), 8u);
  }
  auto off = verifier(0);
  EXPECT_EQ(off.verify(token("x", now_ + 900)).status, TokenStatus::kValid);
  EXPECT_EQ(off.cached_tokens(), 0u);
}

TEST(RevocationFromReply, RevokedWhenAnyMarkerExistsUnavailableWithoutAnArray) {
  auto reply = [](std::vector<RedisReply::Type> types) {
    RedisResult result;
    result.ok = true;
    result.reply.type = RedisReply::Type::kArray;
    for (auto type : types) result.reply.elements.push_back({type, "1", 0, {}});
    return result;
  };
  std::string error;
  using T = RedisReply::Type;
  EXPECT_EQ(revocation_from_reply(reply({T::kNil, T::kNil}), error), RevocationStatus::kNotRevoked);
  EXPECT_EQ(revocation_from_reply(reply({T::kNil, T::kString}), error), RevocationStatus::kRevoked);
  EXPECT_EQ(revocation_from_reply(reply({T::kString}), error), RevocationStatus::kRevoked);
  EXPECT_EQ(error, "");
  RedisResult lost;
  lost.error = "connection lost";
  EXPECT_EQ(revocation_from_reply(lost, error), RevocationStatus::kUnavailable);
  EXPECT_EQ(error, "connection lost");
  RedisResult refused;
  refused.ok = true;
  refused.reply = {RedisReply::Type::kError, "ERR wrong number of arguments", 0, {}};
  EXPECT_EQ(revocation_from_reply(refused, error), RevocationStatus::kUnavailable);
  EXPECT_EQ(error, "ERR wrong number of arguments");
}

}  // namespace
}  // namespace trellis::gateway
