// The JWT verification keys currently trusted, swapped atomically when a refresh fetches a new
// JWKS. Readers on I/O threads never wait for a refresh.
#pragma once

#include <memory>
#include <mutex>

#include "trellis/common/jwt.h"

namespace trellis::gateway {

class KeyCache {
 public:
  // Null until the first successful fetch: requests needing auth then get 503, not 401.
  std::shared_ptr<const jwt::KeySet> keys() const {
    std::lock_guard lock(mutex_);
    return keys_;
  }
  void update(jwt::KeySet keys) {
    auto fresh = std::make_shared<const jwt::KeySet>(std::move(keys));
    std::lock_guard lock(mutex_);
    keys_ = std::move(fresh);
  }

 private:
  mutable std::mutex mutex_;  // held only to copy a pointer
  std::shared_ptr<const jwt::KeySet> keys_;
};

}  // namespace trellis::gateway
