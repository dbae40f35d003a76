// Publishes revocations to Redis, where the gateway checks every access token: a logged-out token
// or session stops working at once instead of when the token expires.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "trellis/common/revocation_keys.h"  // the keys, shared with the gateway
#include "trellis/users/config.h"

struct redisContext;

namespace trellis::users {

class RevocationPublisher {
 public:
  explicit RevocationPublisher(RedisConfig config);
  ~RevocationPublisher();

  // Both throw std::runtime_error when Redis cannot be reached within the timeout. A ttl below one
  // second is rounded up: the entry must outlive the token it revokes.
  void revoke_token(const std::string& token_id, int64_t ttl_s);
  void revoke_session(const std::string& session_id, int64_t ttl_s);

 private:
  void set_with_ttl(const std::string& key, int64_t ttl_s);

  RedisConfig config_;
  std::mutex mutex_;  // one connection, used by one RPC at a time; revocations are rare
  redisContext* context_ = nullptr;
};

}  // namespace trellis::users
