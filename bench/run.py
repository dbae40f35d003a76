#!/usr/bin/python3
"""./trellis bench: load scenarios against a real local stack, with references side by side.

Starts its own PostgreSQL (durable: fsync on) and Redis (append-only file), the services and two
gateways (one with the response cache for /v1/users/me, one without), signs up virtual users and
then runs, one after another on this machine:

  scenarios   1 cached GET /v1/users/me · 2 the same uncached · 3 GET /v1/orders/{id} uncached
              4 POST /v1/orders · 5 a mixed user journey · 6 order → WebSocket push latency
              7 idle authenticated WebSockets: gateway memory each
  references  nginx returning the same JSON body · nginx proxying to that nginx (one hop)
              a direct gRPC client of UserService.GetMe (the service behind scenario 2)
              pgbench select-only and TPC-B-like on the same PostgreSQL

A scenario and the reference its target compares it with run back to back (SCHEDULE, PAIRS),
--rounds times alternately, so that the ratio is not the VM's drift between them; the target is
the median of the rounds' ratios. Each HTTP scenario and reference runs closed loop (wrk, fixed concurrency: the throughput) and
open loop (trellis-loadgen, fixed rate: latency without coordinated omission). Results go to
bench/results/<time>/ as results.json, results.md and one latency plot (PNG) per scenario.

    ./trellis bench [--duration S] [--only 1,2,nginx,...] [--rate R] [--connections C]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy" / "local"))
sys.path.insert(0, str(REPO / "tests" / "e2e"))  # the e2e harness starts the stack

import push  # noqa: E402  (bench/push.py)
import stack as local  # noqa: E402
from replicas import wait_for  # noqa: E402  (tests/e2e/replicas.py)

PASSWORD = "bench-password-1234"
# The order of the measurements: each target pairs a scenario with the reference after it.
SCHEDULE = ["1-cached-me", "nginx-static", "nginx-proxy", "2-uncached-me", "grpc-direct",
            "4-create-order", "pgbench-tpcb", "3-get-order", "5-journey", "6-push-latency",
            "pgbench-select", "7-idle-websockets"]
# Scenario → the reference its throughput target divides by.
PAIRS = {"1-cached-me": "nginx-static", "2-uncached-me": "grpc-direct",
         "4-create-order": "pgbench-tpcb"}
# Measurements whose open-loop p99 a target compares: their open loop runs in every round.
P99_PAIRED = {"1-cached-me", "nginx-static"}
ITEMS = [{"sku": "BOOK-1", "quantity": 2, "unit_price_cents": 1500}]


def say(line: str) -> None:
    print(line, flush=True)


def progress(text: str) -> None:
    """One progress line, rewritten in place on a terminal."""
    if sys.stdout.isatty():
        print(f"\r\033[K{text}", end="", flush=True)
    else:
        print(text, flush=True)


# --------------------------------------------------------------------------------------------
# Measuring processes


class Sampler:
    """CPU seconds and peak RSS of some processes while a measurement runs."""

    def __init__(self, pids: dict[str, int]):
        self.pids = pids
        self.peak_rss_kib = {name: 0 for name in pids}
        self.cpu_start = {name: self.cpu_seconds(pid) for name, pid in pids.items()}
        self.started = time.monotonic()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    @staticmethod
    def cpu_seconds(pid: int) -> float:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    @staticmethod
    def rss_kib(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return 0

    def run(self) -> None:
        while not self.stopping.wait(0.25):
            for name, pid in self.pids.items():
                self.peak_rss_kib[name] = max(self.peak_rss_kib[name], self.rss_kib(pid))

    def stop(self) -> dict:
        self.stopping.set()
        self.thread.join()
        elapsed = time.monotonic() - self.started
        return {
            name: {
                "cpu_percent": round(
                    100 * (self.cpu_seconds(pid) - self.cpu_start[name]) / elapsed, 1),
                "peak_rss_mib": round(self.peak_rss_kib[name] / 1024, 1),
            }
            for name, pid in self.pids.items()
        }


# --------------------------------------------------------------------------------------------
# Load tools


class Requests:
    """A list of HTTP requests written for both tools: TSV for wrk's Lua, JSON lines for
    trellis-loadgen."""

    def __init__(self, directory: Path, name: str, requests: list[dict]):
        self.tsv = directory / f"{name}.tsv"
        self.jsonl = directory / f"{name}.jsonl"
        with self.tsv.open("w") as tsv, self.jsonl.open("w") as jsonl:
            for r in requests:
                headers = "|".join(f"{k}: {v}" for k, v in r.get("headers", {}).items())
                tsv.write(f"{r['method']}\t{r['path']}\t{headers}\t{r.get('body', '')}\n")
                jsonl.write(json.dumps(r) + "\n")


def closed_loop(port: int, requests: Requests, args) -> dict:
    argv = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s",
            "-s", str(REPO / "bench" / "wrk" / "requests.lua"), f"http://127.0.0.1:{port}",
            "--", str(requests.tsv)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
    line = next((l for l in out.stdout.splitlines() if l.startswith('{"mode"')), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {out.stdout}\n{out.stderr}")
    result = json.loads(line)
    result["rate"] = round(result["completed"] / (result["duration_us"] / 1e6), 1)
    result["concurrency"] = args.connections
    return result


def open_loop(port: int, requests: Requests, rate: float, args) -> dict:
    argv = [str(args.build_dir / "bench" / "trellis-loadgen"), "--port", str(port),
            "--rate", str(rate), "--duration", str(args.duration), "--warmup", "1",
            "--connections", str(args.connections), "--requests", str(requests.jsonl)]
    out = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60,
                         check=True)
    return json.loads(out.stdout)


# --------------------------------------------------------------------------------------------
# References


class Nginx:
    """Debian's nginx: one instance returning a fixed JSON body, one proxying to it."""

    def __init__(self, work: Path, body: str):
        self.work = work / "nginx"
        self.work.mkdir(parents=True, exist_ok=True)
        self.static_port, self.proxy_port = local.free_ports(2)
        body = body.replace("\\", "\\\\").replace("'", "\\'")
        self.conf = self.work / "nginx.conf"
        self.conf.write_text(f"""
worker_processes 2;
pid {self.work}/nginx.pid;
error_log {self.work}/error.log warn;
user root;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {self.work}/body;
  proxy_temp_path {self.work}/proxy;
  fastcgi_temp_path {self.work}/fastcgi;
  uwsgi_temp_path {self.work}/uwsgi;
  scgi_temp_path {self.work}/scgi;
  keepalive_requests 1000000;
  server {{
    listen 127.0.0.1:{self.static_port};
    location / {{ default_type application/json; return 200 '{body}'; }}
  }}
  upstream static {{ server 127.0.0.1:{self.static_port}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{self.proxy_port};
    location / {{
      proxy_pass http://static;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
}}
""")
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["/usr/sbin/nginx", "-c", str(self.conf), "-p", str(self.work), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL, stderr=open(self.work / "stderr.log", "w"))
        if not local.wait_until(lambda: local.port_accepts(self.proxy_port), 10):
            raise RuntimeError(f"nginx did not start: {(self.work / 'stderr.log').read_text()}")

    def pids(self) -> dict[str, int]:
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True,
                                  text=True).stdout.split()
        return {"nginx": self.process.pid, **{f"nginx-{i}": int(p) for i, p in enumerate(children)}}

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()


