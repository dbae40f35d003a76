"""WebSocket scenarios of ./trellis bench (asyncio, standard library only):
  6  order → push latency: orders placed at a steady rate while their owners listen on
     GET /v1/notifications/stream; latency from sending POST /v1/orders to receiving the
     order.created notification over the WebSocket
  7  idle authenticated WebSockets: the gateway's RSS growth per open connection
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import os
import resource
import struct
import threading
import time
from datetime import datetime

SUBPROTOCOL = "trellis.notifications.v1"


def wall_seconds(rfc3339: str) -> float:
    """An API timestamp ("2026-11-28T19:00:00.123Z") as seconds since the epoch."""
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


def raise_fd_limit(wanted: int) -> int:
    """Raises this process's open-file limit (children inherit it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = min(max(soft, wanted), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


async def open_websocket(port: int, token: str):
    """Opens /v1/notifications/stream with the token in Sec-WebSocket-Protocol."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (f"GET /v1/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
         f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
         f"Sec-WebSocket-Version: 13\r\n"
         f"Sec-WebSocket-Protocol: {SUBPROTOCOL}, bearer.{token}\r\n\r\n").encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 101"):
        writer.close()
        raise ConnectionError(head.split(b"\r\n", 1)[0].decode(errors="replace"))
    return reader, writer


async def read_frame(reader, writer) -> tuple[int, bytes]:
    """One server frame (unmasked); answers pings. Returns (opcode, payload)."""
    while True:
        b1, b2 = await reader.readexactly(2)
        length = b2 & 0x7F
        if length == 126:
            length = struct.unpack("!H", await reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(length)
        opcode = b1 & 0x0F
        if opcode == 0x9:  # ping → pong (masked, as clients must)
            mask = os.urandom(4)
            masked = bytes(c ^ mask[i % 4] for i, c in enumerate(payload))
            writer.write(bytes([0x8A, 0x80 | len(payload)]) + mask + masked)
            continue
        return opcode, payload


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def idle_websockets(port: int, tokens: list[str], count: int, gateway_pid: int,
                    progress) -> dict:
    """Opens `count` WebSockets spread over the users' tokens, lets them idle, and reports the
    gateway's RSS per connection (after minus before, divided by count)."""

    async def run() -> dict:
        before = rss_kib(gateway_pid)
        connections = []
        failures = 0
        batch = 200
        for start in range(0, count, batch):
            opened = await asyncio.gather(
                *(open_websocket(port, tokens[i % len(tokens)])
                  for i in range(start, min(count, start + batch))),
                return_exceptions=True)
            for result in opened:
                if isinstance(result, Exception):
                    failures += 1
                else:
                    connections.append(result)
            progress(f"7-idle-websockets: {len(connections)}/{count} open")
        await asyncio.sleep(3)  # idle: let allocations settle
        after = rss_kib(gateway_pid)
        for _, writer in connections:
            writer.close()
        opened = len(connections)
        return {"mode": "idle", "open": opened, "failed": failures,
                "rss_before_kib": before, "rss_after_kib": after,
                "kib_per_connection": round((after - before) / opened, 2) if opened else None}

    return asyncio.run(run())


