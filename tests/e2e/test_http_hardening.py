"""HTTP hardening of the gateway, each case over a real socket: header and body limits,
slowloris and idle timeouts, connection cap, CORS, gzip and pipelining."""

import gzip
import json
import socket
import time
import unittest

from harness import Stack

ORIGIN = "https://app.example.com"


def read_response(sock):
    """One HTTP/1.1 response with Content-Length (or none) from a raw socket: (head, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data, b""
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += sock.recv(65536)
    return head, rest[:length], rest[length:]


class HttpHardeningTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(gateway_overrides={
            "limits": {"header_timeout_ms": 1000, "idle_timeout_ms": 1500,
                       "request_read_timeout_ms": 1200, "max_connections": 40,
                       "route_body_bytes": {"/v1/auth/*": 1024}},
            "cors": {"allowed_origins": [ORIGIN]},
        }).start()
        cls.addClassCleanup(cls.stack.stop)

    def connect(self):
        return socket.create_connection(("127.0.0.1", self.stack.http_port), timeout=5)

    def test_header_block_over_the_limit_is_431(self):
        with self.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n")
            head, body, _ = read_response(sock)
        self.assertTrue(head.startswith(b"HTTP/1.1 431"), head[:40])
        self.assertEqual(json.loads(body)["code"], "headers_too_large")

    def test_route_body_limit_is_413(self):
        r = self.stack.http("POST", "/v1/auth/login",
                            {"email": "a@example.com", "password": "x" * 2000})
        self.assertEqual(r.status, 413)
        self.assertEqual(r.json["code"], "payload_too_large")
        r = self.stack.http("POST", "/v1/auth/login", {"email": "a@example.com", "password": "x" * 10})
        self.assertEqual(r.status, 401)

    def test_slowloris_client_is_dropped_and_others_are_served(self):
        with self.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            started = time.monotonic()
            closed = False
            for _ in range(12):
                time.sleep(0.25)
                try:
                    sock.sendall(b"X")
                    sock.settimeout(0.01)
                    if sock.recv(1) == b"":
                        closed = True
                        break
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                    break
                self.assertEqual(self.stack.http("GET", "/healthz").status, 200)
            self.assertTrue(closed, "a client trickling its headers was never dropped")
            self.assertLess(time.monotonic() - started, 2.5)

    def test_request_in_pieces_is_answered_and_the_connection_stays_usable(self):
        body = json.dumps({"email": "pieces@example.com", "password": "not-the-password"}).encode()
        request = (b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                   b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        with self.connect() as sock:
            # Cut inside the request line, inside a header, at the blank line and inside the body.
            cuts = [7, 40, request.index(b"\r\n\r\n") + 2, len(request) - 5]
            start = 0
            for cut in cuts + [len(request)]:
                sock.sendall(request[start:cut])
                start = cut
                time.sleep(0.05)
            head, answer, _ = read_response(sock)
            self.assertTrue(head.startswith(b"HTTP/1.1 401"), head[:60])
            self.assertEqual(json.loads(answer)["code"], "unauthenticated")
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, _ = read_response(sock)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:60])

    def test_body_that_stops_arriving_is_dropped_within_the_read_timeout(self):
        with self.connect() as sock:
            sock.sendall(b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"em")
            started = time.monotonic()
            sock.settimeout(5)
            try:
                self.assertEqual(sock.recv(1), b"")
            except ConnectionResetError:
                pass
            waited = time.monotonic() - started
            self.assertGreater(waited, 0.9)
            self.assertLess(waited, 2.5)

    def test_request_cut_short_by_the_client_is_answered_400(self):
        with self.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Half")
            sock.shutdown(socket.SHUT_WR)
            head, body, _ = read_response(sock)
        self.assertTrue(head.startswith(b"HTTP/1.1 400"), head[:60])
        self.assertIn("code", json.loads(body))

    def test_endless_chunk_size_line_is_refused_not_buffered(self):
        with self.connect() as sock:
            sock.sendall(b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                         b"Content-Type: application/json\r\n\r\n5;ext=")
            started = time.monotonic()
            try:
                for _ in range(8):  # 64 KiB of one chunk-size line, never ended
                    sock.sendall(b"a" * 8192)
            except OSError:
                pass  # the gateway answered and closed while we were still sending
            head, body, _ = read_response(sock)
        self.assertTrue(head.startswith(b"HTTP/1.1 400"), head[:60])
        self.assertIn("code", json.loads(body))
        self.assertLess(time.monotonic() - started, 1.0)  # not the read timeout

    def test_idle_keep_alive_connection_is_closed(self):
        with self.connect() as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            head, _, _ = read_response(sock)
            self.assertTrue(head.startswith(b"HTTP/1.1 200"))
            sock.settimeout(4)
            started = time.monotonic()
            self.assertEqual(sock.recv(1), b"")
            self.assertLess(time.monotonic() - started, 3)

    def test_connection_cap(self):
        held = [self.connect() for _ in range(40)]
        try:
            time.sleep(0.3)
            extra = self.connect()
            extra.settimeout(2)
            try:
                extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(extra.recv(100), b"", "a connection beyond the cap was served")
            except OSError:
                pass  # reset: refused as well
            finally:
                extra.close()
        finally:
            for sock in held:
                sock.close()
        time.sleep(0.3)
        self.assertEqual(self.stack.http("GET", "/healthz").status, 200)

    def test_head_answer_has_no_body_and_the_connection_stays_usable(self):
        # A HEAD answer carries the Content-Length a GET would get but no body: a body there
        # would be read as the start of the next answer on a keep-alive connection.
        with self.connect() as sock:
            sock.sendall(b"HEAD /v1/users/me HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            deadline = time.monotonic() + 5
            while data.count(b"\r\n\r\n") < 2 and time.monotonic() < deadline:
                data += sock.recv(65536)
        first, rest = data.split(b"\r\n\r\n", 1)
        self.assertRegex(first, rb"^HTTP/1.1 4\d\d ")
        self.assertRegex(first.lower(), rb"content-length: [1-9]")
        self.assertTrue(rest.startswith(b"HTTP/1.1 200"), rest[:60])

    def test_pipelined_requests_are_answered_in_order(self):
        with self.connect() as sock:
            sock.sendall(b"".join(
                f"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: pipe-{i}\r\n\r\n".encode()
                for i in range(3)))
            seen, leftover = [], b""
            sock.settimeout(5)
            for _ in range(3):
                # read_response keeps what follows the body; feed it back by buffering.
                data = leftover
                while b"\r\n\r\n" not in data:
                    data += sock.recv(65536)
                head, rest = data.split(b"\r\n\r\n", 1)
                length = int([l.split(b":")[1] for l in head.split(b"\r\n")
                              if l.lower().startswith(b"content-length")][0])
                while len(rest) < length:
                    rest += sock.recv(65536)
                leftover = rest[length:]
                request_id = [l.split(b":")[1].strip() for l in head.split(b"\r\n")
                              if l.lower().startswith(b"x-request-id")][0]
                seen.append(request_id.decode())
        self.assertEqual(seen, ["pipe-0", "pipe-1", "pipe-2"])

    def test_cors_preflight_and_headers(self):
        r = self.stack.http("OPTIONS", "/v1/users/me", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type"})
        self.assertEqual(r.status, 204)
        self.assertEqual(r.headers["access-control-allow-origin"], ORIGIN)
        self.assertIn("PATCH", r.headers["access-control-allow-methods"])
        self.assertIn("Authorization", r.headers["access-control-allow-headers"])
        r = self.stack.http("OPTIONS", "/v1/users/me", headers={
            "Origin": "https://evil.example.com", "Access-Control-Request-Method": "GET"})
        self.assertEqual(r.status, 403)
        r = self.stack.http("GET", "/v1/users/me", headers={"Origin": ORIGIN})
        self.assertEqual(r.status, 401)  # auth still applies to the real request
        self.assertEqual(r.headers["access-control-allow-origin"], ORIGIN)
        self.assertIn("X-Request-Id", r.headers["access-control-expose-headers"])

    def test_gzip_when_accepted_and_large_enough(self):
        plain = self.stack.http("GET", "/openapi.json")
        self.assertNotIn("content-encoding", plain.headers)
        zipped = self.stack.http("GET", "/openapi.json", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(zipped.headers.get("content-encoding"), "gzip")
        self.assertLess(len(zipped.body), len(plain.body) / 3)
        self.assertEqual(gzip.decompress(zipped.body), plain.body)
        self.assertIn("Accept-Encoding", zipped.headers["vary"])
        small = self.stack.http("GET", "/healthz", headers={"Accept-Encoding": "gzip"})
        self.assertNotIn("content-encoding", small.headers)


if __name__ == "__main__":
    unittest.main()
