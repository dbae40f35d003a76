// The HTTP/1.1 server: accepts connections, reads requests within the configured limits and
// timeouts, runs each through the filter chain and writes the answer. Beast lives in
// http_server.cc only.
#pragma once

#include <atomic>
#include <memory>

#include "trellis/gateway/filter_chain.h"

namespace boost::asio {
class io_context;
}

namespace trellis::gateway {

struct GatewayConfig;

class HttpServer {
 public:
  HttpServer(boost::asio::io_context& io, const GatewayConfig& config, const FilterList& filters);
  ~HttpServer();
  // Binds and starts accepting; throws std::runtime_error when the address cannot be bound.
  void start();
  int port() const;
  // Stops accepting new connections; open connections finish their current request.
  void stop_accepting();
  // Requests read but not yet answered.
  int in_flight() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace trellis::gateway
