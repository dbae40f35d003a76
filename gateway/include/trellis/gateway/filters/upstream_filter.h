// The terminal filter: transcodes the JSON request into the route's protobuf request, calls the
// service asynchronously with the route's deadline and the request's identity and trace
// metadata, and transcodes the reply (or maps the gRPC status to an HTTP error).
#pragma once

#include "trellis/common/tracing.h"
#include "trellis/gateway/exchange.h"

namespace trellis::gateway {

class Upstreams;

class UpstreamFilter final : public Filter {
 public:
  UpstreamFilter(Upstreams& upstreams, int default_timeout_ms, tracing::Tracer& tracer)
      : upstreams_(upstreams), default_timeout_ms_(default_timeout_ms), tracer_(tracer) {}
  std::string_view name() const override { return "upstream"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  Upstreams& upstreams_;
  int default_timeout_ms_;
  tracing::Tracer& tracer_;
};

// True for "application/json" with optional parameters (e.g. "; charset=utf-8").
bool is_json_content_type(std::string_view content_type);
// 1..255 printable ASCII characters without spaces (it becomes gRPC metadata).
bool is_valid_idempotency_key(std::string_view key);

}  // namespace trellis::gateway