def push_latency(port: int, users: list[dict], rate: float, duration: float, progress) -> dict:
    """Places orders at `rate` per second for `duration` seconds (round-robin over the users,
    each listening on one WebSocket) and measures POST sent → order.created received."""
    sent: dict[str, float] = {}  # order id → when its POST was sent
    pending: dict[int, float] = {}
    lock = threading.Lock()
    latencies: list[float] = []
    order_created: dict[str, float] = {}  # order id → its created_at (server clock)
    # Where the time goes, from server timestamps (same host, same clock): order committed →
    # notification row written (relay + consumer), and notification row → frame received
    # (push script + gateway fan-out + WebSocket).
    stages: dict[str, list[float]] = {"order_to_notification": [], "notification_to_client": []}
    errors = {"post": 0}

    placers = 4  # one blocking client thread keeps up with ~200 POSTs/s at best

    def place_orders(first: int, stop_at: float) -> None:
        connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                       for _ in users]
        body = json.dumps({"items": [{"sku": "BENCH-1", "quantity": 1,
                                      "unit_price_cents": 100}], "currency": "EUR"})
        interval = placers / rate
        next_at = time.monotonic() + first / rate
        index = first
        while next_at < stop_at:
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            user = users[index % len(users)]
            connection = connections[index % len(users)]
            began = time.monotonic()
            try:
                connection.request("POST", "/v1/orders", body,
                                   {**user["auth"], "Content-Type": "application/json"})
                response = connection.getresponse()
                data = response.read()
                if response.status == 201:
                    order = json.loads(data)
                    with lock:
                        sent[order["id"]] = began
                        order_created[order["id"]] = wall_seconds(order["created_at"])
                else:
                    errors["post"] += 1
            except OSError:
                errors["post"] += 1
                connections[index % len(users)] = http.client.HTTPConnection(
                    "127.0.0.1", port, timeout=10)
            index += placers
            next_at += interval

    async def listen(user: dict, stop: asyncio.Event, ready: asyncio.Event, opened: list) -> None:
        reader, writer = await open_websocket(port, user["token"])
        opened.append(1)
        if len(opened) == len(users):
            ready.set()
        while not stop.is_set():
            try:
                opcode, payload = await asyncio.wait_for(read_frame(reader, writer), 0.5)
            except asyncio.TimeoutError:
                continue
            if opcode != 0x1:
                continue
            arrived = time.monotonic()
            arrived_wall = time.time()
            message = json.loads(payload)
            notification = message.get("notification", {})
            if notification.get("type") != "order.created":
                continue
            order_id = notification.get("order_id")
            # The POST's answer may come after the push: wait for its send time.
            for _ in range(200):
                with lock:
                    began = sent.get(order_id)
                if began is not None:
                    latencies.append((arrived - began) * 1000)
                    written = wall_seconds(notification["created_at"])
                    stages["order_to_notification"].append(
                        (written - order_created[order_id]) * 1000)
                    stages["notification_to_client"].append((arrived_wall - written) * 1000)
                    break
                await asyncio.sleep(0.005)
        writer.close()

    async def run() -> None:
        stop, ready, opened = asyncio.Event(), asyncio.Event(), []
        listeners = [asyncio.create_task(listen(u, stop, ready, opened)) for u in users]
        await asyncio.wait_for(ready.wait(), 10)
        stop_at = time.monotonic() + duration
        placing = [threading.Thread(target=place_orders, args=(k, stop_at))
                   for k in range(placers)]
        for thread in placing:
            thread.start()
        while any(thread.is_alive() for thread in placing):
            await asyncio.sleep(1)
            progress(f"6-push-latency: {len(sent)} orders placed, {len(latencies)} pushes")
        await asyncio.sleep(2)  # the last pushes
        stop.set()
        await asyncio.gather(*listeners, return_exceptions=True)

    asyncio.run(run())
    latencies.sort()

    def pct(p: float, values: list[float] = latencies) -> int:
        if not values:
            return 0
        return int(values[min(len(values) - 1, int(p / 100 * (len(values) - 1) + 0.5))] * 1000)

    breakdown = {}
    for name, values in stages.items():
        values.sort()
        breakdown[name] = {"p50_us": pct(50, values), "p99_us": pct(99, values)}

    return {"mode": "open", "target_rate": rate, "orders": len(sent), "pushed": len(latencies),
            "lost": len(sent) - len(latencies), "errors": errors["post"],
            "rate": round(len(sent) / duration, 1),
            "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99), "p999_us": pct(99.9),
            "max_us": pct(100), "stages": breakdown,
            "distribution": [[p, pct(p)] for p in (0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9,
                                                    100)]}
