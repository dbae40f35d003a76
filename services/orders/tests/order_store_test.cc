// OrderStore against a real PostgreSQL: idempotent creation under concurrency, keyset pagination
// under concurrent inserts, transitions, the outbox written in the same transaction, the
// background sweeps.
#include <gtest/gtest.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "test_database.h"

namespace trellis::orders::test {
namespace {

using Outcome = TransitionResult::Outcome;

class OrderStoreTest : public OrdersDatabaseTest {
 protected:
  // The outbox events of one order, oldest first.
  std::vector<std::string> event_types(const std::string& order_id) {
    std::vector<std::string> types;
    for (const auto& row :
         sql("SELECT type FROM outbox WHERE order_id = '" + order_id + "' ORDER BY id")) {
      types.push_back(row[0].as<std::string>());
    }
    return types;
  }
};

TEST_F(OrderStoreTest, CreateStoresTheOrderAndItsEventInOneTransaction) {
  auto store = make_store();
  auto user = new_user_id();
  auto created = store->create(user, sample_order(1999, 3), std::nullopt);
  EXPECT_FALSE(created.replayed);
  const auto& order = created.order;
  EXPECT_EQ(order.user_id, user);
  EXPECT_EQ(order.status, OrderStatus::kPending);
  EXPECT_EQ(order.total_cents, 3 * 1999 + 100);
  ASSERT_EQ(order.items.size(), 2u);
  EXPECT_GT(order.created_at_us, 0);

  auto found = store->find(order.id, {user, false});
  ASSERT_TRUE(found);
  EXPECT_EQ(found->items.size(), 2u);
  EXPECT_EQ(found->items[0].sku, "SKU-1");
  EXPECT_EQ(found->items[0].quantity, 3);
  EXPECT_EQ(found->items[1].unit_price_cents, 100);
  EXPECT_EQ(found->created_at_us, order.created_at_us);

  // Same transaction: the order row and its event row carry the same creating transaction id.
  auto rows =
      sql("SELECT o.xmin::text = e.xmin::text, e.type, e.user_id::text, e.payload::text, "
          "e.published_at IS NULL FROM orders o JOIN outbox e ON e.order_id = o.id "
          "WHERE o.id = '" +
          order.id + "'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_TRUE(rows[0][0].as<bool>());
  EXPECT_EQ(rows[0][1].as<std::string>(), "order.created");
  EXPECT_EQ(rows[0][2].as<std::string>(), user);
  EXPECT_TRUE(rows[0][4].as<bool>());
  auto payload = nlohmann::json::parse(rows[0][3].as<std::string>());
  EXPECT_EQ(payload["id"], order.id);
  EXPECT_EQ(payload["status"], "PENDING");
  EXPECT_EQ(payload["total_cents"], std::to_string(3 * 1999 + 100));
  EXPECT_EQ(payload["items"].size(), 2u);
  EXPECT_EQ(payload["currency"], "EUR");
}

// The relay is woken after exactly the commits that wrote outbox rows.
TEST_F(OrderStoreTest, CommitsThatWriteEventsAndOnlyThoseWakeTheRelay) {
  std::atomic<int> wakes{0};
  OrderStore store(make_pool(), {86400, [&wakes] { ++wakes; }});
  auto user = new_user_id();
  auto plain = store.create(user, sample_order(), std::nullopt).order;
  EXPECT_EQ(wakes, 1);
  IdempotencyClaim claim{"key-1", std::string(32, 'h')};
  store.create(user, sample_order(), claim);
  EXPECT_EQ(wakes, 2);
  EXPECT_TRUE(store.create(user, sample_order(), claim).replayed);
  EXPECT_EQ(wakes, 2);  // a replay writes nothing
  Viewer owner{user, false};
  EXPECT_EQ(store.transition(plain.id, owner, OrderAction::kShip).outcome, Outcome::kIllegal);
  EXPECT_EQ(wakes, 2);
  EXPECT_EQ(store.transition(plain.id, owner, OrderAction::kCancel).outcome, Outcome::kChanged);
  EXPECT_EQ(wakes, 3);
  EXPECT_EQ(store.auto_confirm(0, 100), 1);  // the keyed order
  EXPECT_EQ(wakes, 4);
  EXPECT_EQ(store.auto_confirm(0, 100), 0);
  EXPECT_EQ(wakes, 4);
  EXPECT_EQ(sql("SELECT count(*) FROM outbox")[0][0].as<int>(), 4);
}

TEST_F(OrderStoreTest, ACreateOnPooledConnectionsTheServerDroppedMakesOneOrder) {
  auto store = make_store(2);
  auto user = new_user_id();
  store->create(user, sample_order(500, 1), std::nullopt);  // opens a pooled connection
  sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
      "WHERE datname = current_database() AND pid <> pg_backend_pid()");
  auto created = store->create(user, sample_order(700, 1), std::nullopt);
  EXPECT_EQ(sql("SELECT count(*) FROM orders WHERE user_id = '" + user + "'")[0][0].as<int>(), 2);
  auto found = store->find(created.order.id, {user, false});
  ASSERT_TRUE(found);
  EXPECT_EQ(found->seq, created.order.seq);
  EXPECT_EQ(event_types(created.order.id), std::vector<std::string>{"order.created"});
}

TEST_F(OrderStoreTest, ARepeatedInsertRecognisesTheOrderItsFirstAttemptCommitted) {
  // The second attempt after a broken connection: the first may have been committed with the
  // reply lost. Same id and user: that order, once; otherwise an error.
  db::PgPool pool(database_options(1), OrderStore::prepare);
  auto lease = pool.acquire();
  pqxx::nontransaction tx(*lease);
  OrderRecord order;
  order.id = "4d1c0a2e-7f3b-4c8e-9a1d-2b3c4d5e6f70";
  order.user_id = new_user_id();
  order.items = sample_order(250, 2).items;
  order.total_cents = 600;
  order.currency = "EUR";
  order.created_at_us = order.updated_at_us = 1'800'000'000'000'000;
  OrderStore::insert_or_recognise(tx, order, false);
  auto first_seq = order.seq;
  EXPECT_GT(first_seq, 0);

  auto again = order;
  again.seq = 0;
  EXPECT_THROW(OrderStore::insert_or_recognise(tx, again, false), pqxx::unique_violation);
  OrderStore::insert_or_recognise(tx, again, true);
  EXPECT_EQ(again.seq, first_seq);
  EXPECT_EQ(again.created_at_us, order.created_at_us);
  EXPECT_EQ(again.items.size(), order.items.size());
  EXPECT_EQ(sql("SELECT count(*) FROM orders WHERE id = '" + order.id + "'")[0][0].as<int>(), 1);
  EXPECT_EQ(event_types(order.id), std::vector<std::string>{"order.created"});

  auto someone_else = order;
  someone_else.user_id = new_user_id();
  EXPECT_THROW(OrderStore::insert_or_recognise(tx, someone_else, true), pqxx::unique_violation);
}

TEST_F(OrderStoreTest, FiftyConcurrentRequestsWithOneKeyCreateExactlyOneOrder) {
  auto store = make_store(16);
  auto user = new_user_id();
  IdempotencyClaim claim{"key-1", std::string(32, 'h')};
  constexpr int kThreads = 50;
  std::vector<std::string> ids(kThreads);
  std::atomic<int> replayed{0}, failed{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      while (!go) std::this_thread::yield();
      try {
        auto result = store->create(user, sample_order(), claim);
        ids[i] = result.order.id;
        if (result.replayed) ++replayed;
      } catch (const std::exception& e) {
        ++failed;
        ADD_FAILURE() << e.what();
      }
    });
  }
  go = true;
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1u);
  EXPECT_EQ(replayed, kThreads - 1);
  EXPECT_EQ(sql("SELECT count(*) FROM orders")[0][0].as<int>(), 1);
  EXPECT_EQ(sql("SELECT count(*) FROM outbox")[0][0].as<int>(), 1);
  EXPECT_EQ(sql("SELECT count(*) FROM order_items")[0][0].as<int>(), 2);
}

