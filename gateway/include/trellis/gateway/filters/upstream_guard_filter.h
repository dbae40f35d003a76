// Admission to an upstream: fail fast with 503 circuit_open while its breaker is open (one
// half-open probe at a time), and shed load with 503 overloaded beyond its in-flight bound,
// instead of queueing without bound. The breaker learns from each admitted request's outcome.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "trellis/common/metrics.h"
#include "trellis/gateway/exchange.h"
#include "trellis/gateway/upstream_guard.h"

namespace trellis::gateway {

// The guard of each upstream, with its metrics.
class UpstreamGuards {
 public:
  UpstreamGuards(const std::map<std::string, UpstreamPolicy>& policies,
                 metrics::Registry& registry);
  UpstreamGuard* find(const std::string& upstream);
  void count_rejection(const std::string& upstream, const std::string& reason);
  void count_retry(const std::string& upstream);
  void publish_state(const std::string& upstream);

 private:
  std::map<std::string, std::unique_ptr<UpstreamGuard>> guards_;
  metrics::Family<metrics::Counter>& rejections_;
  metrics::Family<metrics::Counter>& retries_;
  metrics::Family<metrics::Gauge>& circuit_;
};

class UpstreamGuardFilter final : public Filter {
 public:
  explicit UpstreamGuardFilter(std::shared_ptr<UpstreamGuards> guards)
      : guards_(std::move(guards)) {}
  std::string_view name() const override { return "upstream_guard"; }
  void on_request(const ExchangePtr& exchange) override;
  void on_response(Exchange& exchange) override;

 private:
  void admit(const ExchangePtr& exchange);  // once the revocation hold, if any, passed
  std::shared_ptr<UpstreamGuards> guards_;
};

}  // namespace trellis::gateway