def pgbench(pg_port: int, mode: str, args) -> dict:
    """pgbench on the stack's PostgreSQL (fsync on): select-only (-S) or TPC-B-like."""
    binary = str(local.PG_BIN / "pgbench")
    common = ["-h", "127.0.0.1", "-p", str(pg_port), "-U", local.PG_SUPERUSER]
    argv = [binary, *common, "-c", str(args.pg_clients), "-j", "2", "-T", str(args.duration),
            "bench_pgbench"]
    if mode == "select-only":
        argv.insert(1, "-S")
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
    if done.returncode != 0:
        raise RuntimeError(f"pgbench {mode} failed: {done.stderr.strip()[-500:]}")
    out = done.stdout
    tps = next(float(l.split("=")[1].split()[0]) for l in out.splitlines()
               if l.startswith("tps =") and "without" in l)
    latency = next((float(l.split("=")[1].split()[0]) for l in out.splitlines()
                    if l.startswith("latency average")), 0.0)
    return {"mode": "closed", "rate": tps, "concurrency": args.pg_clients,
            "latency_avg_us": round(latency * 1000), "errors": 0}


# --------------------------------------------------------------------------------------------
# The stack


def start_servers(work: Path) -> dict[str, str]:
    """PostgreSQL with the defaults of a real server (fsync on) and a persistent Redis."""
    pg_port, redis_port = local.free_ports(2)
    pg = local.Postgres(work / "pg", pg_port, settings=("max_connections=300",))
    pg.initdb()
    pg.start()
    redis = local.Redis(redis_port, work / "redis", work / "redis.pid", work / "redis.log",
                        persistent=True)
    redis.start()
    env = {
        "TRELLIS_TEST_PG_HOST": "127.0.0.1", "TRELLIS_TEST_PG_PORT": str(pg_port),
        "TRELLIS_TEST_PG_USER": local.PG_SUPERUSER,
        "TRELLIS_TEST_REDIS_HOST": "127.0.0.1", "TRELLIS_TEST_REDIS_PORT": str(redis_port),
    }
    os.environ.update(env)
    return {"pg": pg, "redis": redis, "pg_port": pg_port}


