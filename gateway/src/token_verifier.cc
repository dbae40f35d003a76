#include "trellis/gateway/token_verifier.h"

#include <strings.h>

#include <algorithm>
#include <chrono>

#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/redis_client.h"

namespace trellis::gateway {
namespace {

int64_t system_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string_view bearer_token(std::string_view header) {
  constexpr std::string_view kScheme = "bearer ";
  if (header.size() <= kScheme.size() ||
      strncasecmp(header.data(), kScheme.data(), kScheme.size()) != 0) {
    return {};
  }
  auto token = header.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

std::vector<std::string> revocation_markers(std::string_view token_id,
                                            std::string_view session_id) {
  std::vector<std::string> markers = {revoked_token_key(token_id)};
  if (!session_id.empty()) markers.push_back(revoked_session_key(session_id));
  return markers;
}

TokenVerifier::TokenVerifier(AuthFilterConfig config, const KeyCache& keys, Clock clock)
    : config_(std::move(config)),
      keys_(keys),
      clock_(clock ? std::move(clock) : Clock(system_seconds)) {}

TokenCheck TokenVerifier::verify(std::string_view token) const {
  TokenCheck check;
  auto keys = keys_.keys();
  if (!keys) {
    check.status = TokenStatus::kKeysUnavailable;
    return check;
  }
  int64_t now = clock_();
  if (config_.verified_cache_entries > 0) {
    std::lock_guard lock(mutex_);
    auto hit = verified_.find(token);
    if (hit != verified_.end()) {
      // Still inside the window verify() accepted (nbf was already passed) and the same keys.
      if (hit->second.keys == keys &&
          now <= hit->second.token->claims.expires_at + config_.leeway_s) {
        check.status = TokenStatus::kValid;
        check.token = hit->second.token;
        return check;
      }
      verified_.erase(hit);  // expired or keys rotated: verify again (and report why)
    }
  }
  jwt::VerifyOptions options{config_.issuer, config_.audience, config_.leeway_s};
  auto verified = jwt::verify(token, *keys, options, now);
  if (!verified.ok()) {
    check.status = TokenStatus::kInvalid;
    check.error = std::string(jwt::to_string(verified.error));
    return check;
  }
  auto markers = revocation_markers(verified.claims.token_id, verified.claims.session_id);
  check.token = std::make_shared<const VerifiedToken>(
      VerifiedToken{std::move(verified.claims), std::move(markers)});
  check.status = TokenStatus::kValid;
  if (config_.verified_cache_entries > 0) remember(token, check.token, std::move(keys), now);
  return check;
}

void TokenVerifier::remember(std::string_view token, std::shared_ptr<const VerifiedToken> verified,
                             std::shared_ptr<const jwt::KeySet> keys, int64_t now) const {
  std::lock_guard lock(mutex_);
  if (verified_.size() >= config_.verified_cache_entries) {
    std::erase_if(verified_, [&](const auto& entry) {
      return entry.second.keys != keys ||
             now > entry.second.token->claims.expires_at + config_.leeway_s;
    });
    // Still full of live tokens: start over rather than track recency (the bound is what matters;
    // a miss only costs one signature check).
    if (verified_.size() >= config_.verified_cache_entries) verified_.clear();
  }
  verified_.insert_or_assign(std::string(token), Verified{std::move(verified), std::move(keys)});
}

size_t TokenVerifier::cached_tokens() const {
  std::lock_guard lock(mutex_);
  return verified_.size();
}

RevocationStatus revocation_from_reply(const RedisResult& result, std::string& error) {
  if (!result.ok || result.reply.type != RedisReply::Type::kArray) {
    error = result.ok ? result.reply.str : result.error;
    return RevocationStatus::kUnavailable;
  }
  const auto& values = result.reply.elements;
  return std::any_of(values.begin(), values.end(),
                     [](const auto& v) { return v.type == RedisReply::Type::kString; })
             ? RevocationStatus::kRevoked
             : RevocationStatus::kNotRevoked;
}

void TokenVerifier::check_revocation(
    RedisClient& redis, const std::string& token_id, const std::string& session_id,
    std::function<void(RevocationStatus, std::string error)> done) {
  auto command = revocation_markers(token_id, session_id);
  command.insert(command.begin(), "MGET");
  redis.command(std::move(command), [done = std::move(done)](RedisResult result) {
    std::string error;
    auto status = revocation_from_reply(result, error);
    done(status, std::move(error));
  });
}

}  // namespace trellis::gateway
