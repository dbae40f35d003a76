// BackgroundLoop: wake() cuts a wait short, pause() is cut short only by stop().
#include "trellis/common/background_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

namespace trellis {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

TEST(BackgroundLoop, WakeRunsAWaitingStepAtOnce) {
  std::atomic<int> runs{0};
  BackgroundLoop loop("test", [&] {
    ++runs;
    return 60000;
  });
  loop.start();
  ASSERT_TRUE(wait_until([&] { return runs == 1; }, 2s));
  loop.wake();
  EXPECT_TRUE(wait_until([&] { return runs == 2; }, 2s));
  loop.stop();
}

TEST(BackgroundLoop, APauseIgnoresWakeButEndsAtStop) {
  std::atomic<int> paused{0}, completed{0};
  BackgroundLoop* self = nullptr;
  BackgroundLoop loop("test", [&] {
    ++paused;
    if (self->pause(60s)) ++completed;
    return 60000;
  });
  self = &loop;
  loop.start();
  ASSERT_TRUE(wait_until([&] { return paused == 1; }, 2s));
  loop.wake();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(paused, 1);  // still in the same pause
  auto stopping = Clock::now();
  loop.stop();
  EXPECT_LT(Clock::now() - stopping, 2s);
  EXPECT_EQ(completed, 0);  // pause() said the loop is stopping
}

TEST(BackgroundLoop, AShortPauseCompletes) {
  std::atomic<int> completed{0};
  BackgroundLoop* self = nullptr;
  BackgroundLoop loop("test", [&] {
    if (self->pause(10ms)) ++completed;
    return 60000;
  });
  self = &loop;
  loop.start();
  EXPECT_TRUE(wait_until([&] { return completed == 1; }, 2s));
  loop.stop();
}

}  // namespace
}  // namespace trellis
