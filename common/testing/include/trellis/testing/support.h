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

}  // namespace trellis::testing
