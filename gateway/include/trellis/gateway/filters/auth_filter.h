// Verifies the bearer access token of routes that require one: Ed25519 signature with a key from
// the users service's JWKS, algorithm pinned, exp/nbf with leeway, issuer and audience; then asks
// Redis whether the token or its session was revoked. Fails closed: if Redis cannot answer, the
// request gets 503, never a pass.
#pragma once

#include <functional>

#include "trellis/common/jwt.h"
#include "trellis/common/metrics.h"
#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class KeyCache;
class RedisClient;

struct AuthFilterConfig {
  std::string issuer;
  std::string audience;
  int leeway_s = 30;
};

class AuthFilter final : public Filter {
 public:
  using Clock = std::function<int64_t()>;  // unix seconds; replaceable in tests
  AuthFilter(AuthFilterConfig config, const KeyCache& keys, RedisClient& redis,
             metrics::Registry& registry, Clock clock = nullptr);
  std::string_view name() const override { return "auth"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  void reject(const ExchangePtr& exchange, std::string_view code, std::string message);
  void count(std::string_view outcome) { decisions_.with({std::string(outcome)}).inc(); }

  AuthFilterConfig config_;
  const KeyCache& keys_;
  RedisClient& redis_;
  Clock clock_;
  // Outcomes: ok, missing_token, <verify error>, revoked, unavailable.
  metrics::Family<metrics::Counter>& decisions_;
};

// Redis keys written by the users service on logout and refresh-token reuse.
std::string revoked_token_key(std::string_view token_id);
std::string revoked_session_key(std::string_view session_id);

}  // namespace trellis::gateway
