#include "trellis/common/page_cursor.h"

#include <gtest/gtest.h>

#include <limits>

namespace trellis {
namespace {

constexpr std::string_view kListing = "trellis.test.cursor";

std::string encode_cursor(int64_t seq, std::string_view scope) {
  return encode_page_cursor(kListing, seq, scope);
}
std::optional<int64_t> decode_cursor(std::string_view token, std::string_view scope) {
  return decode_page_cursor(kListing, token, scope);
}

constexpr const char* kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

TEST(PageCursor, RoundTrips) {
  for (int64_t seq :
       {int64_t{1}, int64_t{42}, int64_t{1} << 40, std::numeric_limits<int64_t>::max()}) {
    auto token = encode_cursor(seq, "user-a");
    EXPECT_EQ(decode_cursor(token, "user-a"), seq) << token;
    // URL-safe without escaping.
    EXPECT_EQ(token.find_first_not_of(kAlphabet), std::string::npos) << token;
  }
}

TEST(PageCursor, EveryAlteredCharacterIsRefused) {
  auto token = encode_cursor(123456, "user-a");
  for (size_t i = 0; i < token.size(); ++i) {
    for (const char* c = kAlphabet; *c; ++c) {
      if (*c == token[i]) continue;
      auto altered = token;
      altered[i] = *c;
      EXPECT_EQ(decode_cursor(altered, "user-a"), std::nullopt) << altered;
    }
  }
}

TEST(PageCursor, IsBoundToItsScope) {
  auto token = encode_cursor(7, "user-a");
  EXPECT_EQ(decode_cursor(token, "user-b"), std::nullopt);
  EXPECT_EQ(decode_cursor(token, "*"), std::nullopt);
  EXPECT_EQ(decode_cursor(encode_cursor(7, "*"), "*"), 7);
}

TEST(PageCursor, IsBoundToItsListing) {
  auto token = encode_page_cursor("trellis.orders.cursor", 7, "u");
  EXPECT_EQ(decode_page_cursor("trellis.orders.cursor", token, "u"), 7);
  EXPECT_EQ(decode_page_cursor("trellis.notifications.cursor", token, "u"), std::nullopt);
}

TEST(PageSize, DefaultsAndBounds) {
  int size = 0;
  EXPECT_EQ(check_page_size(false, 0, size), "");
  EXPECT_EQ(size, kDefaultPageSize);
  EXPECT_EQ(check_page_size(true, 1, size), "");
  EXPECT_EQ(size, 1);
  EXPECT_EQ(check_page_size(true, 100, size), "");
  EXPECT_EQ(size, 100);
  EXPECT_EQ(check_page_size(true, 0, size), "limit must be between 1 and 100");
  EXPECT_EQ(check_page_size(true, 101, size), "limit must be between 1 and 100");
}

TEST(PageCursor, RefusesMalformedTokens) {
  auto token = encode_cursor(7, "u");
  for (const std::string& bad :
       {std::string(), std::string("x"), token + "A", token.substr(1), token + "=",
        std::string("not a token"), std::string("AAAAAAAAAAAAAAAAAAAAAAA"), encode_cursor(0, "u"),
        encode_cursor(-5, "u")}) {
    EXPECT_EQ(decode_cursor(bad, "u"), std::nullopt) << bad;
  }
}

}  // namespace
}  // namespace trellis
