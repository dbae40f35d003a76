#include "trellis/gateway/redis_client.h"

// Boost 1.74's Asio with g++ 12 in C++20 needs <utility> before it (see shared/TOOLCHAIN.md).
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <exception>
#include <optional>
#include <string_view>

#include "trellis/common/log.h"

namespace trellis::gateway {
namespace {

namespace asio = boost::asio;
using Strand = asio::strand<asio::io_context::executor_type>;
using Clock = std::chrono::steady_clock;
using Milliseconds = std::chrono::milliseconds;

constexpr int kMaxBackoffMs = 5000;
constexpr unsigned kUnacknowledgedLimitMs = 10000;

enum Direction { kRead = 0, kWrite = 1 };

// hiredis calls us from C: an exception escaping into it would be undefined behaviour.
template <class Body>
void without_exceptions(const char* where, Body&& body) noexcept {
  try {
    body();
  } catch (const std::exception& e) {
    log::error("redis client internal error", {{"where", where}, {"error", e.what()}});
  } catch (...) {
    log::error("redis client internal error", {{"where", where}});
  }
}

RedisResult failure(const char* why) {
  RedisResult result;
  result.error = why;
  return result;
}

RedisReply convert_reply(const redisReply& in) {
  RedisReply out;
  switch (in.type) {
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      break;
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = in.integer;
      return out;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(in.elements);
      for (size_t i = 0; i < in.elements; ++i) {
        out.elements.push_back(convert_reply(*in.element[i]));  // hiredis caps nesting at 7
      }
      return out;
    default:
      return out;  // nil
  }
  if (in.str != nullptr) out.str.assign(in.str, in.len);
  return out;
}

bool equals_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// Commands after which Redis no longer sends exactly one reply per command (or switches to a
// protocol hiredis 0.14 cannot read). hiredis would then pair replies with the wrong callbacks.
bool breaks_reply_pairing(const std::vector<std::string>& args) {
  static constexpr std::string_view kRefused[] = {
      "subscribe",    "psubscribe", "ssubscribe", "unsubscribe", "punsubscribe",
      "sunsubscribe", "monitor",    "hello",      "sync",        "psync"};
  for (auto name : kRefused) {
    if (equals_ignoring_case(args[0], name)) return true;
  }
  return args.size() > 1 && equals_ignoring_case(args[0], "client") &&
         equals_ignoring_case(args[1], "reply");
}

}  // namespace

class RedisClient::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::io_context& io, RedisOptions options,
       std::optional<RedisSubscription> subscription = std::nullopt)
      : io_(io),
        strand_(asio::make_strand(io)),
        options_(std::move(options)),
        subscription_(std::move(subscription)),
        resolver_(strand_),
        connect_timer_(strand_),
        reconnect_timer_(strand_),
        initial_backoff_ms_(std::clamp(options_.reconnect_backoff_ms, 1, kMaxBackoffMs)),
        backoff_ms_(initial_backoff_ms_) {}

  // Reached with a live hiredis context only when the io_context stopped running before the
  // posted stop() could run; then no callback can be delivered on an io thread any more.
  ~Impl() {
    if (connection_ && !connection_->dead()) {
      tearing_down_ = true;
      redisAsyncFree(connection_->context);
    }
  }

  void start() {
    if (stop_requested_ || started_.exchange(true)) return;
    asio::post(strand_, [self = shared_from_this()] { self->connect(); });
  }

  void stop() {
    if (stop_requested_.exchange(true)) return;
    connected_ = false;
    asio::post(strand_, [self = shared_from_this()] { self->shutdown(); });
  }

  bool connected() const { return connected_; }

  void reconnect() {
    if (stop_requested_) return;
    asio::post(strand_, [self = shared_from_this()] {
      if (self->stopped_ || !self->connection_ || self->connection_->dead()) return;
      self->connection_->failure = "reconnect requested";
      self->drop(self->connection_);
    });
  }

  void command(std::vector<std::string> args, std::function<void(RedisResult)> done) {
    if (!done) done = [](RedisResult) {};
    const char* refusal = refusal_for(args);
    if (refusal != nullptr) {
      asio::post(io_, [done = std::move(done), refusal] { done(failure(refusal)); });
      return;
    }
    // The timeout counts from this call, not from when the strand gets to the command.
    auto deadline = Clock::now() + Milliseconds(options_.command_timeout_ms);
    asio::post(strand_,
               [self = shared_from_this(), args = std::move(args), done = std::move(done),
                deadline]() mutable { self->send(std::move(args), std::move(done), deadline); });
  }

 private:
  // Why a command is failed at once instead of being sent, or null.
  const char* refusal_for(const std::vector<std::string>& args) const {
    if (stop_requested_) return "stopped";
    if (args.empty()) return "empty command";
    if (subscription_) return "subscriber connection";
    if (breaks_reply_pairing(args)) return "unsupported command";
    if (!connected_) return "not connected";  // fail fast: callers have fallbacks, no queueing
    return nullptr;
  }

  // hiredis' view of one TCP connection attempt, adapted to Asio: hiredis asks for read/write
  // interest through its ev hooks, and we wait for readiness on a stream_descriptor wrapping its
  // socket. All fields are touched on the strand only.
  struct Connection : std::enable_shared_from_this<Connection> {
    Connection(Impl* owner, redisAsyncContext* context, const Strand& strand)
        : owner(owner), context(context), descriptor(strand, context->c.fd) {}
    bool dead() const { return context == nullptr; }

    Impl* owner;
    redisAsyncContext* context;  // null once hiredis announced cleanup: it is being freed
    asio::posix::stream_descriptor descriptor;
    bool want[2] = {false, false};          // hiredis' current interest
    bool wait_pending[2] = {false, false};  // an async_wait is queued
    bool update_posted = false;
    bool ready = false;     // AUTH and PING succeeded (subscriber: and every channel subscribed)
    std::string client_id;  // subscriber: CLIENT ID, for the setup commands
    size_t confirmed = 0;   // subscriber: channels whose subscription Redis confirmed
    std::string failure;    // why we dropped it ourselves, for the log
  };

  // One command waiting for its reply; touched on the strand only.
  struct PendingCommand {
    PendingCommand(const Strand& strand, std::function<void(RedisResult)> d)
        : timer(strand), done(std::move(d)) {}
    asio::steady_timer timer;
    std::function<void(RedisResult)> done;
    bool finished = false;  // done has been posted; a late reply or timeout is ignored
  };

  // hiredis' privdata for each command: owned by hiredis until it calls on_reply exactly once
  // (with the reply, or with null when the context is freed).
  struct ReplyTicket {
    enum class Kind { kCommand, kAuth, kPing, kClientId, kSetup };
    Kind kind;
    std::shared_ptr<PendingCommand> pending;  // kCommand only
    size_t step = 0;                          // kSetup: index into the subscription's setup
  };

  // ---- Connection lifecycle (strand) ----

  void connect() {
    if (stopped_ || (connection_ && !connection_->dead())) return;
    boost::system::error_code not_an_address;
    auto address = asio::ip::make_address(options_.host, not_an_address);
    if (!not_an_address) {
      open(address.to_string());
      return;
    }
    // hiredis would resolve names with a blocking getaddrinfo; Asio's resolver does it off the
    // io threads.
    resolver_.async_resolve(
        options_.host, std::to_string(options_.port),
        [self = shared_from_this()](const boost::system::error_code& error,
                                    const asio::ip::tcp::resolver::results_type& results) {
          if (self->stopped_) return;
          if (error || results.empty()) {
            log::warn("redis host resolution failed",
                      {{"host", self->options_.host}, {"error", error.message()}});
            self->schedule_reconnect();
            return;
          }
          // Prefer IPv4: "localhost" often lists ::1 first while Redis binds 127.0.0.1 only.
          auto chosen = results.begin();
          for (auto it = results.begin(); it != results.end(); ++it) {
            if (it->endpoint().address().is_v4()) {
              chosen = it;
              break;
            }
          }
          self->open(chosen->endpoint().address().to_string());
        });
  }

  void open(const std::string& ip) {
    redisAsyncContext* context = redisAsyncConnect(ip.c_str(), options_.port);
    if (context == nullptr || context->err != 0) {
      log_connect_failure(context != nullptr ? context->errstr : "out of memory");
      if (context != nullptr) redisAsyncFree(context);
      schedule_reconnect();
      return;
    }
    std::shared_ptr<Connection> connection;
    try {
      connection = std::make_shared<Connection>(this, context, strand_);
    } catch (const std::exception& e) {
      log_connect_failure(e.what());
      redisAsyncFree(context);
      schedule_reconnect();
      return;
    }
    // A vanished peer must not hold the gateway on a dead connection: keepalive probes an idle
    // one, and the user timeout aborts one whose writes stay unacknowledged.
    redisEnableKeepAlive(&context->c);
    ::setsockopt(context->c.fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &kUnacknowledgedLimitMs,
                 sizeof kUnacknowledgedLimitMs);
    context->data = this;
    context->ev.data = connection.get();
    context->ev.addRead = &hook_add_read;
    context->ev.delRead = &hook_del_read;
    context->ev.addWrite = &hook_add_write;
    context->ev.delWrite = &hook_del_write;
    context->ev.cleanup = &hook_cleanup;
    connection_ = connection;

    connect_timer_.expires_after(Milliseconds(options_.connect_timeout_ms));
    connect_timer_.async_wait(
        [self = shared_from_this(), connection](const boost::system::error_code& error) {
          if (error || connection->dead() || connection->ready) return;
          connection->failure = "connect timeout";
          self->drop(connection);
        });
    // Pipelined: the first reply also tells us the TCP connect completed.
    if (!options_.password.empty()) {
      send_internal(*connection, ReplyTicket::Kind::kAuth, {"AUTH", options_.password});
    }
    send_internal(*connection, ReplyTicket::Kind::kPing, {"PING"});
  }

  void send_internal(Connection& connection, ReplyTicket::Kind kind,
                     const std::vector<std::string_view>& args, size_t step = 0,
                     redisCallbackFn* callback = &on_reply) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (auto arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto* ticket = callback == &on_reply ? new ReplyTicket{kind, nullptr, step} : nullptr;
    if (redisAsyncCommandArgv(connection.context, callback, ticket, static_cast<int>(argv.size()),
                              argv.data(), lengths.data()) != REDIS_OK) {
      delete ticket;  // not registered; the connect timeout will drop this attempt
    }
  }

  void fail_handshake(Connection& connection, std::string why) {
    connection.failure = std::move(why);
    // hiredis must not be freed from inside its own reply callback.
    asio::post(strand_,
               [self = shared_from_this(), c = connection.shared_from_this()] { self->drop(c); });
  }

  void on_handshake_reply(Connection& connection, const ReplyTicket& ticket,
                          const redisReply* reply) {
    if (reply == nullptr || connection.dead() || !connection.failure.empty()) return;
    using Kind = ReplyTicket::Kind;
    if (reply->type == REDIS_REPLY_ERROR) {
      static constexpr const char* kLabels[] = {
          "", "AUTH failed: ", "PING failed: ", "CLIENT ID failed: ", "setup failed: "};
      // The server's text never contains the password.
      fail_handshake(connection,
                     kLabels[static_cast<int>(ticket.kind)] + std::string(reply->str, reply->len));
      return;
    }
    if (ticket.kind == Kind::kAuth) return;
    if (!subscription_) {
      mark_ready(connection, "redis connected");
      return;
    }
    // Subscriber: CLIENT ID, then the setup commands one by one, then SUBSCRIBE.
    if (ticket.kind == Kind::kPing) {
      send_internal(connection, Kind::kClientId, {"CLIENT", "ID"});
      return;
    }
    size_t next = 0;
    if (ticket.kind == Kind::kClientId) {
      connection.client_id = std::to_string(reply->integer);
    } else {
      next = ticket.step + 1;
    }
    if (next < subscription_->setup.size()) {
      std::vector<std::string_view> args;
      for (const auto& arg : subscription_->setup[next]) {
        args.push_back(arg == RedisSubscription::kClientIdPlaceholder
                           ? std::string_view(connection.client_id)
                           : std::string_view(arg));
      }
      send_internal(connection, Kind::kSetup, args, next);
      return;
    }
    std::vector<std::string_view> args = {"SUBSCRIBE"};
    for (const auto& channel : subscription_->channels) args.push_back(channel);
    send_internal(connection, Kind::kSetup, args, 0, &on_subscription_reply);
  }

  void mark_ready(Connection& connection, const char* message) {
    connection.ready = true;
    connect_timer_.cancel();
    backoff_ms_ = initial_backoff_ms_;
    if (!stop_requested_) connected_ = true;
    log::info(message, {{"host", options_.host}, {"port", options_.port}});
  }

  // Every reply on a subscribed connection: confirmations and messages (null when freed).
  static void on_subscription_reply(redisAsyncContext* context, void* reply_data, void*) {
    auto* self = static_cast<Impl*>(context->data);
    const auto* reply = static_cast<const redisReply*>(reply_data);
    if (self->tearing_down_ || reply == nullptr) return;
    without_exceptions("on_subscription_reply", [&] {
      auto& connection = *static_cast<Connection*>(context->ev.data);
      if (connection.dead() || !connection.failure.empty()) return;
      if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 ||
          reply->element[0]->type != REDIS_REPLY_STRING) {
        return;
      }
      std::string_view kind(reply->element[0]->str, reply->element[0]->len);
      const auto& subscription = *self->subscription_;
      if (kind == "subscribe") {
        if (++connection.confirmed != subscription.channels.size()) return;
        self->mark_ready(connection, "redis subscribed");
        if (subscription.on_subscribed) subscription.on_subscribed(true);
      } else if (kind == "message" && connection.ready && subscription.on_message) {
        subscription.on_message(std::string(reply->element[1]->str, reply->element[1]->len),
                                convert_reply(*reply->element[2]));
      }
    });
  }

  // Frees the context; hiredis fails its pending callbacks and then calls hook_cleanup. Never call
  // from inside a hiredis callback.
  void drop(const std::shared_ptr<Connection>& connection) {
    if (!connection->dead()) redisAsyncFree(connection->context);
  }

  void on_cleanup(Connection& connection) {
    if (connection.dead()) return;  // hiredis 0.14 may announce cleanup twice
    std::string reason = connection.failure;
    if (reason.empty()) {
      reason = connection.context->c.err != 0 ? connection.context->c.errstr : "closed";
    }
    const bool was_ready = connection.ready;
    connection.context = nullptr;
    connection.want[kRead] = connection.want[kWrite] = false;
    // hiredis closes its own socket right after this; Asio must only forget it (and cancel waits).
    connection.descriptor.release();
    if (tearing_down_ || connection_.get() != &connection) return;
    connected_ = false;
    connect_timer_.cancel();
    if (was_ready && subscription_ && subscription_->on_subscribed) {
      subscription_->on_subscribed(false);
    }
    if (stopped_) return;
    if (was_ready) {
      log::warn("redis disconnected",
                {{"host", options_.host}, {"port", options_.port}, {"error", reason}});
    } else {
      log_connect_failure(reason);
    }
    schedule_reconnect();
  }

  void log_connect_failure(const std::string& reason) {
    log::warn("redis connect failed", {{"host", options_.host},
                                       {"port", options_.port},
                                       {"error", reason},
                                       {"retry_in_ms", backoff_ms_}});
  }

  void schedule_reconnect() {
    if (stopped_) return;
    reconnect_timer_.expires_after(Milliseconds(backoff_ms_));
    backoff_ms_ = std::min(backoff_ms_ * 2, kMaxBackoffMs);
    reconnect_timer_.async_wait(
        [self = shared_from_this()](const boost::system::error_code& error) {
          if (!error) self->connect();
        });
  }

  void shutdown() {
    if (stopped_) return;
    stopped_ = true;
    connected_ = false;
    resolver_.cancel();
    connect_timer_.cancel();
    reconnect_timer_.cancel();
    if (connection_ && !connection_->dead()) {
      auto connection = connection_;  // outlives the hooks hiredis calls while freeing
      redisAsyncFree(connection->context);
    }
    log::info("redis client stopped", {{"host", options_.host}, {"port", options_.port}});
  }

  // ---- Commands (strand) ----

  void send(std::vector<std::string> args, std::function<void(RedisResult)> done,
            Clock::time_point deadline) {
    auto pending = std::make_shared<PendingCommand>(strand_, std::move(done));
    if (stopped_) return finish(*pending, failure("stopped"));
    if (!connection_ || connection_->dead() || !connection_->ready) {
      return finish(*pending, failure("not connected"));
    }
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    argv.reserve(args.size());
    lengths.reserve(args.size());
    for (const auto& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    auto ticket = std::make_unique<ReplyTicket>(ReplyTicket{ReplyTicket::Kind::kCommand, pending});
    if (redisAsyncCommandArgv(connection_->context, &on_reply, ticket.get(),
                              static_cast<int>(argv.size()), argv.data(),
                              lengths.data()) != REDIS_OK) {
      return finish(*pending, failure("connection lost"));
    }
    ticket.release();  // hiredis owns it until on_reply
    pending->timer.expires_at(deadline);
    pending->timer.async_wait(
        [self = shared_from_this(), pending](const boost::system::error_code& error) {
          if (!error) self->finish(*pending, failure("timeout"));
        });
  }

  // Delivers the outcome once, off the strand so slow callers do not hold up the connection.
  void finish(PendingCommand& pending, RedisResult result) {
    if (pending.finished) return;
    pending.finished = true;
    pending.timer.cancel();
    asio::post(io_, [done = std::move(pending.done), result = std::move(result)]() mutable {
      done(std::move(result));
    });
  }

  static void on_reply(redisAsyncContext* context, void* reply_data, void* privdata) {
    std::unique_ptr<ReplyTicket> ticket(static_cast<ReplyTicket*>(privdata));
    auto* self = static_cast<Impl*>(context->data);
    const auto* reply = static_cast<const redisReply*>(reply_data);
    if (self->tearing_down_) return;
    without_exceptions("on_reply", [&] {
      if (ticket->kind != ReplyTicket::Kind::kCommand) {
        self->on_handshake_reply(*static_cast<Connection*>(context->ev.data), *ticket, reply);
        return;
      }
      PendingCommand& pending = *ticket->pending;
      if (pending.finished) return;  // late reply after a timeout
      if (reply == nullptr) {
        self->finish(pending, failure(self->stopped_ ? "stopped" : "connection lost"));
        return;
      }
      RedisResult result;
      result.ok = true;
      result.reply = convert_reply(*reply);
      self->finish(pending, std::move(result));
    });
  }

  // ---- Asio adapter for hiredis' event hooks (all called on the strand) ----

  static Connection& connection_of(void* data) { return *static_cast<Connection*>(data); }
  static void hook_add_read(void* data) { want_io(connection_of(data), kRead); }
  static void hook_add_write(void* data) { want_io(connection_of(data), kWrite); }
  static void hook_del_read(void* data) { connection_of(data).want[kRead] = false; }
  static void hook_del_write(void* data) { connection_of(data).want[kWrite] = false; }
  static void hook_cleanup(void* data) {
    without_exceptions("cleanup", [&] {
      auto& connection = connection_of(data);
      connection.owner->on_cleanup(connection);
    });
  }

  // hiredis calls addWrite once per command: coalesce into one update per strand turn.
  static void want_io(Connection& connection, Direction direction) {
    connection.want[direction] = true;
    if (connection.update_posted || connection.dead()) return;
    without_exceptions("want_io", [&] {
      auto self = connection.owner->weak_from_this().lock();
      if (!self || self->tearing_down_) return;
      connection.update_posted = true;
      asio::post(self->strand_, [self, c = connection.shared_from_this()] {
        c->update_posted = false;
        for (Direction d : {kRead, kWrite}) {
          if (!c->dead() && c->want[d]) self->arm(c, d);
        }
      });
    });
  }

  // Asio's epoll reactor is edge-triggered, but queuing an async_wait re-arms the descriptor
  // (EPOLL_CTL_MOD), so readiness that is already there, such as bytes hiredis left unread (it
  // reads 16 KiB per call), completes the wait at once: no wake-up is lost between two waits.
  void arm(const std::shared_ptr<Connection>& connection, Direction direction) {
    if (!connection->wait_pending[direction]) {
      connection->wait_pending[direction] = true;
      connection->descriptor.async_wait(
          direction == kRead ? asio::posix::descriptor_base::wait_read
                             : asio::posix::descriptor_base::wait_write,
          [self = shared_from_this(), connection, direction](const boost::system::error_code& e) {
            connection->wait_pending[direction] = false;
            if (e != asio::error::operation_aborted) self->on_ready(*connection, direction);
          });
    }
  }

  // hiredis re-requests interest through the hooks; it may free the context in here.
  void on_ready(Connection& connection, Direction direction) {
    if (connection.dead() || !connection.want[direction]) return;
    if (direction == kRead) {
      redisAsyncHandleRead(connection.context);
    } else {
      redisAsyncHandleWrite(connection.context);
    }
  }

  asio::io_context& io_;
  Strand strand_;
  const RedisOptions options_;
  const std::optional<RedisSubscription> subscription_;  // set: a subscriber connection
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer connect_timer_;
  asio::steady_timer reconnect_timer_;
  std::shared_ptr<Connection> connection_;  // the current attempt; replaced only once dead
  const int initial_backoff_ms_;
  int backoff_ms_;
  bool stopped_ = false;       // strand: shutdown() ran
  bool tearing_down_ = false;  // ~Impl is freeing hiredis: deliver nothing
  std::atomic<bool> started_{false};
  std::atomic<bool> stop_requested_{false};
  std::atomic<bool> connected_{false};
};

