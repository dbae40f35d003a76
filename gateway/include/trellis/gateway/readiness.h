// What /readyz reports: the last result of each dependency probe, updated by the background
// prober, read by the local-endpoints filter without waiting.
#pragma once

#include <map>
#include <mutex>
#include <string>

namespace trellis::gateway {

class Readiness {
 public:
  void set(const std::string& check, bool ok, std::string detail = {});
  // A dependency needed to become ready, whose later loss only degrades service (the gateway
  // keeps answering what it can; pulling every replica out of a load balancer would turn a Redis
  // outage into a total one). After its first success, failures read "degraded: ..." but ok.
  void set_startup_requirement(const std::string& check, bool ok, std::string detail = {});
  void set_draining() {
    std::lock_guard lock(mutex_);
    draining_ = true;
  }
  // True when every registered check passed and the gateway is not shutting down.
  bool ready() const;
  // {"status": "ready"|"not_ready", "checks": {"name": {"ok": ..., "detail": ...}}}
  std::string to_json() const;

 private:
  struct Check {
    bool ok = false;
    std::string detail;
    bool ever_ok = false;
    bool degraded = false;
  };
  mutable std::mutex mutex_;
  std::map<std::string, Check> checks_;
  bool draining_ = false;
};

}  // namespace trellis::gateway
