// The outbox relay against real PostgreSQL and Redis: order of publication, marking, surviving an
// unreachable Redis, and two relays (replicas) that do not double-send. Each test has its own
// stream, so tests can run in parallel.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_database.h"
#include "trellis/common/metrics.h"
#include "trellis/orders/outbox_relay.h"

namespace trellis::orders::test {
namespace {

class OutboxRelayTest : public OrdersDatabaseTest {
 protected:
  OrdersConfig relay_options(int batch = 100) const {
    OrdersConfig options;
    options.relay_stream = stream_;
    options.relay_batch = batch;
    options.relay_interval_ms = 20;
    options.relay_backoff_max_ms = 200;
    return options;
  }

  // Creates orders (one created event each) and returns the outbox ids in order.
  std::vector<int64_t> make_events(OrderStore& store, int count) {
    auto user = new_user_id();
    for (int i = 0; i < count; ++i) store.create(user, sample_order(), std::nullopt);
    std::vector<int64_t> ids;
    for (const auto& row : sql("SELECT id FROM outbox ORDER BY id")) {
      ids.push_back(row[0].as<int64_t>());
    }
    return ids;
  }

  // A store whose commits wake `relay`, as in the service.
  std::unique_ptr<OrderStore> store_waking(db::PgPool& pool, OutboxRelay& relay) {
    return std::make_unique<OrderStore>(pool, StoreOptions{86400, [&relay] { relay.wake(); }});
  }

  int unpublished() {
    return sql("SELECT count(*) FROM outbox WHERE published_at IS NULL")[0][0].as<int>();
  }

