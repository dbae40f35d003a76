// The request's server span: from the request read to the response ready, named after the route
// template, exported when tracing is on.
#pragma once

#include "trellis/common/tracing.h"
#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class TracingFilter final : public Filter {
 public:
  explicit TracingFilter(tracing::Tracer& tracer) : tracer_(tracer) {}
  std::string_view name() const override { return "tracing"; }
  void on_request(const ExchangePtr& exchange) override;
  void on_response(Exchange& exchange) override;

 private:
  tracing::Tracer& tracer_;
};

}  // namespace trellis::gateway
