"""End-to-end harness: a private trellis-users + trellis-orders + trellis-notifications +
trellis-gateway per Stack.

Runs against the PostgreSQL and Redis that `./trellis test` starts (TRELLIS_TEST_* variables).
Each Stack gets its own databases and roles (one per service), signing key, ports, log files and
orders event stream (stack.orders_stream) and notifications push stream (stack.push_stream), so
stacks may run in parallel. Redis is shared unless own_redis=True (then the stack starts a private
one, which a test may also stop to see how the services cope; persistent_redis=True gives it an
append-only file, so that it keeps its streams across a kill, as production Redis must).

    from harness import Stack

    class SignupTest(unittest.TestCase):
        @classmethod
        def setUpClass(cls):
            cls.stack = Stack(users_overrides={"tokens": {"access_ttl_s": 3}}).start()
            cls.addClassCleanup(cls.stack.stop)

        def test_signup(self):
            status, headers, body, doc = self.stack.http("POST", "/v1/auth/signup", {...})

Components are started the same way as by `./trellis up` (deploy/local/stack.py). They get
SIGTERM when the test process dies, so create Stacks from the main thread (the signal follows the
thread that started them). TRELLIS_E2E_KEEP=1 keeps each stack's directory (configs, logs, key).
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "deploy" / "local"))

import stack as local  # noqa: E402  (needs the path above)

REQUIRED_ENV = (
    "TRELLIS_TEST_PG_HOST",
    "TRELLIS_TEST_PG_PORT",
    "TRELLIS_TEST_PG_USER",
    "TRELLIS_TEST_REDIS_HOST",
    "TRELLIS_TEST_REDIS_PORT",
)


class HarnessError(RuntimeError):
    pass


class Response(NamedTuple):
    """Unpacks as (status, headers, body, json); headers have lower-case names."""

    status: int
    headers: dict[str, str]
    body: bytes
    json: Any


def _send(
    conn: http.client.HTTPConnection,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw_body: bytes | str | None = None,
) -> Response:
    if body is not None and raw_body is not None:
        raise ValueError("pass body (JSON-encoded for you) or raw_body (sent as is), not both")
    sent_headers = dict(headers or {})
    payload: bytes | None = None
    if body is not None:
        payload = json.dumps(body).encode()
        if not any(name.lower() == "content-type" for name in sent_headers):
            sent_headers["Content-Type"] = "application/json"
    elif raw_body is not None:
        payload = raw_body.encode() if isinstance(raw_body, str) else raw_body
    conn.request(method, path, body=payload, headers=sent_headers)
    response = conn.getresponse()
    data = response.read()
    received: dict[str, str] = {}
    for name, value in response.getheaders():
        key = name.lower()
        received[key] = f"{received[key]}, {value}" if key in received else value
    try:
        document = json.loads(data) if data else None
    except ValueError:
        document = None
    return Response(response.status, received, data, document)


def http_request(
    host: str,
    port: int,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    raw_body: bytes | str | None = None,
    timeout: float = 10.0,
) -> Response:
    """One request on a new connection, closed afterwards."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        return _send(conn, method, path, body, headers, raw_body)
    finally:
        conn.close()


