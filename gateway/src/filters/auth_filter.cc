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

HttpResponse AuthFilter::rejection(const ExchangePtr& exchange, std::string_view code,
                                   std::string message) {
  auto response = json_error(401, code, message, exchange->context.request_id);
  response.headers.emplace_back("WWW-Authenticate",
                                code == "unauthenticated"
                                    ? "Bearer realm=\"trellis\""
                                    : "Bearer realm=\"trellis\", error=\"invalid_token\"");
  return response;
}

void AuthFilter::reject(const ExchangePtr& exchange, std::string_view code, std::string message) {
  exchange->respond(rejection(exchange, code, std::move(message)));
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
  // The chain goes on while the revocation check runs, so that e.g. the response cache's lookup
  // shares its Redis round trip; the hold keeps every answer and upstream call until it passed.
  auto& identity = exchange->context.identity;
  identity.user_id = std::move(check.claims.subject);
  identity.roles = std::move(check.claims.roles);
  identity.token_id = check.claims.token_id;
  identity.session_id = check.claims.session_id;
  identity.expires_at = check.claims.expires_at;
  exchange->hold();
  TokenVerifier::check_revocation(
      redis_, check.claims.token_id, check.claims.session_id,
      [exchange, this](RevocationStatus status, std::string error) {
        exchange->post([exchange, status, error = std::move(error), this] {
          if (status == RevocationStatus::kUnavailable) {
            exchange->context.log.warn("revocation check failed", {{"error", error}});
            count("unavailable");
            exchange->fail_hold(json_error(503, "auth_unavailable",
                                           "cannot check token revocation right now, retry shortly",
                                           exchange->context.request_id));
            return;
          }
          if (status == RevocationStatus::kRevoked) {
            count("revoked");
            exchange->fail_hold(
                rejection(exchange, "token_revoked", "access token has been revoked"));
            return;
          }
          count("ok");
          exchange->release_hold();
        });
      });
  exchange->next();
}

}  // namespace trellis::gateway
