// Follows service event streams (Redis Streams, e.g. the orders outbox) and bumps the cache
// generation of the affected user's routes, so that changes made behind the gateway's back
// (a background confirmation) do not stay cached. Uses its own Redis connection: XREAD BLOCK
// would otherwise hold up the shared, pipelined one.
#pragma once

#include <memory>

#include "trellis/gateway/response_cache.h"

namespace boost::asio {
class io_context;
}

namespace trellis::gateway {

struct RedisOptions;

class StreamInvalidator {
 public:
  StreamInvalidator(boost::asio::io_context& io, const RedisOptions& redis,
                    std::vector<CacheInvalidationStream> streams);
  ~StreamInvalidator();
  void start();
  void stop();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace trellis::gateway
