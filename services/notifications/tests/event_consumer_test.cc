// The consumer against the real PostgreSQL and Redis that ./trellis test starts: a fresh database
// and fresh stream names per test.
#include "trellis/notifications/event_consumer.h"
#include "trellis/testing/support.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <pqxx/pqxx>

#include "trellis/common/migrator.h"
#include "trellis/common/trace.h"
#include "trellis/notifications/database.h"

namespace trellis::notifications {
namespace {

using testing::env_or_fail;

using testing::random_uuid;
class EventConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    pg_ = "host=" + env_or_fail("TRELLIS_TEST_PG_HOST") +
          " port=" + env_or_fail("TRELLIS_TEST_PG_PORT") +
          " user=" + env_or_fail("TRELLIS_TEST_PG_USER");
    redis_.host = env_or_fail("TRELLIS_TEST_REDIS_HOST");
    auto port = env_or_fail("TRELLIS_TEST_REDIS_PORT");
    ASSERT_FALSE(HasFailure());
    redis_.port = std::stoi(port);
    auto suffix = trace::random_hex(6);
    dbname_ = "notifications_it_" + suffix;
    admin("CREATE DATABASE " + dbname_);
    db::PgOptions options;
    options.host = env_or_fail("TRELLIS_TEST_PG_HOST");
    options.port = std::stoi(env_or_fail("TRELLIS_TEST_PG_PORT"));
    options.user = env_or_fail("TRELLIS_TEST_PG_USER");
    options.dbname = dbname_;
    options.pool_size = 2;
    options.application_name = "notifications-integration-test";
    pool_ = std::make_unique<db::PgPool>(options, prepare_statements);
    {
      auto lease = pool_->acquire();
      db::migrate(*lease, migrations(), "trellis-notifications");
    }
    store_ = std::make_unique<NotificationStore>(*pool_);
    consumer_config_.stream = "trellis:test:events:" + suffix;
    consumer_config_.dead_letter_stream = consumer_config_.stream + ":dead";
    consumer_config_.consumer = "consumer-a";
    consumer_config_.block_ms = 50;
    consumer_config_.claim_idle_ms = 100;
    consumer_config_.claim_interval_ms = 100;
    consumer_config_.max_deliveries = 2;
    push_config_.stream = "trellis:test:push:" + suffix;
    push_config_.user_stream_prefix = "trellis:test:user:" + suffix + ":";
    redis_client_ = std::make_unique<RedisConnection>(redis_);
  }

  void TearDown() override {
    store_.reset();
    pool_.reset();
    if (!dbname_.empty()) admin("DROP DATABASE IF EXISTS " + dbname_ + " WITH (FORCE)");
    if (redis_client_) {
      redis_client_->command({"DEL", consumer_config_.stream, consumer_config_.dead_letter_stream,
                              push_config_.stream});
    }
  }

  void admin(const std::string& query) {
    pqxx::connection connection(pg_ + " dbname=postgres");
    pqxx::nontransaction tx(connection);
    tx.exec(query);
  }

  void admin_db(const std::string& query) {
    pqxx::connection connection(pg_ + " dbname=" + dbname_);
    pqxx::nontransaction tx(connection);
    tx.exec(query);
  }

  std::unique_ptr<EventConsumer> make_consumer(const std::string& name = "consumer-a") {
    auto config = consumer_config_;
    config.consumer = name;
    return std::make_unique<EventConsumer>(*store_, config, push_config_, redis_);
  }

  // Appends an order event as the orders relay does.
  std::string publish(int64_t event_id, const std::string& user_id, const std::string& order_id,
                      const std::string& type = "order.confirmed") {
    auto reply = redis_client_->command({"XADD", consumer_config_.stream, "*", "event_id",
                                         std::to_string(event_id), "type", type, "user_id", user_id,
                                         "order_id", order_id, "payload", "{}"});
    return reply.str;
  }

