#include "trellis/common/line_writer.h"
#include "trellis/testing/support.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace trellis::log {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// A pipe whose read end the test drains.
struct Pipe {
  int read_fd = -1;
  int write_fd = -1;
  Pipe() {
    int fds[2];
    EXPECT_EQ(::pipe(fds), 0);
    read_fd = fds[0];
    write_fd = fds[1];
  }
  ~Pipe() {
    close_write();
    ::close(read_fd);
  }
  void close_write() {
    if (write_fd >= 0) ::close(write_fd);
    write_fd = -1;
  }
  // What one read(2) returns within `timeout` ("" if nothing arrived).
  std::string read_once(std::chrono::milliseconds timeout) {
    pollfd p{read_fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return "";
    char buffer[1 << 16];
    auto n = ::read(read_fd, buffer, sizeof buffer);
    return n > 0 ? std::string(buffer, static_cast<size_t>(n)) : "";
  }
  // Reads until the write end is closed.
  std::string read_to_end() {
    std::string out;
    char buffer[1 << 16];
    ssize_t n;
    while ((n = ::read(read_fd, buffer, sizeof buffer)) > 0) out.append(buffer, n);
    return out;
  }
  // Reads until `bytes` arrived or `timeout` passed.
  std::string read_at_least(size_t bytes, std::chrono::milliseconds timeout) {
    std::string out;
    testing::wait_until([&] { return (out += read_once(0ms)).size() >= bytes; }, timeout);
    return out;
  }
};

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    auto end = text.find('\n', start);
    if (end == std::string::npos) {
      lines.push_back(text.substr(start) + "<no newline>");
      break;
    }
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return lines;
}

TEST(LineWriter, LinesFromManyThreadsArriveWholeAndInEachThreadsOrder) {
  Pipe pipe;
  std::string output;
  std::thread drain([&] { output = pipe.read_to_end(); });
  {
    LineWriter writer(pipe.write_fd);
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&writer, t] {
        for (int i = 0; i < 2000; ++i)
          writer.append("t" + std::to_string(t) + " " + std::to_string(i));
      });
    }
    for (auto& thread : threads) thread.join();
  }  // the destructor writes the rest
  pipe.close_write();
  drain.join();
  std::vector<int> next(8, 0);
  auto lines = lines_of(output);
  ASSERT_EQ(lines.size(), 8u * 2000);
  for (const auto& line : lines) {
    auto space = line.find(' ');
    ASSERT_NE(space, std::string::npos) << line;
    int thread = std::stoi(line.substr(1, space - 1));
    EXPECT_EQ(line.substr(space + 1), std::to_string(next[thread]++)) << line;
  }
}

TEST(LineWriter, GathersLinesOfOneIntervalIntoOneWrite) {
  Pipe pipe;
  LineWriter writer(pipe.write_fd, {.flush_interval = 300ms});
  for (int i = 0; i < 100; ++i) writer.append("line " + std::to_string(i));
  // Nothing yet: the first line opened a batch that waits for the interval.
  EXPECT_EQ(pipe.read_once(100ms), "");
  auto batch = pipe.read_once(2000ms);  // then all of it at once
  EXPECT_EQ(lines_of(batch).size(), 100u);
}

TEST(LineWriter, WritesALineWithinTheIntervalWithoutFlush) {
  Pipe pipe;
  LineWriter writer(pipe.write_fd, {.flush_interval = 20ms});
  auto began = Clock::now();
  writer.append("hello");
  EXPECT_EQ(pipe.read_at_least(6, 2000ms), "hello\n");
  EXPECT_LT(Clock::now() - began, 1000ms);
}

TEST(LineWriter, UrgentLinesAreWrittenAtOnce) {
  Pipe pipe;
  LineWriter writer(pipe.write_fd, {.flush_interval = 60s});
  writer.append("routine");
  writer.append("alarm", /*urgent=*/true);
  EXPECT_EQ(pipe.read_at_least(14, 2000ms), "routine\nalarm\n");
}

TEST(LineWriter, FlushWritesEverythingQueuedBeforeItReturns) {
  Pipe pipe;
  LineWriter writer(pipe.write_fd, {.flush_interval = 60s});
  writer.append("a");
  writer.append("b");
  writer.flush();
  EXPECT_EQ(pipe.read_once(0ms), "a\nb\n");
}

TEST(LineWriter, FlushUnlessBusyWritesFromTheCallingThread) {
  Pipe pipe;
  LineWriter writer(pipe.write_fd, {.flush_interval = 60s});
  writer.append("last words", /*urgent=*/true);
  writer.flush_unless_busy();
  EXPECT_EQ(pipe.read_at_least(11, 2000ms), "last words\n");
}

TEST(LineWriter, CountsLinesItCouldNotWrite) {
  auto previous = ::signal(SIGPIPE, SIG_IGN);  // a closed pipe answers EPIPE instead
  {
    Pipe pipe;
    ::close(pipe.read_fd);
    pipe.read_fd = ::open("/dev/null", O_RDONLY);  // for the destructor
    LineWriter writer(pipe.write_fd, {.flush_interval = 60s});
    writer.append("one");
    writer.append("two");
    writer.flush();
    EXPECT_EQ(writer.dropped_lines(), 2u);
  }
  ::signal(SIGPIPE, previous);
}

TEST(LineWriter, DropsAndCountsLinesBeyondTheLimitAndSaysSo) {
  Pipe pipe;
  LineWriterOptions options{.flush_interval = 60s, .max_pending_bytes = 20};
  options.dropped_line = [](size_t n) { return "dropped " + std::to_string(n); };
  LineWriter writer(pipe.write_fd, options);
  for (int i = 0; i < 5; ++i) writer.append("12345678");  // 9 bytes each: two fit
  EXPECT_EQ(writer.dropped_lines(), 3u);
  writer.flush();
  EXPECT_EQ(pipe.read_once(0ms), "12345678\n12345678\ndropped 3\n");
  writer.append("next");
  writer.flush();
  EXPECT_EQ(pipe.read_once(0ms), "next\n");  // reported once
}

TEST(LineWriter, AStalledReaderNeverBlocksTheLoggingThread) {
  Pipe pipe;  // nobody reads for now: the pipe fills and the writer thread blocks in write
  std::string output;
  std::thread drain;
  {
    LineWriter writer(pipe.write_fd, {.flush_interval = 1ms, .max_pending_bytes = 256 * 1024});
    std::string line(100, 'x');
    auto began = Clock::now();
    for (int i = 0; i < 50'000; ++i) writer.append(line);  // 5 MB, far beyond pipe and limit
    EXPECT_LT(Clock::now() - began, 5s);
    EXPECT_GT(writer.dropped_lines(), 0u);
    drain = std::thread([&] { output = pipe.read_to_end(); });
  }  // the destructor writes the rest once the reader drains
  pipe.close_write();
  drain.join();
  EXPECT_NE(output.find("\"msg\":\"log lines dropped\""), std::string::npos);
}

}  // namespace
}  // namespace trellis::log
