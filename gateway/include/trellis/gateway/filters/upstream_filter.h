// The terminal filter: transcodes the JSON request into the route's protobuf request, calls the
// service asynchronously with the route's deadline and the request's identity and trace
// metadata, and transcodes the reply (or maps the gRPC status to an HTTP error).
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "trellis/common/metrics.h"
#include "trellis/common/tracing.h"
#include "trellis/gateway/exchange.h"
#include "trellis/gateway/filters/upstream_guard_filter.h"
#include "trellis/gateway/upstream_guard.h"

namespace trellis::gateway {

class Upstreams;
struct UpstreamResult;

class UpstreamFilter final : public Filter {
 public:
  UpstreamFilter(Upstreams& upstreams, int default_timeout_ms, tracing::Tracer& tracer,
                 std::shared_ptr<UpstreamGuards> guards)
      : upstreams_(upstreams),
        default_timeout_ms_(default_timeout_ms),
        tracer_(tracer),
        guards_(std::move(guards)) {}
  std::string_view name() const override { return "upstream"; }
  void on_request(const ExchangePtr& exchange) override;

 private:
  struct Attempt {
    ExchangePtr exchange;
    const Route* route = nullptr;
    UpstreamGuard* guard = nullptr;
    std::string payload;
    std::vector<std::pair<std::string, std::string>> metadata;
    std::chrono::steady_clock::time_point deadline;
    int retries = 0;
  };
  void send(const std::shared_ptr<Attempt>& attempt);
  void on_result(const std::shared_ptr<Attempt>& attempt, UpstreamResult result);
  void complete(const std::shared_ptr<Attempt>& attempt, UpstreamResult result);
  static int64_t now_ms();
  static int jitter(int ceiling_ms);

  Upstreams& upstreams_;
  int default_timeout_ms_;
  tracing::Tracer& tracer_;
  std::shared_ptr<UpstreamGuards> guards_;
};

// "250", "250ms" or "2s" → milliseconds; -1 when malformed or zero.
int parse_request_timeout_ms(std::string_view text);

// True for "application/json" with optional parameters (e.g. "; charset=utf-8").
bool is_json_content_type(std::string_view content_type);
// 1..255 printable ASCII characters without spaces (it becomes gRPC metadata).
bool is_valid_idempotency_key(std::string_view key);

}  // namespace trellis::gateway
