#include "trellis/gateway/filters/metrics_filter.h"

#include <string>

#include "trellis/gateway/route_table.h"

namespace trellis::gateway {

namespace {

// Methods outside the known set are folded into OTHER: they are client-controlled text.
constexpr std::string_view kMethods[] = {"GET",    "POST", "PUT",     "PATCH",
                                         "DELETE", "HEAD", "OPTIONS", "OTHER"};
constexpr int kOtherMethod = 7;

int method_index(std::string_view method) {
  for (int i = 0; i < kOtherMethod; ++i) {
    if (kMethods[i] == method) return i;
  }
  return kOtherMethod;
}

}  // namespace

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
  int status = exchange.response.status;
  // Outside 100..599 the connection sends 500 (and the key below has 10 bits for it).
  if (status < 100 || status > 599) status = 500;
  auto found = children(exchange.context.route, method_index(exchange.request.method), status);
  found.requests->inc();
  std::chrono::duration<double> elapsed = exchange.context.answered - exchange.context.started;
  found.latency->observe(elapsed.count());
}

MetricsFilter::Children MetricsFilter::children(const Route* route, int method, int status) {
  // Route addresses are stable for the process; the low 13 bits hold method and status.
  uint64_t key = (static_cast<uint64_t>(reinterpret_cast<uintptr_t>(route)) << 13) |
                 (static_cast<uint64_t>(method) << 10) | static_cast<uint64_t>(status);
  key |= uint64_t{1} << 63;  // never 0, even for the unmatched route and status 0
  size_t start = static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 54) % kSlots;
  for (size_t probe = 0; probe < kSlots; ++probe) {
    auto& slot = slots_[(start + probe) % kSlots];
    auto seen = slot.key.load(std::memory_order_acquire);
    if (seen == key) return slot.children;
    if (seen == 0) break;
  }
  std::string route_label = route ? route->path.text : "-";
  std::string method_label(kMethods[method]);
  Children resolved{&requests_.with({route_label, method_label, std::to_string(status)}),
                    &latency_.with({route_label, method_label})};
  std::lock_guard lock(insert_mutex_);
  if (used_slots_ >= kSlots / 2) return resolved;
  for (size_t probe = 0; probe < kSlots; ++probe) {
    auto& slot = slots_[(start + probe) % kSlots];
    auto seen = slot.key.load(std::memory_order_relaxed);
    if (seen == key) return resolved;  // another thread published it meanwhile
    if (seen == 0) {
      slot.children = resolved;
      slot.key.store(key, std::memory_order_release);
      ++used_slots_;
      return resolved;
    }
  }
  return resolved;
}

}  // namespace trellis::gateway
