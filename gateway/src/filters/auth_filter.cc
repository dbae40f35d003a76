#include "trellis/gateway/filters/auth_filter.h"

#include <algorithm>

#include "trellis/gateway/route_table.h"
#include "trellis/gateway/tracked_keys.h"

namespace trellis::gateway {

AuthFilter::AuthFilter(AuthFilterConfig config, const KeyCache& keys, TrackedKeys& tracked,
                       metrics::Registry& registry, Clock clock)
    : verifier_(std::move(config), keys, std::move(clock)),
      tracked_(tracked),
      decisions_(registry.counter("gateway_auth_decisions_total", "Access-token checks by outcome",
                                  {"outcome"})),
      passed_(&decisions_.with({"ok"})) {}

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
  auto& identity = exchange->context.identity;
  identity.user_id = check.claims().subject;
  identity.roles = check.claims().roles;
  identity.expires_at = check.claims().expires_at;
  identity.token = std::move(check.token);
  const auto& markers = identity.token->revocation_markers;
  if (auto known = tracked_.lookup(markers)) {
    if (std::any_of(known->begin(), known->end(), [](const auto& v) { return v.has_value(); })) {
      count("revoked");
      reject(exchange, "token_revoked", "access token has been revoked");
      return;
    }
    passed_->inc();
    exchange->next();
    return;
  }
  // The chain goes on while the revocation check runs, so that e.g. the response cache's lookup
  // overlaps with it; the hold keeps every answer and upstream call until it passed.
  exchange->hold();
  tracked_.read(markers, [exchange, this](RedisResult result) {
    std::string error;
    auto status = revocation_from_reply(result, error);
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
        exchange->fail_hold(rejection(exchange, "token_revoked", "access token has been revoked"));
        return;
      }
      passed_->inc();
      exchange->release_hold();
    });
  });
  exchange->next();
}

}  // namespace trellis::gateway
