"""The whole path, nothing simulated: POST /v1/orders → orders outbox → relay → Redis Stream →
notifications consumer → Postgres row + push streams → gateway → the owner's WebSocket and SSE
streams. Also: the pushed notification is the listed one, and an SSE stream that was closed in the
middle of an order's life resumes with Last-Event-ID and misses nothing."""

import json
import re
import time
import unittest

from harness import Stack, http_request, local
from replicas import wait_for
from test_live_push import PATH, SseClient
from test_orders import ITEMS, signup
from wsclient import WebSocket


class OrderPushTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.admin_port = local.free_port()
        cls.stack = Stack(
            orders_overrides={"orders": {"auto_confirm_delay_ms": 1500,
                                         "auto_confirm_interval_ms": 50}},
            gateway_overrides={"admin": {"port": cls.admin_port}},
        ).start()
        cls.addClassCleanup(cls.stack.stop)

    def streams_open(self):
        text = http_request("127.0.0.1", self.admin_port, "GET", "/metrics").body.decode()
        return sum(int(v) for v in re.findall(r"^gateway_push_streams\{[^}]*\} (\d+)$", text,
                                              re.MULTILINE))

    def sse(self, auth, extra=None):
        client = SseClient(self.stack.http_port, {"Accept": "text/event-stream", **auth,
                                                  **(extra or {})})
        self.addCleanup(client.close)
        self.assertEqual(client.status, 200)
        return client

    def listed(self, auth):
        r = self.stack.http("GET", "/v1/notifications", headers=auth)
        self.assertEqual(r.status, 200, r.body)
        return r.json["notifications"]

    def test_an_order_reaches_websocket_and_sse_within_one_second(self):
        _, auth = signup(self.stack)
        token = auth["Authorization"].removeprefix("Bearer ")
        before = self.streams_open()
        ws = WebSocket.connect("127.0.0.1", self.stack.http_port, PATH, {
            "Sec-WebSocket-Protocol": f"trellis.notifications.v1, bearer.{token}"})
        self.addCleanup(ws.sock.close)
        sse = self.sse(auth)
        self.assertTrue(wait_for(lambda: self.streams_open() >= before + 2, 5))

        started = time.monotonic()
        r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"},
                            headers=auth)
        self.assertEqual(r.status, 201, r.body)
        order = r.json
        pushed = json.loads(ws.recv(timeout=1.0))
        ws_latency = time.monotonic() - started
        event = sse.event(timeout=max(0.01, 1.0 - (time.monotonic() - started)))
        sse_latency = time.monotonic() - started
        self.assertLess(ws_latency, 1.0)
        self.assertLess(sse_latency, 1.0)

        notification = pushed["notification"]
        self.assertEqual(pushed["type"], "notification")
        self.assertEqual((notification["type"], notification["order_id"]),
                         ("order.created", order["id"]))
        self.assertEqual((event["event"], event["id"]), ("notification", pushed["id"]))
        self.assertEqual(json.loads(event["data"]), notification)
        # What was pushed is what the list holds (same id, same fields).
        self.assertEqual(self.listed(auth)[0], notification)

        # The automatic confirmation follows over both streams, in order.
        confirmed = json.loads(ws.recv(timeout=5))
        self.assertEqual(confirmed["notification"]["type"], "order.confirmed")
        self.assertEqual(sse.event(timeout=5)["id"], confirmed["id"])

    def test_sse_resume_across_an_order_loses_nothing(self):
        _, auth = signup(self.stack)
        before = self.streams_open()
        first = self.sse(auth)
        self.assertTrue(wait_for(lambda: self.streams_open() >= before + 1, 5))
        r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"},
                            headers=auth)
        self.assertEqual(r.status, 201, r.body)
        created = first.event(timeout=2)
        first.close()  # the client goes away before the order is confirmed ...
        self.assertTrue(wait_for(lambda: len(self.listed(auth)) == 2, 10))
        # ... and a second order is placed while it is away.
        r = self.stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"},
                            headers=auth)
        self.assertEqual(r.status, 201, r.body)
        self.assertTrue(wait_for(lambda: len(self.listed(auth)) >= 3, 10))
        listed = self.listed(auth)[-3:]  # newest first; the second confirmation may be in too

        resumed = self.sse(auth, {"Last-Event-ID": created["id"]})
        missed = [json.loads(resumed.event(timeout=2)["data"]) for _ in range(2)]
        self.assertEqual([n["id"] for n in missed], [listed[1]["id"], listed[0]["id"]])
        self.assertEqual([n["type"] for n in missed], ["order.confirmed", "order.created"])
        # Live events continue after the replayed ones; nothing before the seam repeats.
        live = json.loads(resumed.event(timeout=5)["data"])
        self.assertEqual((live["type"], live["order_id"]), ("order.confirmed", r.json["id"]))
        with self.assertRaises(TimeoutError):
            resumed.event(timeout=0.5)


if __name__ == "__main__":
    unittest.main()
