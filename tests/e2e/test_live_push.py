"""Live push of notifications (GET /v1/notifications/stream) over SSE and WebSocket, through real
gateways and a real Redis. Notifications are published the way the notifications service does:
one Lua script per notification (user stream + fan-out stream)."""

import json
import os
import re
import signal
import socket
import tempfile
import time
import unittest
import uuid
from pathlib import Path

from harness import Stack, http_request, local
from replicas import Replica, wait_for
from wsclient import Closed, HandshakeError, WebSocket

PATH = "/v1/notifications/stream"
PASSWORD = "correct horse battery"

# The Redis contract, verbatim; the loop variant repeats it ARGV[3] times (slow-consumer test).
PUBLISH = """
local u = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 1000, '*', 'notification', ARGV[2])
redis.call('PEXPIRE', KEYS[1], 604800000)
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'user_id', ARGV[1], 'id', u,
           'notification', ARGV[2])
return u
"""
PUBLISH_MANY = """
local last
for i = 1, tonumber(ARGV[3]) do
  last = redis.call('XADD', KEYS[1], 'MAXLEN', '~', 1000, '*', 'notification', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], 604800000)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', 100000, '*', 'user_id', ARGV[1], 'id', last,
             'notification', ARGV[2])
end
return last
"""


class SseClient:
    """Raw-socket SSE reader: status, headers, then events (id, event, data), bounded waits."""

    def __init__(self, port, headers, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        lines = [f"GET {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buffer = b""
        self.closed = False
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buffer:
            self._fill(deadline)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        self.status = int(status_line.split(" ")[1])
        self.headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.retry = None

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("nothing from the server in time")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            self.closed = True
            raise EOFError("server closed the stream")
        self.buffer += chunk

    def body(self, timeout=5.0):
        """The rest of a non-stream answer (close-delimited or Content-Length)."""
        deadline = time.monotonic() + timeout
        length = int(self.headers.get("content-length", "-1"))
        try:
            while length < 0 or len(self.buffer) < length:
                self._fill(deadline)
        except EOFError:
            pass
        return self.buffer

    def event(self, timeout=5.0):
        """The next event as a dict (comments and retry lines are skipped); EOFError at the end."""
        deadline = time.monotonic() + timeout
        while True:
            while b"\n\n" not in self.buffer:
                self._fill(deadline)
            block, _, self.buffer = self.buffer.partition(b"\n\n")
            event = {}
            for line in block.decode().split("\n"):
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if name == "retry":
                    self.retry = value
                    continue
                event[name] = event[name] + "\n" + value if name in event else value
            if event:
                return event

    def close(self):
        self.sock.close()


class LivePushTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        tag = uuid.uuid4().hex[:8]
        cls.push_stream = f"trellis:notifications:push:{tag}"
        cls.user_prefix = f"trellis:notifications:user:{tag}:"
        cls.admin_port = local.free_port()
        cls.stack = Stack(gateway_overrides={
            "admin": {"port": cls.admin_port},
            "push": {"stream": cls.push_stream, "user_stream_prefix": cls.user_prefix,
                     "revocation_check_ms": 300, "auth_timeout_ms": 1000,
                     "heartbeat_ms": 2000, "max_queued_messages": 32, "max_replay": 10,
                     "max_queued_bytes": 262144}}).start()
        cls.addClassCleanup(cls.stack.stop)
        cls.port = cls.stack.http_port

    # --- helpers

    def user(self):
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": f"{uuid.uuid4().hex[:10]}@example.com",
                             "password": PASSWORD, "display_name": "Pat"})
        self.assertEqual(r.status, 201, r.body)
        return r.json["user"]["id"], r.json["access_token"]

    def publish(self, user_id, title="hello"):
        body = json.dumps({"id": str(uuid.uuid4()), "type": "order.confirmed",
                           "order_id": str(uuid.uuid4()), "title": title, "read": False,
                           "created_at": "2026-11-28T19:00:00.123Z"}, separators=(",", ":"))
        event_id = self.stack.redis_cli("EVAL", PUBLISH, "2", self.user_prefix + user_id,
                                        self.push_stream, user_id, body)
        return event_id, body

    def sse(self, token, extra=None, port=None):
        headers = {"Accept": "text/event-stream", "Authorization": f"Bearer {token}"}
        headers.update(extra or {})
        client = SseClient(port or self.port, headers)
        self.addCleanup(client.close)
        return client

    def ws(self, path=PATH, headers=None, port=None, rcvbuf=None):
        client = WebSocket.connect("127.0.0.1", port or self.port, path, headers, rcvbuf=rcvbuf)
        self.addCleanup(client.sock.close)
        return client

    def metrics(self):
        return http_request("127.0.0.1", self.admin_port, "GET", "/metrics").body.decode()

    def wait_registered(self, count):
        """Streams register asynchronously (after the revocation check): wait for the gauge."""
        def total():
            text = self.metrics()
            return sum(int(v) for v in re.findall(r"^gateway_push_streams\{[^}]*\} (\d+)$", text,
                                                  re.MULTILINE))
        self.assertTrue(wait_for(lambda: total() >= count, timeout=5), self.metrics())

    # --- SSE

    def test_sse_receives_a_notification_within_one_second(self):
        user_id, token = self.user()
        client = self.sse(token, {"X-Request-Id": "push-req-1"})
        self.assertEqual(client.status, 200)
        self.assertEqual(client.headers["content-type"], "text/event-stream")
        self.assertEqual(client.headers["cache-control"], "no-cache")
        self.assertEqual(client.headers["x-accel-buffering"], "no")
        self.assertEqual(client.headers["x-request-id"], "push-req-1")
        self.wait_registered(1)
        started = time.monotonic()
        event_id, body = self.publish(user_id)
        event = client.event(timeout=1.0)
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(client.retry, "2000")
        self.assertEqual(event, {"id": event_id, "event": "notification", "data": body})

    def test_sse_resume_with_last_event_id_loses_and_repeats_nothing(self):
        user_id, token = self.user()
        client = self.sse(token)
        self.wait_registered(1)
        first = [self.publish(user_id, f"first {i}")[0] for i in range(3)]
        got = [client.event(timeout=2)["id"] for _ in range(3)]
        self.assertEqual(got, first)
        client.close()
        missed = [self.publish(user_id, f"missed {i}")[0] for i in range(4)]
        resumed = self.sse(token, {"Last-Event-ID": got[-1]})
        self.assertEqual(resumed.status, 200)
        after = [self.publish(user_id, f"after {i}")[0] for i in range(3)]
        received = [resumed.event(timeout=2)["id"] for _ in range(7)]
        self.assertEqual(received, missed + after)
        with self.assertRaises(TimeoutError):  # nothing repeated after the seam
            resumed.event(timeout=0.5)

    def test_resume_past_the_retained_history_signals_resync(self):
        user_id, token = self.user()
        seen, _ = self.publish(user_id, "seen")
        trimmed = [self.publish(user_id, f"trimmed {i}")[0] for i in range(3)]
        kept, _ = self.publish(user_id, "kept")
        # The user stream is capped (MAXLEN): here everything but the newest entry is gone.
        self.stack.redis_cli("XTRIM", self.user_prefix + user_id, "MAXLEN", "1")
        client = self.sse(token, {"Last-Event-ID": seen})
        self.assertEqual(client.event(timeout=2),
                         {"event": "resync", "data": '{"code":"history_truncated"}'})
        self.assertEqual(client.event(timeout=2)["id"], kept)
        self.assertNotIn(trimmed[0], [seen, kept])

        # More missed than max_replay (10): resync, then the oldest 10, never a silent cut.
        missed = [self.publish(user_id, f"missed {i}")[0] for i in range(12)]
        ws = self.ws(path=f"{PATH}?last_event_id={kept}",
                     headers={"Authorization": f"Bearer {token}"})
        self.assertEqual(json.loads(ws.recv(timeout=2)),
                         {"type": "resync", "code": "history_truncated"})
        self.assertEqual([json.loads(ws.recv(timeout=2))["id"] for _ in range(10)], missed[:10])

        # Exactly at the limit and with the seam intact: no resync.
        last = self.publish(user_id, "one")[0]
        more = [self.publish(user_id, f"more {i}")[0] for i in range(10)]
        exact = self.sse(token, {"Last-Event-ID": last})
        self.assertEqual([exact.event(timeout=2)["id"] for _ in range(10)], more)

    def test_sse_rejects_bad_last_event_id_and_bad_tokens(self):
        _, token = self.user()
        bad = self.sse(token, {"Last-Event-ID": "12; DROP"})
        self.assertEqual(bad.status, 400)
        self.assertEqual(json.loads(bad.body())["code"], "invalid_last_event_id")
        r = self.stack.http("GET", PATH, headers={"Accept": "text/event-stream"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["code"], "unauthenticated")
        r = self.stack.http("GET", PATH, headers={"Accept": "text/event-stream",
                                                  "Authorization": f"Bearer {token}x"})
        self.assertEqual(r.status, 401)
        self.assertEqual(r.json["code"], "invalid_token")

    def test_neither_upgrade_nor_event_stream_is_406(self):
        _, token = self.user()
        r = self.stack.http("GET", PATH, headers={"Authorization": f"Bearer {token}",
                                                  "Accept": "application/json"})
        self.assertEqual(r.status, 406)
        self.assertEqual(r.json["code"], "not_acceptable")
        self.assertIn("WebSocket", r.json["message"])
        self.assertIn("text/event-stream", r.json["message"])
        self.assertTrue(r.json["request_id"])

    def test_heartbeats_on_idle_streams(self):
        _, token = self.user()
        sse = self.sse(token)
        ws = self.ws(headers={"Authorization": f"Bearer {token}"})
        deadline = time.monotonic() + 3.5  # heartbeat_ms = 2000
        while b": heartbeat\n\n" not in sse.buffer and time.monotonic() < deadline:
            sse._fill(deadline)
        self.assertIn(b": heartbeat\n\n", sse.buffer)
        with self.assertRaises(TimeoutError):  # answers the pings while waiting
            ws.recv(timeout=2.5)
        self.assertGreaterEqual(ws.pings, 1)
        ws.send_text("still here")  # and the connection is still open
        with self.assertRaises(TimeoutError):
            ws.recv(timeout=0.2)

    # --- WebSocket

    def test_websocket_with_token_in_subprotocol(self):
        user_id, token = self.user()
        client = self.ws(headers={
            "Sec-WebSocket-Protocol": f"trellis.notifications.v1, bearer.{token}"})
        self.assertEqual(client.headers.get("sec-websocket-protocol"), "trellis.notifications.v1")
        self.assertNotIn("sec-websocket-extensions", client.headers)  # permessage-deflate off
        self.assertTrue(client.headers.get("x-request-id"))
        self.wait_registered(1)
        started = time.monotonic()
        event_id, body = self.publish(user_id)
        message = json.loads(client.recv(timeout=1.0))
        self.assertLess(time.monotonic() - started, 1.0)
        self.assertEqual(message, {"type": "notification", "id": event_id,
                                   "notification": json.loads(body)})
        self.assertNotIn(token, self.stack.gateway_log_text())

    def test_websocket_first_message_auth_and_resume(self):
        user_id, token = self.user()
        earlier, _ = self.publish(user_id, "before")
        missed, _ = self.publish(user_id, "missed")
        client = self.ws(path=f"{PATH}?last_event_id={earlier}")
        client.send_text(json.dumps({"type": "auth", "access_token": token}))
        self.assertEqual(json.loads(client.recv(timeout=2))["id"], missed)
        live, _ = self.publish(user_id, "live")
        self.assertEqual(json.loads(client.recv(timeout=2))["id"], live)
        client.send_text("ignored after auth")
        with self.assertRaises(TimeoutError):
            client.recv(timeout=0.3)
        client.send_frame(0x2, b"\x00\x01")  # binary: 1003
        closed = client.wait_closed(timeout=3)
        self.assertEqual(closed.code, 1003)

    def test_websocket_without_valid_auth_is_closed_1008(self):
        silent = self.ws()
        started = time.monotonic()
        closed = silent.wait_closed(timeout=4)
        self.assertEqual((closed.code, closed.reason), (1008, "authentication required"))
        self.assertGreaterEqual(time.monotonic() - started, 0.8)  # auth_timeout_ms = 1000
        invalid = self.ws()
        invalid.send_text(json.dumps({"type": "auth", "access_token": "not.a.token"}))
        closed = invalid.wait_closed(timeout=3)
        self.assertEqual(closed.code, 1008)
        with self.assertRaises(HandshakeError) as refused:
            self.ws(headers={"Sec-WebSocket-Protocol": "trellis.notifications.v1, bearer.x.y.z"})
        self.assertEqual(refused.exception.status, 401)

    def test_notifications_of_user_b_never_reach_user_a(self):
        a_id, a_token = self.user()
        b_id, b_token = self.user()
        a = self.ws(headers={"Authorization": f"Bearer {a_token}"})
        b = self.sse(b_token)
        self.wait_registered(2)
        b_event, _ = self.publish(b_id, "for b")
        self.assertEqual(b.event(timeout=2)["id"], b_event)
        a_event, _ = self.publish(a_id, "for a")
        self.assertEqual(json.loads(a.recv(timeout=2))["id"], a_event)  # first thing A sees
        with self.assertRaises(TimeoutError):
            b.event(timeout=0.3)

    def test_slow_consumer_is_disconnected_fast_one_keeps_receiving(self):
        user_id, token = self.user()
        auth = {"Authorization": f"Bearer {token}"}
        slow = self.ws(headers=auth, rcvbuf=4096)
        fast = self.ws(headers=auth)
        self.wait_registered(2)
        body = json.dumps({"title": "x" * 8000})
        # Batches the fast client drains before the next one, until the slow client's socket
        # buffers and then its 32-message queue are full.
        disconnected = r'gateway_push_disconnects_total\{reason="slow_consumer"\} [1-9]'
        batches = 0
        while not re.search(disconnected, self.metrics()):
            batches += 1
            self.assertLess(batches, 400, "the slow consumer was never disconnected")
            last = self.stack.redis_cli("EVAL", PUBLISH_MANY, "2", self.user_prefix + user_id,
                                        self.push_stream, user_id, body, "16")
            for _ in range(16):
                message = json.loads(fast.recv(timeout=5))
            self.assertEqual(message["id"], last)
        with self.assertRaises(Closed):
            for _ in range(batches * 16 + 1):
                slow.recv(timeout=5)
        after, _ = self.publish(user_id, "still here")
        self.assertEqual(json.loads(fast.recv(timeout=2))["id"], after)

    def test_logout_ends_streams_within_revocation_check(self):
        _, token = self.user()
        sse = self.sse(token)
        ws = self.ws(headers={"Authorization": f"Bearer {token}"})
        self.wait_registered(2)
        r = self.stack.http("POST", "/v1/auth/logout", headers={"Authorization": f"Bearer {token}"})
        self.assertIn(r.status, (200, 204), r.body)
        started = time.monotonic()
        self.assertEqual(sse.event(timeout=3), {"event": "end", "data": '{"code":"token_revoked"}'})
        with self.assertRaises(EOFError):
            sse.event(timeout=2)
        closed = ws.wait_closed(timeout=3)
        self.assertEqual((closed.code, closed.reason), (1008, "token revoked"))
        self.assertLess(time.monotonic() - started, 2.0)  # revocation_check_ms = 300

    def test_two_gateway_replicas_both_deliver(self):
        port = local.free_port()
        replica = Replica(self.stack, "gateway",
                          {"TRELLIS_GATEWAY__LISTEN__PORT": str(port),
                           "TRELLIS_GATEWAY__ADMIN__PORT": str(local.free_port())},
                          Path(tempfile.mkdtemp(prefix="trellis-push-")) / "gateway-2.log")
        replica.start()
        self.addCleanup(replica.stop)
        self.assertTrue(wait_for(lambda: http_request("127.0.0.1", port, "GET",
                                                      "/readyz").status == 200))
        user_id, token = self.user()
        one = self.sse(token)
        two = self.ws(headers={"Authorization": f"Bearer {token}"}, port=port)
        self.wait_registered(1)
        event_id, _ = self.publish(user_id)
        self.assertEqual(one.event(timeout=1)["id"], event_id)
        self.assertEqual(json.loads(two.recv(timeout=1))["id"], event_id)
        # SIGTERM: the replica closes its stream with 1001 going away and exits promptly.
        started = time.monotonic()
        replica.process.send_signal(signal.SIGTERM)
        closed = two.wait_closed(timeout=3)
        self.assertEqual((closed.code, closed.reason), (1001, "going away"))
        self.assertEqual(replica.process.wait(timeout=5), 0)
        self.assertLess(time.monotonic() - started, 5)


class TokenExpiryTest(unittest.TestCase):
    """Streams end when the access token expires (2 s tokens here)."""

    @classmethod
    def setUpClass(cls):
        tag = uuid.uuid4().hex[:8]
        cls.stack = Stack(users_overrides={"tokens": {"access_ttl_s": 2}}, gateway_overrides={
            "push": {"stream": f"trellis:notifications:push:{tag}",
                     "user_stream_prefix": f"trellis:notifications:user:{tag}:"}}).start()
        cls.addClassCleanup(cls.stack.stop)

    def test_sse_and_websocket_end_at_token_expiry(self):
        r = self.stack.http("POST", "/v1/auth/signup",
                            {"email": f"{uuid.uuid4().hex[:10]}@example.com",
                             "password": PASSWORD, "display_name": "Exp"})
        self.assertEqual(r.status, 201, r.body)
        token = r.json["access_token"]
        sse = SseClient(self.stack.http_port, {"Accept": "text/event-stream",
                                               "Authorization": f"Bearer {token}"})
        self.addCleanup(sse.close)
        ws = WebSocket.connect("127.0.0.1", self.stack.http_port, PATH,
                               {"Sec-WebSocket-Protocol": f"trellis.notifications.v1, bearer.{token}"})
        self.addCleanup(ws.sock.close)
        self.assertEqual(sse.status, 200)
        self.assertEqual(sse.event(timeout=5), {"event": "end", "data": '{"code":"token_expired"}'})
        closed = ws.wait_closed(timeout=3)
        self.assertEqual((closed.code, closed.reason), (1008, "token expired"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@unittest.skipUnless(os.environ.get("TRELLIS_PUSH_MEMORY"),
                     "set TRELLIS_PUSH_MEMORY=<connections> to measure gateway RSS per stream")
class PushMemoryTest(unittest.TestCase):
    """Gateway RSS per idle stream (not part of the normal run: it opens thousands of sockets)."""

    def test_rss_per_idle_stream(self):
        count = int(os.environ["TRELLIS_PUSH_MEMORY"])
        for transport in ("websocket", "sse"):  # each in a fresh gateway
            tag = uuid.uuid4().hex[:8]
            with Stack(gateway_overrides={"push": {
                    "stream": f"trellis:notifications:push:{tag}",
                    "user_stream_prefix": f"trellis:notifications:user:{tag}:",
                    "max_streams_per_user": count + 300, "max_connections": count + 300},
                    "limits": {"max_connections": count + 300}}) as stack:
                r = stack.http("POST", "/v1/auth/signup",
                               {"email": f"{uuid.uuid4().hex[:10]}@example.com",
                                "password": PASSWORD, "display_name": "Mem"})
                token = r.json["access_token"]
                pid = stack.processes["gateway"].pid

                def open_one():
                    if transport == "websocket":
                        return WebSocket.connect("127.0.0.1", stack.http_port, PATH,
                                                 {"Authorization": f"Bearer {token}"}).sock
                    return SseClient(stack.http_port, {"Accept": "text/event-stream",
                                                       "Authorization": f"Bearer {token}"}).sock
                warm = [open_one() for _ in range(200)]  # allocator arenas, pools
                for sock in warm:
                    sock.close()
                time.sleep(1)
                before = rss_kib(pid)
                socks = [open_one() for _ in range(count)]
                time.sleep(2)
                after = rss_kib(pid)
                per = (after - before) * 1024 / count
                print(f"\n{transport}: {count} idle streams, gateway RSS {before} KiB -> "
                      f"{after} KiB: {per:.0f} bytes per stream", flush=True)
                for sock in socks:
                    sock.close()

if __name__ == "__main__":
    unittest.main()
