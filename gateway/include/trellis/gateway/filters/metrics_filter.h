// RED metrics of the public API: requests by route template, method and status, their latency,
// and the requests in flight. Unmatched paths count under route "-" so that scanners cannot
// create unbounded label values.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

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
  struct Children {
    metrics::Counter* requests = nullptr;
    metrics::Histogram* latency = nullptr;
  };
  Children children(const Route* route, int method, int status);

  metrics::Family<metrics::Counter>& requests_;
  metrics::Family<metrics::Histogram>& latency_;
  metrics::Gauge& in_flight_;

  // The label children of each (route, method, status) seen, found without a lock: resolving them
  // through Family::with() builds the label strings and takes the family's lock, on every request.
  // Open addressing; a slot is published by storing its key last. When the table is half full,
  // further combinations are resolved through with() each time.
  struct Slot {
    std::atomic<uint64_t> key{0};  // 0: free
    Children children;
  };
  static constexpr size_t kSlots = 1024;
  std::array<Slot, kSlots> slots_;
  size_t used_slots_ = 0;  // under insert_mutex_
  std::mutex insert_mutex_;
};

}  // namespace trellis::gateway
