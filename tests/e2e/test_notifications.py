"""Notifications through the real stack: an order's events reach the notifications service over
the Redis Stream (consumer group) and become the owner's notifications, listed, counted and marked
read over the gateway's REST mapping; a malformed event ends in the dead-letter stream."""

import re
import unittest
import urllib.request

from harness import Stack, local
from replicas import wait_for
from test_orders import ITEMS, signup


class NotificationsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.metrics_port = local.free_port()
        cls.stack = Stack(
            orders_overrides={"orders": {"auto_confirm_delay_ms": 300,
                                         "auto_confirm_interval_ms": 50,
                                         "relay_interval_ms": 20}},
            notifications_overrides={
                "metrics": {"listen": f"127.0.0.1:{cls.metrics_port}"},
                "consumer": {"max_deliveries": 1, "block_ms": 100},
            },
        ).start()
        cls.addClassCleanup(cls.stack.stop)

    def order(self, headers):
        r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"},
                            headers=headers)
        self.assertEqual(r.status, 201, r.body)
        return r.json

    def notifications(self, headers, query=""):
        r = self.stack.http("GET", f"/v1/notifications{query}", headers=headers)
        self.assertEqual(r.status, 200, r.body)
        return r.json

    def test_an_order_notifies_its_owner_of_each_step(self):
        _, ann = signup(self.stack)
        order = self.order(ann)
        self.assertTrue(wait_for(lambda: len(self.notifications(ann)["notifications"]) >= 2, 10))
        listed = self.notifications(ann)["notifications"]
        self.assertEqual([n["type"] for n in listed], ["order.confirmed", "order.created"])
        short = order["id"][:8]
        self.assertEqual(listed[0]["title"], f"Order {short} confirmed")
        self.assertEqual(listed[1]["title"], f"Order {short} placed")
        for n in listed:
            self.assertEqual(n["order_id"], order["id"])
            self.assertFalse(n["read"])
            self.assertRegex(n["created_at"], r"^\d{4}-\d\d-\d\dT")

    def test_unread_count_and_mark_read(self):
        _, ann = signup(self.stack)
        self.order(ann)
        wait_for(lambda: len(self.notifications(ann)["notifications"]) == 2, 10)
        r = self.stack.http("GET", "/v1/notifications/unread_count", headers=ann)
        self.assertEqual((r.status, r.json), (200, {"unread_count": "2"}), r.body)
        first = self.notifications(ann)["notifications"][0]
        r = self.stack.http("POST", f"/v1/notifications/{first['id']}:read", headers=ann)
        self.assertEqual(r.status, 200, r.body)
        self.assertTrue(r.json["read"])
        self.assertIn("read_at", r.json)
        again = self.stack.http("POST", f"/v1/notifications/{first['id']}:read", headers=ann)
        self.assertEqual(again.json["read_at"], r.json["read_at"])  # idempotent
        unread = self.notifications(ann, "?unread_only=true")["notifications"]
        self.assertEqual([n["id"] for n in unread],
                         [n["id"] for n in self.notifications(ann)["notifications"][1:]])
        r = self.stack.http("GET", "/v1/notifications/unread_count", headers=ann)
        self.assertEqual(r.json, {"unread_count": "1"})

    def test_someone_elses_notification_is_not_found(self):
        _, ann = signup(self.stack)
        _, bob = signup(self.stack)
        self.order(ann)
        wait_for(lambda: self.notifications(ann)["notifications"], 10)
        target = self.notifications(ann)["notifications"][0]["id"]
        self.assertEqual(self.notifications(bob)["notifications"], [])
        for bad in (target, "not-a-uuid", "00000000-0000-4000-8000-000000000000"):
            r = self.stack.http("POST", f"/v1/notifications/{bad}:read", headers=bob)
            self.assertEqual(r.status, 404, r.body)
            self.assertEqual(r.json["code"], "not_found")
        r = self.stack.http("GET", "/v1/notifications")
        self.assertEqual(r.status, 401)

    def test_pages_are_newest_first_and_tokens_are_checked(self):
        _, ann = signup(self.stack)
        for _ in range(3):
            self.order(ann)
        wait_for(lambda: len(self.notifications(ann)["notifications"]) == 6, 15)
        seen, token = [], ""
        while True:
            page = self.notifications(ann, f"?limit=4&page_token={token}")
            seen += [n["id"] for n in page["notifications"]]
            token = page["next_page_token"]
            if not token:
                break
        self.assertEqual(seen, [n["id"] for n in self.notifications(ann)["notifications"]])
        self.assertEqual(len(set(seen)), 6)
        first = self.notifications(ann, "?limit=1")["next_page_token"]
        for query in (f"?unread_only=true&page_token={first}", "?page_token=xyz", "?limit=101"):
            r = self.stack.http("GET", f"/v1/notifications{query}", headers=ann)
            self.assertEqual(r.status, 400, query)
            self.assertEqual(r.json["code"], "invalid_argument")

    def test_a_malformed_event_goes_to_the_dead_letter_stream(self):
        self.stack.redis_cli("XADD", self.stack.orders_stream, "*", "event_id", "999999",
                             "type", "order.created", "user_id", "nobody", "order_id", "x")
        dead_letters = lambda: self.stack.redis_cli(  # noqa: E731
            "XRANGE", self.stack.dead_letter_stream, "-", "+")
        self.assertTrue(wait_for(dead_letters, 10))
        dead = dead_letters()
        self.assertIn("user_id is not a UUID", dead)
        self.assertIn("nobody", dead)
        metrics = urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5).read().decode()
        self.assertRegex(metrics, r"(?m)^notifications_dead_letters_total(\{\})? [1-9]")
        self.assertRegex(metrics, r'(?m)^notifications_delivered_total\{channel="inbox"\} ')
        self.assertRegex(metrics, r'(?m)^notifications_stream_pending\{.*\} \d')


if __name__ == "__main__":
    unittest.main()
