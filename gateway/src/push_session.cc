#include <utility>  // before Asio: see ../shared/TOOLCHAIN.md

#include "trellis/gateway/push_session.h"

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <mutex>
#include <optional>

#include "taken_over_connection.h"
#include "trellis/common/log.h"
#include "trellis/gateway/redis_client.h"
#include "trellis/gateway/token_verifier.h"

namespace trellis::gateway {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using SteadyClock = std::chrono::steady_clock;

namespace {

int64_t system_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// What both transports share: the bounded queue, replay and the seam, token expiry and
// revocation re-checks, one housekeeping timer, and the bookkeeping in the hub.
class SessionBase : public StreamSession, public std::enable_shared_from_this<SessionBase> {
 public:
  SessionBase(PushHub& hub, PushSessionParams params)
      : hub_(hub),
        params_(std::move(params)),
        admitted_(hub.admission_counter()),
        queue_(static_cast<size_t>(hub.settings().max_queued_messages),
               hub.settings().max_queued_bytes) {}

  // Not through the hub: sessions may outlive it while the io_context destroys their handlers.
  ~SessionBase() override { --*admitted_; }

  void deliver(PushMessagePtr message) override {
    std::lock_guard lock(mutex_);
    if (end_requested_) return;
    if (!queue_.push(std::move(message))) {
      // Over the cap: the connection ends; nothing more is queued for it.
      end_requested_ = true;
      queue_.clear();
      if (attached_) {
        asio::post(executor_,
                   [self = shared_from_this()] { self->finish(PushEnd::kSlowConsumer); });
      } else {
        pending_end_ = PushEnd::kSlowConsumer;
      }
      return;
    }
    if (attached_) asio::post(executor_, [self = shared_from_this()] { self->pump(); });
  }

  void end(PushEnd reason) override {
    std::lock_guard lock(mutex_);
    if (attached_) {
      asio::post(executor_, [self = shared_from_this(), reason] { self->finish(reason); });
    } else if (!pending_end_) {
      pending_end_ = reason;
    }
  }

 protected:
  // Transport hooks, all on the connection's loop (one thread).
  virtual void write_message(const PushMessage& message) = 0;
  virtual void write_heartbeat() {}
  virtual void close_transport(PushEnd reason) = 0;

  // Binds the executor; returns false when the session was ended before it started.
  bool on_attach(const asio::any_io_executor& executor) {
    std::optional<PushEnd> ended;
    {
      std::lock_guard lock(mutex_);
      executor_ = executor;
      attached_ = true;
      ended = pending_end_;
    }
    timer_.emplace(executor_);
    hub_.stream_opened(params_.transport);
    opened_ = true;
    if (ended) {
      finish(*ended);
      return false;
    }
    return true;
  }

  // Authenticated and the transport is ready: replay, then live messages.
  void go_live() {
    if (ended_) return;
    auto now = SteadyClock::now();
    int64_t left_ms = params_.identity.expires_at * 1000 - system_ms();
    expiry_ = now + std::chrono::milliseconds(std::max<int64_t>(0, left_ms));
    next_revocation_ = now + std::chrono::milliseconds(hub_.settings().revocation_check_ms);
    next_heartbeat_ = now + std::chrono::milliseconds(hub_.settings().heartbeat_ms);
    arm_timer();
    if (params_.last_event_id.empty()) {
      live_ = true;
      pump();
      return;
    }
    if (auto id = parse_stream_id(params_.last_event_id)) last_sent_ = *id;
    // Inclusive of the client's last id, one more than max_replay: finding that entry first
    // proves nothing between it and the replay was trimmed away, and an extra entry shows the
    // replay would be cut short. Either gap is signalled (resync), never passed over silently.
    hub_.redis().command(
        {"XRANGE", hub_.settings().user_stream_prefix + params_.identity.user_id,
         params_.last_event_id, "+", "COUNT", std::to_string(hub_.settings().max_replay + 2)},
        [self = shared_from_this()](RedisResult result) {
          asio::post(self->executor_,
                     [self, result = std::move(result)] { self->on_replay(result); });
        });
  }

