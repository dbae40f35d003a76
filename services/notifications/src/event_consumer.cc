#include "trellis/notifications/event_consumer.h"

#include <algorithm>
#include <pqxx/pqxx>

#include "trellis/common/log.h"

namespace trellis::notifications {
namespace {

using Clock = std::chrono::steady_clock;

// [[id, [field, value, ...] | nil], ...] → entries.
std::vector<StreamEntry> parse_entries(const RedisValue& list) {
  std::vector<StreamEntry> entries;
  for (const auto& item : list.elements) {
    if (item.elements.size() != 2) continue;
    StreamEntry entry;
    entry.id = item.elements[0].str;
    const auto& fields = item.elements[1].elements;
    for (size_t i = 0; i + 1 < fields.size(); i += 2) {
      entry.fields[fields[i].str] = fields[i + 1].str;
    }
    entries.push_back(std::move(entry));
  }
  return entries;
}

void expect_ok(const RedisValue& reply, const char* what) {
  if (reply.is_error()) throw RedisUnavailable(std::string(what) + ": " + reply.str);
}

// A failure that retrying cannot fix: the entry, not the infrastructure, is at fault.
bool is_poison(const std::exception& e) {
  if (dynamic_cast<const PoisonEvent*>(&e)) return true;
  if (dynamic_cast<const pqxx::data_exception*>(&e)) return true;
  return dynamic_cast<const pqxx::integrity_constraint_violation*>(&e) != nullptr;
}

}  // namespace

EventConsumer::EventConsumer(NotificationStore& store, ConsumerConfig consumer, PushConfig push,
                             RedisConfig redis, metrics::Registry* registry)
    : store_(store), config_(std::move(consumer)), pusher_(push), redis_(std::move(redis)) {
  if (!registry) return;
  auto& delivered = registry->counter(
      "notifications_delivered_total",
      "Notifications stored in the inbox, and handed to the gateways' live streams", {"channel"});
  delivered_inbox_ = &delivered.with({"inbox"});
  delivered_push_ = &delivered.with({"push"});
  dead_letters_ = &registry
                       ->counter("notifications_dead_letters_total",
                                 "Events moved to the dead-letter stream after max_deliveries")
                       .with({});
  events_ = &registry->counter("notifications_events_total", "Stream entries processed, by outcome",
                               {"outcome"});
  for (const char* outcome : {"recorded", "duplicate", "ignored", "failed"})
    events_->with({outcome});
  pending_ = &registry
                  ->gauge("notifications_stream_pending",
                          "Entries delivered to the consumer group but not yet acknowledged",
                          {"stream", "group"})
                  .with({config_.stream, config_.group});
}

EventConsumer::~EventConsumer() {
  stop();
}

void EventConsumer::ensure_group() {
  if (group_ready_) return;
  auto reply = redis_.command(
      {"XGROUP", "CREATE", config_.stream, config_.group, config_.start_id, "MKSTREAM"});
  if (reply.is_error() && reply.str.rfind("BUSYGROUP", 0) != 0) {
    throw RedisUnavailable("XGROUP CREATE: " + reply.str);
  }
  group_ready_ = true;
}

std::vector<StreamEntry> EventConsumer::read_group(const std::string& from_id, bool block) {
  std::vector<std::string> command = {"XREADGROUP",     "GROUP", config_.group,
                                      config_.consumer, "COUNT", std::to_string(config_.batch)};
  if (block) {
    command.push_back("BLOCK");
    command.push_back(std::to_string(config_.block_ms));
  }
  command.insert(command.end(), {"STREAMS", config_.stream, from_id});
  // The socket must outwait the BLOCK.
  auto reply = redis_.command(command, block ? config_.block_ms + 1000 : 0);
  if (reply.is_error()) {
    // NOGROUP: Redis lost the stream (restarted without persistence): create it again.
    if (reply.str.rfind("NOGROUP", 0) == 0) group_ready_ = false;
    throw RedisUnavailable("XREADGROUP: " + reply.str);
  }
  if (reply.type != RedisValue::Type::kArray || reply.elements.empty()) return {};
  const auto& per_stream = reply.elements[0];
  if (per_stream.elements.size() != 2) return {};
  return parse_entries(per_stream.elements[1]);
}

std::vector<StreamEntry> EventConsumer::claim_idle() {
  auto reply = redis_.command({"XAUTOCLAIM", config_.stream, config_.group, config_.consumer,
                               std::to_string(config_.claim_idle_ms), claim_cursor_, "COUNT",
                               std::to_string(config_.batch)});
  expect_ok(reply, "XAUTOCLAIM");
  if (reply.elements.size() < 2) return {};
  claim_cursor_ = reply.elements[0].str.empty() ? "0-0" : reply.elements[0].str;
  // Redis 7 drops pending entries that were trimmed from the stream and names them here.
  if (reply.elements.size() >= 3 && !reply.elements[2].elements.empty()) {
    log::warn("pending stream entries were trimmed away before they were processed",
              {{"count", static_cast<int64_t>(reply.elements[2].elements.size())}});
  }
  auto entries = parse_entries(reply.elements[1]);
  fill_deliveries(entries);
  if (!entries.empty()) {
    log::info("claimed idle stream entries", {{"count", static_cast<int64_t>(entries.size())}});
  }
  return entries;
}

void EventConsumer::fill_deliveries(std::vector<StreamEntry>& entries) {
  if (entries.empty()) return;
  std::vector<std::vector<std::string>> commands;
  for (const auto& entry : entries) {
    commands.push_back({"XPENDING", config_.stream, config_.group, entry.id, entry.id, "1"});
  }
  auto replies = redis_.pipeline(commands);
  for (size_t i = 0; i < entries.size(); ++i) {
    const auto& reply = replies[i];
    // [[id, consumer, idle_ms, deliveries]]
    if (!reply.elements.empty() && reply.elements[0].elements.size() == 4) {
      entries[i].deliveries = std::max<int64_t>(1, reply.elements[0].elements[3].integer);
    }
  }
}

void EventConsumer::process(const std::vector<StreamEntry>& entries, ConsumeRound& round) {
  std::vector<std::string> acknowledged;
  // Recorded notifications, each with the entries acknowledged once its push succeeded.
  std::vector<NotificationRecord> to_push;
  std::vector<std::vector<const StreamEntry*>> push_sources;
  std::vector<std::pair<const StreamEntry*, std::string>> dead;
  std::exception_ptr infrastructure_failure;

  // A poison entry stays pending until its last delivery, then goes to the dead letters.
  auto refuse = [&](const StreamEntry& entry, const std::exception& e) {
    ++round.failed;
    if (events_) events_->with({"failed"}).inc();
    if (entry.deliveries >= config_.max_deliveries) {
      dead.emplace_back(&entry, e.what());
    } else {
      log::warn("stream entry failed, will retry",
                {{"entry", entry.id}, {"deliveries", entry.deliveries}, {"error", e.what()}});
    }
  };
  auto recorded = [&](const StreamEntry& entry, const Recorded& result) {
    if (result.created) {
      ++round.recorded;
      if (events_) events_->with({"recorded"}).inc();
      if (delivered_inbox_) delivered_inbox_->inc();
    } else {
      ++round.duplicates;
      if (events_) events_->with({"duplicate"}).inc();
    }
    // A duplicate is pushed again: its first delivery may have died between commit and push.
    // A batch may hold one event twice (published twice by the relay): push it once.
    auto queued = std::find_if(to_push.begin(), to_push.end(),
                               [&](const auto& n) { return n.id == result.notification.id; });
    if (queued == to_push.end()) {
      to_push.push_back(result.notification);
      push_sources.push_back({&entry});
    } else {
      push_sources[queued - to_push.begin()].push_back(&entry);
    }
  };

  // 1. Which entries make a notification (no I/O).
  std::vector<const StreamEntry*> sources;
  std::vector<NewNotification> batch;
  for (const auto& entry : entries) {
    ++round.entries;
    if (entry.fields.empty()) {
      // Trimmed from the stream before it was processed (a long outage): nothing is left to
      // process, and a notification recorded from it earlier but not pushed will not be pushed.
      log::warn("pending stream entry was trimmed away", {{"entry", entry.id}});
      acknowledged.push_back(entry.id);
      continue;
    }
    try {
      auto notification = notification_for_order_event(config_.stream, entry.fields);
      if (!notification) {
        ++round.ignored;
        if (events_) events_->with({"ignored"}).inc();
        acknowledged.push_back(entry.id);
        continue;
      }
      sources.push_back(&entry);
      batch.push_back(std::move(*notification));
    } catch (const std::exception& e) {
      if (!is_poison(e)) throw;
      refuse(entry, e);
    }
  }

  // 2. Record them in one transaction: one commit (one WAL flush) for the whole batch keeps up
  // with bursts. Should the database refuse a row, fall back to one transaction per entry so the
  // poison one fails alone.
  if (!batch.empty()) {
    try {
      auto results = store_.record_all(batch);
      for (size_t i = 0; i < results.size(); ++i) recorded(*sources[i], results[i]);
    } catch (const std::exception& e) {
      if (!is_poison(e)) {
        // PostgreSQL is unreachable or similar: nothing was committed; all stays pending.
        infrastructure_failure = std::current_exception();
      } else {
        for (size_t i = 0; i < batch.size(); ++i) {
          try {
            recorded(*sources[i], store_.record(batch[i]));
          } catch (const std::exception& one) {
            if (!is_poison(one)) {
              infrastructure_failure = std::current_exception();
              break;
            }
            refuse(*sources[i], one);
          }
        }
      }
    }
  }

  // 3. Push. The stream's pending list, not a column, remembers what still needs a push: an entry
  // whose push failed stays pending and is claimed again after claim_idle_ms, up to
  // max_deliveries; then it goes to the dead letters like a poison entry.
  for (const auto& [entry, error] : push(to_push, push_sources, acknowledged, round)) {
    ++round.failed;
    if (events_) events_->with({"failed"}).inc();
    if (entry->deliveries >= config_.max_deliveries) dead.emplace_back(entry, error);
  }

  // 4. Dead letters: an entry is acknowledged only once its copy is safely in that stream.
  if (!dead.empty()) {
    std::vector<std::vector<std::string>> commands;
    for (const auto& [entry, error] : dead) {
      std::vector<std::string> command = {"XADD", config_.dead_letter_stream, "*"};
      for (const auto& [name, value] : entry->fields) {
        command.push_back(name);
        command.push_back(value);
      }
      command.insert(command.end(),
                     {"error", error, "source_stream", config_.stream, "source_id", entry->id,
                      "group", config_.group, "deliveries", std::to_string(entry->deliveries)});
      commands.push_back(std::move(command));
    }
    auto replies = redis_.pipeline(commands);
    for (size_t i = 0; i < dead.size(); ++i) {
      if (replies[i].is_error()) continue;
      acknowledged.push_back(dead[i].first->id);
      ++round.dead_lettered;
      if (dead_letters_) dead_letters_->inc();
      log::error("stream entry moved to the dead-letter stream",
                 {{"entry", dead[i].first->id},
                  {"dead_letter_stream", config_.dead_letter_stream},
                  {"error", dead[i].second}});
    }
  }
  if (!acknowledged.empty()) {
    std::vector<std::string> command = {"XACK", config_.stream, config_.group};
    command.insert(command.end(), acknowledged.begin(), acknowledged.end());
    expect_ok(redis_.command(command), "XACK");
  }
  if (infrastructure_failure) std::rethrow_exception(infrastructure_failure);
}

std::vector<std::pair<const StreamEntry*, std::string>> EventConsumer::push(
    const std::vector<NotificationRecord>& notifications,
    const std::vector<std::vector<const StreamEntry*>>& sources,
    std::vector<std::string>& acknowledged, ConsumeRound& round) {
  std::vector<std::pair<const StreamEntry*, std::string>> failed;
  if (notifications.empty()) return failed;
  std::vector<std::vector<std::string>> commands;
  for (const auto& notification : notifications) {
    commands.push_back(pusher_.push_command(notification));
  }
  auto replies = redis_.pipeline(commands);
  size_t pushed = 0;
  for (size_t i = 0; i < notifications.size(); ++i) {
    if (replies[i].is_error()) {
      log::warn("push failed, the event stays pending and is retried",
                {{"notification_id", notifications[i].id}, {"error", replies[i].str}});
      for (const auto* entry : sources[i]) failed.emplace_back(entry, "push: " + replies[i].str);
      continue;
    }
    ++pushed;
    for (const auto* entry : sources[i]) acknowledged.push_back(entry->id);
  }
  round.pushed += pushed;
  if (delivered_push_) delivered_push_->inc(pushed);
  return failed;
}

void EventConsumer::update_pending_gauge() {
  if (!pending_) return;
  auto reply = redis_.command({"XPENDING", config_.stream, config_.group});
  if (!reply.is_error() && !reply.elements.empty()) pending_->set(reply.elements[0].integer);
}

ConsumeRound EventConsumer::run_once() {
  ConsumeRound round;
  ensure_group();
  auto now = Clock::now();
  if (own_pending_) {
    auto entries = read_group(own_pending_cursor_, /*block=*/false);
    if (entries.size() < static_cast<size_t>(config_.batch)) {
      own_pending_ = false;
      own_pending_cursor_ = "0";
    } else {
      own_pending_cursor_ = entries.back().id;
    }
    fill_deliveries(entries);
    process(entries, round);
  } else if (now >= next_claim_) {
    next_claim_ = now + std::chrono::milliseconds(config_.claim_interval_ms);
    process(claim_idle(), round);
    update_pending_gauge();
  } else {
    process(read_group(">", /*block=*/true), round);
  }
  return round;
}

void EventConsumer::start() {
  if (!loop_) loop_ = std::make_unique<BackgroundLoop>("event-consumer", [this] { return step(); });
  loop_->start();
}

void EventConsumer::stop() {
  if (loop_) loop_->stop();
}

int EventConsumer::step() {
  try {
    run_once();
    if (failure_delay_ms_ != 0) log::info("event consumer is consuming again");
    failure_delay_ms_ = 0;
    return 0;  // XREADGROUP BLOCK paces the loop
  } catch (const std::exception& e) {
    redis_.disconnect();
    group_ready_ = false;
    own_pending_ = true;  // whatever this round took stays pending: take it up first
    own_pending_cursor_ = "0";
    failure_delay_ms_ =
        failure_delay_ms_ == 0 ? 100 : std::min(failure_delay_ms_ * 2, config_.backoff_max_ms);
    log::warn("event consumer cannot proceed, will retry",
              {{"error", e.what()}, {"retry_in_ms", failure_delay_ms_}});
    return failure_delay_ms_;
  }
}

}  // namespace trellis::notifications
