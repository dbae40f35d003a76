// gRPC channels to the services, called generically by method path with serialized messages.
// gRPC headers stay in upstreams.cc.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "trellis/common/metrics.h"

namespace trellis::gateway {

struct UpstreamCall {
  std::string method;  // "/trellis.users.v1.UserService/GetMe"
  std::string payload;
  std::vector<std::pair<std::string, std::string>> metadata;
  std::chrono::milliseconds timeout{5000};
};

struct UpstreamResult {
  int code = 0;  // grpc::StatusCode
  std::string message;
  std::string payload;
  // From the service's trailing metadata (service_metadata.h); 0 / empty when not set.
  int http_status = 0;
  std::string error_code;
};

class Upstreams {
 public:
  // name → "host:port"
  // Calls are timed in `registry` (grpc_client_handling_seconds by upstream, method and code).
  Upstreams(const std::map<std::string, std::string>& targets, metrics::Registry& registry);
  ~Upstreams();
  Upstreams(const Upstreams&) = delete;
  Upstreams& operator=(const Upstreams&) = delete;

  bool has(const std::string& name) const;
  std::vector<std::string> names() const;
  // Never blocks. `done` runs exactly once, on a gRPC thread (post back to your own executor) or,
  // for an unknown upstream or after shutdown() began, at once with UNAVAILABLE.
  void call(const std::string& upstream, UpstreamCall call,
            std::function<void(UpstreamResult)> done);

  // Cancels the calls still outstanding and waits (at most `wait`) until their `done` callbacks
  // have returned; later calls complete at once with UNAVAILABLE. Call it at shutdown while
  // everything the callbacks touch still exists: gRPC would otherwise run them on its own threads
  // after those objects are gone. Returns the number of calls still outstanding (0 normally).
  size_t shutdown(std::chrono::milliseconds wait = std::chrono::milliseconds(2000));
  size_t outstanding() const;

 private:
  struct Channel;
  struct Outstanding;
  std::map<std::string, std::unique_ptr<Channel>> channels_;
  metrics::Family<metrics::Histogram>& latency_;
  std::shared_ptr<Outstanding> outstanding_;
};

}  // namespace trellis::gateway
