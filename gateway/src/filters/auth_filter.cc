#include "trellis/gateway/filters/auth_filter.h"

#include <strings.h>

#include <chrono>

#include "trellis/gateway/key_cache.h"
#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/route_table.h"

namespace trellis::gateway {
namespace {

int64_t system_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// "Bearer <token>", scheme case-insensitive (RFC 7235); empty when absent or another scheme.
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

}  // namespace

std::string revoked_token_key(std::string_view token_id) {
  return "trellis:revoked:jti:" + std::string(token_id);
}
std::string revoked_session_key(std::string_view session_id) {
  return "trellis:revoked:sid:" + std::string(session_id);
}

AuthFilter::AuthFilter(AuthFilterConfig config, const KeyCache& keys, RedisClient& redis,
                       metrics::Registry& registry, Clock clock)
    : config_(std::move(config)),
      keys_(keys),
      redis_(redis),
      clock_(clock ? std::move(clock) : Clock(system_seconds)),
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
  auto keys = keys_.keys();
  if (!keys) {
    count("unavailable");
    exchange->respond_error(503, "auth_unavailable", "token keys not loaded yet, retry shortly");
    return;
  }
  jwt::VerifyOptions options{config_.issuer, config_.audience, config_.leeway_s};
  auto verified = jwt::verify(token, *keys, options, clock_());
  if (!verified.ok()) {
    count(jwt::to_string(verified.error));
    reject(exchange, "invalid_token",
           "access token rejected: " + std::string(jwt::to_string(verified.error)));
    return;
  }
  auto claims = std::move(verified.claims);
  std::vector<std::string> command = {"EXISTS", revoked_token_key(claims.token_id)};
  if (!claims.session_id.empty()) command.push_back(revoked_session_key(claims.session_id));
  redis_.command(std::move(command), [exchange, claims = std::move(claims), this](RedisResult r) {
    exchange->post([exchange, claims = std::move(claims), r = std::move(r), this]() mutable {
      if (!r.ok || r.reply.type != RedisReply::Type::kInteger) {
        exchange->context.log.warn("revocation check failed", {{"error", r.error}});
        count("unavailable");
        exchange->respond_error(503, "auth_unavailable",
                                "cannot check token revocation right now, retry shortly");
        return;
      }
      if (r.reply.integer > 0) {
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
