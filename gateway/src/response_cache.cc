#include "trellis/gateway/response_cache.h"

#include "trellis/common/digest.h"

#include <algorithm>

namespace trellis::gateway {

std::string cache_generation_key(const std::string& route, const std::string& scope) {
  std::string key;
  key.reserve(kCacheGenerationPrefix.size() + route.size() + 1 + scope.size());
  key.append(kCacheGenerationPrefix).append(route).append(":").append(scope);
  return key;
}

std::string CacheEntry::serialize() const {
  return "v1\n" + generation + "\n" + etag + "\n" + std::to_string(expires_at_ms) + "\n" + body;
}

std::optional<CacheEntry> CacheEntry::parse(const std::string& text) {
  CacheEntry entry;
  size_t position = 0;
  auto next_line = [&](std::string& out) {
    auto newline = text.find('\n', position);
    if (newline == std::string::npos) return false;
    out = text.substr(position, newline - position);
    position = newline + 1;
    return true;
  };
  std::string version, expires;
  if (!next_line(version) || version != "v1" || !next_line(entry.generation) ||
      !next_line(entry.etag) || !next_line(expires)) {
    return std::nullopt;
  }
  try {
    entry.expires_at_ms = std::stoll(expires);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  entry.body = text.substr(position);
  return entry;
}

std::shared_ptr<const CacheEntry> LruCache::get(const std::string& key) {
  std::lock_guard lock(mutex_);
  auto it = index_.find(key);
  if (it == index_.end()) return nullptr;
  order_.splice(order_.begin(), order_, it->second);
  return it->second->second;
}

size_t LruCache::put(const std::string& key, CacheEntry entry) {
  std::lock_guard lock(mutex_);
  auto size = key.size() + entry.body.size() + entry.etag.size() + entry.generation.size();
  if (size > max_bytes_) return 0;
  size_t evicted = 0;
  if (auto it = index_.find(key); it != index_.end()) {
    auto& old = *it->second->second;
    bytes_ -= key.size() + old.body.size() + old.etag.size() + old.generation.size();
    order_.erase(it->second);
    index_.erase(it);
  }
  order_.emplace_front(key, std::make_shared<const CacheEntry>(std::move(entry)));
  index_[key] = order_.begin();
  bytes_ += size;
  while (bytes_ > max_bytes_ && !order_.empty()) {
    auto& victim = order_.back();
    bytes_ -= victim.first.size() + victim.second->body.size() + victim.second->etag.size() +
              victim.second->generation.size();
    index_.erase(victim.first);
    order_.pop_back();
    ++evictions_;
    ++evicted;
  }
  return evicted;
}

size_t LruCache::bytes() const {
  std::lock_guard lock(mutex_);
  return bytes_;
}

uint64_t LruCache::evictions() const {
  std::lock_guard lock(mutex_);
  return evictions_;
}

std::string strong_etag(const std::string& body) {
  return "\"" + sha256_hex(body).substr(0, 32) + "\"";
}

bool etag_matches(std::string_view header, const std::string& etag) {
  while (!header.empty()) {
    auto comma = header.find(',');
    auto item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (item.rfind("W/", 0) == 0) item.remove_prefix(2);  // weak comparison for If-None-Match
    if (item == "*" || item == etag) return true;
  }
  return false;
}

std::string normalized_query(std::string_view query) {
  std::vector<std::string_view> parts;
  while (!query.empty()) {
    auto amp = query.find('&');
    auto part = query.substr(0, amp);
    if (!part.empty()) parts.push_back(part);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
  }
  std::sort(parts.begin(), parts.end());
  std::string out;
  for (auto part : parts) {
    if (!out.empty()) out += '&';
    out += part;
  }
  return out;
}

}  // namespace trellis::gateway
