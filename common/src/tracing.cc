#include "trellis/common/tracing.h"

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "trellis/common/log.h"
#include "trellis/common/trace.h"

namespace trellis::tracing {
namespace {

thread_local CurrentSpan current_span;

nlohmann::json attribute(const std::string& key, const std::string& value) {
  return {{"key", key}, {"value", {{"stringValue", value}}}};
}

}  // namespace

int64_t now_unix_nanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

Tracer::Tracer(TracerOptions options) : options_(std::move(options)) {
  if (options_.otlp_endpoint.empty()) return;
  const std::string scheme = "http://";
  if (options_.otlp_endpoint.rfind(scheme, 0) != 0) {
    throw std::invalid_argument("tracing endpoint must start with http://");
  }
  auto rest = options_.otlp_endpoint.substr(scheme.size());
  auto slash = rest.find('/');
  auto authority = rest.substr(0, slash);
  path_ = slash == std::string::npos ? "/v1/traces" : rest.substr(slash);
  auto colon = authority.rfind(':');
  host_ = authority.substr(0, colon);
  port_ = colon == std::string::npos ? 80 : std::stoi(authority.substr(colon + 1));
  if (host_.empty() || port_ <= 0 || port_ > 65535) {
    throw std::invalid_argument("bad tracing endpoint " + options_.otlp_endpoint);
  }
  enabled_ = true;
  thread_ = std::thread([this] { run(); });
}

Tracer::~Tracer() {
  shutdown();
}

void Tracer::shutdown() {
  std::call_once(shutdown_once_, [this] {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    if (thread_.joinable()) thread_.join();
  });
}

void Tracer::record(Span span) {
  if (!enabled_) return;
  std::lock_guard lock(mutex_);
  if (stopping_ || queue_.size() >= options_.max_queue) {
    ++dropped_;
    return;
  }
  queue_.push_back(std::move(span));
}

uint64_t Tracer::dropped() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

uint64_t Tracer::exported() const {
  std::lock_guard lock(mutex_);
  return exported_;
}

std::string Tracer::render(const std::vector<Span>& spans) const {
  nlohmann::json items = nlohmann::json::array();
  for (const auto& span : spans) {
    nlohmann::json attributes = nlohmann::json::array();
    for (const auto& [key, value] : span.attributes) attributes.push_back(attribute(key, value));
    nlohmann::json item = {{"traceId", span.trace_id},
                           {"spanId", span.span_id},
                           {"name", span.name},
                           {"kind", static_cast<int>(span.kind)},
                           {"startTimeUnixNano", std::to_string(span.start_unix_nanos)},
                           {"endTimeUnixNano", std::to_string(span.end_unix_nanos)},
                           {"attributes", attributes},
                           {"status", {{"code", span.error ? 2 : 1}}}};
    if (!span.parent_span_id.empty()) item["parentSpanId"] = span.parent_span_id;
    items.push_back(std::move(item));
  }
  nlohmann::json body = {
      {"resourceSpans",
       {{{"resource", {{"attributes", {attribute("service.name", options_.service_name)}}}},
         {"scopeSpans", {{{"scope", {{"name", "trellis"}}}, {"spans", items}}}}}}}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void Tracer::run() {
  std::unique_lock lock(mutex_);
  while (true) {
    wake_.wait_for(lock, std::chrono::milliseconds(options_.flush_interval_ms),
                   [this] { return stopping_ || queue_.size() >= size_t(options_.max_batch); });
    bool stopping = stopping_;
    while (!queue_.empty()) {
      std::vector<Span> batch;
      while (!queue_.empty() && batch.size() < size_t(options_.max_batch)) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      lock.unlock();
      bool ok = post(render(batch));
      lock.lock();
      if (ok) {
        exported_ += batch.size();
      } else {
        dropped_ += batch.size();  // a collector outage loses spans, never memory
        // ...and does not hold up the exit batch after batch. Read now, not when the round
        // began: shutdown may have come while this batch was being sent.
        if (stopping_) {
          dropped_ += queue_.size();
          queue_.clear();
        }
      }
    }
    if (stopping) return;
  }
}

bool Tracer::post(const std::string& body) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found) != 0) return false;
  int fd = -1;
  for (auto* a = found; a && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval timeout{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(found);
  if (fd < 0) return false;
  auto request =
      "POST " + path_ + " HTTP/1.1\r\nHost: " + host_ +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\nConnection: close\r\n\r\n" + body;
  size_t sent = 0;
  while (sent < request.size()) {
    auto n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;
    sent += static_cast<size_t>(n);
  }
  char reply[64] = {};
  auto n = sent == request.size() ? recv(fd, reply, sizeof reply - 1, 0) : -1;
  close(fd);
  return n > 12 && std::string(reply, 9) == "HTTP/1.1 " && reply[9] == '2';
}

const CurrentSpan& current() {
  return current_span;
}

ScopedCurrentSpan::ScopedCurrentSpan(CurrentSpan span) : previous_(std::move(current_span)) {
  current_span = std::move(span);
}

ScopedCurrentSpan::~ScopedCurrentSpan() {
  current_span = std::move(previous_);
}

ChildSpan::ChildSpan(std::string name, SpanKind kind,
                     std::vector<std::pair<std::string, std::string>> attributes) {
  const auto& parent = current_span;
  if (!parent.tracer || !parent.tracer->enabled() || parent.trace_id.empty()) return;
  tracer_ = parent.tracer;
  span_.trace_id = parent.trace_id;
  span_.parent_span_id = parent.span_id;
  span_.span_id = trace::random_id_hex(8);
  span_.name = std::move(name);
  span_.kind = kind;
  span_.attributes = std::move(attributes);
  span_.start_unix_nanos = now_unix_nanos();
}

ChildSpan::~ChildSpan() {
  if (!tracer_) return;
  span_.end_unix_nanos = now_unix_nanos();
  if (std::uncaught_exceptions() > 0) span_.error = true;
  tracer_->record(std::move(span_));
}

}  // namespace trellis::tracing
