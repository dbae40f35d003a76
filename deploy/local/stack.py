#!/usr/bin/python3
"""Runs Trellis on this machine: PostgreSQL 15, Redis 7, trellis-users, trellis-orders,
trellis-notifications and trellis-gateway.

`./trellis up|down|status|logs|admin|test` call this file, and tests/e2e/harness.py imports it,
so the developer stack and the end-to-end tests start every component the same way.
Standard library only: it must work before anything else is installed.

    stack.py up [--with-prometheus] | down | status | logs [NAME] [--follow] | grant EMAIL ROLE
    stack.py test-servers start DIR | test-servers stop DIR
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import pwd
import re
import secrets
import shlex
import shutil
import signal
import random
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
PG_SUPERUSER = "postgres"
# Where each binary lands in a CMake build tree.
BINARIES = {
    "users": "services/users/trellis-users",
    "orders": "services/orders/trellis-orders",
    "notifications": "services/notifications/trellis-notifications",
    "gateway": "gateway/trellis-gateway",
}
# Linux limit for a unix socket path (sun_path) including the terminating NUL.
MAX_SOCKET_PATH = 107


class StackError(Exception):
    """A failure worth one clear line to the developer, not a traceback."""


def say(message: str) -> None:
    try:
        print(message, flush=True)
    except BrokenPipeError:
        # `./trellis up | head` must not abort halfway through starting the stack.
        sys.stdout = open(os.devnull, "w")


# --------------------------------------------------------------------------------------------
# Ports


def ephemeral_port_range() -> tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux), or the IANA default."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 49152, 65535


def free_ports(count: int) -> list[int]:
    """Distinct ports nobody listens on, chosen at random below the kernel's ephemeral range: a
    port the kernel hands out for bind(0) is in that range, where any process's next outgoing
    connection (a gRPC, Redis or PostgreSQL client of a test running beside this one) may take it
    before the caller binds it. All sockets stay bound until every port is known; a small race
    with another test choosing the same port remains. Falls back to bind(0) when the range below
    is too small."""
    low, _ = ephemeral_port_range()
    pool_low, pool_high = 10000, low - 1
    sockets = []
    try:
        if pool_high - pool_low >= 1000:
            chooser = random.SystemRandom()
            for _ in range(count * 50):
                if len(sockets) == count:
                    break
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    s.bind(("127.0.0.1", chooser.randint(pool_low, pool_high)))
                except OSError:
                    s.close()
                    continue
                sockets.append(s)
        while len(sockets) < count:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def free_port() -> int:
    return free_ports(1)[0]


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    # SO_REUSEADDR so that connections in TIME_WAIT from our own last run do not count as "taken",
    # while any listener on the port (ours or not) still makes bind fail.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


def port_owner(port: int) -> str:
    """Best-effort description of who listens on a port (needs `ss`; empty when unknown)."""
    if not shutil.which("ss"):
        return ""
    result = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip()


def ensure_port_free(port: int, what: str, env_var: str) -> None:
    if port_is_free(port):
        return
    owner = port_owner(port)
    raise StackError(
        f"port {port} for {what} is already in use by another process"
        + (f":\n  {owner}" if owner else "")
        + f"\nStop that process or choose another port with {env_var}=<port>."
    )


def port_accepts(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Processes and pidfiles


def pid_alive(pid: int) -> bool:
    """True for a live process; a zombie (exited, not yet reaped) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name, which is in parentheses and may contain spaces.
    return stat[stat.rfind(")") + 2 :][:1] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def process_matches(pid: int, needles: tuple[str, ...]) -> bool:
    """True when the process is alive and every needle occurs in its command line.

    Guards against a recycled pid: a pidfile alone never proves the process is ours."""
    if not pid_alive(pid):
        return False
    args = cmdline(pid)
    return all(any(needle in arg for arg in args) for needle in needles)


def runs_replaced_binary(pid: int) -> bool:
    """True when the executable was rebuilt (replaced on disk) after the process started."""
    try:
        return os.readlink(f"/proc/{pid}/exe").endswith(" (deleted)")
    except OSError:
        return False


def read_pidfile(path: Path) -> int | None:
    try:
        text = path.read_text().split()
        return int(text[0]) if text else None
    except (OSError, ValueError):
        return None


