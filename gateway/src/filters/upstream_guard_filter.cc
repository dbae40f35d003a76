#include "trellis/gateway/filters/upstream_guard_filter.h"

#include <chrono>

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

UpstreamGuards::UpstreamGuards(const std::map<std::string, UpstreamPolicy>& policies,
                               metrics::Registry& registry)
    : rejections_(registry.counter("gateway_upstream_rejections_total",
                                   "Requests refused before reaching an upstream",
                                   {"upstream", "reason"})),
      retries_(registry.counter("gateway_upstream_retries_total", "Retried upstream calls",
                                {"upstream"})),
      circuit_(registry.gauge("gateway_circuit_state",
                              "Circuit breaker state: 0 closed, 1 half-open, 2 open",
                              {"upstream"})) {
  for (const auto& [name, policy] : policies) {
    guards_.emplace(name, std::make_unique<UpstreamGuard>(policy));
    circuit_.with({name}).set(0);
  }
}

UpstreamGuard* UpstreamGuards::find(const std::string& upstream) {
  auto it = guards_.find(upstream);
  return it == guards_.end() ? nullptr : it->second.get();
}

void UpstreamGuards::count_rejection(const std::string& upstream, const std::string& reason) {
  rejections_.with({upstream, reason}).inc();
  publish_state(upstream);
}

void UpstreamGuards::count_retry(const std::string& upstream) {
  retries_.with({upstream}).inc();
}

void UpstreamGuards::publish_state(const std::string& upstream) {
  if (auto* guard = find(upstream)) {
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
                   .count();
    circuit_.with({upstream}).set(static_cast<int64_t>(guard->state(now)));
  }
}

namespace {
int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}
}  // namespace

void UpstreamGuardFilter::on_request(const ExchangePtr& exchange) {
  // Admission (in-flight slot, half-open probe) only for requests that may reach the service.
  exchange->after_hold([this, exchange] { admit(exchange); });
}

void UpstreamGuardFilter::admit(const ExchangePtr& exchange) {
  const auto* route = exchange->context.route;
  auto* guard = route ? guards_->find(route->upstream) : nullptr;
  if (!guard) {
    exchange->next();
    return;
  }
  int64_t retry_after_ms = 0;
  auto admission = guard->admit(steady_ms(), retry_after_ms);
  if (admission != UpstreamGuard::Admission::kAdmitted) {
    bool open = admission == UpstreamGuard::Admission::kCircuitOpen;
    guards_->count_rejection(route->upstream, open ? "circuit_open" : "overloaded");
    auto response = json_error(503, open ? "circuit_open" : "overloaded",
                               open ? "the " + route->upstream + " service is failing; retry later"
                                    : "too many requests in flight; retry later",
                               exchange->context.request_id);
    response.headers.emplace_back("Retry-After", std::to_string((retry_after_ms + 999) / 1000));
    exchange->respond(std::move(response));
    return;
  }
  exchange->context.upstream_guard = guard;
  exchange->next();
}

void UpstreamGuardFilter::on_response(Exchange& exchange) {
  auto* guard = exchange.context.upstream_guard;
  if (!guard) return;
  exchange.context.upstream_guard = nullptr;
  guard->finish(exchange.context.upstream_failed, steady_ms());
  guards_->publish_state(exchange.context.route->upstream);
}

}  // namespace trellis::gateway