TEST_F(OrderStoreTest, AKeyIsPerUserAndBoundToItsRequest) {
  auto store = make_store();
  auto ann = new_user_id(), bob = new_user_id();
  IdempotencyClaim first{"k", std::string(32, 'a')};
  auto original = store->create(ann, sample_order(), first);
  auto again = store->create(ann, sample_order(), first);
  EXPECT_TRUE(again.replayed);
  EXPECT_EQ(again.order.id, original.order.id);
  EXPECT_EQ(again.order.items.size(), 2u);

  IdempotencyClaim other_body{"k", std::string(32, 'b')};
  EXPECT_THROW(store->create(ann, sample_order(), other_body), IdempotencyKeyReused);
  // Another user's identical key is another key.
  auto bobs = store->create(bob, sample_order(), first);
  EXPECT_FALSE(bobs.replayed);
  EXPECT_NE(bobs.order.id, original.order.id);
  EXPECT_EQ(sql("SELECT count(*) FROM orders")[0][0].as<int>(), 2);
}

TEST_F(OrderStoreTest, ExpiredKeysAreReusableAndPurged) {
  auto store = make_store();
  auto user = new_user_id();
  auto first = store->create(user, sample_order(), IdempotencyClaim{"k", std::string(32, 'a')});
  store->create(user, sample_order(), IdempotencyClaim{"other", std::string(32, 'a')});
  sql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
      "WHERE idempotency_key = 'k'");
  // Not purged yet, but expired: the key starts afresh, even with another body.
  auto second = store->create(user, sample_order(), IdempotencyClaim{"k", std::string(32, 'b')});
  EXPECT_FALSE(second.replayed);
  EXPECT_NE(second.order.id, first.order.id);

  sql("UPDATE idempotency_keys SET expires_at = now() - interval '1 second' "
      "WHERE idempotency_key = 'k'");
  EXPECT_EQ(store->purge_expired_keys(1000), 1);
  EXPECT_EQ(store->purge_expired_keys(1000), 0);
  EXPECT_EQ(sql("SELECT idempotency_key FROM idempotency_keys")[0][0].as<std::string>(), "other");
}

