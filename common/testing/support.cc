#include "trellis/testing/support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "trellis/common/trace.h"

namespace trellis::testing {

std::string env_or_fail(const char* name) {
  const char* value = std::getenv(name);
  if (!value || !*value) {
    ADD_FAILURE() << name << " is not set: run the suite with ./trellis test";
    return {};
  }
  return value;
}

std::string random_uuid() {
  auto hex = trace::random_hex(16);
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-4" + hex.substr(13, 3) + "-a" +
         hex.substr(17, 3) + "-" + hex.substr(20, 12);
}

TempFile::TempFile(const std::string& content) {
  char path[] = "/tmp/trellis-test-XXXXXX";
  int fd = mkstemp(path);
  if (fd >= 0) close(fd);
  path_ = path;
  std::ofstream(path_) << content;
}

TempFile::~TempFile() {
  std::remove(path_.c_str());
}

}  // namespace trellis::testing
