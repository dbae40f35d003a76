#include "trellis/gateway/filters/auth_filter.h"

#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

AuthFilter::AuthFilter(AuthFilterConfig config, const KeyCache& keys, RedisClient& redis,
                       metrics::Registry& registry, Clock clock)
    : verifier_(std::move(config), keys, std::move(clock)),
      redis_(redis),
      decisions_(registry.counter("gateway_auth_decisions_total", "Access-token checks by outcome",
                                  {"outcome"})) {}

void AuthFilter::reject(const ExchangePtr& exchange, std::string_view code, std::string message) {
  auto response = json_error(401, code, message, exchange->context.request_id);
  response.headers.emplace_back("WWW-Authenticate",
                                code == "unauthenticated"
                                    ? "Bearer realm=\"trellis\""
                                    : "Bearer realm=\"trellis\", error=\"invalid_token\"");
  exchange->respond(std::move(response));
}

void AuthFilter::on_request(const ExchangePtr& exchange) {
  const auto* route = exchange->context.route;
  if (route && route->auth == AuthMode::kPublic) {
    exchange->next();
    return;
  }
  auto token = bearer_token(exchange->request.header("authorization"));
  if (token.empty()) {
    count("missing_token");
    reject(exchange, "unauthenticated", "a bearer access token is required");
    return;
  }
  auto check = verifier_.verify(token);
  if (check.status == TokenStatus::kKeysUnavailable) {
    count("unavailable");
    exchange->respond_error(503, "auth_unavailable", "token keys not loaded yet, retry shortly");
    return;
  }
  if (check.status != TokenStatus::kValid) {
    count(check.error);
    reject(exchange, "invalid_token", "access token rejected: " + check.error);
    return;
  }
  auto claims = std::move(check.claims);
  auto token_id = claims.token_id, session_id = claims.session_id;
  TokenVerifier::check_revocation(
      redis_, token_id, session_id,
      [exchange, claims = std::move(claims), this](RevocationStatus status,
                                                   std::string error) mutable {
        exchange->post([exchange, claims = std::move(claims), status, error = std::move(error),
                        this]() mutable {
          if (status == RevocationStatus::kUnavailable) {
            exchange->context.log.warn("revocation check failed", {{"error", error}});
            count("unavailable");
            exchange->respond_error(503, "auth_unavailable",
                                    "cannot check token revocation right now, retry shortly");
            return;
          }
          if (status == RevocationStatus::kRevoked) {
            count("revoked");
            reject(exchange, "token_revoked", "access token has been revoked");
            return;
          }
          auto& identity = exchange->context.identity;
          identity.user_id = std::move(claims.subject);
          identity.roles = std::move(claims.roles);
          identity.token_id = std::move(claims.token_id);
          identity.session_id = std::move(claims.session_id);
          identity.expires_at = claims.expires_at;
          count("ok");
          exchange->next();
        });
      });
}

}  // namespace trellis::gateway