  // Runs rounds until `done` or 5 s pass.
  void run_until(EventConsumer& consumer, const std::function<bool()>& done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < deadline) consumer.run_once();
    ASSERT_TRUE(done()) << "condition not reached within 5 s";
  }

  int64_t count(const std::string& where = "true") {
    pqxx::connection connection(pg_ + " dbname=" + dbname_);
    pqxx::nontransaction tx(connection);
    return tx.exec1("SELECT count(*) FROM notifications WHERE " + where)[0].as<int64_t>();
  }

  // The fields of the first entry of the dead-letter stream.
  std::map<std::string, std::string> first_dead_letter() {
    auto dead = redis_client_->command({"XRANGE", consumer_config_.dead_letter_stream, "-", "+"});
    std::map<std::string, std::string> fields;
    const auto& values = dead.elements.at(0).elements.at(1).elements;
    for (size_t i = 0; i + 1 < values.size(); i += 2) fields[values[i].str] = values[i + 1].str;
    return fields;
  }

  int64_t pending() {
    auto reply =
        redis_client_->command({"XPENDING", consumer_config_.stream, consumer_config_.group});
    return reply.elements.empty() ? -1 : reply.elements[0].integer;
  }

  std::string pg_, dbname_;
  RedisConfig redis_;
  ConsumerConfig consumer_config_;
  PushConfig push_config_;
  std::unique_ptr<db::PgPool> pool_;
  std::unique_ptr<NotificationStore> store_;
  std::unique_ptr<RedisConnection> redis_client_;
};

TEST_F(EventConsumerTest, EachEventBecomesOneNotificationAndIsAcknowledged) {
  auto user = random_uuid(), order = random_uuid();
  publish(1, user, order, "order.created");
  publish(2, user, order, "order.confirmed");
  publish(3, user, order, "order.unknown_kind");
  auto consumer = make_consumer();
  run_until(*consumer, [&] { return count() == 2 && pending() == 0; });
  EXPECT_EQ(count("type = 'order.created' AND title LIKE 'Order % placed'"), 1);
  EXPECT_EQ(redis_client_->command({"XLEN", push_config_.stream}).integer, 2);
}

TEST_F(EventConsumerTest, ARedeliveredEventMakesNoSecondNotification) {
  auto user = random_uuid(), order = random_uuid();
  publish(7, user, order);
  publish(7, user, order);  // the relay published it twice (crash between XADD and commit)
  auto consumer = make_consumer();
  run_until(*consumer, [&] { return pending() == 0 && count() > 0; });
  EXPECT_EQ(count(), 1);
  // Pushed once: the batch held the event twice.
  auto fan_out = redis_client_->command({"XLEN", push_config_.stream});
  EXPECT_EQ(fan_out.integer, 1);
}

TEST_F(EventConsumerTest, PushWritesTheUserStreamAndTheFanOutStreamWithOneId) {
  auto user = random_uuid(), order = random_uuid();
  publish(11, user, order);
  auto consumer = make_consumer();
  run_until(*consumer, [&] { return pending() == 0 && count() == 1; });
  auto user_stream =
      redis_client_->command({"XRANGE", push_config_.user_stream_prefix + user, "-", "+"});
  auto fan_out = redis_client_->command({"XRANGE", push_config_.stream, "-", "+"});
  ASSERT_EQ(user_stream.elements.size(), 1u);
  ASSERT_EQ(fan_out.elements.size(), 1u);
  const auto& fields = fan_out.elements[0].elements[1].elements;  // user_id, id, notification
  ASSERT_EQ(fields.size(), 6u);
  EXPECT_EQ(fields[1].str, user);
  EXPECT_EQ(fields[3].str, user_stream.elements[0].elements[0].str);
  auto json = nlohmann::json::parse(fields[5].str);
  EXPECT_EQ(json["order_id"], order);
  EXPECT_EQ(json["read"], false);
  auto ttl = redis_client_->command({"PTTL", push_config_.user_stream_prefix + user});
  EXPECT_GT(ttl.integer, 0);
  redis_client_->command({"DEL", push_config_.user_stream_prefix + user});
}

TEST_F(EventConsumerTest, AnEventWhosePushFailedStaysPendingAndIsPushedWhenClaimedAgain) {
  auto user = random_uuid(), order = random_uuid();
  // The fan-out stream's key holds a string: every XADD to it fails.
  redis_client_->command({"SET", push_config_.stream, "not a stream"});
  consumer_config_.max_deliveries = 100;  // retried, not dead-lettered, in this test
  publish(31, user, order);
  auto consumer = make_consumer();
  run_until(*consumer, [&] { return count() == 1; });
  consumer->run_once();
  EXPECT_EQ(pending(), 1);  // recorded, but not acknowledged: nobody was told
  redis_client_->command({"DEL", push_config_.stream});
  run_until(*consumer, [&] { return pending() == 0; });  // claimed after claim_idle_ms, pushed
  EXPECT_EQ(count(), 1);  // the retry found the notification, made none
  auto fan_out = redis_client_->command({"XRANGE", push_config_.stream, "-", "+"});
  ASSERT_EQ(fan_out.elements.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(fan_out.elements[0].elements[1].elements.at(5).str)["order_id"],
            order);
  redis_client_->command({"DEL", push_config_.user_stream_prefix + user});
}

