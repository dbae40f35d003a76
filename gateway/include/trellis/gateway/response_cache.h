// Response cache settings and the in-process LRU (L1, bounded in bytes). Entries carry the
// generation of their (route, scope) at the time they were stored; a write bumps the generation
// in Redis (shared by every replica), so a stale entry is never served after a successful write.
#pragma once

#include <chrono>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace trellis::gateway {

struct CacheRoute {
  std::string route;  // GET route template, e.g. "/v1/users/me"
  int ttl_s = 30;
  bool per_user = true;  // key includes the user: one user's data is never another's
  // Writes that make it stale: "PATCH /v1/users/me", "POST /v1/orders*" (method + route pattern).
  std::vector<std::string> invalidated_by;
};

// Events written by services (e.g. the orders outbox stream) that make cached data stale: each
// entry's `user_field` names the user whose entries of `routes` are invalidated.
struct CacheInvalidationStream {
  std::string stream;  // e.g. "trellis:events:orders"
  std::string user_field = "user_id";
  std::vector<std::string> routes;
};

struct CacheSettings {
  size_t l1_max_bytes = 64u << 20;
  std::vector<CacheRoute> routes;
  std::vector<CacheInvalidationStream> invalidation_streams;
};

// The Redis key of the generation counter of a cached route for one scope (user id, or "*").
// Every generation key starts with this (the gateway keeps local copies of them).
inline constexpr std::string_view kCacheGenerationPrefix = "trellis:cache:gen:";
std::string cache_generation_key(const std::string& route, const std::string& scope);

struct CacheEntry {
  std::string generation;
  std::string etag;  // strong, quoted
  std::string body;
  int64_t expires_at_ms = 0;  // wall clock

  std::string serialize() const;
  static std::optional<CacheEntry> parse(const std::string& text);
};

class LruCache {
 public:
  explicit LruCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  // Shared, not copied: a hit costs a reference count, not a copy of the body.
  std::shared_ptr<const CacheEntry> get(const std::string& key);
  // Returns how many older entries were evicted to make room.
  size_t put(const std::string& key, CacheEntry entry);
  size_t bytes() const;
  uint64_t evictions() const;

 private:
  using Item = std::pair<std::string, std::shared_ptr<const CacheEntry>>;
  size_t max_bytes_;
  mutable std::mutex mutex_;
  std::list<Item> order_;  // most recent first
  std::unordered_map<std::string, std::list<Item>::iterator> index_;
  size_t bytes_ = 0;
  uint64_t evictions_ = 0;
};

// Strong ETag of a body: a quoted SHA-256 prefix.
std::string strong_etag(const std::string& body);
// True when an If-None-Match header lists `etag` (or is "*").
bool etag_matches(std::string_view if_none_match, const std::string& etag);
// Query parameters sorted, so that ?a=1&b=2 and ?b=2&a=1 share an entry.
std::string normalized_query(std::string_view query);

}  // namespace trellis::gateway