TEST_F(OrderStoreTest, KeysetPagesNeitherSkipNorRepeatWhileOrdersAreInserted) {
  auto store = make_store(6);
  auto user = new_user_id();
  std::set<std::string> existing;
  for (int i = 0; i < 60; ++i) existing.insert(store->create(user, sample_order(), {}).order.id);
  // Someone else's orders never show up in this user's listing.
  store->create(new_user_id(), sample_order(), {});

  std::atomic<bool> stop{false};
  std::atomic<int> inserted{0};
  std::thread inserter([&] {
    while (!stop) {
      store->create(user, sample_order(), {});
      ++inserted;
    }
  });
  std::vector<std::string> seen;
  std::optional<int64_t> before;
  int64_t previous_seq = std::numeric_limits<int64_t>::max();
  for (int page = 0; page < 100; ++page) {
    auto result = store->list({user, false}, 7, before);
    for (const auto& order : result.orders) {
      EXPECT_LT(order.seq, previous_seq);  // strictly newest first
      previous_seq = order.seq;
      EXPECT_EQ(order.user_id, user);
      seen.push_back(order.id);
    }
    if (!result.more) break;
    before = result.orders.back().seq;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  stop = true;
  inserter.join();
  EXPECT_GT(inserted, 0);
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), seen.size()) << "an order was repeated";
  for (const auto& id : existing) EXPECT_TRUE(unique.count(id)) << "skipped " << id;
}

TEST_F(OrderStoreTest, AdminsListAndSeeEveryOrder) {
  auto store = make_store();
  auto ann = new_user_id(), bob = new_user_id();
  auto anns = store->create(ann, sample_order(), {}).order;
  store->create(bob, sample_order(), {});
  EXPECT_EQ(store->list({ann, false}, 10, std::nullopt).orders.size(), 1u);
  auto all = store->list({ann, true}, 10, std::nullopt);
  EXPECT_EQ(all.orders.size(), 2u);
  EXPECT_FALSE(all.more);
  EXPECT_FALSE(store->find(anns.id, {bob, false}));
  EXPECT_TRUE(store->find(anns.id, {bob, true}));
  EXPECT_FALSE(store->find("not-a-uuid", {ann, true}));
  EXPECT_FALSE(store->find(new_user_id(), {ann, true}));
}

TEST_F(OrderStoreTest, TransitionsFollowTheStatusMachineAndWriteEvents) {
  auto store = make_store();
  auto ann = new_user_id(), bob = new_user_id();
  auto order = store->create(ann, sample_order(), {}).order;
  Viewer owner{ann, false}, stranger{bob, false}, admin{bob, true};

  EXPECT_EQ(store->transition(order.id, stranger, OrderAction::kCancel).outcome,
            Outcome::kNotFound);
  EXPECT_EQ(store->transition("nope", admin, OrderAction::kCancel).outcome, Outcome::kNotFound);
  auto illegal = store->transition(order.id, admin, OrderAction::kShip);
  EXPECT_EQ(illegal.outcome, Outcome::kIllegal);
  EXPECT_EQ(illegal.order.status, OrderStatus::kPending);

  auto confirmed = store->transition(order.id, admin, OrderAction::kConfirm);
  ASSERT_EQ(confirmed.outcome, Outcome::kChanged);
  EXPECT_EQ(confirmed.order.status, OrderStatus::kConfirmed);
  EXPECT_EQ(confirmed.order.items.size(), 2u);
  EXPECT_GE(confirmed.order.updated_at_us, order.updated_at_us);
  auto shipped = store->transition(order.id, admin, OrderAction::kShip);
  EXPECT_EQ(shipped.order.status, OrderStatus::kShipped);
  EXPECT_EQ(store->transition(order.id, owner, OrderAction::kCancel).outcome, Outcome::kIllegal);

  auto second = store->create(ann, sample_order(), {}).order;
  EXPECT_EQ(store->transition(second.id, owner, OrderAction::kCancel).order.status,
            OrderStatus::kCancelled);
  EXPECT_EQ(store->transition(second.id, owner, OrderAction::kCancel).outcome, Outcome::kIllegal);
  EXPECT_EQ(store->transition(second.id, admin, OrderAction::kConfirm).outcome, Outcome::kIllegal);

  EXPECT_EQ(event_types(order.id),
            (std::vector<std::string>{"order.created", "order.confirmed", "order.shipped"}));
  EXPECT_EQ(event_types(second.id), (std::vector<std::string>{"order.created", "order.cancelled"}));
  // Each change and its event were committed together.
  auto rows =
      sql("SELECT count(*) FROM outbox e JOIN orders o ON o.id = e.order_id "
          "WHERE e.type = 'order.shipped' AND e.xmin::text = o.xmin::text");
  EXPECT_EQ(rows[0][0].as<int>(), 1);
  auto payload = nlohmann::json::parse(
      sql("SELECT payload::text FROM outbox WHERE type = 'order.cancelled'")[0][0]
          .as<std::string>());
  EXPECT_EQ(payload["status"], "CANCELLED");
}

