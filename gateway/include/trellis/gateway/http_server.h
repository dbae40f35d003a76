// The HTTP/1.1 server: accepts connections, reads requests within the configured limits and
// timeouts, runs each through the filter chain and writes the answer. Beast lives in
// http_server.cc only.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "trellis/gateway/filter_chain.h"

namespace boost::asio {
class io_context;
}

namespace trellis::gateway {

struct GatewayConfig;

// Where to listen and the limits of one listener (the public API or the admin port).
struct ListenerSettings {
  std::string address;
  int port = 0;  // 0: any free port (see HttpServer::port())
  size_t max_body_bytes = 1048576;
  size_t max_header_bytes = 16384;
  int idle_timeout_ms = 60000;
  int request_read_timeout_ms = 15000;
  int header_timeout_ms = 10000;
  int max_connections = 10000;
};

ListenerSettings public_listener(const GatewayConfig& config);

class HttpServer {
 public:
  // Accepts on `io`. Connections are spread round-robin over `connection_loops`; when it is empty
  // they live on `io` too. Each of these loops must be run by exactly one thread: a connection's
  // handlers are serialized by that, not by a strand.
  HttpServer(boost::asio::io_context& io, ListenerSettings settings, const FilterList& filters,
             std::vector<boost::asio::io_context*> connection_loops = {});
  ~HttpServer();
  // Binds and starts accepting; throws std::runtime_error when the address cannot be bound.
  void start();
  int port() const;
  // Stops accepting new connections; open connections finish their current request.
  void stop_accepting();
  // Shutdown: stops accepting, closes idle keep-alive connections, and makes every other
  // connection close after its current response.
  void drain();
  int open_connections() const;
  // Requests read but not yet answered.
  int in_flight() const;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace trellis::gateway
