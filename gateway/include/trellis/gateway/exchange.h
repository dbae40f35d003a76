// One request's trip through the filter chain. Filters run in the order given in
// filter_chain.cc; each either passes the exchange on (next()) or answers it (respond()), possibly
// later from another thread. Responses unwind through the filters that ran, in reverse order.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "trellis/common/log.h"
#include "trellis/common/trace.h"
#include "trellis/gateway/http_types.h"

namespace trellis::gateway {

struct Route;
class UpstreamGuard;
struct VerifiedToken;

// Identity proven by a verified access token.
struct Identity {
  std::string user_id;
  std::vector<std::string> roles;
  std::shared_ptr<const VerifiedToken> token;  // its claims (jti, sid) and revocation markers
  int64_t expires_at = 0;
  bool authenticated() const { return !user_id.empty(); }
};

struct RequestContext {
  std::string request_id;
  trace::TraceContext trace;
  log::RequestLog log;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // When the answer was ready (set before the filters' on_response run): their one clock read.
  std::chrono::steady_clock::time_point answered;
  int64_t started_unix_nanos = 0;  // wall clock, for the exported span
  const Route* route = nullptr;
  std::map<std::string, std::string> path_params;  // decoded
  Identity identity;
  // IETF draft rate-limit fields, accumulated by the rate-limit filters that ran.
  std::string ratelimit_policy_header;
  std::string ratelimit_header;
  // Set by the upstream guard filter when it admitted the request; the upstream filter reports
  // whether the service was unreachable (UNAVAILABLE / DEADLINE_EXCEEDED) for the breaker.
  UpstreamGuard* upstream_guard = nullptr;
  bool upstream_failed = false;
  // Response cache bookkeeping (cache filter).
  std::string cache_result;  // HIT, MISS, BYPASS; empty when the route is not cached
  std::string cache_key;
  std::string cache_generation;
  bool cache_leader = false;
  // Run, in order, after the upstream call succeeded and before the answer is sent (e.g. cache
  // invalidation, which must be done when the client learns that its write succeeded).
  std::vector<std::function<void(std::function<void()>)>> before_success_response;
};

class Filter;

// A client connection taken away from the HTTP server by a long-lived stream (live push): the
// socket and any bytes read past the request. Defined (with Beast) in src/taken_over_connection.h;
// the deleter keeps its definition out of the translation units that only pass it on.
struct TakenOverConnection;
struct TakenOverConnectionDeleter {
  void operator()(TakenOverConnection* connection) const;
};
using TakenOverConnectionPtr = std::unique_ptr<TakenOverConnection, TakenOverConnectionDeleter>;
// Gets the connection and the response head after every filter's on_response ran on it.
using TakeoverHandler = std::function<void(TakenOverConnectionPtr, HttpResponse)>;

// Where an exchange's answer goes and where its continuations run. In the server it is the client
// connection: one object the exchange keeps alive, rather than a callback per duty each holding
// the connection (an allocation and a reference count each, per request).
class ExchangeTransport {
 public:
  virtual ~ExchangeTransport() = default;
  // The answer, after every filter's on_response ran on it.
  virtual void deliver(HttpResponse& response) = 0;
  // Runs `work` on the connection's executor, never inline.
  virtual void post(std::function<void()> work) = 0;
  // Runs `work` on the connection's executor after `delay`, without blocking a thread.
  virtual void post_after(std::chrono::milliseconds delay, std::function<void()> work) = 0;
  // Hands the connection to a stream session (live push); see Exchange::take_over.
  virtual bool can_take_over() const = 0;
  virtual void take_over(HttpResponse& head, TakeoverHandler handler) = 0;
};

class Exchange : public std::enable_shared_from_this<Exchange> {
 public:
  using Sink = std::function<void(HttpResponse&)>;
  using Poster = std::function<void(std::function<void()>)>;
  using TakeoverSink = std::function<void(HttpResponse&, TakeoverHandler)>;

  Exchange(HttpRequest request, const std::vector<std::unique_ptr<Filter>>& filters,
           std::shared_ptr<ExchangeTransport> transport);
  // With callbacks instead of a transport (unit tests): post_after() posts the work at once;
  // without a takeover sink, take_over() answers 500.
  Exchange(HttpRequest request, const std::vector<std::unique_ptr<Filter>>& filters, Sink sink,
           Poster poster, TakeoverSink takeover_sink = nullptr);

  HttpRequest request;
  HttpResponse response;
  RequestContext context;

  // Starts the chain at its first filter.
  void start();
  // Hands the exchange to the next filter; a chain without a terminal filter answers 500.
  void next();
  // Answers the request: runs on_response of every filter that ran, then sends. Only the first
  // call counts; later ones are ignored (e.g. a late upstream reply after a local answer).
  void respond(HttpResponse answer);
  void respond_error(int status, std::string_view code, std::string_view message);
  // Runs `work` on the connection's executor; used to resume after an asynchronous operation
  // completed on a foreign thread (gRPC, Redis).
  void post(std::function<void()> work);
  // Runs `work` on the connection's executor after `delay` (e.g. a retry backoff) without
  // blocking a thread.
  void post_after(std::chrono::milliseconds delay, std::function<void()> work);

  // Instead of writing a response, hands the connection to `handler` (WebSocket / SSE): counts as
  // the answer (the filters' on_response run on `head`, e.g. for the access log, metrics and the
  // request id header) and the request stops being in flight. Without a takeover sink (admin
  // listener, unit tests without one) it answers 500 instead.
  void take_over(HttpResponse head, TakeoverHandler handler);
  bool can_take_over() const { return transport_->can_take_over(); }

  bool responded() const { return responded_; }

  // A check that runs while later filters go on: the access token's revocation check, in
  // parallel with the response cache's lookup (both reach Redis in one round trip). While the
  // hold is on, respond() keeps the answer instead of sending it and after_hold() keeps work that
  // must not start before the check passed (an upstream call carries the caller's identity).
  // release_hold() runs the kept work and sends the kept answer; fail_hold() drops both and sends
  // its own answer. All on the connection's executor, like the rest of the chain.
  void hold();
  void release_hold();
  void fail_hold(HttpResponse answer);
  void after_hold(std::function<void()> work);
  bool held() const { return hold_ == Hold::kPending; }

 private:
  enum class Hold { kNone, kPending, kReleased, kFailed };
  void send(HttpResponse answer);

  struct CallbackTransport;

  const std::vector<std::unique_ptr<Filter>>& filters_;
  std::shared_ptr<ExchangeTransport> transport_;
  size_t entered_ = 0;
  // Set while start() runs the filters that answer without waiting (most requests): they get this
  // pointer instead of a new one from shared_from_this() per filter (an atomic increment and
  // decrement each). Filters resumed later get a new one.
  std::shared_ptr<Exchange> self_while_starting_;
  bool responded_ = false;
  Hold hold_ = Hold::kNone;
  std::vector<std::function<void()>> held_work_;
  std::unique_ptr<HttpResponse> held_answer_;
};

using ExchangePtr = std::shared_ptr<Exchange>;

class Filter {
 public:
  virtual ~Filter() = default;
  virtual std::string_view name() const = 0;
  virtual void on_request(const ExchangePtr& exchange) = 0;
  virtual void on_response(Exchange& exchange) {}
};

}  // namespace trellis::gateway