def start_cached_gateway(stack, work: Path) -> tuple[subprocess.Popen, int]:
    """A second gateway of the same stack, with the response cache on /v1/users/me."""
    port, admin = local.free_ports(2)
    config = local.deep_merge(stack.gateway_config, {
        "listen": {"port": port},
        "cache": {"routes": [{"route": "/v1/users/me", "ttl_s": 300, "per_user": True,
                              "invalidated_by": ["PATCH /v1/users/me"]}]},
    })
    config.pop("admin", None)
    path = work / "gateway-cached.json"
    local.write_config(path, config)
    process = local.start_component("gateway", stack.build_dir, path,
                                    work / "gateway-cached.log", die_with_parent=True)
    problem = local.wait_for_ready(f"http://127.0.0.1:{port}/readyz", 30,
                                   {"gateway": lambda: process.poll() is None})
    if problem:
        raise RuntimeError(f"the cached gateway did not become ready: {problem}")
    return process, port


def quiesce(stack, timeout_s: float = 120) -> str | None:
    """Lets the previous measurement's after-effects finish before the next one starts, as
    pgbench vacuums before it runs: no order waiting for automatic confirmation, no outbox row
    waiting for the relay, no stream entry waiting for the notifications consumer, no autovacuum
    worker cleaning up after it; then a CHECKPOINT, so that no measurement pays for the previous
    one's dirty pages. Returns what was still busy after `timeout_s`, or None."""
    busy = []

    def settled() -> bool:
        pending, unpublished, vacuuming = stack.sql(
            "SELECT (SELECT count(*) FROM orders WHERE status = 'PENDING'), "
            "(SELECT count(*) FROM outbox WHERE published_at IS NULL), "
            "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker')",
            dbname=stack.orders_db_name)[0]
        # redis-cli prints the (one) group's fields as name, value lines; lag may be empty.
        lines = stack.redis_cli("XINFO", "GROUPS", stack.orders_stream).split("\n")
        group = dict(zip(lines[0::2], lines[1::2]))
        waiting = sum(int(group[k]) for k in ("pending", "lag") if group.get(k, "").isdigit())
        busy[:] = [f"{pending} orders pending, {unpublished} outbox rows unpublished, "
                   f"{waiting} stream entries not consumed, {vacuuming} autovacuum workers"]
        return pending == unpublished == vacuuming == "0" and waiting == 0

    done = wait_for(settled, timeout=timeout_s, interval=0.5)
    stack.sql("CHECKPOINT")
    return None if done else busy[0]


