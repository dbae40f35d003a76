// Verifies the bearer access token of routes that require one: Ed25519 signature with a key from
// the users service's JWKS, algorithm pinned, exp/nbf with leeway, issuer and audience; then asks
// Redis whether the token or its session was revoked (answered from the gateway's tracked local
// copies when it holds them: see tracked_keys.h). Fails closed: if Redis cannot answer, the
// request gets 503, never a pass.
#pragma once

#include <functional>

#include "trellis/common/metrics.h"
#include "trellis/gateway/exchange.h"
#include "trellis/gateway/token_verifier.h"

namespace trellis::gateway {

class KeyCache;
class TrackedKeys;

class AuthFilter final : public Filter {
 public:
  using Clock = TokenVerifier::Clock;  // unix seconds; replaceable in tests
  AuthFilter(AuthFilterConfig config, const KeyCache& keys, TrackedKeys& tracked,
             metrics::Registry& registry, Clock clock = nullptr);
  std::string_view name() const override { return "auth"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  static HttpResponse rejection(const ExchangePtr& exchange, std::string_view code,
                                std::string message);
  void reject(const ExchangePtr& exchange, std::string_view code, std::string message);
  void count(std::string_view outcome) { decisions_.with({std::string(outcome)}).inc(); }

  TokenVerifier verifier_;
  TrackedKeys& tracked_;
  // Outcomes: ok, missing_token, <verify error>, revoked, unavailable.
  metrics::Family<metrics::Counter>& decisions_;
  metrics::Counter* passed_;  // the "ok" child, resolved once: the common outcome
};

}  // namespace trellis::gateway
