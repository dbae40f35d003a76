// Periodic work of the gateway on its io_context: fetching the JWKS from the users service and
// probing dependencies for /readyz. Everything is asynchronous; nothing blocks an I/O thread.
#pragma once

#include <memory>

#include "trellis/gateway/gateway_config.h"

namespace boost::asio {
class io_context;
}

namespace trellis::gateway {

class KeyCache;
class Readiness;
class RedisClient;
class Upstreams;

class BackgroundTasks {
 public:
  BackgroundTasks(boost::asio::io_context& io, const GatewayConfig& config, Upstreams& upstreams,
                  RedisClient& redis, KeyCache& keys, Readiness& readiness);
  ~BackgroundTasks();
  void start();
  void stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace trellis::gateway
