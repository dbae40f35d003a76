"""Graceful shutdown with work still outstanding: SIGTERM while upstream calls hang (an upstream
that accepts connections and never answers) must end the gateway with exit code 0 within its grace
period, never a crash. Calls that outlive the process's objects were the cause of a SIGSEGV at exit
seen under load in CI."""

import socket
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

from harness import Stack, local
from replicas import Replica


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts and reads but never writes: gRPC calls to it stay
    pending until their deadline."""

    def __init__(self):
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(64)
        self.port = self.server.getsockname()[1]
        self.connections = []
        self.closed = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closed.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(connection)
            threading.Thread(target=self._swallow, args=(connection,), daemon=True).start()

    @staticmethod
    def _swallow(connection):
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass

    def close(self):
        self.closed.set()
        self.server.close()
        for connection in self.connections:
            connection.close()


class ShutdownTest(unittest.TestCase):
    def test_sigterm_with_upstream_calls_outstanding_exits_cleanly(self):
        work = Path(tempfile.mkdtemp(prefix="trellis-shutdown-"))
        hole = BlackHole()
        grace_ms = 400
        with Stack() as stack:
            r = stack.http("POST", "/v1/auth/signup", {
                "email": f"{uuid.uuid4().hex[:10]}@example.com", "password": "correct horse",
                "display_name": "S"})
            self.assertEqual(r.status, 201, r.body)
            bearer = {"Authorization": f"Bearer {r.json['access_token']}"}
            try:
                for round_number in range(4):
                    port = local.free_port()
                    gateway = Replica(stack, "gateway", {
                        "TRELLIS_GATEWAY__LISTEN__PORT": str(port),
                        "TRELLIS_GATEWAY__UPSTREAMS__ORDERS__TARGET": f"127.0.0.1:{hole.port}",
                        "TRELLIS_GATEWAY__SHUTDOWN__DRAIN_DELAY_MS": "0",
                        "TRELLIS_GATEWAY__SHUTDOWN__GRACE_MS": str(grace_ms)},
                        work / f"gateway-{round_number}.log")
                    gateway.start()
                    self.assertTrue(local.wait_for_listen(port, 15, lambda: gateway.process.poll() is None))
                    # Requests whose upstream calls hang, with deadlines spread over the moments
                    # the gateway stops and tears down (each asks for its own X-Request-Timeout),
                    # plus the health probes to the same upstream.
                    sent_at = time.monotonic()
                    clients = []
                    for i in range(150):
                        client = socket.create_connection(("127.0.0.1", port), timeout=15)
                        timeout_ms = 400 + grace_ms - 60 + 2 * i
                        client.sendall((f"GET /v1/orders HTTP/1.1\r\nHost: x\r\n"
                                        f"Authorization: {bearer['Authorization']}\r\n"
                                        f"X-Request-Timeout: {timeout_ms}ms\r\n\r\n").encode())
                        clients.append(client)
                    time.sleep(max(0.0, 0.4 - (time.monotonic() - sent_at)))
                    started = time.monotonic()
                    code = gateway.stop()
                    elapsed = time.monotonic() - started
                    for client in clients:
                        client.close()
                    log = (work / f"gateway-{round_number}.log").read_text()
                    self.assertEqual(code, 0, f"gateway exit code {code}; log:\n{log[-3000:]}")
                    self.assertLess(elapsed, grace_ms / 1000 + 5, "shutdown took too long")
                    self.assertRegex(log, r'"abandoned_requests":[1-9]', "no request was outstanding")
            finally:
                hole.close()


if __name__ == "__main__":
    unittest.main()