def write_pidfile(path: Path, pid: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{pid}\n")


def running_pid(pidfile: Path, needles: tuple[str, ...]) -> int | None:
    """The pid recorded in pidfile when that process still runs; removes a stale pidfile."""
    pid = read_pidfile(pidfile)
    if pid is None:
        if pidfile.exists():
            pidfile.unlink()
        return None
    if process_matches(pid, needles):
        return pid
    pidfile.unlink(missing_ok=True)
    say(f"removed stale pidfile {pidfile} (pid {pid} is not running)")
    return None


def _die_with_parent() -> None:
    # PR_SET_PDEATHSIG: a test run that crashes or is killed by ctest takes its servers with it.
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def start_process(
    argv: list[str],
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    detach: bool = False,
    die_with_parent: bool = False,
) -> subprocess.Popen:
    """Starts argv with stdout and stderr appended to log_path.

    detach: own session, so it outlives this script and ignores the terminal's Ctrl-C.
    die_with_parent: SIGTERM when this process dies (for tests)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=detach,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )


def stop_pid(
    pid: int, timeout: float = 10.0, popen: subprocess.Popen | None = None
) -> str:
    """SIGTERM, wait up to timeout, then SIGKILL. Returns what it took."""

    def gone() -> bool:
        return popen.poll() is not None if popen is not None else not pid_alive(pid)

    if gone():
        return "not running"
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "not running"
    if wait_until(gone, timeout):
        return "stopped"
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return "stopped"
    wait_until(gone, 5.0)
    return f"killed (no exit {timeout:.0f} s after SIGTERM)"


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


def tail(path: Path, lines: int = 30) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 256 * 1024))
            data = f.read().decode(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(data.splitlines()[-lines:]) or "(empty log)"


def log_tails(logs: dict[str, Path], lines: int = 30) -> str:
    parts = []
    for name, path in logs.items():
        parts.append(f"----- last {lines} lines of {name} ({path}) -----\n{tail(path, lines)}")
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# HTTP readiness


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """Status of a GET, or None when nothing answered. http.client, so no proxy is consulted."""
    match = re.fullmatch(r"http://([^/:]+):(\d+)(/.*)?", url)
    if not match:
        raise ValueError(f"unsupported URL {url}")
    conn = http.client.HTTPConnection(match[1], int(match[2]), timeout=timeout)
    try:
        conn.request("GET", match[3] or "/")
        response = conn.getresponse()
        response.read()
        return response.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_for_ready(
    url: str, timeout: float, alive: dict[str, Callable[[], bool]]
) -> str | None:
    """Polls url until it answers 200. Returns None when ready, otherwise why it gave up.

    Gives up early when one of the watched processes exits: waiting longer cannot help."""
    deadline = time.monotonic() + timeout
    while True:
        for name, is_alive in alive.items():
            if not is_alive():
                return f"{name} exited during startup"
        status = http_status(url)
        if status == 200:
            return None
        if time.monotonic() >= deadline:
            last = f"last status {status}" if status else "no answer"
            return f"{url} was not ready within {timeout:.0f} s ({last})"
        time.sleep(0.2)


# --------------------------------------------------------------------------------------------
# Secrets, keys, config files


def write_private(path: Path, data: str | bytes, mode: int = 0o600) -> None:
    """Writes atomically with the final mode from the start (no window where others can read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def new_password() -> str:
    return secrets.token_urlsafe(24)


def read_or_create_secret(path: Path) -> str:
    if path.exists():
        value = path.read_text().strip()
        if value:
            return value
    value = new_password()
    write_private(path, value + "\n")
    return value


def generate_signing_key(keys_dir: Path) -> str:
    """Creates <keys_dir>/<kid>.pem (Ed25519, mode 0600) and returns the kid."""
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    kid = f"k-{time.strftime('%Y%m%d', time.gmtime())}-{secrets.token_hex(2)}"
    result = subprocess.run(
        ["openssl", "genpkey", "-algorithm", "ed25519"], capture_output=True, check=False
    )
    if result.returncode != 0 or b"PRIVATE KEY" not in result.stdout:
        raise StackError(f"openssl genpkey failed: {result.stderr.decode(errors='replace')}")
    write_private(keys_dir / f"{kid}.pem", result.stdout)
    return kid


def ensure_signing_key(keys_dir: Path, kid_file: Path) -> str:
    """The active kid: reuses the key of an earlier run so issued tokens stay valid."""
    if kid_file.exists():
        kid = kid_file.read_text().strip()
        if kid and (keys_dir / f"{kid}.pem").exists():
            return kid
    existing = sorted(keys_dir.glob("k-*.pem")) if keys_dir.is_dir() else []
    kid = existing[-1].stem if existing else generate_signing_key(keys_dir)
    kid_file.parent.mkdir(parents=True, exist_ok=True)
    kid_file.write_text(kid + "\n")
    return kid


def deep_merge(base: dict, overrides: dict | None) -> dict:
    """A copy of base with overrides applied; nested dicts merge, everything else replaces."""
    merged = json.loads(json.dumps(base))
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def service_config(
    *,
    grpc_port: int,
    pg_port: int,
    dbname: str,
    db_user: str,
    db_password: str,
    redis_port: int,
    pg_host: str = "127.0.0.1",
    redis_host: str = "127.0.0.1",
) -> dict:
    """The keys every service shares (common/include/trellis/common/service_config.h)."""
    return {
        "grpc": {"listen": f"127.0.0.1:{grpc_port}"},
        "log_level": "info",
        "database": {
            "host": pg_host,
            "port": pg_port,
            "dbname": dbname,
            "user": db_user,
            "password": db_password,
            "pool_size": 8,
            "acquire_timeout_ms": 1000,
            "statement_timeout_ms": 5000,
        },
        "migrate_on_start": True,
        "redis": {"host": redis_host, "port": redis_port, "timeout_ms": 500},
    }


# Each service's own keys on top of service_config(): exactly the keys its binary accepts (it
# rejects unknown ones). keyword arguments are those of service_config() plus `overrides`.
def users_config(*, keys_dir: Path, kid: str, overrides: dict | None = None, **shared) -> dict:
    config = service_config(**shared)
    config["tokens"] = {
        "issuer": "trellis",
        "audience": "trellis-api",
        "access_ttl_s": 900,
        "refresh_ttl_s": 2592000,
        "keys_dir": str(keys_dir.resolve()),
        "active_kid": kid,
    }
    config["passwords"] = {"ops_limit": 2, "mem_limit_kib": 19456}
    return deep_merge(config, overrides)


def orders_config(*, overrides: dict | None = None, **shared) -> dict:
    config = service_config(**shared)
    config["orders"] = {
        "auto_confirm_delay_ms": 2000,
        "idempotency_ttl_s": 86400,
        "relay_stream": "trellis:events:orders",
        "relay_batch": 100,
        "relay_interval_ms": 200,
    }
    return deep_merge(config, overrides)


def notifications_config(*, overrides: dict | None = None, **shared) -> dict:
    config = service_config(**shared)
    config["consumer"] = {"stream": "trellis:events:orders", "group": "notifications"}
    config["push"] = {"stream": "trellis:notifications:push"}
    return deep_merge(config, overrides)


def gateway_config(
    *,
    http_port: int,
    users_port: int,
    orders_port: int,
    notifications_port: int,
    redis_port: int,
    redis_host: str = "127.0.0.1",
    overrides: dict | None = None,
) -> dict:
    # Exactly the keys trellis-gateway accepts: it rejects unknown ones.
    config = {
        "listen": {"address": "127.0.0.1", "port": http_port},
        "io_threads": 2,
        "log_level": "info",
        "limits": {"max_body_bytes": 1048576},
        "default_timeout_ms": 5000,
        "upstreams": {
            "users": {"target": f"127.0.0.1:{users_port}"},
            "orders": {"target": f"127.0.0.1:{orders_port}"},
            "notifications": {"target": f"127.0.0.1:{notifications_port}"},
        },
        "redis": {"host": redis_host, "port": redis_port, "command_timeout_ms": 250},
        "auth": {
            "issuer": "trellis",
            "audience": "trellis-api",
            "jwks_upstream": "users",
            "jwks_refresh_s": 60,
            "leeway_s": 30,
        },
    }
    return deep_merge(config, overrides)


def write_config(path: Path, config: dict) -> None:
    # 0600: users.json holds a database password.
    write_private(path, json.dumps(config, indent=2) + "\n")


# --------------------------------------------------------------------------------------------
# Components


def binary_path(build_dir: Path, name: str) -> Path:
    return build_dir / BINARIES[name]


def component_needles(name: str, config_path: Path) -> tuple[str, ...]:
    """What identifies our process in /proc/<pid>/cmdline: the binary and our config file."""
    return (Path(BINARIES[name]).name, str(config_path))


def start_component(
    name: str,
    build_dir: Path,
    config_path: Path,
    log_path: Path,
    *,
    detach: bool = False,
    die_with_parent: bool = False,
) -> subprocess.Popen:
    binary = binary_path(build_dir, name)
    if not os.access(binary, os.X_OK):
        raise StackError(f"{binary} is missing: build first (./trellis build)")
    return start_process(
        [str(binary), "--config", str(config_path)],
        log_path,
        detach=detach,
        die_with_parent=die_with_parent,
    )


def wait_for_listen(port: int, timeout: float, is_alive: Callable[[], bool]) -> bool:
    return wait_until(lambda: not is_alive() or port_accepts(port), timeout, 0.1) and is_alive()


# --------------------------------------------------------------------------------------------
# PostgreSQL


def psql_binary() -> str:
    direct = PG_BIN / "psql"
    return str(direct) if direct.exists() else "psql"


def sql_identifier(name: str) -> str:
    # Only names we generate ourselves; refusing anything else avoids quoting subtleties.
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise ValueError(f"unexpected SQL identifier {name!r}")
    return f'"{name}"'


def sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class Psql:
    """Runs SQL through psql over TCP (works the same as root, as a developer and in tests)."""

    def __init__(self, host: str, port: int, user: str, password: str | None = None):
        self.host, self.port, self.user, self.password = host, port, user, password

    def run(self, sql: str, dbname: str = "postgres", rows: bool = False) -> str:
        # A clean environment: PGDATABASE, PGSERVICE and friends from the caller must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGCONNECT_TIMEOUT"] = "10"
        if self.password:
            env["PGPASSWORD"] = self.password  # never on the command line, where ps shows it
        argv = [psql_binary(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host]
        argv += ["-p", str(self.port), "-U", self.user, "-d", dbname, "-f", "-"]
        if rows:
            argv += ["-A", "-t"]
        result = subprocess.run(
            argv, input=sql, capture_output=True, text=True, env=env, timeout=120, check=False
        )
        if result.returncode != 0:
            raise StackError(f"psql on port {self.port} failed: {result.stderr.strip()}")
        return result.stdout


def provision_database(client: Psql, role: str, password: str, dbname: str) -> None:
    """Creates (or brings back in line) a login role and a database it owns. Idempotent."""
    r, d = sql_identifier(role), sql_identifier(dbname)
    client.run(
        f"""
DO $do$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {sql_literal(role)}) THEN
    CREATE ROLE {r};
  END IF;
END $do$;
ALTER ROLE {r} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {sql_literal(password)};
SELECT 'CREATE DATABASE {d} OWNER {r}'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {sql_literal(dbname)})\\gexec
ALTER DATABASE {d} OWNER TO {r};
REVOKE ALL ON DATABASE {d} FROM PUBLIC;
"""
    )


def drop_database(client: Psql, role: str, dbname: str) -> None:
    client.run(
        f"DROP DATABASE IF EXISTS {sql_identifier(dbname)} WITH (FORCE);\n"
        f"DROP ROLE IF EXISTS {sql_identifier(role)};\n"
    )


def as_root() -> bool:
    return os.geteuid() == 0


def postgres_can_reach(path: Path) -> bool:
    """Whether the postgres OS user can traverse every directory down to path."""
    if not as_root():
        return True
    result = subprocess.run(
        ["runuser", "-u", PG_SUPERUSER, "--", "test", "-x", str(path)],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


class Postgres:
    """One PostgreSQL 15 cluster under root/: data/, socket/ and postgres.log.

    PostgreSQL refuses to run as root, so as root every server command runs as the postgres
    OS user (runuser) and root/ belongs to it; otherwise it runs as the current user."""

    def __init__(
        self, root: Path, port: int, password: str | None = None, settings: tuple[str, ...] = ()
    ):
        self.root = root
        self.port = port
        self.password = password
        self.settings = settings  # extra "name=value" server settings
        self.data_dir = root / "data"
        self.socket_dir = root / "socket"
        self.log_path = root / "postgres.log"

    def _as_owner(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", PG_SUPERUSER, "--", *argv] if as_root() else argv

    def _run(self, argv: list[str], what: str, timeout: float = 120) -> None:
        result = subprocess.run(
            self._as_owner(argv), capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise StackError(
                f"{what} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"\n{log_tails({'postgres': self.log_path})}"
            )

    def _chown(self, path: Path) -> None:
        if as_root():
            shutil.chown(path, PG_SUPERUSER, PG_SUPERUSER)

    def prepare(self) -> None:
        if as_root():
            try:
                pwd.getpwnam(PG_SUPERUSER)
            except KeyError:
                raise StackError(
                    f"no OS user {PG_SUPERUSER!r}, which runs PostgreSQL when we are root: "
                    "install postgresql-15 (./trellis deps)"
                ) from None
        for path in (self.root, self.socket_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._chown(path)
        if not postgres_can_reach(self.root):
            raise StackError(
                f"user {PG_SUPERUSER} cannot reach {self.root} (a parent directory lacks o+x)"
            )

    def initialized(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def initdb(self) -> None:
        """Without a password: a throwaway test cluster (trust auth, nothing fsynced).
        With one: scram-sha-256 for every connection."""
        self.prepare()
        argv = [str(PG_BIN / "initdb"), "-D", str(self.data_dir), "-U", PG_SUPERUSER]
        argv += ["-E", "UTF8", "--locale=C.UTF-8"]
        if not self.password:
            self._run(argv + ["--auth=trust", "--no-sync"], "initdb")
            return
        # initdb reads the password from a file that its (postgres) user can read: keep it
        # inside root/, which only that user can enter, and remove it right after.
        pwfile = self.root / ".initdb-password"
        write_private(pwfile, self.password + "\n")
        self._chown(pwfile)
        try:
            argv += ["--auth-local=scram-sha-256", "--auth-host=scram-sha-256"]
            self._run(argv + [f"--pwfile={pwfile}"], "initdb")
        finally:
            pwfile.unlink(missing_ok=True)

    def _postmaster(self) -> list[str]:
        try:
            return (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return []

    def running_pid(self) -> int | None:
        lines = self._postmaster()
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return None
        return pid if process_matches(pid, ("postgres",)) else None

    def running_port(self) -> int | None:
        lines = self._postmaster()
        try:
            return int(lines[3])
        except (IndexError, ValueError):
            return None

    def start(self) -> None:
        self.prepare()
        socket_dirs = str(self.socket_dir)
        if len(socket_dirs) + len(f"/.s.PGSQL.{self.port}") >= MAX_SOCKET_PATH:
            say(f"note: {self.socket_dir} is too long for a unix socket; PostgreSQL uses TCP only")
            socket_dirs = ""
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {shlex.quote(socket_dirs)}"
        options += "".join(f" -c {shlex.quote(setting)}" for setting in self.settings)
        # pg_ctl hands -o to a shell, hence shlex.quote.
        self._run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path),
             "-w", "-t", "60", "-o", options, "start"],
            f"starting PostgreSQL on port {self.port}",
        )

    def stop(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return "not running"
        self._run(
            [str(PG_BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "-t", "30",
             "stop"],
            "stopping PostgreSQL",
        )
        return "stopped"

    def client(self) -> Psql:
        return Psql("127.0.0.1", self.port, PG_SUPERUSER, self.password)


# --------------------------------------------------------------------------------------------
# Redis


def redis_command(port: int, command: bytes, timeout: float = 1.0) -> bytes | None:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(command)
            return s.recv(256)
    except OSError:
        return None


class Redis:
    """A daemonized redis-server on 127.0.0.1. Persistent: an append-only file in data_dir
    (fsync every second), so the event streams survive a restart or a kill of Redis, as they
    must in production; otherwise it keeps nothing on disk (throwaway test servers)."""

    def __init__(
        self, port: int, data_dir: Path, pidfile: Path, log_path: Path, *, persistent: bool = False
    ):
        self.port, self.data_dir, self.pidfile, self.log_path = port, data_dir, pidfile, log_path
        self.persistent = persistent

    def running_pid(self) -> int | None:
        return running_pid(self.pidfile, ("redis-server", f":{self.port}"))

    def ping(self) -> bool:
        return (redis_command(self.port, b"PING\r\n") or b"").startswith(b"+PONG")

    def start(self) -> None:
        for path in (self.data_dir, self.pidfile.parent, self.log_path.parent):
            path.mkdir(parents=True, exist_ok=True)
        self.pidfile.unlink(missing_ok=True)
        argv = [shutil.which("redis-server") or "/usr/bin/redis-server",
                "--bind", "127.0.0.1", "--port", str(self.port), "--daemonize", "yes",
                "--pidfile", str(self.pidfile), "--dir", str(self.data_dir),
                "--logfile", str(self.log_path), "--save", ""]
        if self.persistent:
            argv += ["--appendonly", "yes", "--appendfsync", "everysec"]
        else:
            argv += ["--appendonly", "no"]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wait_until(
            lambda: self.ping() and read_pidfile(self.pidfile) is not None, 10.0
        ):
            raise StackError(
                f"Redis did not start on port {self.port}: {result.stderr.strip()}\n"
                f"{log_tails({'redis': self.log_path})}"
            )

    def stop(self) -> str:
        pid = self.running_pid()
        if pid is None:
            return "not running"
        redis_command(self.port, b"SHUTDOWN NOSAVE\r\n")
        if wait_until(lambda: not pid_alive(pid), 10.0):
            outcome = "stopped"
        else:
            outcome = stop_pid(pid)
        self.pidfile.unlink(missing_ok=True)
        return outcome


# --------------------------------------------------------------------------------------------
# Throwaway servers for `./trellis test`


def start_test_servers(work_dir: Path) -> dict[str, str]:
    """PostgreSQL (trust auth) and Redis on free ports under work_dir; writes work_dir/env.sh."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if as_root():
        os.chmod(work_dir, 0o711)  # mktemp -d makes 0700; the postgres user must traverse it
    # Throwaway data: durability buys nothing and costs time on every migration; parallel
    # end-to-end stacks each hold a connection pool.
    fast = ("fsync=off", "synchronous_commit=off", "full_page_writes=off", "max_connections=300")
    pg_port, redis_port = free_ports(2)
    pg = Postgres(work_dir / "pg", pg_port, settings=fast)
    pg.initdb()
    pg.start()
    redis = Redis(redis_port, work_dir / "redis", work_dir / "redis.pid", work_dir / "redis.log")
    redis.start()
    env = {
        "TRELLIS_TEST_PG_HOST": "127.0.0.1",
        "TRELLIS_TEST_PG_PORT": str(pg.port),
        "TRELLIS_TEST_PG_USER": PG_SUPERUSER,
        "TRELLIS_TEST_REDIS_HOST": "127.0.0.1",
        "TRELLIS_TEST_REDIS_PORT": str(redis.port),
    }
    (work_dir / "env.sh").write_text(
        "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    )
    say(f"test servers: PostgreSQL on 127.0.0.1:{pg.port}, Redis on 127.0.0.1:{redis.port}")
    return env


def stop_test_servers(work_dir: Path) -> None:
    """Stops whatever start_test_servers got to start, then removes work_dir."""
    if not work_dir.is_dir():
        return
    port = read_redis_port(work_dir / "env.sh")
    pg = Postgres(work_dir / "pg", 0)
    try:
        pg.stop()
    except StackError as e:
        pid = pg.running_pid()
        say(f"warning: {e}")
        if pid:
            stop_pid(pid)
    pid = read_pidfile(work_dir / "redis.pid")
    if pid and process_matches(pid, ("redis-server",)):
        if port:
            redis_command(port, b"SHUTDOWN NOSAVE\r\n")
        if not wait_until(lambda: not pid_alive(pid), 5.0):
            stop_pid(pid)
    shutil.rmtree(work_dir, ignore_errors=True)


def read_redis_port(env_file: Path) -> int | None:
    try:
        match = re.search(r"TRELLIS_TEST_REDIS_PORT=(\d+)", env_file.read_text())
    except OSError:
        return None
    return int(match[1]) if match else None


# --------------------------------------------------------------------------------------------
# The developer stack of `./trellis up`


def env_port(var: str, default: int) -> int:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise StackError(f"{var}={raw!r} is not a port number (1-65535)")
    return int(raw)


class LocalStack:
    """Everything `./trellis up` runs, with its state in <repo>/.trellis/."""

    COMPONENTS = ("postgres", "redis", "users", "orders", "notifications", "gateway")
    SERVICES = ("users", "orders", "notifications")
    DB_ROLE = "trellis_users"
    DB_NAME = "trellis_users"
    # Each service owns its database through its own role.
    ORDERS_DB = "trellis_orders"
    NOTIFICATIONS_DB = "trellis_notifications"

    def __init__(self) -> None:
        self.state = Path(os.environ.get("TRELLIS_STATE_DIR") or REPO_ROOT / ".trellis").resolve()
        self.build_dir = Path(os.environ.get("TRELLIS_BUILD_DIR") or REPO_ROOT / "build").resolve()
        self.config_dir = self.state / "config"
        self.logs_dir = self.state / "logs"
        self.run_dir = self.state / "run"
        self.secrets_dir = self.state / "secrets"
        self.keys_dir = self.state / "keys"
        self.port_vars = {
            "postgres": ("TRELLIS_PG_PORT", 55432),
            "redis": ("TRELLIS_REDIS_PORT", 56379),
            "users": ("TRELLIS_USERS_PORT", 50051),
            "orders": ("TRELLIS_ORDERS_PORT", 50052),
            "notifications": ("TRELLIS_NOTIFICATIONS_PORT", 50053),
            "gateway": ("TRELLIS_HTTP_PORT", 8080),
        }
        # What this invocation asks for (environment or defaults)...
        self.requested = {name: env_port(var, dflt) for name, (var, dflt) in self.port_vars.items()}
        # ...and where things actually run: the ports of the last `up` win, so that `down` and
        # `status` find a stack that was started with other TRELLIS_*_PORT values.
        self.ports = {**self.requested, **self.recorded_ports()}

    # --- paths and state

    def rel(self, path: Path) -> str:
        try:
            return str(path.relative_to(Path.cwd()))
        except ValueError:
            return str(path)

    def config_path(self, name: str) -> Path:
        return self.config_dir / f"{name}.json"

    def log_path(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"

    def recorded_ports(self) -> dict[str, int]:
        try:
            return json.loads((self.run_dir / "ports.json").read_text())
        except (OSError, ValueError):
            return {}

    def record_ports(self, ports: dict[str, int]) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "ports.json").write_text(json.dumps(ports, indent=2) + "\n")

    def pg_root(self, create: bool) -> Path | None:
        """PostgreSQL's directory: .trellis/pg, or a mktemp -d when user postgres cannot reach
        the repository (recorded in .trellis/pg-root so later runs find it)."""
        record = self.state / "pg-root"
        if record.exists():
            recorded = Path(record.read_text().strip())
            if recorded.is_dir():
                return recorded
        if not create:
            return None
        if postgres_can_reach(self.state):
            root = self.state / "pg"
        else:
            root = Path(tempfile.mkdtemp(prefix="trellis-pg-"))
            say(f"user {PG_SUPERUSER} cannot reach {self.state}; PostgreSQL data goes to {root}")
        record.write_text(f"{root}\n")
        return root

    def postgres(self, create: bool = False) -> Postgres | None:
        root = self.pg_root(create)
        if root is None:
            return None
        password = read_or_create_secret(self.secrets_dir / "postgres.password") if create else None
        return Postgres(root, self.ports["postgres"], password)

    def redis(self) -> Redis:
        return Redis(
            self.ports["redis"], self.state / "redis", self.pidfile("redis"),
            self.log_path("redis"), persistent=True,
        )

    def component_pid(self, name: str) -> int | None:
        needles = component_needles(name, self.config_path(name))
        return running_pid(self.pidfile(name), needles)

    def running(self) -> dict[str, int | None]:
        pg = self.postgres()
        return {
            "postgres": pg.running_pid() if pg else None,
            "redis": self.redis().running_pid(),
            "users": self.component_pid("users"),
            "orders": self.component_pid("orders"),
            "notifications": self.component_pid("notifications"),
            "gateway": self.component_pid("gateway"),
        }

    def logs(self) -> dict[str, Path]:
        return {name: self.log_path(name) for name in self.COMPONENTS}

    # --- commands

    @property
    def metrics_ports(self) -> dict[str, int]:
        return {
            "gateway": env_port("TRELLIS_ADMIN_PORT", 8081),
            "users": env_port("TRELLIS_USERS_METRICS_PORT", 9101),
            "orders": env_port("TRELLIS_ORDERS_METRICS_PORT", 9102),
            "notifications": env_port("TRELLIS_NOTIFICATIONS_METRICS_PORT", 9103),
            "prometheus": env_port("TRELLIS_PROMETHEUS_PORT", 9090),
        }

    def up(self, with_prometheus: bool = False) -> int:
        for name in BINARIES:
            if not os.access(binary_path(self.build_dir, name), os.X_OK):
                raise StackError(
                    f"{binary_path(self.build_dir, name)} is missing: build first (./trellis build)"
                )
        self.state.mkdir(parents=True, exist_ok=True)
        for path in (self.config_dir, self.logs_dir, self.run_dir):
            path.mkdir(parents=True, exist_ok=True)
        for path in (self.secrets_dir, self.keys_dir):
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(path, 0o700)

        ports = dict(self.requested)
        if len(set(ports.values())) != len(ports):
            raise StackError(f"two components would share a port: {ports}")
        running = self.running()
        pg_port = self.postgres().running_port() if running["postgres"] else None  # type: ignore
        for name, pid in running.items():
            actual = pg_port if name == "postgres" else self.ports[name]
            if pid and actual != ports[name]:
                raise StackError(
                    f"{name} already runs on port {actual} (pid {pid}), but "
                    f"{self.port_vars[name][0]} asks for {ports[name]}: run ./trellis down first"
                )
        # Check every port before starting anything, so a conflict leaves nothing half-started.
        for name, pid in running.items():
            if not pid:
                ensure_port_free(ports[name], name, self.port_vars[name][0])
        self.ports = ports

        pg = self.postgres(create=True)
        assert pg is not None
        if running["postgres"]:
            self.report("postgres", "already running", running["postgres"], ports)
        else:
            if not pg.initialized():
                say(f"initializing PostgreSQL data directory {pg.data_dir}")
                pg.initdb()
            pg.start()
            self.report("postgres", "started", pg.running_pid(), ports)
        self.link_log("postgres", pg.log_path)
        db_password = read_or_create_secret(self.secrets_dir / f"{self.DB_ROLE}.password")
        provision_database(pg.client(), self.DB_ROLE, db_password, self.DB_NAME)
        orders_password = read_or_create_secret(self.secrets_dir / f"{self.ORDERS_DB}.password")
        provision_database(pg.client(), self.ORDERS_DB, orders_password, self.ORDERS_DB)
        notifications_password = read_or_create_secret(
            self.secrets_dir / f"{self.NOTIFICATIONS_DB}.password"
        )
        provision_database(
            pg.client(), self.NOTIFICATIONS_DB, notifications_password, self.NOTIFICATIONS_DB
        )

        redis = self.redis()
        if running["redis"]:
            self.report("redis", "already running", running["redis"], ports)
        else:
            redis.start()
            self.report("redis", "started", redis.running_pid(), ports)
        self.record_ports(ports)

        kid = ensure_signing_key(self.keys_dir, self.config_dir / "active_kid")
        # Metrics endpoints are always on locally (loopback only), so Prometheus can be added
        # at any time; the gateway's are on its admin listener, never on the public port.
        metrics = self.metrics_ports
        users = users_config(
            grpc_port=ports["users"], pg_port=ports["postgres"], dbname=self.DB_NAME,
            db_user=self.DB_ROLE, db_password=db_password, redis_port=ports["redis"],
            keys_dir=self.keys_dir, kid=kid,
        )
        users["metrics"] = {"listen": f"127.0.0.1:{metrics['users']}"}
        write_config(self.config_path("users"), users)
        orders = orders_config(
            grpc_port=ports["orders"], pg_port=ports["postgres"], dbname=self.ORDERS_DB,
            db_user=self.ORDERS_DB, db_password=orders_password, redis_port=ports["redis"],
        )
        orders["metrics"] = {"listen": f"127.0.0.1:{metrics['orders']}"}
        write_config(self.config_path("orders"), orders)
        notifications = notifications_config(
            grpc_port=ports["notifications"], pg_port=ports["postgres"],
            dbname=self.NOTIFICATIONS_DB, db_user=self.NOTIFICATIONS_DB,
            db_password=notifications_password, redis_port=ports["redis"],
        )
        notifications["metrics"] = {"listen": f"127.0.0.1:{metrics['notifications']}"}
        write_config(self.config_path("notifications"), notifications)
        gateway = gateway_config(
            http_port=ports["gateway"], users_port=ports["users"],
            orders_port=ports["orders"], notifications_port=ports["notifications"],
            redis_port=ports["redis"],
        )
        gateway["admin"] = {"address": "127.0.0.1", "port": metrics["gateway"]}
        write_config(self.config_path("gateway"), gateway)

        deadline = time.monotonic() + 60.0
        alive: dict[str, Callable[[], bool]] = {}
        for name in (*self.SERVICES, "gateway"):
            pid = running[name]
            if pid:
                self.report(name, "already running", pid, ports)
                alive[name] = lambda pid=pid: pid_alive(pid)
                continue
            proc = start_component(
                name, self.build_dir, self.config_path(name), self.log_path(name), detach=True
            )
            write_pidfile(self.pidfile(name), proc.pid)
            self.report(name, "started", proc.pid, ports)
            alive[name] = lambda proc=proc: proc.poll() is None
            if name != "gateway" and not wait_for_listen(ports[name], 20.0, alive[name]):
                # The gateway would wait for it anyway; starting in order keeps its log quiet.
                if not alive[name]():
                    break

        base_url = f"http://127.0.0.1:{ports['gateway']}"
        problem = wait_for_ready(
            f"{base_url}/readyz", max(1.0, deadline - time.monotonic()), alive
        )
        if problem:
            say(f"\nTrellis did not become ready: {problem}\n")
            say(log_tails(self.logs()))
            say("\nWhat runs was left running: ./trellis status, ./trellis logs, ./trellis down")
            return 1
        if with_prometheus:
            self.start_prometheus()
        self.print_welcome(base_url)
        return 0

    def prometheus(self) -> "Prometheus":
        from prometheus import Prometheus  # deploy/local/prometheus.py

        return Prometheus(self.state / "prometheus", self.metrics_ports["prometheus"],
                          log_path=self.log_path("prometheus"))

    def start_prometheus(self) -> None:
        metrics = self.metrics_ports
        server = self.prometheus()
        server.write_config(
            {
                "gateway": [f"127.0.0.1:{metrics['gateway']}"],
                "users": [f"127.0.0.1:{metrics['users']}"],
                "orders": [f"127.0.0.1:{metrics['orders']}"],
                "notifications": [f"127.0.0.1:{metrics['notifications']}"],
            },
            scrape_interval_s=5.0,
        )
        pid = server.start(detach=True)
        say(f"{'prometheus':<9} running (pid {pid}) — {server.url} (targets: {server.url}/targets)")

    def report(self, name: str, what: str, pid: int | None, ports: dict[str, int]) -> None:
        port = ports[name]
        note = ""
        if pid and what == "already running" and runs_replaced_binary(pid):
            note = "  (runs an older build: ./trellis restart to pick up the new one)"
        say(f"{name:<9} {what} (pid {pid}, port {port}){note}")

    def link_log(self, name: str, target: Path) -> None:
        link = self.log_path(name)
        if link.is_symlink() or not link.exists():
            link.unlink(missing_ok=True)
            link.symlink_to(target)

    def print_welcome(self, base_url: str) -> None:
        json_header = "-H 'Content-Type: application/json'"
        token_of = (
            "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])'"
        )
        logs = ", ".join(self.rel(self.log_path(n)) for n in self.COMPONENTS)
        say(
            f"""
Trellis is ready: {base_url}

Try it:
  curl -sS -X POST {base_url}/v1/auth/signup {json_header} \\
       -d '{{"email":"ada@example.com","password":"correct-horse-battery","display_name":"Ada"}}'
  TOKEN=$(curl -sS -X POST {base_url}/v1/auth/login {json_header} \\
       -d '{{"email":"ada@example.com","password":"correct-horse-battery"}}' | {token_of})
  curl -sS {base_url}/v1/users/me -H "Authorization: Bearer $TOKEN"
  curl -sS -X POST {base_url}/v1/orders -H "Authorization: Bearer $TOKEN" {json_header} \\
       -H 'Idempotency-Key: first-order' \\
       -d '{{"items":[{{"sku":"BOOK-1","quantity":2,"unit_price_cents":1500}}],"currency":"EUR"}}'
  curl -sS {base_url}/v1/orders -H "Authorization: Bearer $TOKEN"
  curl -sS {base_url}/v1/notifications -H "Authorization: Bearer $TOKEN"

Make someone an admin:  ./trellis admin grant ada@example.com
Logs:    {logs}  (./trellis logs [NAME])
Status:  ./trellis status
Stop:    ./trellis down"""
        )

    def down(self) -> int:
        if not self.state.is_dir():
            say("nothing to stop (no .trellis state)")
            return 0
        if (self.state / "prometheus").is_dir():
            say(f"{'prometheus':<9} {self.prometheus().stop()}")
        running = self.running()
        for name in ("gateway", *reversed(self.SERVICES)):
            pid = running[name]
            outcome = stop_pid(pid) if pid else "not running"
            self.pidfile(name).unlink(missing_ok=True)
            say(f"{name:<9} {outcome}")
        say(f"{'redis':<9} {self.redis().stop() if running['redis'] else 'not running'}")
        pg = self.postgres()
        say(f"{'postgres':<9} {pg.stop() if pg and running['postgres'] else 'not running'}")
        return 0

    def status(self) -> int:
        running = self.running()
        ports = self.ports
        say(f"{'COMPONENT':<10} {'PID':>7}  {'PORT':>5}  STATE")
        for name in self.COMPONENTS:
            pid = running[name]
            state = "running" if pid else "stopped"
            if pid and runs_replaced_binary(pid):
                state += " (older build: ./trellis restart)"
            if name == "gateway" and pid:
                ready = http_status(f"http://127.0.0.1:{ports[name]}/readyz")
                answer = ready or "no answer"
                state += ", ready" if ready == 200 else f", not ready (/readyz: {answer})"
            say(f"{name:<10} {pid or '-':>7}  {ports[name]:>5}  {state}")
        if running["gateway"]:
            say(f"\nGateway: http://127.0.0.1:{ports['gateway']}")
        return 0 if all(running.values()) else 3

    def grant(self, email: str, role: str) -> int:
        config = self.config_path("users")
        if not config.exists():
            raise StackError("no users config yet: run ./trellis up first")
        pg = self.postgres()
        if not pg or not pg.running_pid():
            raise StackError("PostgreSQL is not running: run ./trellis up first")
        binary = binary_path(self.build_dir, "users")
        result = subprocess.run(
            [str(binary), "--config", str(config), "grant-role", email, role], check=False
        )
        if result.returncode == 2:
            say("hint: the user must sign up first")
        return result.returncode

    def tail_logs(self, name: str | None, follow: bool) -> int:
        logs = self.logs()
        if name is not None and name not in logs:
            raise StackError(f"unknown log {name!r}: choose one of {', '.join(logs)}")
        paths = [str(logs[name])] if name else [str(p) for p in logs.values() if p.exists()]
        if not paths:
            raise StackError("no logs yet: run ./trellis up first")
        argv = ["tail", "-n", "100"] + (["-F"] if follow else []) + paths
        os.execvp("tail", argv)
        return 0  # not reached


# --------------------------------------------------------------------------------------------


USAGE = __doc__.split("\n\n")[-1]


def main(argv: list[str]) -> int:
    if not argv:
        print(USAGE, file=sys.stderr)
        return 64
    command, args = argv[0], argv[1:]
    if command == "test-servers" and len(args) == 2 and args[0] in ("start", "stop"):
        work_dir = Path(args[1]).resolve()
        if args[0] == "start":
            start_test_servers(work_dir)
        else:
            stop_test_servers(work_dir)
        return 0
    stack = LocalStack()
    if command == "up" and args in ([], ["--with-prometheus"]):
        return stack.up(with_prometheus=bool(args))
    if command == "down" and not args:
        return stack.down()
    if command == "status" and not args:
        return stack.status()
    if command == "grant" and len(args) == 2:
        return stack.grant(args[0], args[1])
    if command == "logs" and len(args) <= 2:
        follow = "--follow" in args
        names = [a for a in args if a != "--follow"]
        if len(names) <= 1:
            return stack.tail_logs(names[0] if names else None, follow)
    print(USAGE, file=sys.stderr)
    return 64


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