  bool wait_until_published(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (unpublished() == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return unpublished() == 0;
  }

  // The event_id field of every stream entry, oldest first.
  std::vector<int64_t> streamed_ids() {
    std::vector<int64_t> ids;
    for (const auto& entry : read_stream(redis_, stream_)) {
      for (const auto& [name, value] : entry) {
        if (name == "event_id") ids.push_back(std::stoll(value));
      }
    }
    return ids;
  }
};

// A port on which nothing listens (the kernel just handed it out and it was closed again).
int dead_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  close(fd);
  return ntohs(address.sin_port);
}

TEST_F(OutboxRelayTest, PublishesInIdOrderInBatchesAndMarksRowsPublished) {
  auto store = make_store();
  auto ids = make_events(*store, 25);
  ASSERT_EQ(ids.size(), 25u);
  OutboxRelay relay(*pools_.back(), relay_options(10), redis_);
  std::vector<size_t> published;
  std::vector<int64_t> backlog;
  for (int round = 0; round < 4; ++round) {
    auto result = relay.run_once();
    EXPECT_EQ(result.error, "");
    EXPECT_FALSE(result.busy);
    published.push_back(result.published);
    backlog.push_back(result.backlog);
  }
  EXPECT_EQ(published, (std::vector<size_t>{10, 10, 5, 0}));
  EXPECT_EQ(backlog, (std::vector<int64_t>{15, 5, 0, 0}));
  EXPECT_EQ(unpublished(), 0);
  EXPECT_EQ(streamed_ids(), ids);

  auto entries = read_stream(redis_, stream_);
  std::map<std::string, std::string> first(entries[0].begin(), entries[0].end());
  EXPECT_EQ(first.size(), 5u);
  EXPECT_EQ(first["type"], "order.created");
  auto row =
      sql("SELECT order_id::text, user_id::text FROM outbox WHERE id = " + std::to_string(ids[0]));
  EXPECT_EQ(first["order_id"], row[0][0].as<std::string>());
  EXPECT_EQ(first["user_id"], row[0][1].as<std::string>());
  auto payload = nlohmann::json::parse(first["payload"]);
  EXPECT_EQ(payload["id"], first["order_id"]);
  EXPECT_EQ(payload["status"], "PENDING");
}

// Orders committed one after another within the coalescing wait go out in one round, not one
// round each (every commit wakes the relay).
TEST_F(OutboxRelayTest, OrdersCommittedTogetherArePublishedInOneRound) {
  auto options = relay_options(100);
  options.relay_interval_ms = 60000;  // only commits start rounds
  options.relay_coalesce_ms = 400;
  metrics::Registry registry;
  auto& pool = make_pool();
  OutboxRelay relay(pool, options, redis_, &registry);
  auto store = store_waking(pool, relay);
  relay.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // the first (empty) round is done
  auto user = new_user_id();
  for (int i = 0; i < 8; ++i) {
    store->create(user, sample_order(), std::nullopt);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(wait_until_published(std::chrono::seconds(5)));
  relay.stop();
  auto text = registry.render();
  auto counter = [&](const std::string& name) {
    auto at = text.find("\n" + name + " ");
    EXPECT_NE(at, std::string::npos) << name << " in " << text;
    return at == std::string::npos ? -1 : std::stol(text.substr(at + name.size() + 2));
  };
  EXPECT_EQ(counter("orders_outbox_published_total"), 8);
  EXPECT_LE(counter("orders_outbox_relay_rounds_total"), 2);
}

TEST_F(OutboxRelayTest, KeepsEventsWhileRedisIsUnreachableAndSendsThemLater) {
  auto store = make_store();
  auto ids = make_events(*store, 30);
  auto unreachable = redis_;
  unreachable.port = dead_port();
  unreachable.timeout_ms = 200;
  {
    OutboxRelay relay(*pools_.back(), relay_options(10), unreachable);
    auto round = relay.run_once();
    EXPECT_EQ(round.claimed, 10u);
    EXPECT_EQ(round.published, 0u);
    EXPECT_NE(round.error, "");
    EXPECT_EQ(round.backlog, 30);
    relay.start();  // the loop keeps failing with backoff and must not mark anything
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    relay.stop();
  }
  EXPECT_EQ(unpublished(), 30);
  EXPECT_TRUE(streamed_ids().empty());

  // The same database, now with Redis back: everything goes out, once, in order.
  store->create(new_user_id(), sample_order(), std::nullopt);
  ids = make_events(*store, 0);
  OutboxRelay relay(*pools_.back(), relay_options(10), redis_);
  relay.start();
  EXPECT_TRUE(wait_until_published(std::chrono::seconds(10)));
  relay.stop();
  EXPECT_EQ(streamed_ids(), ids);
}

TEST_F(OutboxRelayTest, TwoRelaysDoNotSendAnEventTwice) {
  auto store = make_store(4);
  make_events(*store, 20);
  OutboxRelay first(*pools_.back(), relay_options(7), redis_);
  OutboxRelay second(*pools_.back(), relay_options(7), redis_);
  first.start();
  second.start();
  // More events arrive while both run.
  auto user = new_user_id();
  for (int i = 0; i < 80; ++i) store->create(user, sample_order(), std::nullopt);
  EXPECT_TRUE(wait_until_published(std::chrono::seconds(10)));
  first.stop();
  second.stop();
  auto all = make_events(*store, 0);
  ASSERT_EQ(all.size(), 100u);
  // One relay at a time holds the relay lock: no duplicates, and id order is kept.
  EXPECT_EQ(streamed_ids(), all);
}

TEST_F(OutboxRelayTest, ACommitWakesTheRelayWithoutWaitingForItsPoll) {
  auto options = relay_options();
  options.relay_interval_ms = 60000;  // polling alone would publish nothing within the test
  auto& pool = make_pool();
  OutboxRelay relay(pool, options, redis_);
  auto store = store_waking(pool, relay);
  relay.start();
  // The first round runs at start; let it find the outbox empty and go to sleep.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto started = std::chrono::steady_clock::now();
  store->create(new_user_id(), sample_order(), std::nullopt);
  EXPECT_TRUE(wait_until_published(std::chrono::seconds(5)));
  auto waited = std::chrono::steady_clock::now() - started;
  relay.stop();
  EXPECT_LT(waited, std::chrono::seconds(2));
  EXPECT_EQ(streamed_ids().size(), 1u);
}

// A commit that finds another replica's round under way is not left for the next poll: that
// round may have claimed its rows before this commit.
TEST_F(OutboxRelayTest, AWokenRelayThatFindsTheLockTakenTriesAgainSoon) {
  auto options = relay_options();
  options.relay_interval_ms = 60000;
  auto& pool = make_pool();
  OutboxRelay relay(pool, options, redis_);
  auto store = store_waking(pool, relay);
  relay.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the first round is done
  // "Another replica" holds the relay lock for 500 ms while an order is committed.
  std::thread other_replica([&] {
    sql("BEGIN; SELECT pg_advisory_xact_lock(" + std::to_string(kRelayLockKey) +
        "); SELECT pg_sleep(0.5); COMMIT");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  store->create(new_user_id(), sample_order(), std::nullopt);
  EXPECT_TRUE(wait_until_published(std::chrono::seconds(3)));
  other_replica.join();
  relay.stop();
  EXPECT_EQ(streamed_ids().size(), 1u);
}

}  // namespace
}  // namespace trellis::orders::test
