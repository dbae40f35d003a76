#include "trellis/gateway/response_cache.h"

#include <gtest/gtest.h>

namespace trellis::gateway {
namespace {

CacheEntry entry(std::string body) {
  CacheEntry e;
  e.generation = "3";
  e.etag = strong_etag(body);
  e.body = std::move(body);
  e.expires_at_ms = 1234;
  return e;
}

TEST(ResponseCache, EntriesRoundTripThroughTheirRedisForm) {
  auto original = entry("{\"a\":\"line\\nbreak\"}\n");
  auto parsed = CacheEntry::parse(original.serialize());
  ASSERT_TRUE(parsed);
  EXPECT_EQ(parsed->generation, "3");
  EXPECT_EQ(parsed->etag, original.etag);
  EXPECT_EQ(parsed->body, original.body);
  EXPECT_EQ(parsed->expires_at_ms, 1234);
  EXPECT_FALSE(CacheEntry::parse("v2\n1\n\"x\"\n5\nbody"));
  EXPECT_FALSE(CacheEntry::parse("v1\n1\n\"x\"\nsoon\nbody"));
  EXPECT_FALSE(CacheEntry::parse("garbage"));
}

TEST(ResponseCache, LruStaysWithinItsByteBoundAndEvictsTheOldest) {
  LruCache cache(300);
  cache.put("a", entry(std::string(100, 'a')));
  cache.put("b", entry(std::string(100, 'b')));
  ASSERT_TRUE(cache.get("a"));  // a is now the most recent
  cache.put("c", entry(std::string(100, 'c')));
  EXPECT_LE(cache.bytes(), 300u);
  EXPECT_TRUE(cache.get("a"));
  EXPECT_FALSE(cache.get("b"));
  EXPECT_TRUE(cache.get("c"));
  EXPECT_EQ(cache.evictions(), 1u);
  cache.put("huge", entry(std::string(1000, 'h')));  // larger than the whole cache: not kept
  EXPECT_FALSE(cache.get("huge"));
  EXPECT_TRUE(cache.get("c"));
}

TEST(ResponseCache, EtagsAndConditionalRequests) {
  auto etag = strong_etag("body");
  EXPECT_EQ(etag.size(), 34u);
  EXPECT_EQ(etag.front(), '"');
  EXPECT_NE(strong_etag("body2"), etag);
  EXPECT_TRUE(etag_matches(etag, etag));
  EXPECT_TRUE(etag_matches("\"other\", " + etag, etag));
  EXPECT_TRUE(etag_matches("W/" + etag, etag));
  EXPECT_TRUE(etag_matches("*", etag));
  EXPECT_FALSE(etag_matches("\"other\"", etag));
  EXPECT_FALSE(etag_matches("", etag));
}

TEST(ResponseCache, QueryOrderDoesNotMatter) {
  EXPECT_EQ(normalized_query("b=2&a=1"), normalized_query("a=1&b=2"));
  EXPECT_EQ(normalized_query("a=1&&b=2&"), "a=1&b=2");
  EXPECT_NE(normalized_query("a=1"), normalized_query("a=2"));
}

}  // namespace
}  // namespace trellis::gateway
