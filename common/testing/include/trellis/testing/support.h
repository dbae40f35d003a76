// Helpers every C++ test may use (linked into each trellis_add_test target).
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace trellis::testing {

// The value of an environment variable that ./trellis test sets (TRELLIS_TEST_PG_HOST, ...);
// records a test failure naming it when it is missing, and returns "".
std::string env_or_fail(const char* name);

// A random version-4 UUID in canonical text form.
std::string random_uuid();

// Polls `condition` every 5 ms until it is true or `limit` passed; returns its last value.
bool wait_until(const std::function<bool()>& condition, std::chrono::milliseconds limit);

// A file with the given content under /tmp, removed again on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& content);
  ~TempFile();
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A TCP socket listening on 127.0.0.1 at a port the OS chose, closed on destruction. It never
// accepts by itself: the kernel completes handshakes up to `backlog`, so clients connect and then
// hear nothing (a stalled server), unless the test accepts with fd().
class LoopbackListener {
 public:
  explicit LoopbackListener(int backlog = 16);
  ~LoopbackListener();
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  int fd() const { return fd_; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace trellis::testing
