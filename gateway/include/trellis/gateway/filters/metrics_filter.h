// RED metrics of the public API: requests by route template, method and status, their latency,
// and the requests in flight. Unmatched paths count under route "-" so that scanners cannot
// create unbounded label values.
#pragma once

#include "trellis/common/metrics.h"
#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class MetricsFilter final : public Filter {
 public:
  explicit MetricsFilter(metrics::Registry& registry);
  std::string_view name() const override { return "metrics"; }
  void on_request(const ExchangePtr& exchange) override;
  void on_response(Exchange& exchange) override;

 private:
  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& latency_;
  metrics::Gauge& in_flight_;
};

}  // namespace trellis::gateway
