#include "trellis/gateway/filters/upstream_filter.h"

#include <strings.h>

#include "trellis/common/service_metadata.h"
#include "trellis/gateway/route_table.h"
#include "trellis/gateway/status_mapping.h"
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

  UpstreamCall call;
  call.method = route->grpc_method;
  call.payload = std::move(transcoded.payload);
  call.timeout =
      std::chrono::milliseconds(route->timeout_ms > 0 ? route->timeout_ms : default_timeout_ms_);
  // The call is a client span, child of the request's server span; the service continues it.
  tracing::Span span;
  span.trace_id = context.trace.trace_id;
  span.span_id = trace::random_hex(8);
  span.parent_span_id = context.trace.span_id;
  span.name = route->grpc_method;
  span.kind = tracing::SpanKind::kClient;
  span.start_unix_nanos = tracing::now_unix_nanos();
  trace::TraceContext callee = context.trace;
  callee.span_id = span.span_id;
  auto& metadata = call.metadata;
  metadata.emplace_back(std::string(trace::kRequestIdHeader), context.request_id);
  metadata.emplace_back(std::string(trace::kTraceparentHeader), callee.traceparent());
  if (!idempotency_key.empty()) {
    metadata.emplace_back(std::string(service::kIdempotencyKey), std::string(idempotency_key));
  }
  if (context.identity.authenticated()) {
    const auto& identity = context.identity;
    metadata.emplace_back(std::string(service::kUserIdKey), identity.user_id);
    std::string roles;
    for (const auto& role : identity.roles) roles += (roles.empty() ? "" : ",") + role;
    metadata.emplace_back(std::string(service::kRolesKey), roles);
    metadata.emplace_back(std::string(service::kTokenIdKey), identity.token_id);
    metadata.emplace_back(std::string(service::kSessionIdKey), identity.session_id);
    metadata.emplace_back(std::string(service::kTokenExpiresKey),
                          std::to_string(identity.expires_at));
  }

  auto* tracer = tracer_.enabled() ? &tracer_ : nullptr;
  upstreams_.call(
      route->upstream, std::move(call),
      [exchange, route, tracer, span = std::move(span)](UpstreamResult result) mutable {
        if (tracer) {
          span.end_unix_nanos = tracing::now_unix_nanos();
          span.attributes = {{"rpc.system", "grpc"},
                             {"rpc.method", route->grpc_method},
                             {"rpc.grpc.status_code", std::to_string(result.code)}};
          span.error = result.code != 0 && http_status_for_grpc(result.code) >= 500;
          tracer->record(std::move(span));
        }
        exchange->post([exchange, route, result = std::move(result)] {
          if (result.code != 0) {
            int status =
                result.http_status ? result.http_status : http_status_for_grpc(result.code);
            std::string_view code =
                result.http_status ? result.error_code : error_code_for_grpc(result.code);
            exchange->respond_error(
                status, code, result.message.empty() ? "upstream call failed" : result.message);
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
        });
      });
}

}  // namespace trellis::gateway
