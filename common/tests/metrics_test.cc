#include "trellis/common/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace trellis::metrics {
namespace {

TEST(Metrics, RendersCountersGaugesAndHistogramsInTextFormat) {
  Registry registry;
  auto& requests = registry.counter("http_requests_total", "Requests", {"route", "status"});
  requests.with({"/v1/users/me", "200"}).inc();
  requests.with({"/v1/users/me", "200"}).inc(2);
  auto& open = registry.gauge("open_connections", "Open connections");
  open.with({}).set(7);
  auto& latency = registry.histogram("latency_seconds", "Latency", {"route"}, {0.1, 1});
  latency.with({"/x"}).observe(0.05);
  latency.with({"/x"}).observe(0.5);
  latency.with({"/x"}).observe(5);
  auto text = registry.render();
  EXPECT_NE(text.find("# TYPE http_requests_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("http_requests_total{route=\"/v1/users/me\",status=\"200\"} 3\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("open_connections 7\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"/x\",le=\"0.1\"} 1\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"/x\",le=\"1\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_bucket{route=\"/x\",le=\"+Inf\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_count{route=\"/x\"} 3\n"), std::string::npos);
  EXPECT_NE(text.find("latency_seconds_sum{route=\"/x\"} 5.55"), std::string::npos) << text;
}

TEST(Metrics, EscapesLabelValues) {
  EXPECT_EQ(escape_label_value("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

TEST(Metrics, CollectorsRunBeforeRender) {
  Registry registry;
  auto& gauge = registry.gauge("pool_in_use", "In use").with({});
  int calls = 0;
  registry.on_collect([&] { gauge.set(++calls * 10); });
  EXPECT_NE(registry.render().find("pool_in_use 10"), std::string::npos);
  EXPECT_NE(registry.render().find("pool_in_use 20"), std::string::npos);
}

TEST(Metrics, ConcurrentIncrementsAreNotLost) {
  Registry registry;
  auto& family = registry.counter("c_total", "c", {"k"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) family.with({"x"}).inc();
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(family.with({"x"}).value(), 40000u);
}

}  // namespace
}  // namespace trellis::metrics

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include "trellis/common/metrics_server.h"

namespace trellis::metrics {
namespace {

std::string fetch(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) return "";
  send(fd, request.data(), request.size(), 0);
  std::string response;
  char buffer[4096];
  ssize_t n;
  while ((n = recv(fd, buffer, sizeof buffer, 0)) > 0) response.append(buffer, n);
  close(fd);
  return response;
}

TEST(MetricsServer, ServesTheRegistryOnGetMetricsOnly) {
  Registry registry;
  registry.counter("served_total", "x").with({}).inc(5);
  MetricsServer server("127.0.0.1:0", registry);
  server.start();
  auto response = fetch(server.port(), "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(response.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(response.find("served_total 5\n"), std::string::npos);
  auto other = fetch(server.port(), "GET /admin HTTP/1.1\r\n\r\n");
  EXPECT_EQ(other.rfind("HTTP/1.1 404", 0), 0u);
  server.stop();
  EXPECT_EQ(fetch(server.port(), "GET /metrics HTTP/1.1\r\n\r\n"), "");
}

}  // namespace
}  // namespace trellis::metrics