TEST_F(OrderStoreTest, AutoConfirmTakesDueOrdersAndSkipsLockedOnes) {
  auto store = make_store();
  auto user = new_user_id();
  auto due = store->create(user, sample_order(), {}).order;
  auto locked = store->create(user, sample_order(), {}).order;
  auto cancelled = store->create(user, sample_order(), {}).order;
  store->transition(cancelled.id, {user, false}, OrderAction::kCancel);
  EXPECT_EQ(store->auto_confirm(60000, 100), 0);  // none is a minute old

  // Another replica (or a cancel in flight) holds one order: the sweep must not wait for it.
  pqxx::connection other(db::connection_string(database_options(1)));
  pqxx::work holder(other);
  holder.exec("SELECT 1 FROM orders WHERE id = '" + locked.id + "' FOR UPDATE");
  auto started = std::chrono::steady_clock::now();
  EXPECT_EQ(store->auto_confirm(0, 100), 1);
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(2));
  holder.abort();
  EXPECT_EQ(store->auto_confirm(0, 100), 1);
  EXPECT_EQ(store->auto_confirm(0, 100), 0);

  EXPECT_EQ(store->find(due.id, {user, false})->status, OrderStatus::kConfirmed);
  EXPECT_EQ(store->find(locked.id, {user, false})->status, OrderStatus::kConfirmed);
  EXPECT_EQ(store->find(cancelled.id, {user, false})->status, OrderStatus::kCancelled);
  EXPECT_EQ(event_types(due.id), (std::vector<std::string>{"order.created", "order.confirmed"}));
}

TEST_F(OrderStoreTest, ASweepWritesEachConfirmedOrdersEventInOneStatementInOrder) {
  auto store = make_store();
  auto user = new_user_id();
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i)
    ids.push_back(store->create(user, sample_order(100 + i), {}).order.id);
  EXPECT_EQ(store->auto_confirm(0, 100), 5);
  // Oldest order first (the sweep's order), one event each, the payload as the API renders it.
  auto rows =
      sql("SELECT order_id::text, user_id::text, payload::text, "
          "pg_typeof(payload)::text FROM outbox WHERE type = 'order.confirmed' ORDER BY id");
  ASSERT_EQ(rows.size(), 5u);
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(rows[i][0].as<std::string>(), ids[i]);
    EXPECT_EQ(rows[i][1].as<std::string>(), user);
    auto payload = nlohmann::json::parse(rows[i][2].as<std::string>());
    EXPECT_EQ(payload["id"], ids[i]);
    EXPECT_EQ(payload["status"], "CONFIRMED");
    EXPECT_EQ(rows[i][3].as<std::string>(), "json");
  }
}

TEST_F(OrderStoreTest, PublishedEventsArePurgedAfterTheirRetention) {
  auto store = make_store();
  auto user = new_user_id();
  store->create(user, sample_order(), {});
  store->create(user, sample_order(), {});
  EXPECT_EQ(store->purge_published_events(60, 100), 0);  // unpublished rows stay
  sql("UPDATE outbox SET published_at = now() - interval '2 minutes'");
  EXPECT_EQ(store->purge_published_events(3600, 100), 0);
  EXPECT_EQ(store->purge_published_events(60, 1), 1);
  EXPECT_EQ(store->purge_published_events(60, 100), 1);
}

}  // namespace
}  // namespace trellis::orders::test