  void on_replay(const RedisResult& result) {
    if (ended_) return;
    std::vector<PushMessagePtr> replay;
    if (result.ok && result.reply.type == RedisReply::Type::kArray) {
      const auto& entries = result.reply.elements;
      bool seam_found = !entries.empty() && entries.front().elements.size() == 2 &&
                        entries.front().elements[0].str == params_.last_event_id;
      size_t newer = entries.size() - (seam_found ? 1 : 0);
      if ((!entries.empty() && !seam_found) ||
          newer > static_cast<size_t>(hub_.settings().max_replay)) {
        replay.push_back(make_resync_message(kResyncHistoryTruncated));
      }
      size_t replayed = 0;
      for (size_t i = seam_found ? 1 : 0; i < entries.size(); ++i) {
        const auto& entry = entries[i];
        if (entry.elements.size() != 2) continue;
        if (replayed++ == static_cast<size_t>(hub_.settings().max_replay)) break;
        const auto& fields = entry.elements[1].elements;
        for (size_t f = 0; f + 1 < fields.size(); f += 2) {
          if (fields[f].str != "notification") continue;
          if (auto message = make_push_message(entry.elements[0].str, fields[f + 1].str)) {
            replay.push_back(std::move(message));
          }
        }
      }
    } else {
      log::warn("live push replay failed",
                {{"user_id", params_.identity.user_id},
                 {"error", result.ok ? result.reply.str : result.error}});
      replay.push_back(make_resync_message(kResyncReplayUnavailable));
    }
    {
      std::lock_guard lock(mutex_);
      queue_.prepend(std::move(replay));
    }
    live_ = true;
    pump();
  }

  // Writes the next queued message newer than the last one sent (the seam between the replay
  // and live messages registered before it: anything not newer was already sent).
  void pump() {
    if (ended_ || !live_ || writing_) return;
    PushMessagePtr next;
    {
      std::lock_guard lock(mutex_);
      while ((next = queue_.pop())) {
        if (!next->resync_code.empty() || next->parsed > last_sent_) break;
      }
    }
    if (!next) return;
    writing_ = true;
    if (next->resync_code.empty()) last_sent_ = next->parsed;
    write_message(*next);
  }

  // Transports call this when a write finished.
  void on_written(bool ok, bool is_message) {
    writing_ = false;
    if (!ok) return finish(PushEnd::kClientClosed);
    if (is_message) hub_.message_sent(params_.transport);
    if (ended_) return after_final_write();
    next_heartbeat_ = SteadyClock::now() + std::chrono::milliseconds(hub_.settings().heartbeat_ms);
    pump();
  }
  virtual void after_final_write() {}

  void arm_timer() {
    if (ended_ || !timer_) return;
    auto deadline = SteadyClock::time_point::max();
    if (params_.authenticated) {
      deadline = std::min({deadline, expiry_, next_revocation_});
      if (wants_heartbeat()) deadline = std::min(deadline, next_heartbeat_);
    } else {
      deadline = std::min(deadline, auth_deadline_);
    }
    timer_->expires_at(deadline);
    timer_->async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->on_timer();
    });
  }
  virtual bool wants_heartbeat() const { return false; }

  void on_timer() {
    if (ended_) return;
    auto now = SteadyClock::now();
    if (!params_.authenticated) {
      if (now >= auth_deadline_) return finish(PushEnd::kAuthFailed);
      return arm_timer();
    }
    if (now >= expiry_) return finish(PushEnd::kTokenExpired);
    if (now >= next_revocation_) {
      next_revocation_ = now + std::chrono::milliseconds(hub_.settings().revocation_check_ms);
      check_revocation();
    }
    if (wants_heartbeat() && now >= next_heartbeat_) {
      next_heartbeat_ = now + std::chrono::milliseconds(hub_.settings().heartbeat_ms);
      if (live_ && !writing_) {
        writing_ = true;
        write_heartbeat();
      }
    }
    arm_timer();
  }

  void check_revocation() {
    TokenVerifier::check_revocation(
        hub_.redis(), params_.identity.token_id, params_.identity.session_id,
        [self = shared_from_this()](RevocationStatus status, std::string error) {
          asio::post(self->executor_, [self, status, error = std::move(error)] {
            // Redis not answering a re-check keeps the stream (the token was checked when it
            // opened); the next check decides.
            if (status == RevocationStatus::kUnavailable) {
              log::warn("live push revocation re-check failed", {{"error", error}});
              return;
            }
            if (status == RevocationStatus::kRevoked) self->finish(PushEnd::kTokenRevoked);
          });
        });
  }

