// A minimal HTTP endpoint serving GET /metrics (Prometheus text format) for service processes,
// on its own port so that it is never exposed with the public API. One thread, one short-lived
// connection at a time: scrapes are rare and small.
#pragma once

#include <atomic>
#include <string>
#include <thread>

#include "trellis/common/metrics.h"

namespace trellis::metrics {

class MetricsServer {
 public:
  MetricsServer(std::string listen_address, const Registry& registry);  // "host:port"
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // Binds (throws std::runtime_error on failure) and serves on a background thread.
  void start();
  void stop();
  int port() const { return port_; }

 private:
  void serve();
  void answer(int client);

  std::string listen_address_;
  const Registry& registry_;
  int listener_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace trellis::metrics
