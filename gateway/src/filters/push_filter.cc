#include "trellis/gateway/filters/push_filter.h"

#include "trellis/gateway/push_session.h"
#include "trellis/gateway/redis_client.h"

namespace trellis::gateway {

PushFilter::PushFilter(PushHub& hub, AuthFilterConfig auth, const KeyCache& keys,
                       RedisClient& redis, TokenVerifier::Clock clock)
    : hub_(hub), verifier_(std::move(auth), keys, std::move(clock)), redis_(redis) {}

void PushFilter::reject(const ExchangePtr& exchange, std::string_view code, std::string message) {
  auto response = json_error(401, code, message, exchange->context.request_id);
  response.headers.emplace_back("WWW-Authenticate",
                                code == "unauthenticated"
                                    ? "Bearer realm=\"trellis\""
                                    : "Bearer realm=\"trellis\", error=\"invalid_token\"");
  exchange->respond(std::move(response));
}

void PushFilter::on_request(const ExchangePtr& exchange) {
  const auto& request = exchange->request;
  if (request.path != kPushPath || !hub_.settings().enabled) {
    exchange->next();
    return;
  }
  if (request.method != "GET") {
    auto response = json_error(405, "method_not_allowed", "use GET", exchange->context.request_id);
    response.headers.emplace_back("Allow", "GET");
    exchange->respond(std::move(response));
    return;
  }
  bool websocket = is_websocket_upgrade(request);
  if (!websocket && !accepts_event_stream(request.header("accept"))) {
    exchange->respond_error(406, "not_acceptable",
                            "this endpoint streams: use a WebSocket upgrade or "
                            "Accept: text/event-stream (Server-Sent Events)");
    return;
  }
  std::string last_event_id;
  if (websocket) {
    last_event_id = query_parameter(request.query, "last_event_id").value_or("");
  }
  if (last_event_id.empty()) last_event_id = std::string(request.header("last-event-id"));
  if (!last_event_id.empty() && !parse_stream_id(last_event_id)) {
    exchange->respond_error(400, "invalid_last_event_id",
                            "the last event id must look like 1700000000000-0");
    return;
  }

  std::string token(bearer_token(request.header("authorization")));
  bool select_subprotocol = false;
  if (websocket) {
    auto offer = parse_websocket_protocols(request.header("sec-websocket-protocol"));
    select_subprotocol = offer.offers_v1;
    if (token.empty()) token = std::move(offer.token);
  }
  if (token.empty()) {
    if (!websocket) {
      reject(exchange, "unauthenticated", "a bearer access token is required");
      return;
    }
    // Browsers cannot set headers: the token may come as the first message.
    open_stream(exchange, true, std::move(last_event_id), select_subprotocol, std::nullopt);
    return;
  }
  auto check = verifier_.verify(token);
  if (check.status == TokenStatus::kKeysUnavailable) {
    exchange->respond_error(503, "auth_unavailable", "token keys not loaded yet, retry shortly");
    return;
  }
  if (check.status != TokenStatus::kValid) {
    reject(exchange, "invalid_token", "access token rejected: " + check.error);
    return;
  }
  auto token_id = check.claims().token_id, session_id = check.claims().session_id;
  TokenVerifier::check_revocation(
      redis_, token_id, session_id,
      [this, exchange, websocket, select_subprotocol, last_event_id = std::move(last_event_id),
       claims = check.claims()](RevocationStatus status, std::string error) mutable {
        exchange->post([=, this, claims = std::move(claims),
                        last_event_id = std::move(last_event_id)]() mutable {
          if (status == RevocationStatus::kUnavailable) {
            exchange->context.log.warn("revocation check failed", {{"error", error}});
            exchange->respond_error(503, "auth_unavailable",
                                    "cannot check token revocation right now, retry shortly");
            return;
          }
          if (status == RevocationStatus::kRevoked) {
            reject(exchange, "token_revoked", "access token has been revoked");
            return;
          }
          open_stream(exchange, websocket, std::move(last_event_id), select_subprotocol,
                      std::move(claims));
        });
      });
}

void PushFilter::open_stream(const ExchangePtr& exchange, bool websocket, std::string last_event_id,
                             bool select_subprotocol, std::optional<jwt::Claims> claims) {
  switch (hub_.admit()) {
    case PushAdmission::kAdmitted:
      break;
    case PushAdmission::kDraining:
      exchange->respond_error(503, "shutting_down", "this gateway is shutting down; reconnect");
      return;
    default:
      exchange->respond_error(503, "too_many_streams", "too many open streams on this gateway");
      return;
  }
  PushSessionParams params;
  params.transport = websocket ? PushTransport::kWebSocket : PushTransport::kSse;
  params.last_event_id = std::move(last_event_id);
  params.select_subprotocol = select_subprotocol;
  if (claims) {
    params.authenticated = true;
    params.identity = PushIdentity::from(*claims);
    exchange->context.identity.user_id = params.identity.user_id;
  } else {
    params.authenticator = [this](std::string token, std::function<void(PushAuthResult)> done) {
      auto check = verifier_.verify(token);
      PushAuthResult result;
      if (check.status != TokenStatus::kValid) {
        result.failure = check.status == TokenStatus::kKeysUnavailable ? PushEnd::kAuthUnavailable
                                                                       : PushEnd::kAuthFailed;
        done(std::move(result));
        return;
      }
      auto token_id = check.claims().token_id, session_id = check.claims().session_id;
      TokenVerifier::check_revocation(redis_, token_id, session_id,
                                      [claims = check.claims(), done = std::move(done)](
                                          RevocationStatus status, std::string) mutable {
                                        PushAuthResult result;
                                        result.ok = status == RevocationStatus::kNotRevoked;
                                        result.failure = status == RevocationStatus::kUnavailable
                                                             ? PushEnd::kAuthUnavailable
                                                             : PushEnd::kAuthFailed;
                                        if (result.ok) result.identity = PushIdentity::from(claims);
                                        done(std::move(result));
                                      });
    };
  }
  std::string user_id = params.identity.user_id;
  auto session = make_stream_session(hub_, std::move(params));
  // Registered before the takeover (and so before any replay read): nothing published from now
  // on can fall between the replay and the live messages.
  if (user_id.empty()) {
    hub_.track_unbound(session);  // still ended by drain()
  } else if (auto admission = hub_.bind(user_id, session); admission != PushAdmission::kAdmitted) {
    if (admission == PushAdmission::kDraining) {
      exchange->respond_error(503, "shutting_down", "this gateway is shutting down; reconnect");
    } else {
      exchange->respond_error(429, "too_many_streams", "too many open streams for this user");
    }
    return;
  }
  HttpResponse head;
  if (websocket) {
    head.status = 101;
  } else {
    head.status = 200;
    head.headers.emplace_back("Content-Type", "text/event-stream");
    head.headers.emplace_back("Cache-Control", "no-cache");
    head.headers.emplace_back("X-Accel-Buffering", "no");
  }
  exchange->take_over(std::move(head), [session, request = exchange->request](
                                           TakenOverConnectionPtr connection, HttpResponse head) {
    session->attach(std::move(connection), request, std::move(head));
  });
}

}  // namespace trellis::gateway
