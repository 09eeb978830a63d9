"""BSNexus's checkout as evidence: zero configuration where BSNexus's own ``.env`` lives.

An engineer stands in the checkout (the devcontainer's ``/workspace``), where BSNexus's ``.env`` names more than
its URLs. From that ``.env`` (the first :func:`bsnexus_lab.config.env_files` holds) and the folder around it:

- ``SERVER_HOST``/``SERVER_PORT`` suggest ``service_url`` (a wildcard host means loopback) and
  ``process = {port}``; a uvicorn started in the checkout decides with its own ``--port`` (the ``.env`` only
  tells BSNexus's ``main.py`` what to pass), and a process listening there confirms it;
- ``LOG_DIR`` gives ``log_files`` (``bsnexus.log``, ``orchestrator.log``; the log reader adds their rotations),
  relative to the backend's working directory when its process is known, else to the ``.env``'s folder;
- an ``alembic.ini`` beside the ``.env`` or one folder below (BSNexus: ``backend/alembic.ini``) gives the
  versions directory, ``<script_location>/versions``.

Each suggestion carries its source (shown by ``bsnexus-lab target show``). An explicit setting always wins (the
suggestions come after every explicit source in :func:`bsnexus_lab.config.resolve`); several candidates (two
``alembic.ini``, two backends) are listed, never guessed between.
"""

from __future__ import annotations

import configparser
import contextlib
import glob
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

DISCOVERED = "checkout: "  # how a discovered setting's source begins (target show, the migration finding)
LOG_NAMES = ("bsnexus.log", "orchestrator.log")  # BSNexus's log files in LOG_DIR
DEFAULT_LOG_DIR = "logs"  # BSNexus's own default
UVICORN_PORT = 8000  # uvicorn's default --port
_WILDCARD_HOSTS = {"", "0.0.0.0", "::", "[::]"}


@dataclass(frozen=True)
class Found:
    """One suggested setting: its value (None when there is none, or several candidates) and why."""

    value: Any
    source: str


# Processes: who listens on a port, and which process of a tree runs the app (also used by lab.profile).


def listeners(port: int) -> list[int]:
    """The pids listening on a TCP port (IPv4 or IPv6); those of other users may be invisible without root."""
    found: set[int] = set()
    with contextlib.suppress(psutil.AccessDenied):
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                found.add(conn.pid)
    return sorted(found)


def roots(pids: list[int]) -> list[int]:
    """The pids whose parent is not among them: one per process tree (a master, not its workers)."""
    return [p for p in pids if _parent(p) not in pids]


def app_pid(pid: int) -> int:
    """The process that runs the app: a ``--reload`` parent only watches files, its one spawned child serves."""
    with contextlib.suppress(psutil.Error):
        if _is_reloader(pid):
            workers = [c.pid for c in psutil.Process(pid).children() if "spawn_main" in " ".join(c.cmdline())]
            if len(workers) == 1:
                return workers[0]
    return pid


def reload_parent(pid: int) -> int | None:
    """The ``--reload`` parent of a worker, or None."""
    parent = _parent(pid)
    return parent if parent is not None and _is_reloader(parent) else None


def _is_reloader(pid: int) -> bool:
    with contextlib.suppress(psutil.Error):
        return "--reload" in psutil.Process(pid).cmdline()
    return False


def _parent(pid: int) -> int | None:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(pid).ppid()
    return None


def _cwd(pid: int) -> Path | None:
    with contextlib.suppress(psutil.Error, OSError):
        return Path(psutil.Process(pid).cwd())
    return None


# The checkout.


def discover(
    path: Path | None,
    skip: set[str] | frozenset[str] = frozenset(),
    *,
    pid: int | None = None,
    port: int | None = None,
) -> dict[str, Found]:
    """What the checkout around BSNexus's ``.env`` at ``path`` suggests for ``service_url``, ``process``,
    ``log_files`` and ``versions_dir``.

    ``skip`` names settings already set explicitly (not looked for); ``pid`` or ``port`` is what an explicit
    process setting names, whose working directory then anchors ``LOG_DIR``. Empty outside a checkout (no
    ``.env``).
    """
    from dotenv import dotenv_values

    if path is None:
        return {}
    env = {k.upper(): v for k, v in dotenv_values(path).items() if v}
    found: dict[str, Found] = {}
    pid = _explicit_pid(pid, port)
    if not {"service_url", "process"} <= set(skip):
        backend, pid_found = _backend(path, env)
        found |= {k: v for k, v in backend.items() if k not in skip}
        pid = pid if "process" in skip else pid_found
    if "log_files" not in skip:
        found["log_files"] = _log_files(path, env, pid)
    if "versions_dir" not in skip:
        found["versions_dir"] = versions_dir(path.parent)
    return found


