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

// Listens on 127.0.0.1 and never accepts: the kernel completes connections, nobody answers.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&address), length) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
    }
    port_ = ntohs(address.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

TEST(UpstreamsShutdown, CancelsOutstandingCallsAndWaitsUntilTheirCallbacksReturned) {
  SilentListener silent;
  trellis::metrics::Registry registry;
  Upstreams upstreams({{"orders", silent.target()}}, registry);
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
  SilentListener silent;
  trellis::metrics::Registry registry;
  Upstreams upstreams({{"orders", silent.target()}}, registry);
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
  SilentListener silent;
  trellis::metrics::Registry registry;
  std::atomic<bool> callback_returned{false};
  {
    Upstreams upstreams({{"orders", silent.target()}}, registry);
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
