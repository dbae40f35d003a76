#include "trellis/gateway/readiness.h"

#include <nlohmann/json.hpp>

namespace trellis::gateway {

void Readiness::set(const std::string& check, bool ok, std::string detail) {
  std::lock_guard lock(mutex_);
  auto& entry = checks_[check];
  entry.ok = ok;
  entry.detail = std::move(detail);
  entry.degraded = false;
  entry.ever_ok = entry.ever_ok || ok;
}

void Readiness::set_startup_requirement(const std::string& check, bool ok, std::string detail) {
  std::lock_guard lock(mutex_);
  auto& entry = checks_[check];
  entry.ever_ok = entry.ever_ok || ok;
  entry.degraded = !ok && entry.ever_ok;
  entry.ok = ok || entry.degraded;
  entry.detail = entry.degraded ? "degraded: " + detail : std::move(detail);
}

bool Readiness::ready() const {
  std::lock_guard lock(mutex_);
  if (draining_ || checks_.empty()) return false;
  for (const auto& [name, check] : checks_) {
    if (!check.ok) return false;
  }
  return true;
}

std::string Readiness::to_json() const {
  bool all_ok = ready();
  std::lock_guard lock(mutex_);
  nlohmann::ordered_json body;
  body["status"] = all_ok ? "ready" : (draining_ ? "draining" : "not_ready");
  body["checks"] = nlohmann::ordered_json::object();
  for (const auto& [name, check] : checks_) {
    body["checks"][name] = {{"ok", check.ok}, {"detail", check.detail}};
    if (check.degraded) body["checks"][name]["degraded"] = true;
  }
  return body.dump();
}

}  // namespace trellis::gateway