std::shared_ptr<RedisClient> RedisClient::create(boost::asio::io_context& io,
                                                 RedisOptions options) {
  return std::shared_ptr<RedisClient>(
      new RedisClient(std::make_shared<Impl>(io, std::move(options))));
}

std::shared_ptr<RedisClient> RedisClient::create_subscriber(boost::asio::io_context& io,
                                                            RedisOptions options,
                                                            RedisSubscription subscription) {
  return std::shared_ptr<RedisClient>(
      new RedisClient(std::make_shared<Impl>(io, std::move(options), std::move(subscription))));
}

RedisClient::RedisClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

RedisClient::~RedisClient() {
  impl_->stop();
}

void RedisClient::start() {
  impl_->start();
}
void RedisClient::stop() {
  impl_->stop();
}
void RedisClient::reconnect() {
  impl_->reconnect();
}
bool RedisClient::connected() const {
  return impl_->connected();
}

void RedisClient::attach_metrics(metrics::Registry& registry, const std::string& client_name) {
  latency_ = &registry
                  .histogram("redis_command_duration_seconds",
                             "Redis command latency as seen by the gateway", {"client"})
                  .with({client_name});
  errors_ = &registry
                 .counter("redis_errors_total",
                          "Failed Redis commands (transport errors and error replies)", {"client"})
                 .with({client_name});
}

void RedisClient::command(std::vector<std::string> args, std::function<void(RedisResult)> done) {
  if (!latency_) {
    impl_->command(std::move(args), std::move(done));
    return;
  }
  auto started = std::chrono::steady_clock::now();
  impl_->command(std::move(args), [this, started, done = std::move(done)](RedisResult result) {
    std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started;
    latency_->observe(elapsed.count());
    if (!result.ok || result.reply.type == RedisReply::Type::kError) errors_->inc();
    done(std::move(result));
  });
}

}  // namespace trellis::gateway
