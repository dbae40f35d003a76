#include "trellis/common/line_writer.h"

#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace trellis::log {

LineWriter::LineWriter(int fd, LineWriterOptions options) : fd_(fd), options_(options) {
  thread_ = std::thread([this] { run(); });
}

LineWriter::~LineWriter() {
  {
    std::lock_guard lock(queue_mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  flush();
}

void LineWriter::append(std::string_view line, bool urgent) {
  bool wake;
  {
    std::lock_guard lock(queue_mutex_);
    if (pending_.size() + line.size() + 1 > options_.max_pending_bytes) {
      ++dropped_;
      ++dropped_total_;
      return;
    }
    // The thread sleeps until the first line of a batch arrives; later ones need no wake-up
    // unless they make the batch urgent or full.
    wake = pending_.empty() || (urgent && !urgent_) ||
           (pending_.size() < options_.batch_bytes &&
            pending_.size() + line.size() + 1 >= options_.batch_bytes);
    pending_.append(line);
    pending_.push_back('\n');
    urgent_ = urgent_ || urgent;
  }
  if (wake) wake_.notify_one();
}

void LineWriter::flush() {
  std::lock_guard writing(write_mutex_);
  write_pending_locked();
}

void LineWriter::flush_unless_busy() {
  std::unique_lock writing(write_mutex_, std::try_to_lock);
  if (writing.owns_lock()) write_pending_locked();
}

size_t LineWriter::dropped_lines() const {
  std::lock_guard lock(queue_mutex_);
  return dropped_total_;
}

void LineWriter::run() {
  // Signals belong to the thread that waits for them (the services' sigwait), never to this one.
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  std::unique_lock lock(queue_mutex_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
    if (stopping_) return;  // the destructor writes the rest
    // Gather the lines of one interval into one write.
    wake_.wait_for(lock, options_.flush_interval,
                   [&] { return stopping_ || urgent_ || pending_.size() >= options_.batch_bytes; });
    lock.unlock();
    flush();
    lock.lock();
  }
}

void LineWriter::write_pending_locked() {
  writing_.clear();
  size_t dropped;
  {
    std::lock_guard lock(queue_mutex_);
    writing_.swap(pending_);
    dropped = dropped_;
    dropped_ = 0;
    urgent_ = false;
  }
  if (dropped > 0) {
    writing_ += options_.dropped_line ? options_.dropped_line(dropped)
                                      : R"({"level":"warn","msg":"log lines dropped","dropped":)" +
                                            std::to_string(dropped) + "}";
    writing_.push_back('\n');
  }
  size_t done = 0;
  while (done < writing_.size()) {
    auto n = ::write(fd_, writing_.data() + done, writing_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {  // a non-blocking stdout
      pollfd ready{fd_, POLLOUT, 0};
      if (::poll(&ready, 1, 1000) >= 0) continue;
    }
    if (n <= 0) {
      // Nowhere to write to (a closed pipe): count what is lost; the next batch says so.
      auto lost = static_cast<size_t>(
          std::count(writing_.begin() + static_cast<std::ptrdiff_t>(done), writing_.end(), '\n'));
      std::lock_guard lock(queue_mutex_);
      dropped_ += lost;
      dropped_total_ += lost;
      break;
    }
    done += static_cast<size_t>(n);
  }
  // A burst must not pin its buffer size for the life of the process.
  if (writing_.capacity() > 4 * options_.batch_bytes) std::string().swap(writing_);
}

}  // namespace trellis::log
