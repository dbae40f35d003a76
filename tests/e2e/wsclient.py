"""A tiny stdlib-only WebSocket client for tests (RFC 6455): handshake, masked client frames,
reading text / binary / ping / pong / close frames. Every read is bounded by a timeout."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeError(Exception):
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        super().__init__(f"handshake refused: HTTP {status} {body[:600]!r}")
        self.status, self.headers, self.body = status, headers, body


class Closed(Exception):
    """The server closed the WebSocket (close frame) or the TCP connection."""

    def __init__(self, code: int | None, reason: str):
        super().__init__(f"closed: {code} {reason!r}")
        self.code, self.reason = code, reason


class WebSocket:
    def __init__(self, sock: socket.socket, headers: dict[str, str], leftover: bytes):
        self.sock = sock
        self.headers = headers
        self.buffer = leftover
        self.pings = 0

    # --- connection

    @classmethod
    def connect(cls, host: str, port: int, path: str, headers: dict[str, str] | None = None,
                timeout: float = 5.0, rcvbuf: int | None = None) -> "WebSocket":
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect((host, port))
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in data:
            if time.monotonic() > deadline:
                raise TimeoutError("no handshake response")
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1]) if status_line else 0
        response_headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if status != 101:
            length = int(response_headers.get("content-length", "0") or 0)
            while len(rest) < length:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                rest += chunk
            sock.close()
            raise HandshakeError(status, response_headers, rest)
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if response_headers.get("sec-websocket-accept") != expected:
            sock.close()
            raise HandshakeError(status, response_headers,
                                 f"bad Sec-WebSocket-Accept: {head!r}".encode())
        return cls(sock, response_headers, rest)

    def close(self) -> None:
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()

    # --- frames

    def send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        length = len(payload)
        if length < 126:
            header += bytes([0x80 | length])
        elif length < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", length)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", length)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def send_text(self, text: str) -> None:
        self.send_frame(OP_TEXT, text.encode())

    def _read_exact(self, n: int, deadline: float) -> bytes:
        while len(self.buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no frame in time")
            self.sock.settimeout(left)
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed(None, "connection closed without a close frame")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def read_frame(self, timeout: float = 5.0) -> tuple[int, bool, bytes]:
        """One frame: (opcode, fin, payload)."""
        deadline = time.monotonic() + timeout
        b0, b1 = self._read_exact(2, deadline)
        opcode, fin, length = b0 & 0x0F, bool(b0 & 0x80), b1 & 0x7F
        if b1 & 0x80:
            raise ValueError("server frames must not be masked")
        if length == 126:
            (length,) = struct.unpack("!H", self._read_exact(2, deadline))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._read_exact(8, deadline))
        return opcode, fin, self._read_exact(length, deadline)

    def recv(self, timeout: float = 5.0) -> str:
        """The next text message (fragments joined); answers pings; raises Closed on a close
        frame."""
        deadline = time.monotonic() + timeout
        message = None
        while True:
            opcode, fin, payload = self.read_frame(max(0.0, deadline - time.monotonic()))
            if opcode == OP_PING:
                self.pings += 1
                self.send_frame(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self.send_frame(OP_CLOSE, payload[:2])
                except OSError:
                    pass
                raise Closed(code, payload[2:].decode(errors="replace"))
            elif opcode in (OP_TEXT, OP_BINARY, OP_CONT):
                message = payload if opcode != OP_CONT else (message or b"") + payload
                if fin:
                    return message.decode()

    def wait_closed(self, timeout: float = 5.0) -> Closed:
        """Reads (discarding messages) until the server closes; returns the Closed."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.recv(max(0.01, deadline - time.monotonic()))
            except Closed as closed:
                return closed
