"""Cached order reads stay fresh when orders change behind the gateway's back: the gateway follows
the orders event stream and invalidates the owner's cached entries."""

import time
import unittest
import uuid

from harness import Stack

ORDER = {"items": [{"sku": "BOOK-1", "quantity": 2, "unit_price_cents": 1500}], "currency": "EUR"}


class CacheEventsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(orders_overrides={"orders": {"auto_confirm_delay_ms": 1500}})
        cls.stack.gateway_overrides = {"cache": {
            "routes": [
                {"route": "/v1/orders/{id}", "ttl_s": 300, "per_user": True,
                 "invalidated_by": ["POST /v1/orders/*"]},
                {"route": "/v1/orders", "ttl_s": 300, "per_user": True,
                 "invalidated_by": ["POST /v1/orders", "POST /v1/orders/*"]},
            ],
            "invalidation_streams": [{"stream": cls.stack.orders_stream,
                                      "routes": ["/v1/orders/{id}", "/v1/orders"]}],
        }}
        cls.stack.start()
        cls.addClassCleanup(cls.stack.stop)
        r = cls.stack.http("POST", "/v1/auth/signup",
                           {"email": f"{uuid.uuid4().hex[:10]}@example.com",
                            "password": "correct horse", "display_name": "C"})
        cls.auth = {"Authorization": f"Bearer {r.json['access_token']}"}

    def test_background_confirmation_reaches_cached_readers(self):
        r = self.stack.http("POST", "/v1/orders", ORDER, headers=self.auth)
        self.assertEqual(r.status, 201, r.body)
        path = f"/v1/orders/{r.json['id']}"
        first = self.stack.http("GET", path, headers=self.auth)
        self.assertEqual((first.json["status"], first.headers["x-cache"]), ("PENDING", "MISS"))
        # The order.created event may still be on its way (the relay batches for a few ms) and
        # drop the entry once more: read until PENDING is served from the cache.
        seen = []
        for _ in range(20):
            again = self.stack.http("GET", path, headers=self.auth)
            seen.append((again.json["status"], again.headers["x-cache"]))
            if seen[-1] == ("PENDING", "HIT"):
                break
            time.sleep(0.02)
        self.assertEqual(seen[-1], ("PENDING", "HIT"), seen)
        deadline = time.monotonic() + 10
        status = "PENDING"
        while time.monotonic() < deadline and status == "PENDING":
            time.sleep(0.2)
            status = self.stack.http("GET", path, headers=self.auth).json["status"]
        self.assertEqual(status, "CONFIRMED", "a cached PENDING outlived the confirmation event")

    def test_writes_through_the_gateway_invalidate_before_answering(self):
        r = self.stack.http("POST", "/v1/orders", ORDER, headers=self.auth)
        order_id = r.json["id"]
        listed = self.stack.http("GET", "/v1/orders", headers=self.auth)
        self.assertIn(order_id, [o["id"] for o in listed.json["orders"]])
        self.stack.http("GET", f"/v1/orders/{order_id}", headers=self.auth)  # now cached
        r = self.stack.http("POST", "/v1/orders", ORDER, headers=self.auth)
        newer = r.json["id"]
        listed = self.stack.http("GET", "/v1/orders", headers=self.auth)
        self.assertEqual(listed.json["orders"][0]["id"], newer)
        r = self.stack.http("POST", f"/v1/orders/{order_id}:cancel", headers=self.auth)
        self.assertEqual(r.status, 200, r.body)
        after = self.stack.http("GET", f"/v1/orders/{order_id}", headers=self.auth)
        self.assertEqual(after.json["status"], "CANCELLED")


if __name__ == "__main__":
    unittest.main()
