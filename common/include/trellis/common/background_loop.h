// A named thread that runs one step again and again until stopped. The step returns how long to
// wait before it runs next (0: at once); stop() interrupts the wait, so shutdown never waits out
// a sleep, and wake() cuts a wait short (e.g. when new work was committed). A step that throws is
// logged and retried a second later: background work must never take the process down.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace trellis {

class BackgroundLoop {
 public:
  using Step = std::function<int()>;  // returns the delay in milliseconds before the next run

  BackgroundLoop(std::string name, Step step);
  ~BackgroundLoop();  // stops
  BackgroundLoop(const BackgroundLoop&) = delete;
  BackgroundLoop& operator=(const BackgroundLoop&) = delete;

  void start();
  // Waits for a running step to finish; idempotent.
  void stop();
  // Runs the step at once if it is waiting (or once more right after, if it is running).
  // Thread-safe.
  void wake();
  // For the step itself: waits `delay` unless stop() comes first (wake() does not cut it short).
  // Returns false when the loop is stopping.
  bool pause(std::chrono::milliseconds delay);

 private:
  void run();

  std::string name_;
  Step step_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace trellis
