// Spans of the W3C trace every request carries, exported as OTLP/HTTP JSON to a collector when an
// endpoint is configured (off by default). Export happens on a background thread in batches; a
// full queue drops spans (counted) rather than slowing requests down.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace trellis::tracing {

enum class SpanKind { kInternal = 1, kServer = 2, kClient = 3 };

struct Span {
  std::string trace_id;        // 32 hex
  std::string span_id;         // 16 hex
  std::string parent_span_id;  // empty for a root span
  std::string name;
  SpanKind kind = SpanKind::kInternal;
  int64_t start_unix_nanos = 0;
  int64_t end_unix_nanos = 0;
  std::vector<std::pair<std::string, std::string>> attributes;
  bool error = false;
};

int64_t now_unix_nanos();

struct TracerOptions {
  std::string otlp_endpoint;  // "http://host:port/v1/traces"; empty: tracing off
  std::string service_name;
  size_t max_queue = 10000;  // spans waiting for export; more are dropped
  int flush_interval_ms = 1000;
  int max_batch = 512;
};

class Tracer {
 public:
  explicit Tracer(TracerOptions options);  // throws std::invalid_argument on a bad endpoint
  ~Tracer();                               // shutdown()
  // Exports what is queued and stops the exporter; spans recorded later are counted as dropped.
  // Bounded: once stopping, the first failed export drops what is left (a collector that is
  // down costs one 2 s timeout, not one per batch). Idempotent, also across threads.
  void shutdown();
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  bool enabled() const { return enabled_; }
  void record(Span span);
  uint64_t dropped() const;
  uint64_t exported() const;

  // OTLP/JSON body for a batch (exposed for tests).
  std::string render(const std::vector<Span>& spans) const;

 private:
  void run();
  bool post(const std::string& body);

  TracerOptions options_;
  bool enabled_ = false;
  std::string host_, path_;
  int port_ = 0;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Span> queue_;
  bool stopping_ = false;
  uint64_t dropped_ = 0, exported_ = 0;
  std::thread thread_;
  std::once_flag shutdown_once_;
};

// The span a service thread is working for, so that database and Redis calls made deep inside a
// handler become its children without passing the context through every signature. Set by
// service::run_rpc for the duration of one RPC on its thread.
struct CurrentSpan {
  Tracer* tracer = nullptr;
  std::string trace_id;
  std::string span_id;
};
const CurrentSpan& current();

class ScopedCurrentSpan {
 public:
  explicit ScopedCurrentSpan(CurrentSpan span);
  ~ScopedCurrentSpan();
  ScopedCurrentSpan(const ScopedCurrentSpan&) = delete;
  ScopedCurrentSpan& operator=(const ScopedCurrentSpan&) = delete;

 private:
  CurrentSpan previous_;
};

// Records a child of the current span from construction to destruction; no-op when the thread
// has no current span or tracing is off.
class ChildSpan {
 public:
  ChildSpan(std::string name, SpanKind kind,
            std::vector<std::pair<std::string, std::string>> attributes = {});
  ~ChildSpan();
  void set_error() { span_.error = true; }

 private:
  Tracer* tracer_ = nullptr;
  Span span_;
};

}  // namespace trellis::tracing