def sign_up_users(stack, count: int) -> list[dict]:
    users = []
    for i in range(count):
        email = f"bench-{i}-{os.getpid()}@example.com"
        r = stack.http("POST", "/v1/auth/signup",
                       {"email": email, "password": PASSWORD, "display_name": f"Bench {i}"})
        if r.status != 201:
            raise RuntimeError(f"signup failed: {r.status} {r.body!r}")
        token = r.json["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        me = stack.http("GET", "/v1/users/me", headers=auth)
        order = stack.http("POST", "/v1/orders", {"items": ITEMS, "currency": "EUR"},
                           headers=auth)
        users.append({"id": me.json["id"], "token": token, "auth": auth,
                      "me_body": me.body.decode(), "order_id": order.json["id"]})
        progress(f"signed up {i + 1}/{count} virtual users")
    if sys.stdout.isatty():
        print()
    return users


# --------------------------------------------------------------------------------------------
# Report


def plot(name: str, title: str, result: dict, out_dir: Path) -> str | None:
    """Latency by percentile (log scale of 1/(1-p)) as PNG with gnuplot; the file name or None."""
    gnuplot = shutil.which("gnuplot")
    points = result.get("distribution")
    if not gnuplot or not points:
        return None
    data = out_dir / f"{name}.dat"
    data.write_text("".join(f"{1 / max(1e-6, 1 - p / 100):.6f} {v / 1000:.3f} {p}\n"
                            for p, v in points if p < 100))
    png = out_dir / f"{name}.png"
    script = f"""
set terminal pngcairo size 800,480
set output '{png}'
set title '{title}'
set logscale x
set xlabel 'percentile'
set ylabel 'latency (ms)'
set xtics ('50' 2, '90' 10, '99' 100, '99.9' 1000, '99.99' 10000)
set grid
plot '{data}' using 1:2 with linespoints title '{result.get("mode", "")} loop'
"""
    subprocess.run([gnuplot], input=script, text=True, capture_output=True, timeout=30)
    return png.name if png.exists() else None


def ms(us) -> str:
    return f"{us / 1000:.2f}" if isinstance(us, (int, float)) and us else "-"


def markdown(results: dict) -> str:
    lines = [
        f"# Trellis benchmark — {results['started']}", "",
        f"Machine: {results['machine']}. Duration {results['duration_s']} s per measurement; "
        f"closed loop {results['connections']} connections; open loop at the rate given; "
        f"gateway io_threads {results.get('gateway_io_threads', '-')}.", "",
        "| measurement | closed req/s | open rate | p50 ms | p99 ms | p99.9 ms | errors | CPU % "
        "(gateway/service) | RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for name, r in results["measurements"].items():
        closed, opened = r.get("closed", {}), r.get("open", {})
        cpu = r.get("cpu", {})
        cpu_text = " / ".join(f"{k} {v['cpu_percent']}" for k, v in cpu.items())
        rss = max((v["peak_rss_mib"] for v in cpu.values()), default=0)
        lines.append(
            f"| {name} | {closed.get('rate', '-')} | {opened.get('rate', '-') if opened else '-'}"
            f" | {ms(opened.get('p50_us') or closed.get('p50_us'))}"
            f" | {ms(opened.get('p99_us') or closed.get('p99_us'))}"
            f" | {ms(opened.get('p999_us') or closed.get('p999_us'))}"
            f" | {closed.get('errors', 0) + closed.get('non_2xx', 0) + opened.get('errors', 0)}"
            f" | {cpu_text} | {rss} |")
    multi = {name: r["closed_rounds"] for name, r in results["measurements"].items()
             if len(r.get("closed_rounds", [])) > 1}
    if multi:
        lines += ["", "Closed-loop rounds (run alternately with their pair; the table shows the "
                  "median round):", ""]
        for name, rates in multi.items():
            cpus = results["measurements"][name].get("closed_rounds_cpu") or [{}] * len(rates)
            lines.append(f"- {name}: " + ", ".join(
                f"{rate:,.0f}" + (f" (CPU % {' / '.join(f'{p} {c}' for p, c in cpu.items())})"
                                  if cpu else "")
                for rate, cpu in zip(rates, cpus)))
    lines += ["", "## Targets", "", "| target | measured | met |", "|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['target']} | {t['measured']} | {'yes' if t['met'] else '**no**'} |")
    extra = results.get("notes") or []
    if extra:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in extra]
    lines += ["", "Plots: " + ", ".join(f"![{p}]({p})" for p in results.get("plots", []))]
    return "\n".join(lines) + "\n"


def targets(m: dict) -> list[dict]:
    out = []

    def ratio(a, b):
        return a / b if a and b else 0.0

    def closed_rate(name):
        return m.get(name, {}).get("closed", {}).get("rate", 0)

    def open_p99(name):
        return m.get(name, {}).get("open", {}).get("p99_us", 0)

    def paired_ratio(name, reference, rounds_key, single):
        """The median of the rounds' ratios (the rounds ran alternately) and how to show it."""
        a = m[name].get(rounds_key) or [single(name)]
        b = m[reference].get(rounds_key) or [single(reference)]
        if len(a) != len(b):
            a, b = [single(name)], [single(reference)]
        ratios = sorted(ratio(x, y) for x, y in zip(a, b))
        half = len(ratios) // 2
        median = ratios[half] if len(ratios) % 2 else (ratios[half - 1] + ratios[half]) / 2
        shown = f"{median:.2f}×" + (f" (rounds {', '.join(f'{r:.2f}' for r in ratios)})"
                                     if len(ratios) > 1 else "")
        return median, shown

    def throughput_ratio(name, reference):
        return paired_ratio(name, reference, "closed_rounds", closed_rate)

    if "1-cached-me" in m and "nginx-static" in m:
        r, shown = throughput_ratio("1-cached-me", "nginx-static")
        out.append({"target": "scenario 1 ≥ 0.5× nginx req/s", "measured": shown,
                    "met": r >= 0.5})
        p, shown = paired_ratio("1-cached-me", "nginx-static", "open_rounds_p99_us", open_p99)
        out.append({"target": "scenario 1 p99 ≤ 2× nginx p99 (same open-loop rate)",
                    "measured": shown, "met": 0 < p <= 2})
    if "2-uncached-me" in m and "grpc-direct" in m:
        r, shown = throughput_ratio("2-uncached-me", "grpc-direct")
        out.append({"target": "scenario 2 ≥ 0.5× direct gRPC", "measured": shown,
                    "met": r >= 0.5})
    if "nginx-proxy" in m and "nginx-static" in m:
        r = ratio(closed_rate("nginx-proxy"), closed_rate("nginx-static"))
        out.append({"target": "(reference) nginx one proxy hop vs nginx", "measured": f"{r:.2f}×",
                    "met": True})
    push_latency = m.get("6-push-latency", {}).get("open")
    if push_latency:
        p99 = push_latency["p99_us"] / 1000
        out.append({"target": f"scenario 6 p99 < 50 ms at {push_latency['target_rate']:.0f} "
                              "orders/s", "measured": f"{p99:.1f} ms "
                              f"({push_latency['lost']} not pushed)",
                    "met": p99 < 50 and push_latency["lost"] == 0})
    idle = m.get("7-idle-websockets", {}).get("idle")
    if idle and idle.get("kib_per_connection") is not None:
        out.append({"target": "scenario 7 ≤ 6 KiB gateway RSS per idle WebSocket",
                    "measured": f"{idle['kib_per_connection']} KiB × {idle['open']}",
                    "met": idle["kib_per_connection"] <= 6})
    if "4-create-order" in m and "pgbench-tpcb" in m:
        r, shown = throughput_ratio("4-create-order", "pgbench-tpcb")
        out.append({"target": "scenario 4 ≥ 0.7× pgbench TPC-B-like TPS", "measured": shown,
                    "met": r >= 0.7})
    return out


# --------------------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="./trellis bench", description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement (10)")
    parser.add_argument("--connections", type=int, default=64, help="closed-loop concurrency (64)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--rate", type=float, default=2000,
                        help="open-loop rate for latency, req/s (2000)")
    parser.add_argument("--users", type=int, default=16, help="virtual users (16)")
    parser.add_argument("--pg-clients", type=int, default=16, help="pgbench clients (16)")
    parser.add_argument("--push-rate", type=float, default=200,
                        help="orders per second of scenario 6 (200)")
    parser.add_argument("--websockets", type=int, default=5000,
                        help="idle WebSockets of scenario 7 (5000)")
    parser.add_argument("--gateway-io-threads", type=int, default=1,
                        help="io_threads of the gateways (1: on 2 cores shared with the load "
                             "generator and the services, a second I/O thread costs more in "
                             "hand-offs than it adds; see docs/PERFORMANCE.md)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="closed-loop rounds of each scenario and its reference, alternated "
                             "(3); the target is the median of the rounds' ratios")
    parser.add_argument("--only", default="", help="comma-separated measurement names or numbers")
    parser.add_argument("--out", type=Path, default=None, help="results directory")
    args = parser.parse_args(argv)
    args.build_dir = Path(os.environ.get("TRELLIS_BUILD_DIR") or REPO / "build").resolve()
    only = {x.strip() for x in args.only.split(",") if x.strip()}

    def wanted(name: str) -> bool:
        return not only or name in only or name.split("-")[0] in only

    for tool in ("wrk", "/usr/sbin/nginx"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: ./trellis deps installs it")
    started = datetime.now(timezone.utc)
    out_dir = args.out or REPO / "bench" / "results" / started.strftime("%Y%m%dT%H%M%SZ")
    out_dir.mkdir(parents=True, exist_ok=True)
    # Scenario 7 holds thousands of sockets in this process and in the gateway (which inherits).
    push.raise_fd_limit(args.websockets + 4096)
    work = Path(tempfile.mkdtemp(prefix="trellis-bench-"))
    os.chmod(work, 0o711)
    servers = start_servers(work)
    from harness import Stack  # needs the server variables set by start_servers

    stack = Stack(users_overrides={"tokens": {"access_ttl_s": 3600}},
                  notifications_overrides={"consumer": {"block_ms": 1000}},
                  gateway_overrides={"io_threads": args.gateway_io_threads,
                                     "push": {"max_streams_per_user": 100000,
                                              "max_connections": 100000},
                                     "limits": {"max_connections": 100000}})
    nginx = None
    cached = None
    results = {
        "started": started.isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} CPUs, {os.uname().release}",
        "duration_s": args.duration, "connections": args.connections, "open_rate": args.rate,
        "gateway_io_threads": args.gateway_io_threads, "measurements": {}, "plots": [], "notes": [],
    }
    try:
        stack.start()
        cached, cached_port = start_cached_gateway(stack, work)
        users = sign_up_users(stack, args.users)
        gateway_pid = stack.processes["gateway"].pid
        pids = {name: p.pid for name, p in stack.processes.items()}

        me = [{"method": "GET", "path": "/v1/users/me", "headers": u["auth"]} for u in users]
        get_order = [{"method": "GET", "path": f"/v1/orders/{u['order_id']}",
                      "headers": u["auth"]} for u in users]
        create = [{"method": "POST", "path": "/v1/orders",
                   "headers": {**u["auth"], "Content-Type": "application/json"},
                   "body": json.dumps({"items": ITEMS, "currency": "EUR"})} for u in users]
        journey = []
        for u in users:
            journey += [me[users.index(u)],
                        {"method": "GET", "path": "/v1/orders?limit=10", "headers": u["auth"]},
                        create[users.index(u)], get_order[users.index(u)],
                        {"method": "GET", "path": "/v1/notifications?limit=10",
                         "headers": u["auth"]}]
        plans = [
            ("1-cached-me", "GET /v1/users/me, cached", cached_port, me,
             {"gateway-cached": cached.pid, "users": pids["users"]}),
            ("2-uncached-me", "GET /v1/users/me, uncached", stack.http_port, me,
             {"gateway": gateway_pid, "users": pids["users"]}),
            ("3-get-order", "GET /v1/orders/{id}, uncached", stack.http_port, get_order,
             {"gateway": gateway_pid, "orders": pids["orders"]}),
            ("4-create-order", "POST /v1/orders", stack.http_port, create,
             {"gateway": gateway_pid, "orders": pids["orders"]}),
            ("5-journey", "mixed journey (me, list, order, get, notifications)", stack.http_port,
             journey, {"gateway": gateway_pid, "users": pids["users"], "orders": pids["orders"]}),
        ]
        if wanted("nginx-static") or wanted("nginx-proxy") or wanted("1"):
            nginx = Nginx(work, users[0]["me_body"])
            nginx.start()
            plans += [
                ("nginx-static", "nginx returning the same JSON body", nginx.static_port,
                 me[:1], nginx.pids()),
                ("nginx-proxy", "nginx proxying to that nginx (one hop)", nginx.proxy_port,
                 me[:1], nginx.pids()),
            ]
        def settle(name: str) -> None:
            progress(f"{name}: waiting for the previous measurement's work to finish")
            busy = quiesce(stack)
            if busy:
                results["notes"].append(f"{name} started while still busy: {busy}")

        # Closed-loop results of every round, per measurement; the reported one is the median.
        rounds: dict[str, list[dict]] = {}

        def record_round(name: str, entry: dict) -> dict:
            """Keeps one round's result; returns the round with the median rate so far."""
            rounds.setdefault(name, []).append(entry)
            ranked = sorted(rounds[name], key=lambda e: e["closed"]["rate"])
            median = dict(ranked[(len(ranked) - 1) // 2])
            median["closed_rounds"] = [e["closed"]["rate"] for e in rounds[name]]
            # Each round's CPU per process: tells a slow round of the target from a busy machine.
            median["closed_rounds_cpu"] = [
                {proc: c["cpu_percent"] for proc, c in (e.get("cpu") or {}).items()}
                for e in rounds[name]]
            return median

        def measure_http(name, title, port, requests, sampled, final: bool) -> None:
            reqs = Requests(work, name, requests)
            progress(f"{name}: closed loop, {args.connections} connections, {args.duration} s")
            sampler = Sampler(sampled)
            closed = closed_loop(port, reqs, args)
            cpu = sampler.stop()
            opened = None
            # A p99 target compares open loops: those run every round too.
            if final or name in P99_PAIRED:
                # At the fixed rate, unless that is beyond what the closed loop reached.
                rate = min(args.rate, max(1.0, closed["rate"] * 0.8))
                progress(f"{name}: open loop at {rate:.0f} req/s, {args.duration} s")
                opened = open_loop(port, reqs, rate, args)
            entry = record_round(name, {"title": title, "closed": closed, "cpu": cpu,
                                        "open": opened})
            if opened is None:
                entry.pop("open")
            results["measurements"][name] = entry
            if not final:
                progress(f"{name}: {closed['rate']} req/s closed")
                return
            opened = entry["open"] = median_open(name)
            for kind, r in (("open", opened), ("closed", entry["closed"])):
                png = plot(f"{name}-{kind}", f"{title} ({kind} loop)", r, out_dir)
                if png:
                    results["plots"].append(png)
            progress(f"{name}: {entry['closed']['rate']} req/s closed; open {opened['rate']:.0f}/s "
                     f"p50 {ms(opened['p50_us'])} ms p99 {ms(opened['p99_us'])} ms")
            if sys.stdout.isatty():
                print()

        def median_open(name: str) -> dict:
            """The open loop with the median p99 over the rounds that ran one; records them all."""
            opens = [e["open"] for e in rounds[name] if e.get("open")]
            ranked = sorted(opens, key=lambda o: o["p99_us"])
            results["measurements"][name]["open_rounds_p99_us"] = [o["p99_us"] for o in opens]
            return ranked[(len(ranked) - 1) // 2]

        def measure_push() -> None:
            progress(f"6-push-latency: {args.push_rate:.0f} orders/s for {args.duration} s")
            sampler = Sampler({"gateway": gateway_pid, "orders": pids["orders"],
                               "notifications": pids["notifications"]})
            opened = push.push_latency(stack.http_port, users, args.push_rate, args.duration,
                                       progress)
            results["measurements"]["6-push-latency"] = {
                "title": f"order → WebSocket push at {args.push_rate:.0f} orders/s",
                "open": opened, "cpu": sampler.stop()}
            png = plot("6-push-latency", "order → WebSocket push", opened, out_dir)
            if png:
                results["plots"].append(png)
            stages = opened["stages"]
            say(f"\n6-push-latency: {opened['orders']} orders, {opened['pushed']} pushed, "
                f"p50 {ms(opened['p50_us'])} ms p99 {ms(opened['p99_us'])} ms; "
                "order → notification row p50/p99 "
                f"{ms(stages['order_to_notification']['p50_us'])}/"
                f"{ms(stages['order_to_notification']['p99_us'])} ms, row → client "
                f"{ms(stages['notification_to_client']['p50_us'])}/"
                f"{ms(stages['notification_to_client']['p99_us'])} ms")

        def measure_idle_websockets() -> None:
            idle = push.idle_websockets(stack.http_port, [u["token"] for u in users],
                                        args.websockets, gateway_pid, progress)
            results["measurements"]["7-idle-websockets"] = {
                "title": f"{args.websockets} idle WebSockets", "idle": idle}
            say(f"\n7-idle-websockets: {idle['open']} open ({idle['failed']} failed), "
                f"gateway RSS {idle['rss_before_kib']} → {idle['rss_after_kib']} KiB, "
                f"{idle['kib_per_connection']} KiB each")

        def measure_grpc_direct(final: bool) -> None:
            users_file = work / "user-ids.txt"
            users_file.write_text("".join(u["id"] + "\n" for u in users))
            progress(f"grpc-direct: {args.connections} calls in flight, {args.duration} s")
            sampler = Sampler({"users": pids["users"]})
            out = subprocess.run(
                [str(args.build_dir / "bench" / "trellis-grpc-bench"), "--target",
                 f"127.0.0.1:{stack.users_port}", "--users", str(users_file), "--concurrency",
                 str(args.connections), "--duration", str(args.duration)],
                capture_output=True, text=True, timeout=args.duration + 60, check=True)
            closed = json.loads(out.stdout)
            results["measurements"]["grpc-direct"] = record_round("grpc-direct", {
                "title": "direct gRPC UserService.GetMe", "closed": closed, "cpu": sampler.stop()})
            say(f"\ngrpc-direct: {closed['rate']:.0f} calls/s p99 {ms(closed['p99_us'])} ms")

        pgbench_ready = []

        def measure_pgbench(name: str, mode: str, final: bool) -> None:
            pg_port = servers["pg_port"]
            if not pgbench_ready:
                psql = local.Psql("127.0.0.1", pg_port, local.PG_SUPERUSER)
                psql.run("DROP DATABASE IF EXISTS bench_pgbench")
                psql.run("CREATE DATABASE bench_pgbench")
                subprocess.run([str(local.PG_BIN / "pgbench"), "-h", "127.0.0.1", "-p",
                                str(pg_port), "-U", local.PG_SUPERUSER, "-i", "-s", "10", "-q",
                                "bench_pgbench"], capture_output=True, check=True, timeout=300)
                pgbench_ready.append(True)
                settle(name)  # the initial load's dirty pages are checkpointed
            postgres_pid = int(local.read_pidfile(servers["pg"].data_dir / "postmaster.pid") or 0)
            progress(f"{name}: {args.pg_clients} clients, {args.duration} s")
            sampler = Sampler({"postgres": postgres_pid})
            closed = pgbench(pg_port, mode, args)
            results["measurements"][name] = record_round(
                name, {"title": f"pgbench {mode}", "closed": closed, "cpu": sampler.stop()})
            say(f"\n{name}: {closed['rate']:.0f} tps")

        measurements = {name: (lambda final, plan=plan: measure_http(*plan, final))
                        for plan in plans for name in plan[:1]}
        measurements.update({
            "6-push-latency": lambda final: measure_push(),
            "7-idle-websockets": lambda final: measure_idle_websockets(),
            "grpc-direct": measure_grpc_direct,
            "pgbench-select": lambda final: measure_pgbench("pgbench-select", "select-only", final),
            "pgbench-tpcb": lambda final: measure_pgbench("pgbench-tpcb", "tpcb", final),
        })
        # Each target's scenario and reference run back to back, --rounds times alternately: this
        # VM's speed drifts by a third over minutes, and a ratio of two measurements minutes apart
        # would measure that. The target takes the median of the rounds' ratios.
        paired = set()
        for name in SCHEDULE:
            if not wanted(name) or name in paired:
                continue
            partner = PAIRS.get(name)
            group = [name, partner] if partner and wanted(partner) else [name]
            paired.update(group)
            count = args.rounds if len(group) == 2 else 1
            for round_index in range(count):
                for member in group:
                    settle(member)
                    measurements[member](round_index == count - 1)
    finally:
        if nginx:
            nginx.stop()
        if cached and cached.poll() is None:
            cached.terminate()
            cached.wait(10)
        stack.stop()
        servers["redis"].stop()
        servers["pg"].stop()
        shutil.rmtree(work, ignore_errors=True)

    results["targets"] = targets(results["measurements"])
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    report = markdown(results)
    (out_dir / "results.md").write_text(report)
    say("\n" + report)
    say(f"results: {out_dir}/results.json, results.md and plots")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
