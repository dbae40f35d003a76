"""The orders API through the real gateway: shape, validation, idempotency, pagination, ownership,
the status machine and the events the relay puts on the stream. Auto-confirm is pushed out of the
way here (10 minutes); test_orders_events.py covers it."""

import json
import threading
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor

from harness import Stack

PASSWORD = "correct horse battery"
ITEMS = [{"sku": "BOOK-1", "quantity": 2, "unit_price_cents": 1500},
         {"sku": "PEN-9", "quantity": 1, "unit_price_cents": 250}]


def signup(stack):
    email = f"{uuid.uuid4().hex[:12]}@example.com"
    r = stack.http("POST", "/v1/auth/signup",
                   {"email": email, "password": PASSWORD, "display_name": "O"})
    assert r.status == 201, r.body
    return email, {"Authorization": f"Bearer {r.json['access_token']}"}


def admin(stack):
    email, _ = signup(stack)
    assert stack.grant_role(email) == 0
    r = stack.http("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
    assert r.status == 200, r.body
    return {"Authorization": f"Bearer {r.json['access_token']}"}


def stream_entries(redis_cli, stream):
    """XRANGE through redis-cli (a stack's redis_cli): each entry as a dict of its five fields."""
    lines = redis_cli("XRANGE", stream, "-", "+").splitlines()
    entries = []
    for start in range(0, len(lines) - len(lines) % 11, 11):
        fields = lines[start + 1:start + 11]
        entries.append(dict(zip(fields[::2], fields[1::2])))
    return entries


class OrdersApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(orders_overrides={
            "orders": {"auto_confirm_delay_ms": 600000},
            # 50 requests at once on a 2-core machine running other tests: room to queue for a
            # connection, so that none gets 503 "database busy" (safe to retry, but not the point).
            "database": {"pool_size": 16, "acquire_timeout_ms": 5000},
        }).start()
        cls.addClassCleanup(cls.stack.stop)
        cls.ann_email, cls.ann = signup(cls.stack)
        cls.bob_email, cls.bob = signup(cls.stack)
        cls.admin = admin(cls.stack)

    def create(self, headers, items=ITEMS, currency="EUR", extra_headers=None):
        return self.stack.http("POST", "/v1/orders", {"items": items, "currency": currency},
                               headers={**headers, **(extra_headers or {})})

    def test_create_returns_201_with_the_whole_order(self):
        r = self.create(self.ann)
        self.assertEqual(r.status, 201, r.body)
        order = r.json
        self.assertEqual(set(order), {"id", "user_id", "status", "items", "total_cents", "currency",
                                      "created_at", "updated_at"})
        self.assertEqual(order["status"], "PENDING")
        self.assertEqual(order["total_cents"], "3250")  # int64: a JSON string
        self.assertEqual(order["currency"], "EUR")
        # int64 prices render as JSON strings, like total_cents; quantities (int32) as numbers.
        expected = [{**item, "unit_price_cents": str(item["unit_price_cents"])} for item in ITEMS]
        self.assertEqual(order["items"], expected)
        self.assertEqual(order["created_at"], order["updated_at"])
        self.assertRegex(order["created_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
        uuid.UUID(order["id"])
        r = self.stack.http("GET", "/v1/users/me", headers=self.ann)
        self.assertEqual(order["user_id"], r.json["id"])
        r = self.stack.http("GET", f"/v1/orders/{order['id']}", headers=self.ann)
        self.assertEqual(r.status, 200)
        self.assertEqual(r.json, order)

    def test_orders_need_a_token(self):
        self.assertEqual(self.stack.http("GET", "/v1/orders").status, 401)
        r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"})
        self.assertEqual(r.status, 401)

    def test_a_revoked_token_creates_nothing(self):
        # The gateway goes on with the request while it checks revocation, but calls the service
        # only once the check passed.
        email, auth = signup(self.stack)
        r = self.stack.http("POST", "/v1/auth/logout", headers=auth)
        self.assertEqual(r.status, 204, r.body)
        for _ in range(5):
            r = self.create(auth)
            self.assertEqual((r.status, r.json["code"]), (401, "token_revoked"), r.body)
        r = self.stack.http("POST", "/v1/auth/login", {"email": email, "password": PASSWORD})
        fresh = {"Authorization": f"Bearer {r.json['access_token']}"}
        r = self.stack.http("GET", "/v1/orders", headers=fresh)
        self.assertEqual((r.status, r.json["orders"]), (200, []), r.body)

    def test_invalid_orders_get_400_naming_the_field(self):
        cases = [
            ([], "EUR", "items must contain at least 1 item"),
            ([{"sku": "A", "quantity": 1, "unit_price_cents": 1}] * 101, "EUR",
             "items must contain at most 100 items"),
            (ITEMS + [{"sku": "X", "quantity": 0, "unit_price_cents": 1}], "EUR",
             "items[2].quantity must be at least 1"),
            ([{"sku": "A", "quantity": 1, "unit_price_cents": -1}], "EUR",
             "items[0].unit_price_cents must be at least 0"),
            ([{"sku": "", "quantity": 1, "unit_price_cents": 1}], "EUR",
             "items[0].sku is required"),
            ([{"sku": "A", "quantity": 2, "unit_price_cents": "9223372036854775807"}], "EUR",
             "items[0] makes total_cents exceed 9223372036854775807"),
            (ITEMS, "eur", "currency must be an ISO 4217 code"),
            (ITEMS, "ABC", "currency must be an ISO 4217 code"),
            (ITEMS, "", "currency is required"),
        ]
        for items, currency, message in cases:
            with self.subTest(message=message):
                r = self.create(self.ann, items, currency)
                self.assertEqual(r.status, 400, r.body)
                self.assertEqual(r.json["code"], "invalid_argument")
                self.assertIn(message, r.json["message"])
        r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR", "x": 1},
                            headers=self.ann)
        self.assertEqual(r.status, 400)
        self.assertEqual(r.json["code"], "malformed_json")

    def test_fifty_concurrent_posts_with_one_key_create_one_order(self):
        _, carol = signup(self.stack)
        key = {"Idempotency-Key": f"checkout-{uuid.uuid4()}"}
        with ThreadPoolExecutor(max_workers=50) as pool:
            responses = list(pool.map(lambda _: self.create(carol, extra_headers=key), range(50)))
        self.assertEqual([r.status for r in responses], [201] * 50,
                         [r.body for r in responses if r.status != 201][:3])
        ids = {r.json["id"] for r in responses}
        self.assertEqual(len(ids), 1)
        r = self.stack.http("GET", "/v1/orders", headers=carol)
        self.assertEqual([o["id"] for o in r.json["orders"]], list(ids))
        # A retry later still gets the original, byte for byte.
        again = self.create(carol, extra_headers=key)
        self.assertEqual(again.status, 201)
        self.assertEqual(again.json, responses[0].json)
        # Same key, different body: refused, and still one order.
        other = self.create(carol, items=ITEMS[:1], extra_headers=key)
        self.assertEqual(other.status, 422, other.body)
        self.assertEqual(other.json["code"], "idempotency_key_reused")
        r = self.stack.http("GET", "/v1/orders", headers=carol)
        self.assertEqual(len(r.json["orders"]), 1)
        # The key is per user: Bob's identical key is his own.
        bobs = self.create(self.bob, extra_headers=key)
        self.assertEqual(bobs.status, 201)
        self.assertNotIn(bobs.json["id"], ids)

    def test_pages_neither_skip_nor_repeat_while_orders_are_inserted(self):
        _, dave = signup(self.stack)
        existing = {self.create(dave).json["id"] for _ in range(25)}
        stop = threading.Event()
        inserted = []

        def insert():
            while not stop.is_set():
                r = self.create(dave)
                if r.status == 201:
                    inserted.append(r.json["id"])

        inserter = threading.Thread(target=insert)
        inserter.start()
        seen, token = [], None
        try:
            for _ in range(50):
                path = "/v1/orders?limit=4" + (f"&page_token={token}" if token else "")
                r = self.stack.http("GET", path, headers=dave)
                self.assertEqual(r.status, 200, r.body)
                seen += [o["id"] for o in r.json["orders"]]
                token = r.json["next_page_token"]
                if not token:
                    break
                time.sleep(0.02)
        finally:
            stop.set()
            inserter.join()
        self.assertTrue(inserted)
        self.assertEqual(len(seen), len(set(seen)), "an order was listed twice")
        self.assertLessEqual(existing, set(seen), "an order was skipped")

    def test_list_defaults_limits_and_refuses_bad_tokens(self):
        _, erin = signup(self.stack)
        for _ in range(22):
            self.create(erin)
        r = self.stack.http("GET", "/v1/orders", headers=erin)
        self.assertEqual(len(r.json["orders"]), 20)
        created = [o["created_at"] for o in r.json["orders"]]
        self.assertEqual(created, sorted(created, reverse=True))
        token = r.json["next_page_token"]
        r = self.stack.http("GET", f"/v1/orders?page_token={token}", headers=erin)
        self.assertEqual(len(r.json["orders"]), 2)
        self.assertEqual(r.json["next_page_token"], "")
        for query in ("limit=0", "limit=101", "limit=-3", "limit=abc"):
            with self.subTest(query=query):
                r = self.stack.http("GET", f"/v1/orders?{query}", headers=erin)
                self.assertEqual(r.status, 400, r.body)
                self.assertIn("limit", r.json["message"])
        self.assertEqual(self.stack.http("GET", "/v1/orders?limit=100", headers=erin).status, 200)
        tampered = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
        for bad in (tampered, "garbage", token + "A"):
            r = self.stack.http("GET", f"/v1/orders?page_token={bad}", headers=erin)
            self.assertEqual(r.status, 400, r.body)
            self.assertIn("page_token", r.json["message"])
        # Someone else's token does not work in another listing.
        r = self.stack.http("GET", f"/v1/orders?page_token={token}", headers=self.bob)
        self.assertEqual(r.status, 400)

    def test_another_users_order_is_not_found_and_admins_see_all(self):
        order = self.create(self.ann).json
        self.create(self.bob)
        for method, path in (("GET", f"/v1/orders/{order['id']}"),
                             ("POST", f"/v1/orders/{order['id']}:cancel")):
            r = self.stack.http(method, path, headers=self.bob)
            self.assertEqual(r.status, 404, r.body)
            self.assertEqual(r.json["code"], "not_found")
        r = self.stack.http("GET", f"/v1/orders/{uuid.uuid4()}", headers=self.ann)
        self.assertEqual(r.status, 404)
        r = self.stack.http("GET", "/v1/orders/not-a-uuid", headers=self.ann)
        self.assertEqual(r.status, 404)
        r = self.stack.http("GET", "/v1/orders?limit=100", headers=self.bob)
        self.assertNotIn(order["id"], [o["id"] for o in r.json["orders"]])
        r = self.stack.http("GET", f"/v1/orders/{order['id']}", headers=self.admin)
        self.assertEqual(r.status, 200)
        r = self.stack.http("GET", "/v1/orders?limit=100", headers=self.admin)
        owners = {o["user_id"] for o in r.json["orders"]}
        self.assertIn(order["id"], [o["id"] for o in r.json["orders"]])
        self.assertGreater(len(owners), 1)

    def test_status_machine_with_403_and_409(self):
        order = self.create(self.ann).json
        path = f"/v1/orders/{order['id']}"
        for action in ("confirm", "ship"):
            r = self.stack.http("POST", f"{path}:{action}", headers=self.ann)
            self.assertEqual(r.status, 403, r.body)
            self.assertEqual(r.json["code"], "permission_denied")

        def act(action, headers, status):
            r = self.stack.http("POST", f"{path}:{action}", headers=headers)
            self.assertEqual(r.status, status, r.body)
            if status == 409:
                self.assertEqual(r.json["code"], "illegal_transition")
            return r.json

        act("ship", self.admin, 409)
        self.assertEqual(act("confirm", self.admin, 200)["status"], "CONFIRMED")
        act("confirm", self.admin, 409)
        shipped = act("ship", self.admin, 200)
        self.assertEqual(shipped["status"], "SHIPPED")
        self.assertGreater(shipped["updated_at"], shipped["created_at"])
        act("cancel", self.ann, 409)
        act("cancel", self.admin, 409)

        path = f"/v1/orders/{self.create(self.ann).json['id']}"
        self.assertEqual(act("cancel", self.ann, 200)["status"], "CANCELLED")
        act("cancel", self.ann, 409)
        act("confirm", self.admin, 409)
        path = f"/v1/orders/{self.create(self.ann).json['id']}"
        act("confirm", self.admin, 200)
        self.assertEqual(act("cancel", self.admin, 200)["status"], "CANCELLED")

        # Every change reached the stream, in order, with the order snapshot as payload.
        order_id = order["id"]
        deadline = time.monotonic() + 10
        while True:
            events = [e for e in stream_entries(self.stack.redis_cli, self.stack.orders_stream)
                      if e.get("order_id") == order_id]
            if len(events) >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual([e["type"] for e in events],
                         ["order.created", "order.confirmed", "order.shipped"])
        ids = [int(e["event_id"]) for e in events]
        self.assertEqual(ids, sorted(ids))
        self.assertEqual(events[-1]["user_id"], order["user_id"])
        self.assertEqual(json.loads(events[-1]["payload"]), shipped)


if __name__ == "__main__":
    unittest.main()
