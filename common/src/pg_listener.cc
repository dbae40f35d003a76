#include "trellis/common/pg_listener.h"

#include <chrono>

#include "trellis/common/log.h"

namespace trellis::db {
namespace {

class Receiver final : public pqxx::notification_receiver {
 public:
  Receiver(pqxx::connection_base& connection, const std::string& channel,
           const std::function<void()>& on_notify)
      : pqxx::notification_receiver(connection, channel), on_notify_(on_notify) {}
  void operator()(const std::string&, int) override { on_notify_(); }

 private:
  const std::function<void()>& on_notify_;
};

}  // namespace

PgListener::PgListener(PgOptions options, std::string channel, std::function<void()> on_notify)
    : options_(std::move(options)), channel_(std::move(channel)), on_notify_(std::move(on_notify)) {
  options_.application_name += "-listener";
}

PgListener::~PgListener() {
  stop();
}

void PgListener::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void PgListener::stop() {
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
}

void PgListener::run() {
  bool failing = false;
  while (!stopping_) {
    try {
      pqxx::connection connection(connection_string(options_));
      Receiver receiver(connection, channel_, on_notify_);  // LISTEN <channel>
      if (failing) log::info("listening for notifications again", {{"channel", channel_}});
      failing = false;
      // Wake every 200 ms to notice stop(); a notification ends the wait at once.
      while (!stopping_) connection.await_notification(0, 200000);
    } catch (const std::exception& e) {
      if (!failing) {
        log::warn("notification listener lost its connection, will retry",
                  {{"channel", channel_}, {"error", e.what()}});
      }
      failing = true;
      for (int i = 0; i < 5 && !stopping_; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
    }
  }
}

}  // namespace trellis::db
