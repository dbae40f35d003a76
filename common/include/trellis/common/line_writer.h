// Writes lines to a file descriptor from a background thread, in batches, so that the threads
// that log (the gateway's I/O threads among them) never wait for the disk or for whoever reads
// the pipe, and pay one write(2) per batch instead of one per line.
#pragma once
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace trellis::log {

struct LineWriterOptions {
  // A line waits at most this long before it is written; urgent lines are written at once.
  std::chrono::milliseconds flush_interval{20};
  // A batch this large is written without waiting for the interval.
  size_t batch_bytes = 64 * 1024;
  // Lines beyond this many unwritten bytes are dropped (and counted in a line of their own)
  // rather than holding memory or blocking the caller when the reader stalls.
  size_t max_pending_bytes = 16 * 1024 * 1024;
  // The line (without newline) that reports how many lines were dropped before a batch.
  std::function<std::string(size_t dropped)> dropped_line{};  // none: a generic line
};

class LineWriter {
 public:
  explicit LineWriter(int fd, LineWriterOptions options = {});
  // Writes what is pending, then stops the thread.
  ~LineWriter();
  LineWriter(const LineWriter&) = delete;
  LineWriter& operator=(const LineWriter&) = delete;

  // Queues `line` plus a newline. Never blocks on I/O.
  void append(std::string_view line, bool urgent = false);
  // Writes everything queued so far before it returns (shutdown, tests).
  void flush();
  // Writes what is queued from the calling thread unless a write is under way already (then that
  // one will): for the lines that may be a process's last (errors before a crash).
  void flush_unless_busy();
  size_t dropped_lines() const;

 private:
  void run();
  void write_pending_locked();  // with write_mutex_ held

  const int fd_;
  const LineWriterOptions options_;
  mutable std::mutex queue_mutex_;
  std::condition_variable wake_;
  std::string pending_;
  size_t dropped_ = 0;        // since the last batch (reported in the output)
  size_t dropped_total_ = 0;  // since start
  bool urgent_ = false;
  bool stopping_ = false;
  // Held while a batch is taken and written, so batches reach the fd in the order queued.
  std::mutex write_mutex_;
  std::string writing_;  // the other buffer, swapped with pending_ so both keep their capacity
  std::thread thread_;
};

}  // namespace trellis::log
