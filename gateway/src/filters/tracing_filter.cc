#include "trellis/gateway/filters/tracing_filter.h"

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

void TracingFilter::on_request(const ExchangePtr& exchange) {
  if (tracer_.enabled()) exchange->context.started_unix_nanos = tracing::now_unix_nanos();
  exchange->next();
}

void TracingFilter::on_response(Exchange& exchange) {
  if (!tracer_.enabled()) return;
  const auto& context = exchange.context;
  tracing::Span span;
  span.trace_id = context.trace.trace_id;
  span.span_id = context.trace.span_id;
  span.parent_span_id = context.trace.parent_id;
  std::string route = context.route ? context.route->path.text : "-";
  span.name = exchange.request.method + " " + route;
  span.kind = tracing::SpanKind::kServer;
  span.start_unix_nanos = context.started_unix_nanos;
  span.end_unix_nanos = tracing::now_unix_nanos();
  span.attributes = {{"http.method", exchange.request.method},
                     {"http.route", route},
                     {"http.status_code", std::to_string(exchange.response.status)},
                     {"request_id", context.request_id},
                     {"user_id", context.identity.user_id}};
  span.error = exchange.response.status >= 500;
  tracer_.record(std::move(span));
}

}  // namespace trellis::gateway
