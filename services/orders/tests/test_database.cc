#include "test_database.h"

#include <hiredis/hiredis.h>

#include <cstdlib>

#include "trellis/common/migrator.h"
#include "trellis/common/trace.h"
#include "trellis/orders/database.h"
#include "trellis/testing/support.h"

namespace trellis::orders::test {
namespace {

using testing::env_or_fail;

}  // namespace

void OrdersDatabaseTest::SetUp() {
  pg_host_ = env_or_fail("TRELLIS_TEST_PG_HOST");
  pg_port_ = env_or_fail("TRELLIS_TEST_PG_PORT");
  pg_user_ = env_or_fail("TRELLIS_TEST_PG_USER");
  redis_.host = env_or_fail("TRELLIS_TEST_REDIS_HOST");
  auto redis_port = env_or_fail("TRELLIS_TEST_REDIS_PORT");
  ASSERT_FALSE(HasFailure());
  redis_.port = std::stoi(redis_port);
  redis_.timeout_ms = 500;
  stream_ = "trellis:test:orders:" + trace::random_hex(6);
  dbname_ = "orders_it_" + trace::random_hex(6);
  admin_exec("CREATE DATABASE " + dbname_);
  db::PgPool pool(database_options(1), prepare_statements);
  auto lease = pool.acquire();
  db::migrate(*lease, migrations(), "trellis-orders");
}

void OrdersDatabaseTest::TearDown() {
  pools_.clear();
  if (!dbname_.empty()) admin_exec("DROP DATABASE IF EXISTS " + dbname_ + " WITH (FORCE)");
  if (!stream_.empty() && redis_.port > 0) delete_stream(redis_, stream_);
}

db::PgOptions OrdersDatabaseTest::database_options(int pool_size) const {
  db::PgOptions options;
  options.host = pg_host_;
  options.port = std::stoi(pg_port_);
  options.dbname = dbname_;
  options.user = pg_user_;
  options.pool_size = pool_size;
  options.acquire_timeout_ms = 10000;
  options.application_name = "orders-integration-test";
  return options;
}

db::PgPool& OrdersDatabaseTest::make_pool(int pool_size) {
  pools_.push_back(std::make_unique<db::PgPool>(database_options(pool_size), prepare_statements));
  return *pools_.back();
}

std::unique_ptr<OrderStore> OrdersDatabaseTest::make_store(int pool_size, int ttl_s) {
  StoreOptions options;
  options.idempotency_ttl_s = ttl_s;
  return std::make_unique<OrderStore>(make_pool(pool_size), options);
}

pqxx::result OrdersDatabaseTest::sql(const std::string& query) {
  pqxx::connection connection("host=" + pg_host_ + " port=" + pg_port_ + " user=" + pg_user_ +
                              " dbname=" + dbname_);
  pqxx::nontransaction tx(connection);
  return tx.exec(query);
}

void OrdersDatabaseTest::admin_exec(const std::string& query) {
  pqxx::connection admin("host=" + pg_host_ + " port=" + pg_port_ + " user=" + pg_user_ +
                         " dbname=postgres");
  pqxx::nontransaction tx(admin);
  tx.exec(query);
}

NewOrder OrdersDatabaseTest::sample_order(int64_t price_cents, int quantity) {
  NewOrder order;
  order.items = {{"SKU-1", quantity, price_cents}, {"SKU-2", 1, 100}};
  order.currency = "EUR";
  order.total_cents = quantity * price_cents + 100;
  return order;
}

std::string OrdersDatabaseTest::new_user_id() {
  return testing::random_uuid();
}

std::vector<std::vector<std::pair<std::string, std::string>>> read_stream(
    const RedisConfig& redis, const std::string& stream) {
  std::vector<std::vector<std::pair<std::string, std::string>>> entries;
  auto* context = redisConnect(redis.host.c_str(), redis.port);
  if (!context || context->err) {
    ADD_FAILURE() << "cannot connect to redis";
    if (context) redisFree(context);
    return entries;
  }
  auto* reply = static_cast<redisReply*>(
      redisCommand(context, "XRANGE %b - +", stream.data(), stream.size()));
  if (reply && reply->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i < reply->elements; ++i) {
      const auto* fields = reply->element[i]->element[1];
      std::vector<std::pair<std::string, std::string>> entry;
      for (size_t f = 0; f + 1 < fields->elements; f += 2) {
        entry.emplace_back(std::string(fields->element[f]->str, fields->element[f]->len),
                           std::string(fields->element[f + 1]->str, fields->element[f + 1]->len));
      }
      entries.push_back(std::move(entry));
    }
  }
  if (reply) freeReplyObject(reply);
  redisFree(context);
  return entries;
}

void delete_stream(const RedisConfig& redis, const std::string& stream) {
  auto* context = redisConnect(redis.host.c_str(), redis.port);
  if (context && !context->err) {
    auto* reply =
        static_cast<redisReply*>(redisCommand(context, "DEL %b", stream.data(), stream.size()));
    if (reply) freeReplyObject(reply);
  }
  if (context) redisFree(context);
}

}  // namespace trellis::orders::test