  // Ends the stream once: leaves the hub, counts, and lets the transport close.
  void finish(PushEnd reason) {
    if (ended_) return;
    ended_ = true;
    {
      std::lock_guard lock(mutex_);
      end_requested_ = true;
      queue_.clear();
    }
    if (params_.authenticated) hub_.unbind(params_.identity.user_id, this);
    hub_.disconnected(reason);
    if (opened_) hub_.stream_closed(params_.transport);
    if (timer_) timer_->cancel();
    close_transport(reason);
  }

  bool bind_to_user() {
    return hub_.bind(params_.identity.user_id, shared_from_this()) == PushAdmission::kAdmitted;
  }

  PushHub& hub_;
  PushSessionParams params_;
  asio::any_io_executor executor_;
  std::optional<asio::steady_timer> timer_;
  SteadyClock::time_point expiry_{}, next_revocation_{}, next_heartbeat_{}, auth_deadline_{};
  StreamId last_sent_{};
  bool live_ = false;
  bool writing_ = false;
  bool ended_ = false;
  bool opened_ = false;
  std::shared_ptr<std::atomic<int>> admitted_;

 private:
  std::mutex mutex_;  // guards the queue and the fields below (deliver/end run on any thread)
  OutboundQueue queue_;
  bool attached_ = false;
  bool end_requested_ = false;
  std::optional<PushEnd> pending_end_;
};

// Server-Sent Events: a close-delimited text/event-stream body.
class SseSession final : public SessionBase {
 public:
  using SessionBase::SessionBase;

  void attach(TakenOverConnectionPtr connection, const HttpRequest&, HttpResponse head) override {
    connection_ = std::move(connection);
    connection_->buffer = beast::flat_buffer();  // nothing more is read from the client
    if (!on_attach(connection_->stream.get_executor())) return;
    out_ = "HTTP/1.1 200 OK\r\n";
    for (const auto& [name, value] : head.headers) out_ += name + ": " + value + "\r\n";
    out_ += "Server: trellis\r\nConnection: close\r\n\r\n";
    out_ += kSseRetry;
    writing_ = true;
    write_out(false);
    watch_for_close();
    go_live();
  }

 private:
  bool wants_heartbeat() const override { return true; }

  void write_message(const PushMessage& message) override {
    out_ = sse_event(message);
    write_out(true);
  }

  void write_heartbeat() override {
    out_ = kSseHeartbeat;
    write_out(false);
  }

  void write_out(bool is_message) {
    auto& stream = connection_->stream;
    stream.expires_after(std::chrono::milliseconds(2 * hub_.settings().heartbeat_ms + 10000));
    asio::async_write(stream, asio::buffer(out_),
                      [self = std::static_pointer_cast<SseSession>(shared_from_this()), is_message](
                          beast::error_code ec, size_t) {
                        self->out_.clear();
                        self->out_.shrink_to_fit();
                        self->on_written(!ec, is_message);
                      });
  }

  // The client only ever closes: wait for readability without a buffer, then read and discard.
  void watch_for_close() {
    connection_->stream.socket().async_wait(
        tcp::socket::wait_read,
        [self = std::static_pointer_cast<SseSession>(shared_from_this())](beast::error_code ec) {
          if (self->ended_) return;
          if (ec) return self->finish(PushEnd::kClientClosed);
          std::array<char, 256> scratch;
          auto& socket = self->connection_->stream.socket();
          beast::error_code read_ec;
          socket.non_blocking(true, read_ec);
          size_t n = socket.read_some(asio::buffer(scratch), read_ec);
          if (read_ec == asio::error::would_block) return self->watch_for_close();
          if (read_ec || n == 0) return self->finish(PushEnd::kClientClosed);
          self->watch_for_close();
        });
  }

  void close_transport(PushEnd reason) override {
    if (!connection_) return;
    if (reason == PushEnd::kTokenExpired || reason == PushEnd::kTokenRevoked) {
      final_ = sse_end_event(reason == PushEnd::kTokenExpired ? "token_expired" : "token_revoked");
      if (!writing_) after_final_write();
      return;  // otherwise after the write in progress
    }
    shutdown();
  }

  void after_final_write() override {
    if (final_.empty()) return shutdown();
    out_ = std::move(final_);
    final_.clear();
    writing_ = true;
    write_out(false);
  }

  void shutdown() {
    beast::error_code ignored;
    auto& socket = connection_->stream.socket();
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    socket.close(ignored);
  }