class KeepAliveSession:
    """Sends every request over one HTTP/1.1 connection (reopened only if the server closed it;
    connections_opened tells whether that happened)."""

    def __init__(self, host: str, port: int, timeout: float = 10.0):
        session = self
        self.connections_opened = 0

        class CountingConnection(http.client.HTTPConnection):
            def connect(self) -> None:
                super().connect()
                session.connections_opened += 1

        self.conn = CountingConnection(host, port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | str | None = None,
    ) -> Response:
        return _send(self.conn, method, path, body, headers, raw_body)

    http = request

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> KeepAliveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def metric_value(port: int, series: str) -> float | None:
    """The value of one series (name and labels as exposed, e.g. 'x_total{result="hit"}') on
    GET /metrics at 127.0.0.1:port, or None when it is not there."""
    text = http_request("127.0.0.1", port, "GET", "/metrics").body.decode()
    match = re.search("^" + re.escape(series) + r"(?:\{\})? (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


def servers_from_env() -> dict[str, str]:
    missing = [name for name in REQUIRED_ENV if not os.environ.get(name)]
    if missing:
        raise HarnessError(
            f"{', '.join(missing)} not set: end-to-end tests need the PostgreSQL and Redis that "
            "`./trellis test` starts. Run them with ./trellis test (e.g. ./trellis test -L e2e)."
        )
    return {name: os.environ[name] for name in REQUIRED_ENV}


class Stack:
    """trellis-users, trellis-orders, trellis-notifications and trellis-gateway on free ports,
    with fresh databases."""

    COMPONENTS = ("users", "orders", "notifications", "gateway")
    SERVICES = ("users", "orders", "notifications")

    def __init__(
        self,
        users_overrides: dict | None = None,
        gateway_overrides: dict | None = None,
        *,
        own_redis: bool = False,
        ready_timeout: float = 30.0,
        orders_overrides: dict | None = None,
        notifications_overrides: dict | None = None,
        persistent_redis: bool = False,
    ):
        env = servers_from_env()
        self.pg_host = env["TRELLIS_TEST_PG_HOST"]
        self.pg_port = int(env["TRELLIS_TEST_PG_PORT"])
        self.pg_superuser = env["TRELLIS_TEST_PG_USER"]
        self.redis_host = env["TRELLIS_TEST_REDIS_HOST"]
        self.redis_port = int(env["TRELLIS_TEST_REDIS_PORT"])
        self.build_dir = Path(os.environ.get("TRELLIS_BUILD_DIR") or REPO_ROOT / "build")
        self.users_overrides = users_overrides
        self.gateway_overrides = gateway_overrides
        self.orders_overrides = orders_overrides
        self.notifications_overrides = notifications_overrides
        self.persistent_redis = persistent_redis
        self.own_redis = own_redis
        self.ready_timeout = ready_timeout

        self.work_dir: Path | None = None
        self.db_name = f"e2e_{secrets.token_hex(6)}"  # also the role's name
        self.db_password = secrets.token_urlsafe(18)
        self.orders_db_name = f"{self.db_name}_orders"  # also the role's name
        self.orders_db_password = secrets.token_urlsafe(18)
        # Redis may be shared by parallel stacks: each relays its order events to its own stream.
        self.orders_stream = f"trellis:events:orders:{self.db_name}"
        self.orders_port = 0
        self.orders_config: dict = {}
        self.notifications_db_name = f"{self.db_name}_notifications"  # also the role's name
        self.notifications_db_password = secrets.token_urlsafe(18)
        # Likewise each stack's notifications push to their own fan-out stream.
        self.push_stream = f"trellis:notifications:push:{self.db_name}"
        self.dead_letter_stream = f"{self.orders_stream}:dead-letter"
        self.notifications_port = 0
        self.notifications_config: dict = {}
        self.http_port = 0
        self.users_port = 0
        self.base_url = ""
        self.keys_dir: Path | None = None
        self.kid = ""
        self.log_paths: dict[str, Path] = {}
        self.config_paths: dict[str, Path] = {}
        self.users_config: dict = {}
        self.gateway_config: dict = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.exit_codes: dict[str, int | None] = {}
        self.redis: local.Redis | None = None
        self._db_created = False
        self._final_logs: dict[str, str] = {}
        self._started = False

    # --- life cycle

    def start(self) -> Stack:
        if self._started:
            return self
        self._started = True
        atexit.register(self.stop)  # a test that forgets stop() must not leak servers
        try:
            self._prepare()
            for name, port in (
                ("users", self.users_port),
                ("orders", self.orders_port),
                ("notifications", self.notifications_port),
            ):
                process = self.start_component(name)
                local.wait_for_listen(port, self.ready_timeout, lambda p=process: p.poll() is None)
            self.start_component("gateway")
            self.wait_ready()
        except BaseException as error:
            tails = self.log_tails()
            self.stop()
            if isinstance(error, HarnessError) or not isinstance(error, Exception):
                raise  # already carries the log tails, or is Ctrl-C
            raise HarnessError(f"stack did not start: {error}\n{tails}") from error
        return self

    def _prepare(self) -> None:
        self.work_dir = Path(tempfile.mkdtemp(prefix="trellis-e2e-"))
        if self.own_redis:
            self.redis = local.Redis(
                local.free_port(),
                self.work_dir / "redis",
                self.work_dir / "redis.pid",
                self.work_dir / "redis.log",
                persistent=self.persistent_redis,
            )
            self.redis.start()
            self.redis_host, self.redis_port = "127.0.0.1", self.redis.port
        self._db_created = True
        local.provision_database(self.pg_admin(), self.db_name, self.db_password, self.db_name)
        for name, password in (
            (self.orders_db_name, self.orders_db_password),
            (self.notifications_db_name, self.notifications_db_password),
        ):
            local.provision_database(self.pg_admin(), name, password, name)
        self.keys_dir = self.work_dir / "keys"
        self.kid = local.generate_signing_key(self.keys_dir)
        self.users_port, self.orders_port, self.notifications_port, self.http_port = (
            local.free_ports(4)
        )
        self.base_url = f"http://127.0.0.1:{self.http_port}"
        self.log_paths = {name: self.work_dir / f"{name}.log" for name in self.COMPONENTS}
        self.config_paths = {name: self.work_dir / f"{name}.json" for name in self.COMPONENTS}
        self.users_config = local.users_config(
            grpc_port=self.users_port,
            pg_host=self.pg_host,
            pg_port=self.pg_port,
            dbname=self.db_name,
            db_user=self.db_name,
            db_password=self.db_password,
            redis_host=self.redis_host,
            redis_port=self.redis_port,
            keys_dir=self.keys_dir,
            kid=self.kid,
            overrides=self.users_overrides,
        )
        self.orders_config = local.orders_config(
            grpc_port=self.orders_port,
            pg_host=self.pg_host,
            pg_port=self.pg_port,
            dbname=self.orders_db_name,
            db_user=self.orders_db_name,
            db_password=self.orders_db_password,
            redis_host=self.redis_host,
            redis_port=self.redis_port,
            overrides=local.deep_merge(
                {"orders": {"relay_stream": self.orders_stream}}, self.orders_overrides
            ),
        )
        self.notifications_config = local.notifications_config(
            grpc_port=self.notifications_port,
            pg_host=self.pg_host,
            pg_port=self.pg_port,
            dbname=self.notifications_db_name,
            db_user=self.notifications_db_name,
            db_password=self.notifications_db_password,
            redis_host=self.redis_host,
            redis_port=self.redis_port,
            overrides=local.deep_merge(
                {
                    "consumer": {
                        "stream": self.orders_stream,
                        "dead_letter_stream": self.dead_letter_stream,
                    },
                    "push": {"stream": self.push_stream},
                },
                self.notifications_overrides,
            ),
        )
        self.gateway_config = local.gateway_config(
            http_port=self.http_port,
            users_port=self.users_port,
            orders_port=self.orders_port,
            notifications_port=self.notifications_port,
            redis_host=self.redis_host,
            redis_port=self.redis_port,
            overrides=local.deep_merge({"push": {"stream": self.push_stream}}, self.gateway_overrides),
        )
        local.write_config(self.config_paths["users"], self.users_config)
        local.write_config(self.config_paths["orders"], self.orders_config)
        local.write_config(self.config_paths["notifications"], self.notifications_config)
        local.write_config(self.config_paths["gateway"], self.gateway_config)

    def start_component(self, name: str, die_with_parent: bool = True) -> subprocess.Popen:
        """(Re)starts one component with its existing config; does not wait for readiness.
        From a thread other than the main one pass die_with_parent=False: the kernel's
        parent-death signal follows the starting thread, which would kill the component when that
        thread ends (stop() still stops it)."""
        running = self.processes.get(name)
        if running is not None and running.poll() is None:
            raise HarnessError(f"{name} is already running (pid {running.pid})")
        self.processes[name] = local.start_component(
            name,
            self.build_dir,
            self.config_paths[name],
            self.log_paths[name],
            die_with_parent=die_with_parent,
        )
        return self.processes[name]

    def stop_component(self, name: str, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after timeout. Returns the exit code (negative: signal)."""
        process = self.processes.get(name)
        if process is None:
            return self.exit_codes.get(name)
        local.stop_pid(process.pid, timeout, popen=process)
        self.exit_codes[name] = process.returncode
        del self.processes[name]
        return process.returncode

    def restart_component(self, name: str) -> None:
        self.stop_component(name)
        self.start_component(name)
        self.wait_ready()

    def wait_ready(self, timeout: float | None = None) -> None:
        alive = {name: (lambda p=p: p.poll() is None) for name, p in self.processes.items()}
        problem = local.wait_for_ready(
            f"{self.base_url}/readyz", timeout or self.ready_timeout, alive
        )
        if problem:
            raise HarnessError(f"{problem}\n{self.log_tails()}")

    def stop(self) -> None:
        """Stops the components, drops the databases and removes the temporary files.
        Logs stay readable through *_log_text() afterwards. Safe to call more than once."""
        if not self._started:
            return
        self._started = False
        atexit.unregister(self.stop)
        for name in ("gateway", *reversed(self.SERVICES)):
            self.stop_component(name)
        for name, path in self.log_paths.items():
            self._final_logs[name] = self._read_log(path)
        if self._db_created:
            self._db_created = False
            for name in (self.db_name, self.orders_db_name, self.notifications_db_name):
                try:
                    local.drop_database(self.pg_admin(), name, name)
                except local.StackError as error:
                    print(f"warning: could not drop {name}: {error}", file=sys.stderr)
            try:
                self.redis_cli("DEL", self.orders_stream, self.dead_letter_stream, self.push_stream)
            except (OSError, subprocess.SubprocessError):
                pass  # Redis stopped by the test: nothing to clean up
        if self.redis is not None:
            self.redis.stop()
            self.redis = None
        if self.work_dir is not None and not os.environ.get("TRELLIS_E2E_KEEP"):
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> Stack:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None and self._started:
            print(self.log_tails(), file=sys.stderr)
        self.stop()

    # --- tools for tests

    def http(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
        raw_body: bytes | str | None = None,
        timeout: float = 10.0,
    ) -> Response:
        """One request to the gateway on a new connection."""
        return http_request(
            "127.0.0.1", self.http_port, method, path, body, headers, raw_body, timeout
        )

    def keepalive_session(self, timeout: float = 10.0) -> KeepAliveSession:
        return KeepAliveSession("127.0.0.1", self.http_port, timeout)

    def grant_role(self, email: str, role: str = "admin") -> int:
        """trellis-users grant-role with this stack's config: 0 granted, 2 no such user."""
        result = subprocess.run(
            [
                str(local.binary_path(self.build_dir, "users")),
                "--config",
                str(self.config_paths["users"]),
                "grant-role",
                email,
                role,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if result.returncode not in (0, 2):
            raise HarnessError(
                f"grant-role exited {result.returncode}: {result.stdout}{result.stderr}"
            )
        return result.returncode

    def pg_admin(self) -> local.Psql:
        return local.Psql(self.pg_host, self.pg_port, self.pg_superuser)

    def sql(self, query: str, dbname: str | None = None) -> list[list[str]]:
        """Runs SQL as the superuser in this stack's (users) database, or in `dbname` (e.g.
        stack.orders_db_name); rows of '|'-separated text."""
        output = self.pg_admin().run(query, dbname=dbname or self.db_name, rows=True)
        return [line.split("|") for line in output.splitlines() if line]

    def redis_cli(self, *args: str) -> str:
        result = subprocess.run(
            ["redis-cli", "-h", self.redis_host, "-p", str(self.redis_port), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout.strip()

    def gateway_log_text(self) -> str:
        return self._log_text("gateway")

    def users_log_text(self) -> str:
        return self._log_text("users")

    def orders_log_text(self) -> str:
        return self._log_text("orders")

    def notifications_log_text(self) -> str:
        return self._log_text("notifications")

    def log_tails(self, lines: int = 40) -> str:
        return local.log_tails(self.log_paths, lines) if self.log_paths else "(no logs yet)"

    def _log_text(self, name: str) -> str:
        path = self.log_paths.get(name)
        if path is not None and path.exists():
            return self._read_log(path)
        return self._final_logs.get(name, "")

    @staticmethod
    def _read_log(path: Path) -> str:
        try:
            return path.read_text(errors="replace")
        except OSError:
            return ""
