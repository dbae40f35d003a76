#include "trellis/orders/outbox_relay.h"

#include <algorithm>
#include <chrono>
#include <pqxx/pqxx>

#include "trellis/common/log.h"
#include "trellis/orders/order_store.h"

namespace trellis::orders {
namespace {

std::string id_array(const std::vector<OutboxEvent>& events, size_t count) {
  std::string text = "{";
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) text += ',';
    text += std::to_string(events[i].id);
  }
  return text + "}";
}

}  // namespace

OutboxRelay::OutboxRelay(db::PgPool& pool, const OrdersConfig& options, RedisConfig redis,
                         metrics::Registry* registry)
    : pool_(pool),
      options_(options),
      writer_(std::move(redis), options.relay_stream, options.relay_stream_maxlen),
      loop_("outbox-relay", [this] { return step(); }) {
  if (registry) {
    published_ = &registry
                      ->counter("orders_outbox_published_total",
                                "Outbox events the relay published to the Redis Stream")
                      .with({});
    rounds_ = &registry
                   ->counter("orders_outbox_relay_rounds_total",
                             "Relay rounds that published events (published / rounds: batching)")
                   .with({});
    failures_ = &registry
                     ->counter("orders_outbox_relay_failures_total",
                               "Relay rounds that could not publish every claimed event")
                     .with({});
    // Every replica reports it, whether or not it holds the relay lock.
    backlog_ = &registry
                    ->gauge("orders_outbox_backlog",
                            "Outbox events committed but not yet published to the stream")
                    .with({});
  }
}

OutboxRelay::~OutboxRelay() {
  stop();
}

RelayRound OutboxRelay::run_once() {
  return db::with_transaction(pool_, [&](pqxx::work& tx) {
    RelayRound round;
    auto count_backlog = [&] {
      round.backlog = tx.exec_prepared1("outbox_backlog")[0].as<int64_t>();
    };
    if (!tx.exec_prepared1("outbox_relay_lock", kRelayLockKey)[0].as<bool>()) {
      round.busy = true;
      count_backlog();
      return round;
    }
    std::vector<OutboxEvent> events;
    for (const auto& row : tx.exec_prepared("outbox_claim", options_.relay_batch)) {
      events.push_back({row[0].as<int64_t>(), row[1].as<std::string>(), row[2].as<std::string>(),
                        row[3].as<std::string>(), row[4].as<std::string>()});
    }
    round.claimed = events.size();
    if (events.empty()) {
      round.backlog = 0;  // none unpublished that is not locked by someone else
      return round;
    }
    // The row locks are held while Redis is called: another replica cannot claim these rows.
    round.published = writer_.append(events, round.error);
    if (round.published > 0) {
      tx.exec_prepared0("outbox_mark_published", id_array(events, round.published));
    }
    // A partial batch that went out whole leaves nothing this round could claim (rows committed
    // since then wake the relay again); a backlog builds up only behind full or failed rounds.
    if (round.published == round.claimed &&
        round.claimed < static_cast<size_t>(options_.relay_batch)) {
      round.backlog = 0;
    } else {
      count_backlog();
    }
    return round;
  });
}

void OutboxRelay::start() {
  loop_.start();
}

void OutboxRelay::stop() {
  loop_.stop();
}

void OutboxRelay::wake() {
  if (failure_delay_ms_ == 0) loop_.wake();
}

int OutboxRelay::step() {
  // A notification comes per committed order: waiting a moment lets the orders committed
  // meanwhile go out in the same round (its 6 statements and one Redis pipeline) instead of a
  // round each. Not after a full round (a backlog is drained at once) or while retrying.
  if (options_.relay_coalesce_ms > 0 && !last_round_full_ && failure_delay_ms_ == 0 &&
      !loop_.pause(std::chrono::milliseconds(options_.relay_coalesce_ms))) {
    return 0;  // stopping: the loop ends without another round
  }
  RelayRound round;
  try {
    round = run_once();
  } catch (const std::exception& e) {
    round.error = std::string("database: ") + e.what();
  }
  if (published_) published_->inc(round.published);
  if (rounds_ && round.published > 0) rounds_->inc();
  if (backlog_ && round.backlog >= 0) backlog_->set(round.backlog);
  if (!round.error.empty()) {
    if (failures_) failures_->inc();
    int delay = failure_delay_ms_ == 0
                    ? options_.relay_interval_ms
                    : std::min(failure_delay_ms_ * 2, options_.relay_backoff_max_ms);
    failure_delay_ms_ = delay;
    // The backoff bounds this to one line per retry.
    log::warn("outbox relay cannot publish, will retry",
              {{"error", round.error}, {"retry_in_ms", delay}});
    return delay;
  }
  if (failure_delay_ms_ != 0) log::info("outbox relay publishing again");
  failure_delay_ms_ = 0;
  // Another replica's round, which may have claimed before this process's latest commits.
  if (round.busy) return std::max(1, options_.relay_coalesce_ms);
  bool more_waiting = round.claimed == static_cast<size_t>(options_.relay_batch);
  last_round_full_ = more_waiting;
  return more_waiting ? 0 : options_.relay_interval_ms;
}

void OutboxRelay::prepare(pqxx::connection& c) {
  c.prepare("outbox_relay_lock", "SELECT pg_try_advisory_xact_lock($1::bigint)");
  c.prepare("outbox_claim",
            "SELECT id, order_id::text, user_id::text, type, payload::text FROM outbox "
            "WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED");
  // Served by the partial index of unpublished rows: cheap while the relay keeps up.
  c.prepare("outbox_backlog", "SELECT count(*) FROM outbox WHERE published_at IS NULL");
  c.prepare("outbox_mark_published",
            "UPDATE outbox SET published_at = now() WHERE id = ANY($1::bigint[])");
}

}  // namespace trellis::orders
