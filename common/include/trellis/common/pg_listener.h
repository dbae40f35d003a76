// Wakes a callback when PostgreSQL delivers a NOTIFY on one channel, so that a background loop
// reacts to a commit at once instead of on its next poll. Runs its own thread with its own
// connection (LISTEN needs a session of its own); reconnects after a second when the connection
// drops. Notifications are hints: the loop must still poll now and then, since a notification
// sent while the listener was reconnecting is lost.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>

#include "trellis/common/pg_pool.h"

namespace trellis::db {

class PgListener {
 public:
  PgListener(PgOptions options, std::string channel, std::function<void()> on_notify);
  ~PgListener();  // stops
  PgListener(const PgListener&) = delete;
  PgListener& operator=(const PgListener&) = delete;

  void start();
  void stop();  // returns within about 200 ms

 private:
  void run();

  PgOptions options_;
  std::string channel_;
  std::function<void()> on_notify_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace trellis::db
