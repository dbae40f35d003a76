#!/usr/bin/python3
"""A real Prometheus for a local Trellis stack: writes its configuration and starts and stops it.

Standard library only (like stack.py, it must work before anything else is installed); the
server is Debian's /usr/bin/prometheus (package `prometheus`). The configuration comes from
deploy/prometheus/prometheus.yml.tmpl and loads the alerting and recording rules in
deploy/prometheus/rules/, so a local Prometheus evaluates exactly what production would.

    server = Prometheus(work_dir, port=9090)
    server.write_config({"gateway": ["127.0.0.1:9100"], "users": ["127.0.0.1:9464"]})
    server.start()                  # waits for /-/ready; raises PrometheusError with the log tail
    server.query("sum(http_requests_total)")
    server.stop()                   # SIGTERM, SIGKILL after the timeout; by pid, checked

    prometheus.py config --target gateway=127.0.0.1:9100 [--scrape-interval 15]
    prometheus.py start DIR --port 9090 --target JOB=HOST:PORT ... [--scrape-interval 15]
    prometheus.py stop DIR
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import signal
import string
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any, Mapping, Sequence

REPO_ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_BINARY = Path("/usr/bin/prometheus")
CONFIG_TEMPLATE = REPO_ROOT / "deploy" / "prometheus" / "prometheus.yml.tmpl"
# A glob: Prometheus expands it itself, so rule files added later are picked up on reload.
DEFAULT_RULE_FILES = (str(REPO_ROOT / "deploy" / "prometheus" / "rules" / "*.yml"),)
JOB_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
TARGET = re.compile(r"[A-Za-z0-9.\-]+:\d{1,5}|\[[0-9A-Fa-f:.]+\]:\d{1,5}")


class PrometheusError(Exception):
    """A failure worth one clear message (with the server's log tail when it has one)."""


# --------------------------------------------------------------------------------------------
# Configuration


def duration(seconds: float) -> str:
    """Prometheus duration text; milliseconds, so sub-second intervals survive."""
    if seconds <= 0:
        raise ValueError(f"interval must be positive, not {seconds}")
    millis = round(seconds * 1000)
    return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"


def render_config(
    targets: Mapping[str, Sequence[str]],
    *,
    scrape_interval_s: float = 15.0,
    evaluation_interval_s: float | None = None,
    rule_files: Sequence[str | Path] = DEFAULT_RULE_FILES,
) -> str:
    """prometheus.yml text scraping targets {job: ["host:port", ...]} at /metrics.

    evaluation_interval_s defaults to the scrape interval."""
    scrape_configs = []
    for job, addresses in targets.items():
        if not JOB_NAME.fullmatch(job):
            raise ValueError(f"job name {job!r} is not a Prometheus label value we accept")
        addresses = list(addresses)
        if not addresses:
            raise ValueError(f"job {job!r} has no targets")
        for address in addresses:
            if not TARGET.fullmatch(address):
                raise ValueError(f"target {address!r} of job {job!r} is not host:port")
        scrape_configs.append(
            {
                "job_name": job,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": addresses}],
            }
        )
    evaluation = evaluation_interval_s if evaluation_interval_s is not None else scrape_interval_s
    values = {
        "scrape_interval": duration(scrape_interval_s),
        "scrape_timeout": duration(min(scrape_interval_s, 10.0)),
        "evaluation_interval": duration(evaluation),
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": scrape_configs,
    }
    template = string.Template(CONFIG_TEMPLATE.read_text())
    return template.substitute({key: json.dumps(value) for key, value in values.items()})


def write_config(path: Path, targets: Mapping[str, Sequence[str]], **options: Any) -> Path:
    """Writes render_config(targets, **options) to path atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(render_config(targets, **options))
    os.replace(tmp, path)
    return path


# --------------------------------------------------------------------------------------------
# Process helpers: the same ones as the rest of the local stack

from stack import _die_with_parent  # noqa: E402
from stack import cmdline as _cmdline  # noqa: E402
from stack import free_port  # noqa: E402,F401  (part of this module's interface)
from stack import pid_alive as _pid_alive  # noqa: E402
from stack import tail as _tail  # noqa: E402
from stack import wait_until as _wait_until  # noqa: E402


# --------------------------------------------------------------------------------------------
# The server


class Prometheus:
    """One Prometheus on 127.0.0.1:port with everything under work_dir unless told otherwise:
    prometheus.yml, data/ (TSDB), prometheus.log, prometheus.pid.

    port 0 picks a free port now, so url is known before start()."""

    def __init__(
        self,
        work_dir: Path,
        port: int = 0,
        *,
        config_path: Path | None = None,
        data_dir: Path | None = None,
        log_path: Path | None = None,
        pidfile: Path | None = None,
        binary: Path = PROMETHEUS_BINARY,
        retention: str = "1d",
    ):
        # Absolute: Prometheus runs in work_dir, and running_pid() matches the config path.
        self.work_dir = Path(work_dir).absolute()
        self.port = port or free_port()
        self.config_path = Path(config_path or self.work_dir / "prometheus.yml").absolute()
        self.data_dir = Path(data_dir or self.work_dir / "data").absolute()
        self.log_path = Path(log_path or self.work_dir / "prometheus.log").absolute()
        self.pidfile = Path(pidfile or self.work_dir / "prometheus.pid").absolute()
        self.binary = Path(binary)
        self.retention = retention
        self._process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self, targets: Mapping[str, Sequence[str]], **options: Any) -> Path:
        """Writes the configuration (see render_config for the options)."""
        return write_config(self.config_path, targets, **options)

    def argv(self) -> list[str]:
        # One token per flag: running_pid() recognises the process by the config token.
        return [
            str(self.binary),
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.data_dir}",
            f"--storage.tsdb.retention.time={self.retention}",
            f"--web.listen-address=127.0.0.1:{self.port}",
        ]

    # --- life cycle

    def running_pid(self) -> int | None:
        """The pid in the pidfile while that process is our Prometheus (a recycled pid is not)."""
        try:
            pid = int(self.pidfile.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
        if not _pid_alive(pid):
            return None
        args = _cmdline(pid)
        if f"--config.file={self.config_path}" not in args:
            return None
        return pid

    def start(
        self, timeout: float = 30.0, *, detach: bool = False, die_with_parent: bool = False
    ) -> int:
        """Starts Prometheus and waits until /-/ready answers 200; returns its pid.

        detach: own session, so it outlives the calling script (./trellis up).
        die_with_parent: SIGTERM when the calling process dies (tests).
        Already running (same config file): reloads the configuration (SIGHUP) instead."""
        if not self.config_path.exists():
            raise PrometheusError(f"no configuration at {self.config_path}: call write_config")
        if not self.binary.exists():
            raise PrometheusError(
                f"{self.binary} not found: install the Debian package `prometheus`"
            )
        running = self.running_pid()
        if running is not None:
            os.kill(running, signal.SIGHUP)
            return running
        for path in (self.work_dir, self.data_dir, self.log_path.parent, self.pidfile.parent):
            path.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                self.argv(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.work_dir,
                start_new_session=detach,
                preexec_fn=_die_with_parent if die_with_parent else None,
            )
        self.pidfile.write_text(f"{self._process.pid}\n")
        process = self._process
        if not _wait_until(lambda: self.ready() or process.poll() is not None, timeout, 0.1):
            self.stop()
            raise PrometheusError(
                f"Prometheus was not ready on {self.url} within {timeout:.0f} s\n"
                f"{_tail(self.log_path)}"
            )
        if process.poll() is not None:
            code = process.returncode
            self.stop()
            raise PrometheusError(
                f"Prometheus exited with {code} during start-up\n{_tail(self.log_path)}"
            )
        return process.pid

    def ready(self) -> bool:
        try:
            status, _ = self._get("/-/ready", timeout=1.0)
        except (OSError, http.client.HTTPException):
            return False
        return status == 200

    def reload(self) -> bool:
        """Re-reads the configuration and rules (SIGHUP). False when it does not run."""
        pid = self.running_pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGHUP)
        return True

    def stop(self, timeout: float = 10.0) -> str:
        """SIGTERM (Prometheus flushes its head block), SIGKILL after timeout. Returns what it
        took. Only ever signals the pid it started or the pidfile's pid when it is ours."""
        process = self._process
        pid = process.pid if process is not None else self.running_pid()
        outcome = "not running"
        if pid is not None:

            def gone() -> bool:
                return process.poll() is not None if process is not None else not _pid_alive(pid)

            if not gone():
                try:
                    os.kill(pid, signal.SIGTERM)
                    outcome = "stopped"
                except ProcessLookupError:
                    pass
                if outcome == "stopped" and not _wait_until(gone, timeout):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    _wait_until(gone, 5.0)
                    outcome = f"killed (no exit {timeout:.0f} s after SIGTERM)"
        self._process = None
        self.pidfile.unlink(missing_ok=True)
        return outcome

    def __enter__(self) -> Prometheus:
        self.start(die_with_parent=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)

    # --- HTTP API

    def _get(self, path: str, timeout: float = 5.0) -> tuple[int, bytes]:
        # http.client, not urllib: no proxy from the environment is ever consulted.
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def api(self, path: str, **params: str) -> Any:
        """GET /api/v1/<path>?params; returns the answer's "data", raises on an error answer."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            status, body = self._get(f"/api/v1/{path}{query}")
        except (OSError, http.client.HTTPException) as error:
            raise PrometheusError(f"Prometheus on {self.url} did not answer: {error}") from error
        try:
            answer = json.loads(body)
        except ValueError as error:
            raise PrometheusError(f"/api/v1/{path} answered {status}: {body[:200]!r}") from error
        if status != 200 or answer.get("status") != "success":
            problem = f"{answer.get('errorType')}: {answer.get('error')}"
            raise PrometheusError(f"/api/v1/{path} answered {status}: {problem}")
        return answer["data"]

    def query(self, expr: str) -> list[dict]:
        """Instant query; the vector's samples ({"metric": {...}, "value": [ts, "text"]})."""
        data = self.api("query", query=expr)
        if data.get("resultType") != "vector":
            raise PrometheusError(f"{expr!r} gave a {data.get('resultType')}, not a vector")
        return data["result"]

    def active_targets(self) -> list[dict]:
        return self.api("targets", state="active")["activeTargets"]

    def rule_groups(self) -> list[dict]:
        return self.api("rules")["groups"]


# --------------------------------------------------------------------------------------------
# Command line


def _parse_targets(pairs: Sequence[str]) -> dict[str, list[str]]:
    targets: dict[str, list[str]] = {}
    for pair in pairs:
        job, sep, address = pair.partition("=")
        if not sep:
            raise ValueError(f"--target {pair!r}: expected JOB=HOST:PORT")
        targets.setdefault(job, []).append(address)
    return targets


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="prometheus.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    config = commands.add_parser("config", help="print the configuration")
    start = commands.add_parser("start", help="write the configuration and start Prometheus")
    stop = commands.add_parser("stop", help="stop the Prometheus started in DIR")
    for sub in (config, start):
        sub.add_argument("--target", action="append", default=[], metavar="JOB=HOST:PORT")
        sub.add_argument("--scrape-interval", type=float, default=15.0, metavar="SECONDS")
    for sub in (start, stop):
        sub.add_argument("dir", type=Path)
    start.add_argument("--port", type=int, default=9090)
    args = parser.parse_args(argv)
    try:
        if args.command == "config":
            sys.stdout.write(render_config(_parse_targets(args.target),
                                           scrape_interval_s=args.scrape_interval))
        elif args.command == "start":
            server = Prometheus(args.dir.resolve(), args.port)
            server.write_config(_parse_targets(args.target),
                                scrape_interval_s=args.scrape_interval)
            pid = server.start(detach=True)
            print(f"prometheus running (pid {pid}) on {server.url}; log {server.log_path}")
        else:
            print(f"prometheus: {Prometheus(args.dir.resolve()).stop()}")
    except (ValueError, PrometheusError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
