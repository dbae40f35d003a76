// Asynchronous Redis client for the gateway: one pipelined connection (hiredis 0.14) driven by the
// gateway's boost::asio::io_context. Nothing here ever blocks an io_context thread.
//
// Boost stays out of this header on purpose (it is included widely and Asio is expensive to
// compile): the io_context is only forward-declared and the implementation sits behind a pimpl.
#pragma once

#include "trellis/common/metrics.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace trellis::gateway {

struct RedisOptions {
  std::string host = "127.0.0.1";  // IP address or host name (resolved asynchronously)
  int port = 6379;
  int connect_timeout_ms = 500;    // per attempt, including AUTH and the first PING
  int command_timeout_ms = 250;    // per command: the callback gets an error after this
  int reconnect_backoff_ms = 200;  // first retry delay, doubles up to 5 s
  std::string password;            // AUTH on connect when non-empty (never logged)
};

struct RedisReply {
  enum class Type { kNil, kString, kStatus, kInteger, kArray, kError };
  Type type = Type::kNil;
  std::string str;  // kString, kStatus and kError (binary-safe)
  long long integer = 0;
  std::vector<RedisReply> elements;  // kArray
};

// Transport outcome. ok=false means the command got no reply: "not connected", "timeout",
// "connection lost", "stopped", "unsupported command" or "empty command". A Redis error reply
// ("-ERR ...") is ok=true with reply.type == kError.
struct RedisResult {
  bool ok = false;
  std::string error;
  RedisReply reply;
};

// What a subscriber connection does on every (re)connect, after AUTH and PING: runs `setup` (each
// command after the previous one's reply; an argument equal to kClientIdPlaceholder is replaced by
// the connection's CLIENT ID), then SUBSCRIBEs to `channels`. An error reply drops the connection
// and it is retried with the usual backoff.
struct RedisSubscription {
  static constexpr const char* kClientIdPlaceholder = "$CLIENT_ID";
  std::vector<std::vector<std::string>> setup;
  std::vector<std::string> channels;
  // Each message: its channel and its payload (any reply type). Called on the client's strand, in
  // the order Redis sent them, never concurrently with each other or with on_subscribed.
  std::function<void(const std::string& channel, const RedisReply& payload)> on_message;
  // true once every channel's subscription is confirmed on a new connection; false when that
  // connection is lost. Messages in between belong to that one connection.
  std::function<void(bool subscribed)> on_subscribed;
};

class RedisClient {
 public:
  // The io_context must outlive the client's pending work: keep running it until callbacks of
  // commands issued before stop() have been delivered.
  static std::shared_ptr<RedisClient> create(boost::asio::io_context& io, RedisOptions options);
  // A connection that only receives pub/sub messages; command() refuses everything on it.
  static std::shared_ptr<RedisClient> create_subscriber(boost::asio::io_context& io,
                                                        RedisOptions options,
                                                        RedisSubscription subscription);
  ~RedisClient();  // calls stop()

  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Connects in the background and reconnects forever with backoff after any loss. Idempotent.
  void start();
  // Disconnects for good (a stopped client cannot be restarted); pending callbacks get ok=false
  // "stopped". Idempotent, safe from any thread, never blocks.
  void stop();
  // Drops the current connection, if any, and connects again (usual backoff): for a connection
  // that looks alive but is not useful any more. Safe from any thread.
  void reconnect();

  // Sends one command (binary-safe args). `done` is called exactly once, on an io_context thread
  // and never inline inside command(), with the reply or with ok=false. When not connected it fails
  // at once (commands are not queued). Concurrent commands are pipelined on the one connection.
  // Pub/sub, MONITOR, HELLO and CLIENT REPLY are refused: they break one-reply-per-command.
  // Thread-safe.
  void command(std::vector<std::string> args, std::function<void(RedisResult)> done);

  // True once the connection is up and AUTH/PING succeeded; thread-safe.
  // Times every command and counts failures (transport errors and -ERR replies) in `registry`
  // under the given client name. Call before start().
  void attach_metrics(metrics::Registry& registry, const std::string& client_name);
  bool connected() const;

  class Impl;

 private:
  explicit RedisClient(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
  metrics::Histogram* latency_ = nullptr;
  metrics::Counter* errors_ = nullptr;
};

}  // namespace trellis::gateway