  TakenOverConnectionPtr connection_;
  std::string out_;
  std::string final_;
};

// WebSocket: Beast stream over the taken-over socket, pings every heartbeat_ms.
class WebSocketSession final : public SessionBase {
 public:
  using SessionBase::SessionBase;

  void attach(TakenOverConnectionPtr connection, const HttpRequest& request,
              HttpResponse head) override {
    auto executor = connection->stream.get_executor();
    // A plain socket below the WebSocket: its own timeouts need no tcp_stream (whose two timers
    // would cost ~400 bytes per idle connection).
    ws_.emplace(std::move(connection->stream.socket()));
    connection.reset();  // the HTTP read buffer goes with it
    if (!on_attach(executor)) return;

    websocket::permessage_deflate deflate;  // off: Beast 1.74's bundled zlib (TOOLCHAIN.md)
    deflate.server_enable = false;
    deflate.client_enable = false;
    ws_->set_option(deflate);
    ws_->read_message_max(hub_.settings().max_message_bytes);
    ws_->auto_fragment(false);  // one frame per notification
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = std::chrono::seconds(10);
    // Beast pings after half the idle timeout without traffic, and closes after the whole
    // timeout without anything from the peer.
    timeouts.idle_timeout = std::chrono::milliseconds(2 * hub_.settings().heartbeat_ms);
    timeouts.keep_alive_pings = true;
    ws_->set_option(timeouts);
    bool select = params_.select_subprotocol;
    ws_->set_option(websocket::stream_base::decorator(
        [headers = std::move(head.headers), select](websocket::response_type& response) {
          for (const auto& [name, value] : headers) {
            auto lower = name;
            for (auto& c : lower)
              c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (lower == "content-type" || lower == "content-length") continue;
            response.set(name, value);
          }
          response.set(http::field::server, "trellis");
          if (select) response.set(http::field::sec_websocket_protocol, kPushSubprotocol);
        }));

    auto upgrade = std::make_shared<http::request<http::empty_body>>();
    upgrade->method_string(request.method);
    upgrade->target(request.target);
    upgrade->version(11);
    for (const auto& [name, value] : request.headers) upgrade->insert(name, value);
    ws_->async_accept(*upgrade,
                      [self = self_ws(), upgrade](beast::error_code ec) { self->on_accept(ec); });
  }

 private:
  std::shared_ptr<WebSocketSession> self_ws() {
    return std::static_pointer_cast<WebSocketSession>(shared_from_this());
  }

  void on_accept(beast::error_code ec) {
    // The decorator (and the header copies it holds) is not needed any more.
    ws_->set_option(websocket::stream_base::decorator([](websocket::response_type&) {}));
    if (ec) return finish(PushEnd::kClientClosed);
    if (ended_) return;
    accepted_ = true;
    ws_->text(true);
    read();
    if (params_.authenticated) return go_live();
    auth_deadline_ =
        SteadyClock::now() + std::chrono::milliseconds(hub_.settings().auth_timeout_ms);
    arm_timer();
  }

  // Reads in small pieces into a fixed chunk: an idle connection must not hold a read buffer
  // (Beast's async_read into a dynamic buffer prepares ~1.5 KiB or more up front). Beast still
  // enforces read_message_max per message.
  void read() {
    ws_->async_read_some(
        asio::buffer(read_chunk_),
        [self = self_ws()](beast::error_code ec, size_t n) { self->on_read(ec, n); });
  }

  void on_read(beast::error_code ec, size_t n) {
    if (ec) {
      read_failed_ = true;
      // After our close frame the pending read ends too; the close handler closes the socket.
      if (!ended_)
        finish(ec == beast::error::timeout ? PushEnd::kProtocol : PushEnd::kClientClosed);
      return;
    }
    if (ended_) return;
    if (!ws_->got_text()) {
      close_code_ = websocket::close_code::unknown_data;
      return finish(PushEnd::kProtocol);
    }
    // Messages after auth (or while it runs) are ignored: not even kept.
    bool wanted = !params_.authenticated && !auth_pending_;
    if (wanted) message_.append(read_chunk_.data(), n);
    if (!ws_->is_message_done()) return read();
    std::string text;
    text.swap(message_);  // releases the message's memory after this handler
    if (wanted) {
      auto token = token_from_auth_message(text);
      if (token.empty()) return finish(PushEnd::kAuthFailed);
      auth_pending_ = true;
      auto authenticate = std::move(params_.authenticator);
      params_.authenticator = nullptr;
      authenticate(std::move(token), [self = self_ws()](PushAuthResult result) {
        asio::post(self->executor_, [self, result = std::move(result)]() mutable {
          self->on_auth(std::move(result));
        });
      });
    }
    read();
  }