TEST_F(EventConsumerTest, AnEventWhosePushKeepsFailingGoesToTheDeadLettersAfterMaxDeliveries) {
  auto user = random_uuid();
  redis_client_->command({"SET", push_config_.stream, "not a stream"});
  publish(32, user, random_uuid());
  auto consumer = make_consumer();  // max_deliveries 2
  run_until(*consumer, [&] {
    return redis_client_->command({"XLEN", consumer_config_.dead_letter_stream}).integer == 1 &&
           pending() == 0;
  });
  EXPECT_EQ(count(), 1);  // in the inbox all the same
  auto fields = first_dead_letter();
  EXPECT_EQ(fields["error"].rfind("push: ", 0), 0u) << fields["error"];
  EXPECT_NE(fields["error"].find("WRONGTYPE"), std::string::npos) << fields["error"];
  redis_client_->command({"DEL", push_config_.stream, push_config_.user_stream_prefix + user});
}

TEST_F(EventConsumerTest, ADuplicateFromAnEarlierDeliveryIsPushedAgain) {
  auto user = random_uuid(), order = random_uuid();
  publish(41, user, order);
  auto consumer = make_consumer();
  run_until(*consumer, [&] { return pending() == 0 && count() == 1; });
  // The relay publishes it again later (it crashed before marking the row published), or the
  // first delivery died between commit and push: the event is pushed again, and acknowledged.
  publish(41, user, order);
  run_until(*consumer, [&] {
    return pending() == 0 && redis_client_->command({"XLEN", push_config_.stream}).integer == 2;
  });
  EXPECT_EQ(count(), 1);
  redis_client_->command({"DEL", push_config_.user_stream_prefix + user});
}

TEST_F(EventConsumerTest, EntriesOfADeadConsumerAreClaimed) {
  auto user = random_uuid();
  for (int i = 1; i <= 3; ++i) publish(i, user, random_uuid());
  // "dead" takes the entries and never acknowledges them.
  redis_client_->command(
      {"XGROUP", "CREATE", consumer_config_.stream, consumer_config_.group, "0", "MKSTREAM"});
  auto taken = redis_client_->command({"XREADGROUP", "GROUP", consumer_config_.group, "dead",
                                       "COUNT", "10", "STREAMS", consumer_config_.stream, ">"});
  ASSERT_EQ(taken.elements.at(0).elements.at(1).elements.size(), 3u);
  ASSERT_EQ(pending(), 3);
  auto consumer = make_consumer("survivor");
  run_until(*consumer, [&] { return count() == 3 && pending() == 0; });
}

TEST_F(EventConsumerTest, APoisonEntryGoesToTheDeadLetterStreamAfterMaxDeliveries) {
  auto user = random_uuid();
  redis_client_->command({"XADD", consumer_config_.stream, "*", "event_id", "5", "type",
                          "order.created", "user_id", "not-a-uuid", "order_id", random_uuid()});
  publish(6, user, random_uuid());
  auto consumer = make_consumer();
  run_until(*consumer, [&] {
    return redis_client_->command({"XLEN", consumer_config_.dead_letter_stream}).integer == 1;
  });
  EXPECT_EQ(count(), 1);  // the good one was not held up
  run_until(*consumer, [&] { return pending() == 0; });
  auto fields = first_dead_letter();
  EXPECT_EQ(fields["user_id"], "not-a-uuid");
  EXPECT_EQ(fields["error"], "user_id is not a UUID");
  EXPECT_EQ(fields["deliveries"], "2");
  EXPECT_EQ(fields["source_stream"], consumer_config_.stream);
}

TEST_F(EventConsumerTest, ABatchIsRecordedInOneTransaction) {
  auto user = random_uuid();
  for (int i = 1; i <= 5; ++i) publish(20 + i, user, random_uuid());
  auto consumer = make_consumer();
  run_until(*consumer, [&] { return count() == 5; });  // the five are read together
  pqxx::connection connection(pg_ + " dbname=" + dbname_);
  pqxx::nontransaction tx(connection);
  EXPECT_EQ(tx.exec1("SELECT count(DISTINCT xmin::text) FROM notifications")[0].as<int>(), 1);
}

