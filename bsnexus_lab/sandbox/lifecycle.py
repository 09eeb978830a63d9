"""``bsnexus-lab sandbox up | down | status | reset | scenario | traffic``: the sandbox's whole life cycle.

State lives in one directory: ``sandbox.json`` (ports, pids, binaries, passwords; mode 0600), the servers'
data and logs, ``profiles.toml`` with the ``sandbox`` profile (only while the servers run), and
``scenario.json`` with the facts the last scenario planted.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bsnexus_lab.config import SANDBOX, resolve, state_dir
from bsnexus_lab.errors import ConfigError, SandboxError
from bsnexus_lab.sandbox import scenarios, servers
from bsnexus_lab.sandbox.scenarios.db import VERSIONS_DIR
from bsnexus_lab.sandbox.service import process as service_process
from bsnexus_lab.sandbox.world import World

TRAFFIC = "bsnexus_lab.sandbox.traffic"  # the traffic process's module (not imported here: it runs as -m)
TRAFFIC_READY = "traffic.ready"  # traffic.READY and traffic.PAUSED
TRAFFIC_PAUSED = "traffic.paused"
READY_TIMEOUT_S = 60.0
DB_USER = "bsnexus"
DB_NAME = "bsnexus"
# Everything the sandbox writes under its root; `reset` deletes these and nothing else.
OWNED = (
    *("redis", "postgres", "pginstall", "sandbox.json", "profiles.toml", "scenario.json"),
    *("traffic.json", "traffic.log", TRAFFIC_READY, TRAFFIC_PAUSED, "service"),
)


@dataclass(frozen=True)
class ServerStatus:
    name: str
    state: str  # running | died | stopped
    pid: int | None
    port: int | None
    source: str
    version: str

    def line(self) -> str:
        where = f"127.0.0.1:{self.port} pid {self.pid}" if self.state != "stopped" else "-"
        return f"{self.name:10} {self.state:8} {where:28} {self.version} ({self.source})"


class Sandbox:
    """Real servers under ``root`` (default: :func:`bsnexus_lab.config.state_dir`)."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = Path(root) if root is not None else state_dir()

    @property
    def _state_file(self) -> Path:
        return self.root / "sandbox.json"

    def _state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._state_file.read_text()))
        except FileNotFoundError:
            return {}

    def _save(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        servers.write_private(self._state_file, json.dumps(state, indent=2))

    # -- life cycle --------------------------------------------------------------------------------------
    def up(self, source: str | None = None, *, service: bool = False) -> list[ServerStatus]:
        """Start whatever is not running (idempotent); a fresh or restarted world gets its scenario reloaded."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        state = self._state()
        started = False
        redis = state.get("redis", {})
        if not servers.pid_alive(redis.get("pid"), servers.REDIS):
            # a restart keeps the build the sandbox was made with (a 6.2 sandbox must not come back as 7.x)
            binary = servers.pick(servers.redis_binaries(), "redis-server", source or redis.get("source"))
            redis = {
                "binary": str(binary.path),
                "source": binary.source,
                "version": _short(binary.version()),
                "port": servers.free_port(),
                "password": redis.get("password") or secrets.token_urlsafe(12),
            }
            redis["pid"] = servers.start_redis(binary, self.root / "redis", redis["port"], redis["password"])
            state["redis"] = redis
            self._save(state)  # recorded at once, so a failure below leaves nothing `down` cannot stop
            started = True
        postgres = state.get("postgres", {})
        if not servers.pid_alive(servers.postgres_pid(self.root / "postgres"), servers.POSTGRES):
            run_as = servers.RunAs.for_postgres()
            bindir = (
                _recorded_bindir(postgres)
                if postgres.get("bindir") and (self.root / "postgres" / "data").exists()
                else run_as.reachable_binaries(
                    servers.pick(servers.postgres_bindirs(), "PostgreSQL", source), self.root
                )
            )
            if not (self.root / "postgres" / "data").exists():
                postgres = {"password": secrets.token_urlsafe(12)}
                servers.init_postgres(bindir, self.root / "postgres", DB_USER, postgres["password"], run_as)
                state["postgres"] = postgres | {"bindir": str(bindir.path), "source": bindir.source}
                self._save(state)  # the cluster's password must outlive a failed start
            postgres |= {
                "bindir": str(bindir.path),
                "source": bindir.source,
                "port": servers.free_port(),
                "version": _short(servers.Binary(bindir.path / "postgres", bindir.source).version()),
                "user": run_as.name or None,
            }
            postgres["pid"] = servers.start_postgres(bindir, self.root / "postgres", postgres["port"], run_as)
            started = True
        state |= {"redis": redis, "postgres": postgres}
        self._save(state)
        self._write_profile(state)
        if started:
            asyncio.run(self._ensure_database(state))
            self.load(state.get("scenario", "healthy"))
        if service:
            self.start_service()
        return self.status()

    def down(self) -> list[ServerStatus]:
        """Stop both servers and withdraw the profile; no process is left behind."""
        self._stop_traffic()
        self.stop_service()
        state = self._state()
        (self.root / "profiles.toml").unlink(missing_ok=True)
        servers.terminate(state.get("redis", {}).get("pid"), servers.REDIS)
        postgres = state.get("postgres", {})
        if postgres.get("bindir"):
            servers.stop_postgres(_recorded_bindir(postgres), self.root / "postgres", servers.RunAs.for_postgres())
        for server in ("redis", "postgres"):
            state.get(server, {}).pop("pid", None)
        if state:
            self._save(state)
        return self.status()

    def reset(self, source: str | None = None) -> list[ServerStatus]:
        """Stop, delete everything the sandbox wrote (and nothing else), and start afresh with the healthy world."""
        self.down()
        for child in OWNED:
            path = self.root / child
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        return self.up(source)

    def status(self) -> list[ServerStatus]:
        state = self._state()
        rows = []
        for name, key, pid in (
            ("redis", "redis", state.get("redis", {}).get("pid")),
            ("postgresql", "postgres", servers.postgres_pid(self.root / "postgres")),
        ):
            info = state.get(key, {})
            recorded = info.get("pid") is not None
            alive = servers.pid_alive(pid, servers.REDIS if key == "redis" else servers.POSTGRES)
            condition = "running" if alive else ("died" if recorded else "stopped")
            rows.append(
                ServerStatus(
                    name,
                    condition,
                    pid if recorded else None,
                    info.get("port"),
                    info.get("source", "-"),
                    info.get("version", "-"),
                )
            )
        return rows

    def running(self) -> bool:
        return all(s.state == "running" for s in self.status())

    # -- world ---------------------------------------------------------------------------------------------
    def load(self, name: str) -> dict[str, Any]:
        """Reset the world and plant scenario ``name``; return (and keep) the planted facts."""
        plant = scenarios.get(name)
        if not self.running():
            raise SandboxError("the sandbox is not running", hint="start it with `bsnexus-lab sandbox up`")
        self._pause_traffic()
        try:
            facts, traffic = asyncio.run(self._plant(self._state(), plant))
        except BaseException:
            self._stop_traffic()
            raise
        state = self._state()
        state["scenario"] = name
        self._save(state)
        (self.root / "traffic.json").unlink(missing_ok=True)
        if traffic:
            self._write_traffic(traffic)
            self.start_traffic()
        else:
            self._stop_traffic()
        (self.root / "scenario.json").write_text(json.dumps({"scenario": name, **facts}, indent=2))
        return facts

    def _write_traffic(self, actors: dict[str, Any]) -> None:
        urls = self.urls()
        config = {
            "redis_url": urls["redis_url"],
            "database_url": urls["database_url"].replace("postgresql+asyncpg://", "postgresql://", 1),
            "state_dir": str(self.root),
            "actors": actors,
        }
        servers.write_private(self.root / "traffic.json", json.dumps(config))

    def traffic_running(self) -> bool:
        traffic = self._state().get("traffic", {})
        return not traffic.get("paused") and servers.pid_alive(traffic.get("pid"), self._traffic_marker)

    def start_traffic(self) -> bool:
        """Run the loaded scenario's traffic (heartbeats, producers, consumers) and let the service's
        consumers run again (idempotent); False when the scenario has no traffic."""
        self._service_consumers(running=True)
        if not (self.root / "traffic.json").exists():
            return False
        state = self._state()
        traffic = state.get("traffic", {})
        if not servers.pid_alive(traffic.get("pid"), self._traffic_marker):
            state["traffic"] = {"pid": self._spawn_traffic()}
        elif traffic.get("paused"):
            self._signal_traffic(traffic["pid"], signal.SIGUSR2, TRAFFIC_READY)
            state["traffic"] = {"pid": traffic["pid"]}
        self._save(state)
        return True

    def stop_traffic(self) -> None:
        """Stop everything in the sandbox that writes: the traffic process and the service's consumers. The
        world stays as it is (workers soon look dead) until `start_traffic` or the next scenario."""
        self._stop_traffic()
        self._service_consumers(running=False)

    def _spawn_traffic(self) -> int:
        (self.root / TRAFFIC_READY).unlink(missing_ok=True)
        with (self.root / "traffic.log").open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", TRAFFIC, str(self.root)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        # Hand the world over only once its traffic runs: on a busy machine the process takes seconds to start,
        # and a window sampled before that would see a stalled world that was never planted.
        self._await_traffic(TRAFFIC_READY, lambda: process.poll() is None, "start")
        return process.pid

    def _pause_traffic(self) -> None:
        """End the traffic's actors but keep its process (and its imports) for the next scenario's traffic."""
        state = self._state()
        pid = state.get("traffic", {}).get("pid")
        if not servers.pid_alive(pid, self._traffic_marker):
            return
        self._signal_traffic(pid, signal.SIGUSR1, TRAFFIC_PAUSED)
        state["traffic"] = {"pid": pid, "paused": True}
        self._save(state)

    def _signal_traffic(self, pid: int, signum: int, answer: str) -> None:
        (self.root / answer).unlink(missing_ok=True)
        os.kill(pid, signum)
        self._await_traffic(answer, lambda: servers.pid_alive(pid, self._traffic_marker), "answer")

    def _await_traffic(self, answer: str, alive: Callable[[], bool], what: str) -> None:
        """Wait (bounded) until the traffic process touches ``answer``."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not (self.root / answer).exists():
            if not alive() or time.monotonic() > deadline:
                tail = (self.root / "traffic.log").read_text(errors="replace").strip().splitlines()[-1:]
                raise SandboxError(f"the sandbox's traffic process did not {what}", hint=" ".join(tail))
            time.sleep(0.05)

    @property
    def _traffic_marker(self) -> str:
        # The command line names this sandbox's root: another sandbox's traffic (or a reused pid) is left alone.
        return f"{TRAFFIC}\0{self.root}"

    def _stop_traffic(self) -> None:
        servers.terminate(self._state().get("traffic", {}).get("pid"), self._traffic_marker)

    def _service_consumers(self, *, running: bool) -> None:
        service = self._state().get("service", {})
        if service_process.alive(self.root, service.get("pid")):
            service_process.consumers(service["url"], running=running)

    def start_service(self) -> str:
        """Start the BSNexus-shaped service (uvicorn) on the sandbox's servers (idempotent); its URL."""
        state = self._state()
        if not service_process.alive(self.root, state.get("service", {}).get("pid")):
            state["service"] = service_process.start(self.root, **self.urls())
            self._save(state)
            self._write_profile(state)
        return str(state["service"]["url"])

    def stop_service(self) -> None:
        """Stop the service (idempotent) and drop it from the profile."""
        state = self._state()
        service_process.stop(self.root, state.pop("service", {}).get("pid"))
        if state:
            self._save(state)
        if (self.root / "profiles.toml").exists():
            self._write_profile(state)

    def facts(self) -> dict[str, Any]:
        """What the last scenario planted (``{}`` before any)."""
        try:
            return dict(json.loads((self.root / "scenario.json").read_text()))
        except FileNotFoundError:
            return {}

    def urls(self) -> dict[str, str]:
        """The sandbox's URLs, credentials included: for its own profile file and for tests."""
        state = self._state()
        redis, postgres = state["redis"], state["postgres"]
        return {
            "redis_url": f"redis://:{redis['password']}@127.0.0.1:{redis['port']}/0",
            "database_url": f"postgresql+asyncpg://{DB_USER}:{postgres['password']}@127.0.0.1:{postgres['port']}/{DB_NAME}",
        }

    def _write_profile(self, state: dict[str, Any]) -> None:
        lines = [f'{key} = "{value}"' for key, value in self.urls().items()]
        lines.append(f"versions_dir = {json.dumps(str(VERSIONS_DIR))}")  # its schema's Alembic chain
        if service := state.get("service"):
            lines += [f'service_url = "{service["url"]}"', f"process = {{ pid = {service['pid']} }}"]
            lines.append(f"log_files = {json.dumps(service['log_files'])}")
        servers.write_private(
            self.root / "profiles.toml",
            "# Written by `bsnexus-lab sandbox up`; removed by `down`.\n[profiles.sandbox]\n"
            + "".join(line + "\n" for line in lines),
        )

    async def _connect(self, state: dict[str, Any], database: str) -> Any:
        import asyncpg

        postgres = state["postgres"]
        return await asyncpg.connect(
            host="127.0.0.1",
            port=postgres["port"],
            user=DB_USER,
            password=postgres["password"],
            database=database,
        )

    async def _ensure_database(self, state: dict[str, Any]) -> None:
        conn = await self._connect(state, "postgres")
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DB_NAME):
                await conn.execute(f"CREATE DATABASE {DB_NAME}")
        finally:
            await conn.close()

    async def _plant(self, state: dict[str, Any], plant: scenarios.Scenario) -> tuple[dict[str, Any], dict[str, Any]]:
        import redis.asyncio as aioredis

        redis = aioredis.Redis(host="127.0.0.1", port=state["redis"]["port"], password=state["redis"]["password"])
        db = await self._connect(state, DB_NAME)
        try:
            async with db.transaction():
                world = World(redis=redis, db=db)
                facts = await plant(world)
                await world.settle()
                return facts, world.traffic
        finally:
            await db.close()
            await redis.aclose()


def ensure(target: str | None = None, *, service: bool = False) -> list[ServerStatus]:
    """Start the sandbox (with ``service``, its BSNexus-shaped service too) when it is the target: ``target`` is
    ``sandbox``, or it is empty and nothing else is configured. Its servers' rows; none when the target is another.

    What ``bsnexus-lab lab`` and the notebooks' first cell do, so a newcomer needs no terminal to get a target.
    """
    name = target or None
    try:
        if resolve(name).name != SANDBOX:
            return []
    except ConfigError:
        if name not in (None, SANDBOX):
            raise
    return Sandbox().up(service=service)


def _recorded_bindir(postgres: dict[str, Any]) -> servers.Binary:
    return servers.Binary(Path(postgres["bindir"]), postgres["source"])


def _short(version: str) -> str:
    """'Redis server v=7.0.15 sha=...' -> 'Redis 7.0.15'; 'postgres (PostgreSQL) 15.20 ...' -> 'PostgreSQL 15.20'."""
    words = version.split()
    if version.startswith("Redis") and len(words) > 2:
        return "Redis " + words[2].removeprefix("v=")
    if "(PostgreSQL)" in words:
        return "PostgreSQL " + words[words.index("(PostgreSQL)") + 1]
    return version
