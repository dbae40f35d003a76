// BackgroundLoop: wake() cuts a wait short, pause() is cut short only by stop().
#include "trellis/common/background_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "trellis/testing/support.h"

namespace trellis {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

using trellis::testing::wait_until;

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

// A started loop whose step counts itself, pauses for `pause` and counts the pauses that ran out.
struct PausingLoop {
  explicit PausingLoop(std::chrono::milliseconds pause)
      : loop("test", [this, pause] {
          ++steps;
          if (loop.pause(pause)) ++completed;
          return 60000;
        }) {
    loop.start();
  }
  std::atomic<int> steps{0}, completed{0};
  BackgroundLoop loop;  // last: stopped before the counters go
};

TEST(BackgroundLoop, APauseIgnoresWakeButEndsAtStop) {
  PausingLoop pausing(60s);
  ASSERT_TRUE(wait_until([&] { return pausing.steps == 1; }, 2s));
  pausing.loop.wake();
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(pausing.steps, 1);  // still in the same pause
  auto stopping = Clock::now();
  pausing.loop.stop();
  EXPECT_LT(Clock::now() - stopping, 2s);
  EXPECT_EQ(pausing.completed, 0);  // pause() said the loop is stopping
}

TEST(BackgroundLoop, AShortPauseCompletes) {
  PausingLoop pausing(10ms);
  EXPECT_TRUE(wait_until([&] { return pausing.completed == 1; }, 2s));
  pausing.loop.stop();
}

}  // namespace
}  // namespace trellis
