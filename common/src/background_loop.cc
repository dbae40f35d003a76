#include "trellis/common/background_loop.h"

#include <chrono>

#include "trellis/common/log.h"

namespace trellis {

BackgroundLoop::BackgroundLoop(std::string name, Step step)
    : name_(std::move(name)), step_(std::move(step)) {}

BackgroundLoop::~BackgroundLoop() {
  stop();
}

void BackgroundLoop::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void BackgroundLoop::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void BackgroundLoop::wake() {
  {
    std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wake_.notify_all();
}

bool BackgroundLoop::pause(std::chrono::milliseconds delay) {
  std::unique_lock lock(mutex_);
  return !wake_.wait_for(lock, delay, [this] { return stopping_; });
}

void BackgroundLoop::run() {
  constexpr int kAfterFailureMs = 1000;
  for (;;) {
    int delay_ms = 0;
    try {
      delay_ms = step_();
    } catch (const std::exception& e) {
      log::error("background step failed", {{"loop", name_}, {"error", e.what()}});
      delay_ms = kAfterFailureMs;
    }
    std::unique_lock lock(mutex_);
    wake_.wait_for(lock, std::chrono::milliseconds(delay_ms),
                   [this] { return stopping_ || woken_; });
    if (stopping_) return;
    woken_ = false;
  }
}

}  // namespace trellis