TEST_F(EventConsumerTest, RecordAllKeepsBatchOrderAndFindsEarlierAndRepeatedEvents) {
  auto user = random_uuid();
  auto event = [&](int64_t event_id) {
    NewNotification n;
    n.source = consumer_config_.stream;
    n.event_id = event_id;
    n.user_id = user;
    n.type = "order.created";
    n.order_id = random_uuid();
    n.title = "Order " + std::to_string(event_id);
    return n;
  };
  auto earlier = store_->record(event(50));
  ASSERT_TRUE(earlier.created);
  auto results = store_->record_all({event(52), event(50), event(51), event(52)});
  ASSERT_EQ(results.size(), 4u);
  EXPECT_TRUE(results[0].created);
  EXPECT_FALSE(results[1].created);  // recorded before the batch
  EXPECT_EQ(results[1].notification.id, earlier.notification.id);
  EXPECT_TRUE(results[2].created);
  EXPECT_FALSE(results[3].created);  // repeated within the batch
  EXPECT_EQ(results[3].notification.id, results[0].notification.id);
  EXPECT_EQ(results[2].notification.title, "Order 51");
  EXPECT_LT(results[0].notification.seq, results[2].notification.seq);  // seq follows the batch
  EXPECT_EQ(count(), 3);
}

TEST_F(EventConsumerTest, ARowTheDatabaseRefusesFailsAloneInItsBatch) {
  admin_db("ALTER TABLE notifications ADD CONSTRAINT refuse_13 CHECK (event_id <> 13)");
  auto user = random_uuid();
  for (int i = 12; i <= 14; ++i) publish(i, user, random_uuid());
  auto consumer = make_consumer();
  run_until(*consumer, [&] {
    return redis_client_->command({"XLEN", consumer_config_.dead_letter_stream}).integer == 1 &&
           pending() == 0;
  });
  EXPECT_EQ(count(), 2);
  EXPECT_EQ(count("event_id = 13"), 0);
}

TEST_F(EventConsumerTest, PendingEntriesOfThisConsumerAreTakenUpAfterARestart) {
  auto user = random_uuid();
  publish(1, user, random_uuid());
  redis_client_->command(
      {"XGROUP", "CREATE", consumer_config_.stream, consumer_config_.group, "0", "MKSTREAM"});
  // The previous life of consumer-a read the entry and died before XACK.
  redis_client_->command({"XREADGROUP", "GROUP", consumer_config_.group, "consumer-a", "STREAMS",
                          consumer_config_.stream, ">"});
  consumer_config_.claim_idle_ms = 60000;  // no claiming: only the restart path can find it
  auto consumer = make_consumer("consumer-a");
  consumer->run_once();
  EXPECT_EQ(count(), 1);
  EXPECT_EQ(pending(), 0);
}

TEST_F(EventConsumerTest, ListingIsPerUserNewestFirstAndMarkReadIsOwnerOnly) {
  auto alice = random_uuid(), bob = random_uuid();
  for (int i = 1; i <= 5; ++i) publish(i, alice, random_uuid());
  publish(6, bob, random_uuid());
  auto consumer = make_consumer();
  run_until(*consumer, [&] { return count() == 6; });
  auto first = store_->list(alice, false, 3, std::nullopt);
  ASSERT_EQ(first.notifications.size(), 3u);
  EXPECT_TRUE(first.more);
  auto second = store_->list(alice, false, 3, first.notifications.back().seq);
  ASSERT_EQ(second.notifications.size(), 2u);
  EXPECT_FALSE(second.more);
  EXPECT_GT(first.notifications[0].seq, first.notifications[1].seq);
  EXPECT_GT(first.notifications[2].seq, second.notifications[0].seq);
  EXPECT_EQ(store_->unread_count(alice), 5);
  auto target = first.notifications[0].id;
  EXPECT_FALSE(store_->mark_read(target, bob));  // someone else's: not found
  auto marked = store_->mark_read(target, alice);
  ASSERT_TRUE(marked);
  ASSERT_TRUE(marked->read_at_us);
  auto again = store_->mark_read(target, alice);  // idempotent, first read time kept
  EXPECT_EQ(again->read_at_us, marked->read_at_us);
  EXPECT_EQ(store_->unread_count(alice), 4);
  EXPECT_EQ(store_->list(alice, true, 10, std::nullopt).notifications.size(), 4u);
  EXPECT_EQ(store_->unread_count(bob), 1);
}

}  // namespace
}  // namespace trellis::notifications
