// Integration-test fixture: a fresh, migrated orders database per test on the PostgreSQL that
// ./trellis test starts, plus the Redis it starts. A missing server variable fails the test.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "trellis/common/pg_pool.h"
#include "trellis/orders/config.h"
#include "trellis/orders/order_store.h"

namespace trellis::orders::test {

class OrdersDatabaseTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // Runs SQL as the superuser in this test's database; returns the rows.
  pqxx::result sql(const std::string& query);
  // A new pool of `pool_size` connections, kept until the test ends.
  db::PgPool& make_pool(int pool_size = 4);
  // A new store over a new pool of `pool_size` connections.
  std::unique_ptr<OrderStore> make_store(int pool_size = 4, int ttl_s = 86400);
  db::PgOptions database_options(int pool_size) const;

  static NewOrder sample_order(int64_t price_cents = 500, int quantity = 2);
  static std::string new_user_id();

  // Redis of the test run, and a stream name no other test uses.
  RedisConfig redis_;
  std::string stream_;
  std::vector<std::unique_ptr<db::PgPool>> pools_;

 private:
  void admin_exec(const std::string& query);

  std::string pg_host_, pg_port_, pg_user_, dbname_;
};

// Every entry of a Redis stream: its fields as a map, oldest first.
std::vector<std::vector<std::pair<std::string, std::string>>> read_stream(
    const RedisConfig& redis, const std::string& stream);
void delete_stream(const RedisConfig& redis, const std::string& stream);

}  // namespace trellis::orders::test
