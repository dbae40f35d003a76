#include "trellis/gateway/filters/metrics_filter.h"

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

MetricsFilter::MetricsFilter(metrics::Registry& registry)
    : requests_(registry.counter("http_requests_total",
                                 "Requests answered, by route template, method and status",
                                 {"route", "method", "status"})),
      latency_(registry.histogram("http_request_duration_seconds",
                                  "Time from request read to response ready", {"route", "method"})),
      in_flight_(registry.gauge("http_requests_in_flight", "Requests being handled").with({})) {}

void MetricsFilter::on_request(const ExchangePtr& exchange) {
  in_flight_.add(1);
  exchange->next();
}

void MetricsFilter::on_response(Exchange& exchange) {
  in_flight_.add(-1);
  const auto* route = exchange.context.route;
  std::string template_text = route ? route->path.text : "-";
  // Methods outside the known set are folded too: they are client-controlled text.
  const auto& method = exchange.request.method;
  bool known = method == "GET" || method == "POST" || method == "PUT" || method == "PATCH" ||
               method == "DELETE" || method == "HEAD" || method == "OPTIONS";
  std::string method_label = known ? method : "OTHER";
  requests_.with({template_text, method_label, std::to_string(exchange.response.status)}).inc();
  std::chrono::duration<double> elapsed =
      std::chrono::steady_clock::now() - exchange.context.started;
  latency_.with({template_text, method_label}).observe(elapsed.count());
}

}  // namespace trellis::gateway
