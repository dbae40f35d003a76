#include "trellis/users/revocation.h"

#include <hiredis/hiredis.h>

#include <stdexcept>

#include "trellis/common/tracing.h"

namespace trellis::users {

RevocationPublisher::RevocationPublisher(RedisConfig config) : config_(std::move(config)) {}

RevocationPublisher::~RevocationPublisher() {
  if (context_) redisFree(context_);
}

void RevocationPublisher::revoke_token(const std::string& token_id, int64_t ttl_s) {
  set_with_ttl(revoked_token_key(token_id), ttl_s);
}

void RevocationPublisher::revoke_session(const std::string& session_id, int64_t ttl_s) {
  set_with_ttl(revoked_session_key(session_id), ttl_s);
}

void RevocationPublisher::set_with_ttl(const std::string& key, int64_t ttl_s) {
  tracing::ChildSpan span("redis SET", tracing::SpanKind::kClient, {{"db.system", "redis"}});
  std::lock_guard lock(mutex_);
  timeval timeout{config_.timeout_ms / 1000, (config_.timeout_ms % 1000) * 1000};
  // Two attempts: the first may find a connection that Redis closed while idle.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!context_) {
      context_ = redisConnectWithTimeout(config_.host.c_str(), config_.port, timeout);
      if (!context_ || context_->err) {
        if (context_) redisFree(context_);
        context_ = nullptr;
        continue;
      }
      redisSetTimeout(context_, timeout);
    }
    auto ttl = std::to_string(ttl_s < 1 ? 1 : ttl_s);
    auto* reply = static_cast<redisReply*>(
        redisCommand(context_, "SET %b 1 EX %s", key.data(), key.size(), ttl.c_str()));
    if (reply) {
      bool ok = reply->type == REDIS_REPLY_STATUS;
      freeReplyObject(reply);
      if (ok) return;
      throw std::runtime_error("redis refused the revocation write");
    }
    redisFree(context_);
    context_ = nullptr;
  }
  throw std::runtime_error("redis unreachable");
}

}  // namespace trellis::users