def _backend(path: Path, env: dict[str, str]) -> tuple[dict[str, Found], int | None]:
    """service_url and process, and the pid serving the app when one is listening."""
    env_port = int(env["SERVER_PORT"]) if env.get("SERVER_PORT", "").isdigit() else None
    servers = _uvicorns(path.parent)
    if len(servers) > 1:
        listed = "; ".join(f"pid {p} port {port}" for p, port, _ in servers)
        several = Found(None, f"several uvicorn processes in {path.parent}: {listed}: set process (pid or port)")
        return {"service_url": several, "process": several}, None
    if servers:
        root, port, host = servers[0]
        source = f"uvicorn --port {port} (pid {root}, started in the checkout)"
        if env_port is not None and env_port != port:
            source += f", not {path} SERVER_PORT={env_port}"
    elif env_port is not None:
        port, host, source = env_port, env.get("SERVER_HOST", ""), f"{path} SERVER_PORT"
    else:
        return {}, None
    trees = roots(listeners(port))
    if len(trees) > 1:
        listed = ", ".join(f"pid {p}" for p in trees)
        several = Found(None, f"{source}: several processes listen on port {port} ({listed}): set process = {{ pid }}")
        return {"service_url": several, "process": several}, None
    pid = app_pid(trees[0]) if trees else None
    if pid is None:
        source += f", nothing listening on port {port} now"
    else:
        reloader = reload_parent(pid)
        source += f", confirmed listening pid {pid}" + (f" (worker of --reload parent {reloader})" if reloader else "")
    return {
        "service_url": Found(f"http://{_loopback(host)}:{port}", source),
        "process": Found({"port": port}, source),  # the Target reads it as its process setting
    }, pid


def _uvicorns(folder: Path) -> list[tuple[int, int, str]]:
    """(pid, port, host) of each uvicorn started in the checkout (its working directory in ``folder``)."""
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        argv = proc.info["cmdline"] or []
        if not any(Path(a).name == "uvicorn" for a in argv[:3]):  # `uvicorn ...` or `python -m uvicorn ...`
            continue
        cwd = _cwd(proc.info["pid"])
        if cwd is None or not cwd.resolve().is_relative_to(folder.resolve()):
            continue
        port = _option(argv, "--port")
        if (port is not None and not port.isdigit()) or _option(argv, "--uds") or _option(argv, "--fd"):
            continue  # not a TCP port the lab can reach
        found.append((proc.info["pid"], int(port) if port else UVICORN_PORT, _option(argv, "--host") or "127.0.0.1"))
    return found


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def _loopback(host: str) -> str:
    """A wildcard bind address means "every interface": reach it on loopback."""
    if host in _WILDCARD_HOSTS:
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _explicit_pid(pid: int | None, port: int | None) -> int | None:
    """The pid an explicit ``process`` setting names (by pid, or by a listening port), or None."""
    if pid is not None:
        return pid
    trees = roots(listeners(port)) if port is not None else []
    return app_pid(trees[0]) if len(trees) == 1 else None


def _log_files(path: Path, env: dict[str, str], pid: int | None) -> Found:
    """BSNexus's log files in LOG_DIR, relative to the backend's working directory when its process is known."""
    log_dir, named = (env["LOG_DIR"], f"{path} LOG_DIR") if env.get("LOG_DIR") else (DEFAULT_LOG_DIR, "default LOG_DIR")
    cwd = _cwd(pid) if pid is not None else None
    base, anchor = (cwd, f"pid {pid}'s working directory") if cwd is not None else (path.parent, "the .env's folder")
    folder = base / log_dir
    files = tuple(folder / n for n in LOG_NAMES if any(folder.glob(f"{glob.escape(n)}*")))
    where = f"{named}={log_dir} under {anchor}"
    if not files:
        return Found(None, f"{where}: no {' or '.join(LOG_NAMES)} in {folder}")
    return Found(files, where)


def versions_dir(folder: Path) -> Found:
    """The Alembic versions directory of the ``alembic.ini`` in ``folder`` or one folder below."""
    candidates = [folder / "alembic.ini", *sorted(folder.glob("*/alembic.ini"))]
    usable = [(ini, versions) for ini in candidates if ini.is_file() and (versions := _versions(ini)) is not None]
    if not usable:
        return Found(None, f"no alembic.ini with a versions directory in {folder} or one folder below")
    if len(usable) > 1:
        listed = ", ".join(str(ini) for ini, _ in usable)
        return Found(None, f"several alembic.ini: {listed}: set versions_dir")
    ini, versions = usable[0]
    return Found(versions, f"{ini} script_location")


def _versions(ini: Path) -> Path | None:
    """``<script_location>/versions`` of an alembic.ini (``%(here)s`` is its folder, as Alembic reads it)."""
    parser = configparser.ConfigParser(defaults={"here": str(ini.parent.resolve())})
    try:
        parser.read(ini, encoding="utf-8")
        location = parser.get("alembic", "script_location")
    except (configparser.Error, UnicodeDecodeError):
        return None
    path = Path(location)
    versions = (path if path.is_absolute() else ini.parent / path) / "versions"
    return versions if versions.is_dir() else None