  void on_auth(PushAuthResult result) {
    auth_pending_ = false;
    if (ended_) return;
    if (!result.ok) return finish(result.failure);
    params_.identity = std::move(result.identity);
    params_.authenticated = true;
    if (!bind_to_user()) return finish(PushEnd::kTooManyStreams);
    timer_->cancel();  // re-armed for expiry and revocation by go_live
    go_live();
  }

  void write_message(const PushMessage& message) override {
    out_ = websocket_notification(message);
    ws_->async_write(asio::buffer(out_), [self = self_ws()](beast::error_code ec, size_t) {
      self->out_.clear();
      self->out_.shrink_to_fit();
      self->on_written(!ec, true);
    });
  }

  void after_final_write() override {
    if (close_after_write_) start_close();
  }

  void close_transport(PushEnd reason) override {
    if (!ws_) return;
    if (!accepted_ || read_failed_ || reason == PushEnd::kClientClosed) return close_socket();
    switch (reason) {
      case PushEnd::kShutdown:
        close_with(websocket::close_code::going_away, "going away");
        break;
      case PushEnd::kTokenExpired:
        close_with(websocket::close_code::policy_error, "token expired");
        break;
      case PushEnd::kTokenRevoked:
        close_with(websocket::close_code::policy_error, "token revoked");
        break;
      case PushEnd::kSlowConsumer:
        // A write that does not finish means the peer does not read: a close frame would not
        // get through either.
        if (writing_) return close_socket();
        close_with(websocket::close_code::policy_error, "slow consumer");
        break;
      case PushEnd::kAuthFailed:
        close_with(websocket::close_code::policy_error, "authentication required");
        break;
      case PushEnd::kAuthUnavailable:
        close_with(websocket::close_code::internal_error, "try again later");
        break;
      case PushEnd::kTooManyStreams:
        close_with(websocket::close_code::try_again_later, "too many streams");
        break;
      case PushEnd::kProtocol:
        if (close_code_ == websocket::close_code::unknown_data) {
          close_with(websocket::close_code::unknown_data, "binary messages are not accepted");
        } else {
          return close_socket();  // Beast already failed the connection (timeout, too big)
        }
        break;
      case PushEnd::kClientClosed:
        break;
    }
    if (writing_) {
      close_after_write_ = true;
      return;
    }
    start_close();
  }

  void start_close() {
    // Bounded: a peer that does not answer the close frame is dropped after 2 s.
    websocket::stream_base::timeout timeouts;
    timeouts.handshake_timeout = std::chrono::seconds(2);
    timeouts.idle_timeout = std::chrono::milliseconds(2 * hub_.settings().heartbeat_ms);
    timeouts.keep_alive_pings = true;
    ws_->set_option(timeouts);
    ws_->async_close(websocket::close_reason(close_code_, close_text_),
                     [self = self_ws()](beast::error_code) { self->close_socket(); });
  }

  void close_socket() {
    beast::error_code ignored;
    auto& socket = ws_->next_layer();
    if (!socket.is_open()) return;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

  std::optional<websocket::stream<tcp::socket>> ws_;
  void close_with(websocket::close_code code, const char* text) {
    close_code_ = code;
    close_text_ = text;
  }

  std::array<char, 64> read_chunk_;
  std::string message_;  // a client message being assembled (only before auth)
  std::string out_;
  const char* close_text_ = "";  // a literal; the close_reason (with its 123-byte reason
                                 // buffer) exists only while closing
  websocket::close_code close_code_ = websocket::close_code::none;
  bool accepted_ = false;
  bool read_failed_ = false;
  bool auth_pending_ = false;
  bool close_after_write_ = false;
};

}  // namespace

std::shared_ptr<StreamSession> make_stream_session(PushHub& hub, PushSessionParams params) {
  if (params.transport == PushTransport::kSse) {
    return std::make_shared<SseSession>(hub, std::move(params));
  }
  return std::make_shared<WebSocketSession>(hub, std::move(params));
}

}  // namespace trellis::gateway
