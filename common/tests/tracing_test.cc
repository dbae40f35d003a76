#include "trellis/common/tracing.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <nlohmann/json.hpp>
#include <thread>

#include "trellis/testing/support.h"

namespace trellis::tracing {
namespace {

Span sample() {
  Span span;
  span.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  span.span_id = "00f067aa0ba902b7";
  span.parent_span_id = "1111111111111111";
  span.name = "GET /v1/users/me";
  span.kind = SpanKind::kServer;
  span.start_unix_nanos = 1;
  span.end_unix_nanos = 2;
  span.attributes = {{"http.status_code", "200"}};
  return span;
}

TEST(Tracer, RendersOtlpJson) {
  Tracer tracer({"", "gateway"});
  auto body = nlohmann::json::parse(tracer.render({sample()}));
  auto resource = body["resourceSpans"][0];
  EXPECT_EQ(resource["resource"]["attributes"][0]["key"], "service.name");
  EXPECT_EQ(resource["resource"]["attributes"][0]["value"]["stringValue"], "gateway");
  auto span = resource["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span["parentSpanId"], "1111111111111111");
  EXPECT_EQ(span["kind"], 2);
  EXPECT_EQ(span["startTimeUnixNano"], "1");
  EXPECT_EQ(span["status"]["code"], 1);
}

TEST(Tracer, DisabledTracerAndMissingContextRecordNothing) {
  Tracer tracer({"", "x"});
  EXPECT_FALSE(tracer.enabled());
  tracer.record(sample());
  EXPECT_EQ(tracer.dropped(), 0u);
  { ChildSpan orphan("db", SpanKind::kClient); }  // no current span: no-op, no crash
}

TEST(Tracer, RejectsBadEndpoints) {
  EXPECT_THROW(Tracer({"https://collector:4318", "x"}), std::invalid_argument);
  EXPECT_THROW(Tracer({"http://:4318/v1/traces", "x"}), std::invalid_argument);
}

TEST(Tracer, ExportsChildSpansOfTheCurrentSpanToTheCollector) {
  trellis::testing::LoopbackListener listener(4);
  ASSERT_GE(listener.fd(), 0);
  auto received = std::async(std::launch::async, [fd = listener.fd()] {
    int client = accept(fd, nullptr, nullptr);
    std::string request;
    char buffer[4096];
    while (true) {
      auto n = recv(client, buffer, sizeof buffer, 0);
      if (n <= 0) break;
      request.append(buffer, n);
      auto header_end = request.find("\r\n\r\n");
      if (header_end == std::string::npos) continue;
      auto length_at = request.find("Content-Length: ");
      auto body_length = std::stoul(request.substr(length_at + 16));
      if (request.size() >= header_end + 4 + body_length) break;
    }
    std::string reply = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    send(client, reply.data(), reply.size(), 0);
    close(client);
    return request;
  });
  Tracer tracer({"http://" + listener.address() + "/v1/traces", "users", 100, 50});
  {
    ScopedCurrentSpan scope({&tracer, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"});
    { ChildSpan child("db.transaction", SpanKind::kClient, {{"db.system", "postgresql"}}); }
  }
  tracer.shutdown();  // exports what is queued, as the destructor (or a fast exit) does
  ASSERT_EQ(received.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(tracer.exported(), 1u);
  {
    ScopedCurrentSpan scope({&tracer, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"});
    { ChildSpan late("late", SpanKind::kClient, {}); }
  }
  EXPECT_EQ(tracer.dropped(), 1u) << "a span after shutdown must be dropped, not queued";
  auto request = received.get();
  EXPECT_EQ(request.rfind("POST /v1/traces HTTP/1.1", 0), 0u);
  auto body = nlohmann::json::parse(request.substr(request.find("\r\n\r\n") + 4));
  auto span = body["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(span["name"], "db.transaction");
  EXPECT_EQ(span["traceId"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(span["parentSpanId"], "00f067aa0ba902b7");
  EXPECT_EQ(span["kind"], 3);
}

// Four one-span batches for a collector that accepts connections (the kernel's backlog) and never
// answers; shutdown after `before_shutdown` must cost one export timeout (2 s), not one per batch.
void expect_shutdown_drops_stalled_batches(int flush_interval_ms,
                                           std::chrono::milliseconds before_shutdown) {
  trellis::testing::LoopbackListener listener(16);
  ASSERT_GE(listener.fd(), 0);
  Tracer tracer(
      {"http://" + listener.address() + "/v1/traces", "users", 100, flush_interval_ms, 1});
  {
    ScopedCurrentSpan scope({&tracer, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"});
    for (int i = 0; i < 4; ++i) ChildSpan("stalled", SpanKind::kClient, {});
  }
  std::this_thread::sleep_for(before_shutdown);
  auto started = std::chrono::steady_clock::now();
  tracer.shutdown();
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::milliseconds(3500))
      << "each batch waited for its own timeout";
  EXPECT_EQ(tracer.dropped(), 4u);
  EXPECT_EQ(tracer.exported(), 0u);
}

// A flush interval long enough that the batches usually wait for shutdown (unless the exporter's
// first wait starts after they were queued: then it is the case below).
TEST(Tracer, ShutdownWithAStalledCollectorCostsOneTimeoutNotOnePerBatch) {
  expect_shutdown_drops_stalled_batches(60000, std::chrono::milliseconds(0));
}

// The exporter is already sending (to the stalled collector) as shutdown comes: the batches after
// the one in flight are dropped, not sent one timeout each.
TEST(Tracer, ShutdownDuringAnExportDropsTheRest) {
  expect_shutdown_drops_stalled_batches(50, std::chrono::milliseconds(300));
}

}  // namespace
}  // namespace trellis::tracing
