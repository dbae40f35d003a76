// Upstreams' shutdown: outstanding gRPC calls are cancelled and their callbacks awaited, so that
// nothing runs on gRPC's threads after the objects those callbacks use are gone (the cause of a
// SIGSEGV at gateway exit). The upstream is a local socket that never answers.
#include "trellis/gateway/upstreams.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "trellis/testing/support.h"

namespace {

using trellis::testing::wait_until;

using namespace std::chrono_literals;
using trellis::gateway::UpstreamCall;
using trellis::gateway::UpstreamResult;
using trellis::gateway::Upstreams;
using Clock = std::chrono::steady_clock;

constexpr int kCancelled = 1, kUnavailable = 14;

TEST(UpstreamsShutdown, CancelsOutstandingCallsAndWaitsUntilTheirCallbacksReturned) {
  trellis::testing::LoopbackListener silent;
  trellis::metrics::Registry registry;
  Upstreams upstreams({{"orders", silent.address()}}, registry);
  std::atomic<int> calls_done{0};
  std::atomic<int> code{-1};
  std::atomic<bool> callback_returned{false};
  UpstreamCall call;
  call.method = "/trellis.orders.v1.OrderService/GetOrder";
  call.timeout = 30s;
  upstreams.call("orders", call, [&](UpstreamResult result) {
    code = result.code;
    ++calls_done;
    std::this_thread::sleep_for(100ms);  // a slow callback: shutdown() must wait for it
    callback_returned = true;
  });
  std::this_thread::sleep_for(200ms);
  ASSERT_EQ(upstreams.outstanding(), 1u) << "the call should hang on the silent upstream";

  auto started = Clock::now();
  EXPECT_EQ(upstreams.shutdown(2000ms), 0u);
  EXPECT_LT(Clock::now() - started, 1500ms) << "cancelled, not left to its 30 s deadline";
  EXPECT_TRUE(callback_returned) << "shutdown() returned while the callback was still running";
  EXPECT_EQ(calls_done.load(), 1);
  EXPECT_EQ(code.load(), kCancelled);
  EXPECT_EQ(upstreams.outstanding(), 0u);
}

TEST(UpstreamsShutdown, ACallAfterShutdownCompletesAtOnceWithUnavailable) {
  trellis::testing::LoopbackListener silent;
  trellis::metrics::Registry registry;
  Upstreams upstreams({{"orders", silent.address()}}, registry);
  upstreams.shutdown();
  int code = -1;
  std::string message;
  UpstreamCall call;
  call.method = "/trellis.orders.v1.OrderService/GetOrder";
  upstreams.call("orders", call, [&](UpstreamResult result) {
    code = result.code;
    message = result.message;
  });
  EXPECT_EQ(code, kUnavailable) << "completed synchronously";
  EXPECT_EQ(message, "gateway shutting down");
  EXPECT_EQ(upstreams.outstanding(), 0u);
}

TEST(UpstreamsShutdown, DestroyingUpstreamsWaitsForOutstandingCallbacks) {
  trellis::testing::LoopbackListener silent;
  trellis::metrics::Registry registry;
  std::atomic<bool> callback_returned{false};
  {
    Upstreams upstreams({{"orders", silent.address()}}, registry);
    UpstreamCall call;
    call.method = "/trellis.orders.v1.OrderService/GetOrder";
    call.timeout = 30s;
    upstreams.call("orders", call, [&](UpstreamResult) {
      std::this_thread::sleep_for(50ms);
      callback_returned = true;
    });
    ASSERT_TRUE(wait_until([&] { return upstreams.outstanding() == 1; }, 1000ms));
  }
  EXPECT_TRUE(callback_returned);
}

}  // namespace
