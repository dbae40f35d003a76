// GET /v1/notifications/stream: live push of the caller's notifications over WebSocket or
// Server-Sent Events. Authenticates like the auth filter (same verifier, same revocation check,
// fail closed), enforces the stream caps, then takes the connection over for a stream session
// (push_session.h). Every other request passes through untouched.
#pragma once

#include "trellis/gateway/exchange.h"
#include "trellis/gateway/push_hub.h"
#include "trellis/gateway/token_verifier.h"

namespace trellis::gateway {

class KeyCache;
class RedisClient;

class PushFilter final : public Filter {
 public:
  PushFilter(PushHub& hub, AuthFilterConfig auth, const KeyCache& keys, RedisClient& redis,
             TokenVerifier::Clock clock = nullptr);
  std::string_view name() const override { return "push"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  void reject(const ExchangePtr& exchange, std::string_view code, std::string message);
  // Verified and not revoked: admit, bind to the user and take the connection over.
  void open_stream(const ExchangePtr& exchange, bool websocket, std::string last_event_id,
                   bool select_subprotocol, std::optional<jwt::Claims> claims);

  PushHub& hub_;
  TokenVerifier verifier_;
  RedisClient& redis_;
};

}  // namespace trellis::gateway
