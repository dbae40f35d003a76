#include "trellis/common/password.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

namespace trellis::password {
namespace {

// Cheap costs keep the suite fast; one test below uses the production defaults.
constexpr Params kFast{1, 8u * 1024 * 1024};

TEST(Password, HashVerifiesItsPassword) {
  std::string encoded = hash("correct horse battery staple", kFast);
  EXPECT_EQ(encoded.rfind("$argon2id$v=19$m=8192,t=1,p=1$", 0), 0u) << encoded;
  EXPECT_TRUE(verify(encoded, "correct horse battery staple"));
}

TEST(Password, RejectsWrongPassword) {
  std::string encoded = hash("correct horse battery staple", kFast);
  EXPECT_FALSE(verify(encoded, "correct horse battery stapl"));
  EXPECT_FALSE(verify(encoded, "correct horse battery staple "));
  EXPECT_FALSE(verify(encoded, "Correct horse battery staple"));
  EXPECT_FALSE(verify(encoded, ""));
}

TEST(Password, HandlesEmptyAndBinaryPasswords) {
  std::string empty = hash("", kFast);
  EXPECT_TRUE(verify(empty, ""));
  EXPECT_FALSE(verify(empty, std::string_view("\0", 1)));
  std::string binary("p\0ss\xff", 5);
  std::string encoded = hash(binary, kFast);
  EXPECT_TRUE(verify(encoded, binary));
  EXPECT_FALSE(verify(encoded, "p")) << "the NUL must not end the password";
}

TEST(Password, SaltMakesEveryHashDifferent) {
  std::string first = hash("same password", kFast);
  std::string second = hash("same password", kFast);
  EXPECT_NE(first, second);
  EXPECT_TRUE(verify(first, "same password"));
  EXPECT_TRUE(verify(second, "same password"));
}

TEST(Password, DefaultParamsFollowOwasp) {
  Params defaults;
  EXPECT_EQ(defaults.ops_limit, 2u);
  EXPECT_EQ(defaults.mem_limit_bytes, 19u * 1024 * 1024);
  std::string encoded = hash("default cost", defaults);
  EXPECT_EQ(encoded.rfind("$argon2id$v=19$m=19456,t=2,p=1$", 0), 0u) << encoded;
  EXPECT_TRUE(verify(encoded, "default cost"));
  EXPECT_FALSE(needs_rehash(encoded, defaults));
}

TEST(Password, MalformedEncodingsNeverVerify) {
  std::string encoded = hash("pw", kFast);
  std::string argon2i = encoded;
  argon2i.replace(0, 10, "$argon2i$");
  std::string tampered_hash = encoded;
  tampered_hash.back() = tampered_hash.back() == 'A' ? 'B' : 'A';
  const std::vector<std::string> malformed = {
      std::string(),
      std::string("pw"),
      std::string("$argon2id$"),
      std::string("$argon2id$v=19$m=8192,t=1,p=1$"),
      encoded.substr(0, encoded.size() - 5),
      encoded + "x",
      encoded + std::string(1, '\0'),
      std::string(encoded).insert(5, 1, '\0'),
      argon2i,
      tampered_hash,
      "$2b$12$abcdefghijklmnopqrstuvABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
      std::string(4096, '$')};
  for (const std::string& bad : malformed) {
    EXPECT_FALSE(verify(bad, "pw")) << bad;
  }
  EXPECT_TRUE(verify(encoded, "pw"));
}

TEST(Password, NeedsRehashWhenCostsDiffer) {
  std::string encoded = hash("pw", kFast);
  EXPECT_FALSE(needs_rehash(encoded, kFast));
  EXPECT_TRUE(needs_rehash(encoded, Params{2, kFast.mem_limit_bytes}));
  EXPECT_TRUE(needs_rehash(encoded, Params{1, 16u * 1024 * 1024}));
  EXPECT_TRUE(needs_rehash(encoded, Params{}));
  EXPECT_TRUE(needs_rehash("", kFast));
  EXPECT_TRUE(needs_rehash("not a hash", kFast));
  std::string argon2i = encoded;
  argon2i.replace(0, 10, "$argon2i$");
  EXPECT_TRUE(needs_rehash(argon2i, kFast)) << "only Argon2id is current";
}

TEST(Password, RefusesParamsOutsideLibsodiumLimits) {
  EXPECT_THROW(hash("pw", Params{0, kFast.mem_limit_bytes}), std::invalid_argument);
  EXPECT_THROW(hash("pw", Params{1, 1024}), std::invalid_argument);
}

}  // namespace
}  // namespace trellis::password
