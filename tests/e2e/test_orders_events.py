"""The background side of orders through the real stack: PENDING orders are confirmed
automatically after the configured delay, and the outbox relay delivers every event to the Redis
Stream, also when its Redis was down for a while (it has one of its own here, so that the gateway's
Redis stays up)."""

import json
import shutil
import subprocess
import tempfile
import time
import unittest
from datetime import datetime, timezone
from pathlib import Path

from harness import Stack, local, metric_value
from test_orders import ITEMS, signup, stream_entries

AUTO_CONFIRM_MS = 1000


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    return predicate()


class OrderEventsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        work = Path(tempfile.mkdtemp(prefix="trellis-orders-redis-"))
        cls.addClassCleanup(shutil.rmtree, work, ignore_errors=True)
        cls.redis = local.Redis(local.free_port(), work / "data", work / "redis.pid",
                                work / "redis.log")
        cls.redis.start()
        cls.addClassCleanup(cls.redis.stop)
        cls.metrics_port = local.free_port()
        cls.stack = Stack(orders_overrides={
            "metrics": {"listen": f"127.0.0.1:{cls.metrics_port}"},
            "redis": {"port": cls.redis.port, "timeout_ms": 200},
            "orders": {"auto_confirm_delay_ms": AUTO_CONFIRM_MS, "auto_confirm_interval_ms": 100,
                       "relay_interval_ms": 50, "relay_backoff_max_ms": 400},
        }).start()
        cls.addClassCleanup(cls.stack.stop)
        _, cls.ann = signup(cls.stack)

    def events_of(self, order_id):
        entries = stream_entries(self.orders_redis_cli, self.stack.orders_stream)
        return [e for e in entries if e.get("order_id") == order_id]

    def orders_redis_cli(self, *args):
        """redis-cli against the relay's own Redis."""
        return subprocess.run(["redis-cli", "-p", str(self.redis.port), *args],
                              capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()

    def metric(self, series):
        """The value of one series on the orders service's /metrics, or None."""
        return metric_value(self.metrics_port, series)

    def create(self):
        r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"},
                            headers=self.ann)
        self.assertEqual(r.status, 201, r.body)
        return r.json

    def get(self, order_id):
        return self.stack.http("GET", f"/v1/orders/{order_id}", headers=self.ann).json

    def test_pending_orders_are_confirmed_after_the_delay(self):
        order = self.create()
        self.assertEqual(order["status"], "PENDING")
        confirmed = wait_for(lambda: (o := self.get(order["id"]))["status"] == "CONFIRMED" and o,
                             timeout=8)
        self.assertTrue(confirmed, "not confirmed within 8 s")
        waited = (parse_time(confirmed["updated_at"]) - parse_time(confirmed["created_at"]))
        self.assertGreaterEqual(waited, AUTO_CONFIRM_MS / 1000 - 0.01)
        events = wait_for(lambda: len(self.events_of(order["id"])) >= 2 and
                          self.events_of(order["id"]), timeout=5)
        self.assertEqual([e["type"] for e in events], ["order.created", "order.confirmed"])
        self.assertEqual(json.loads(events[1]["payload"])["status"], "CONFIRMED")
        self.assertLess(int(events[0]["event_id"]), int(events[1]["event_id"]))

    def test_events_wait_out_a_redis_outage(self):
        self.redis.stop()
        try:
            order = self.create()  # the database alone decides: creating works without Redis

            def unpublished():
                rows = self.stack.sql(
                    f"SELECT type FROM outbox WHERE order_id = '{order['id']}' "
                    "AND published_at IS NULL ORDER BY id", dbname=self.stack.orders_db_name)
                return [r[0] for r in rows]

            # Auto-confirm adds its event meanwhile; the relay keeps failing and marks nothing.
            wait_for(lambda: len(unpublished()) == 2, timeout=8)
            time.sleep(0.5)
            self.assertEqual(unpublished(), ["order.created", "order.confirmed"])
            self.assertGreaterEqual(self.metric("orders_outbox_backlog"), 2)
        finally:
            self.redis.start()  # same port, empty: a Redis that lost everything
        events = wait_for(lambda: len(self.events_of(order["id"])) >= 2 and
                          self.events_of(order["id"]), timeout=10)
        self.assertTrue(events, "events did not arrive after Redis came back")
        self.assertEqual([e["type"] for e in events], ["order.created", "order.confirmed"])
        rows = self.stack.sql("SELECT count(*) FROM outbox WHERE published_at IS NULL",
                              dbname=self.stack.orders_db_name)
        self.assertEqual(rows[0][0], "0")
        self.assertTrue(wait_for(lambda: self.metric("orders_outbox_backlog") == 0, timeout=5))
        self.assertGreaterEqual(self.metric('orders_created_total{status="created"}'), 1)
        self.assertIn("outbox relay cannot publish", self.stack.orders_log_text())


def parse_time(text):
    """RFC 3339 UTC with optional fraction → unix seconds (float)."""
    main, _, fraction = text.rstrip("Z").partition(".")
    seconds = datetime.strptime(main, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc).timestamp()
    return seconds + (float(f"0.{fraction}") if fraction else 0.0)


if __name__ == "__main__":
    unittest.main()
