#include "trellis/gateway/filters/request_id_filter.h"

namespace trellis::gateway {

void RequestIdFilter::on_request(const ExchangePtr& exchange) {
  auto& context = exchange->context;
  auto incoming = exchange->request.header("x-request-id");
  context.request_id =
      trace::is_well_formed_request_id(incoming) ? std::string(incoming) : trace::new_request_id();
  context.trace = trace::continue_or_start(exchange->request.header("traceparent"));
  context.log = log::RequestLog(context.request_id, context.trace.trace_id, context.trace.span_id);
  exchange->next();
}

void RequestIdFilter::on_response(Exchange& exchange) {
  set_header(exchange.response.headers, "X-Request-Id", exchange.context.request_id);
  set_header(exchange.response.headers, "traceparent", exchange.context.trace.traceparent());
}

}  // namespace trellis::gateway
