#include "trellis/gateway/filters/upstream_filter.h"

#include <strings.h>

#include <algorithm>
#include <cctype>
#include <random>

#include "trellis/common/service_metadata.h"
#include "trellis/gateway/route_table.h"
#include "trellis/gateway/status_mapping.h"
#include "trellis/gateway/token_verifier.h"
#include "trellis/gateway/transcoder.h"
#include "trellis/gateway/upstreams.h"

namespace trellis::gateway {

bool is_json_content_type(std::string_view content_type) {
  constexpr std::string_view kJson = "application/json";
  while (!content_type.empty() && content_type.front() == ' ') content_type.remove_prefix(1);
  if (content_type.size() < kJson.size() ||
      strncasecmp(content_type.data(), kJson.data(), kJson.size()) != 0) {
    return false;
  }
  auto rest = content_type.substr(kJson.size());
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  return rest.empty() || rest.front() == ';';
}

bool is_valid_idempotency_key(std::string_view key) {
  if (key.empty() || key.size() > 255) return false;
  for (unsigned char c : key) {
    if (c < 0x21 || c > 0x7E) return false;
  }
  return true;
}

void UpstreamFilter::on_request(const ExchangePtr& exchange) {
  const auto& request = exchange->request;
  const auto& context = exchange->context;
  const auto* route = context.route;
  if (!route) {
    exchange->respond_error(404, "not_found", "no route for " + request.path);
    return;
  }
  bool has_body = request.body.find_first_not_of(" \t\r\n") != std::string::npos;
  if (has_body && !is_json_content_type(request.header("content-type"))) {
    exchange->respond_error(415, "unsupported_media_type",
                            "send the body as Content-Type: application/json");
    return;
  }
  auto idempotency_key = request.header("idempotency-key");
  if (!idempotency_key.empty() && !is_valid_idempotency_key(idempotency_key)) {
    exchange->respond_error(400, "invalid_argument",
                            "Idempotency-Key must be 1-255 printable ASCII characters");
    return;
  }
  auto transcoded = request_to_proto(*route, has_body ? std::string_view(request.body) : "",
                                     request.query, context.path_params);
  if (!transcoded.ok) {
    exchange->respond_error(400, transcoded.error.code, transcoded.error.message);
    return;
  }

  int route_timeout_ms = route->timeout_ms > 0 ? route->timeout_ms : default_timeout_ms_;
  auto requested = request.header("x-request-timeout");
  int timeout_ms = route_timeout_ms;
  if (!requested.empty()) {
    auto client_ms = parse_request_timeout_ms(requested);
    if (client_ms <= 0) {
      exchange->respond_error(400, "invalid_argument",
                              "X-Request-Timeout must be a duration like 250ms or 2s");
      return;
    }
    timeout_ms = std::min(timeout_ms, client_ms);  // a client may ask for less, never more
  }

  auto* guard = context.upstream_guard;  // admitted by the upstream guard filter, if any

  auto attempt = std::make_shared<Attempt>();
  attempt->exchange = exchange;
  attempt->route = route;
  attempt->guard = guard;
  attempt->payload = std::move(transcoded.payload);
  attempt->deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto& metadata = attempt->metadata;
  metadata.emplace_back(std::string(trace::kRequestIdHeader), context.request_id);
  if (!idempotency_key.empty()) {
    metadata.emplace_back(std::string(service::kIdempotencyKey), std::string(idempotency_key));
  }
  if (context.identity.authenticated()) {
    const auto& identity = context.identity;
    metadata.emplace_back(std::string(service::kUserIdKey), identity.user_id);
    std::string roles;
    for (const auto& role : identity.roles) roles += (roles.empty() ? "" : ",") + role;
    metadata.emplace_back(std::string(service::kRolesKey), roles);
    if (identity.token) {
      metadata.emplace_back(std::string(service::kTokenIdKey), identity.token->claims.token_id);
      metadata.emplace_back(std::string(service::kSessionIdKey), identity.token->claims.session_id);
    }
    metadata.emplace_back(std::string(service::kTokenExpiresKey),
                          std::to_string(identity.expires_at));
  }
  // Not before the access token's revocation check passed: the call acts as the caller.
  exchange->after_hold([this, attempt] { send(attempt); });
}

void UpstreamFilter::send(const std::shared_ptr<Attempt>& attempt) {
  const auto& context = attempt->exchange->context;
  const auto* route = attempt->route;
  auto remaining = std::chrono::duration_cast<std::chrono::milliseconds>(
      attempt->deadline - std::chrono::steady_clock::now());
  if (remaining.count() <= 0) {
    UpstreamResult expired;
    expired.code = 4;  // DEADLINE_EXCEEDED
    expired.message = "deadline exceeded before the call could be made";
    complete(attempt, std::move(expired));
    return;
  }
  UpstreamCall call;
  call.method = route->grpc_method;
  call.payload = attempt->payload;
  call.timeout = remaining;
  call.metadata = attempt->metadata;
  // Each attempt is a client span, child of the request's server span; the service continues it.
  tracing::Span span;
  span.trace_id = context.trace.trace_id;
  span.span_id = trace::random_id_hex(8);
  span.parent_span_id = context.trace.span_id;
  span.name = route->grpc_method;
  span.kind = tracing::SpanKind::kClient;
  span.start_unix_nanos = tracing::now_unix_nanos();
  trace::TraceContext callee = context.trace;
  callee.span_id = span.span_id;
  call.metadata.emplace_back(std::string(trace::kTraceparentHeader), callee.traceparent());

  auto* tracer = tracer_.enabled() ? &tracer_ : nullptr;
  upstreams_.call(route->upstream, std::move(call),
                  [this, attempt, tracer, span = std::move(span)](UpstreamResult result) mutable {
                    if (tracer) {
                      span.end_unix_nanos = tracing::now_unix_nanos();
                      span.attributes = {{"rpc.system", "grpc"},
                                         {"rpc.method", attempt->route->grpc_method},
                                         {"rpc.grpc.status_code", std::to_string(result.code)},
                                         {"attempt", std::to_string(attempt->retries + 1)}};
                      span.error = result.code != 0 && http_status_for_grpc(result.code) >= 500;
                      tracer->record(std::move(span));
                    }
                    attempt->exchange->post([this, attempt, result = std::move(result)]() mutable {
                      on_result(attempt, std::move(result));
                    });
                  });
}

void UpstreamFilter::on_result(const std::shared_ptr<Attempt>& attempt, UpstreamResult result) {
  constexpr int kUnavailable = 14;
  const auto* route = attempt->route;
  // Only calls that are safe to repeat, only when the service was not reached, within the budget
  // and never past the deadline.
  if (result.code == kUnavailable && route->http_method == "GET" && attempt->guard &&
      attempt->retries < attempt->guard->policy().max_retries) {
    auto ceiling = attempt->guard->policy().retry_backoff_ms << attempt->retries;
    auto backoff = std::chrono::milliseconds(jitter(ceiling));
    if (std::chrono::steady_clock::now() + backoff < attempt->deadline &&
        attempt->guard->take_retry()) {
      ++attempt->retries;
      guards_->count_retry(route->upstream);
      attempt->exchange->post_after(backoff, [this, attempt] { send(attempt); });
      return;
    }
  }
  complete(attempt, std::move(result));
}

void UpstreamFilter::complete(const std::shared_ptr<Attempt>& attempt, UpstreamResult result) {
  constexpr int kDeadlineExceeded = 4, kUnavailable = 14;
  attempt->exchange->context.upstream_failed =
      result.code == kUnavailable || result.code == kDeadlineExceeded;
  auto& exchange = attempt->exchange;
  const auto* route = attempt->route;
  auto& hooks = exchange->context.before_success_response;
  if (result.code == 0 && !hooks.empty()) {
    auto hook = std::move(hooks.front());
    hooks.erase(hooks.begin());
    hook([this, attempt, result = std::move(result)]() mutable {
      complete(attempt, std::move(result));
    });
    return;
  }
  if (result.code != 0) {
    int status = result.http_status ? result.http_status : http_status_for_grpc(result.code);
    std::string_view code =
        result.http_status ? result.error_code : error_code_for_grpc(result.code);
    exchange->respond_error(status, code,
                            result.message.empty() ? "upstream call failed" : result.message);
    return;
  }
  if (route->success_status == 204) {
    HttpResponse response;
    response.status = 204;
    exchange->respond(std::move(response));
    return;
  }
  std::string json;
  if (!response_to_json(*route, result.payload, json)) {
    exchange->context.log.error("unreadable upstream response", {{"rpc", route->rpc_name}});
    exchange->respond_error(502, "bad_gateway", "the service sent an unreadable response");
    return;
  }
  exchange->respond(json_response(route->success_status, std::move(json)));
}

int parse_request_timeout_ms(std::string_view text) {
  int64_t value = 0;
  size_t digits = 0;
  while (digits < text.size() && digits < 9 &&
         std::isdigit(static_cast<unsigned char>(text[digits]))) {
    value = value * 10 + (text[digits] - '0');
    ++digits;
  }
  if (digits == 0) return -1;
  auto unit = text.substr(digits);
  if (unit.empty() || unit == "ms") return value > 0 ? static_cast<int>(value) : -1;
  if (unit == "s" && value <= 86400) return value > 0 ? static_cast<int>(value * 1000) : -1;
  return -1;
}

int64_t UpstreamFilter::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

int UpstreamFilter::jitter(int ceiling_ms) {
  // Full jitter: uniform in [ceiling/2, ceiling], so that retries of many clients spread out.
  thread_local std::mt19937 random{std::random_device{}()};
  return std::uniform_int_distribution<int>(std::max(1, ceiling_ms / 2),
                                            std::max(1, ceiling_ms))(random);
}

}  // namespace trellis::gateway
