"""Secret hygiene on real servers: what the lab reads or is given stays out of everything it writes or spawns.

Secrets: BSNexus's own credentials planted by the healthy world (worker tokens in ``worker:token:*`` key names and
``worker:{id}`` hashes, ``registration_tokens``, ``api_keys`` hashes, the ``api_key`` in ``projects.llm_config``);
the target's Redis and PostgreSQL passwords, set on the running sandbox to odd, one-letter and dictionary-word
values; and secret-looking runbook parameters. Places: every file under the output root as bytes (the notebooks
with their outputs and tracebacks, ``run.json``, ``history.sqlite``), the postmortem folder, the CLI's stdout and
stderr (where the kernel's own log goes too), and the command line of every process a run spawns (kernels, py-spy,
memray, gdb), polled while it runs.

Each secret is searched raw and percent-encoded (as it sits in a URL). Other encodings are not searched: the
artefacts are UTF-8 text, JSON and SQLite, which store these characters as they are, and the only base64 inside
them is PNG figures, which hold pixels.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import nbformat
import psutil
import pytest
import redis as sync_redis

from bsnexus_lab.config import MIN_SCRUBBED_LEN
from bsnexus_lab.errors import EXIT_FAILED, EXIT_FINDINGS, EXIT_OK
from bsnexus_lab.findings import document
from bsnexus_lab.history import History
from bsnexus_lab.sandbox import Sandbox
from bsnexus_lab.sandbox.lifecycle import DB_NAME, DB_USER
from tests.running import parameters_cell, write_runbook
from tests.test_guard import superuser
from tests.test_safety import QUICK as SHORT

# Every runbook, with the parameters that keep it short (as `-p name=value` words).
QUICK = {name: [f"{key}={value}" for key, value in params.items()] for name, params in SHORT.items()}
# Every character a URL reserves, and a "%41" that a second decoding would turn into "A".
ODD = ("r3d@is#pw?50%:ok/1", "pg@s#q?l%41:w/rd")
OTHER_ROLE_PASSWORD = "rpt-PASS-4e1f9b"
PASSWORDS = {  # case -> (Redis password, PostgreSQL password, searched anywhere)
    "reserved-characters": (*ODD, True),
    # A one-letter or dictionary-word password also occurs as ordinary text (the letter in every word, "redis" in
    # the URL scheme, "postgres" in PostgreSQL's version string), so for these only credential positions are
    # searched: a URL's userinfo (":pw@"), a "password=pw" query and SQL's "PASSWORD 'pw'".
    "one-letter": ("e", "x", False),
    "dictionary-words": ("redis", "postgres", False),
    "secret": ("secret", "secret", False),
}
# Secret-looking parameter names (``signing_key`` is secret by a word of its name), values recognisable; "s3" is
# shorter than MIN_SCRUBBED_LEN, too short to be searched everywhere, so it is searched where it stands as a
# parameter: given, assigned, a JSON entry.
SECRET_PARAMETERS = {
    "api_token": "tok-PARAM-7f3a9c",
    "password": "pw-PARAM-b@d#pass",
    "api_key": "key-PARAM-0e8b",
    "signing_key": "sig-PARAM-5c6d",
    "secret": "s3",
}
SHORT_PARAMETER = {"short secret, assigned": b'secret = "s3"', "short secret, a JSON entry": b'"secret": "s3"',
                   "short secret, given": b"=s3"}  # fmt: skip


# -- what to look for, and where ------------------------------------------------------------------------------
def needles(label: str, secret: str, *, anywhere: bool = True) -> dict[str, bytes]:
    """The byte strings that would betray ``secret``: itself and its percent-encoding (or, for a secret that is
    also an ordinary word, those in credential positions)."""
    forms = {secret, quote(secret, safe="")}
    if anywhere:
        return {f"{label} {form!r}": form.encode() for form in forms}
    positions = [f":{form}@" for form in forms] + [f"password={form}" for form in forms] + [f"PASSWORD '{secret}'"]
    return {f"{label} {p!r}": p.encode() for p in positions}


def found_in(data: bytes, wanted: Mapping[str, bytes]) -> list[str]:
    return [label for label, needle in wanted.items() if needle in data]


def leaks_under(root: Path, wanted: Mapping[str, bytes]) -> dict[str, list[str]]:
    """file -> the secrets it contains, for every file under ``root`` read as bytes (SQLite databases included)."""
    return {
        str(path): hits
        for path in sorted(root.rglob("*"))
        if path.is_file() and (hits := found_in(path.read_bytes(), wanted))
    }


def bsnexus_secrets(sandbox: Sandbox) -> dict[str, bytes]:
    """The credentials the healthy world planted, read back from the servers, as needles."""
    with sync_redis.Redis.from_url(sandbox.urls()["redis_url"], decode_responses=True) as redis:
        tokens = {key.removeprefix("worker:token:") for key in redis.scan_iter("worker:token:*")}
        held = {redis.hget(key, "token") for key in redis.scan_iter("worker:*") if redis.type(key) == "hash"}
    assert len(tokens) >= 3 and held - {None} <= tokens, (tokens, held)  # every live worker's hash holds its token
    rows = asyncio.run(
        superuser(
            sandbox,
            "SELECT 'registration_tokens' AS kind, token AS value FROM registration_tokens"
            " UNION ALL SELECT 'api_keys', key_hash FROM api_keys"
            " UNION ALL SELECT 'llm_config', llm_config->>'api_key' FROM projects",
        )
    )
    kinds = [row["kind"] for row in rows if row["value"]]
    assert (kinds.count("registration_tokens"), kinds.count("api_keys"), kinds.count("llm_config")) == (2, 2, 5)
    found = {f"worker token {t}": t for t in tokens} | {f"{row['kind']} {row['value']}": row["value"] for row in rows}
    return {label: value.encode() for label, value in found.items()}


# -- the CLI, watched -----------------------------------------------------------------------------------------
@dataclass
class Cli:
    code: int
    output: bytes  # stdout and stderr
    commands: set[str] = field(default_factory=set)  # command lines of the processes it spawned

    def leaks(self, name: str, wanted: Mapping[str, bytes]) -> dict[str, list[str]]:
        """Where this command's output or a spawned process's command line betrays a secret."""
        places = {"stdout/stderr": self.output} | {f"process {c!r}": c.encode() for c in self.commands}
        return {f"{name}: {place}": hits for place, data in places.items() if (hits := found_in(data, wanted))}


@contextlib.contextmanager
def spawned_commands(root: int) -> Iterator[set[str]]:
    """The command lines of every descendant of ``root`` alive at some moment of the block (polled every 50 ms;
    only the descendants' command lines are read: reading every process's cost the suite a core)."""
    seen: set[str] = set()
    done = threading.Event()

    def poll() -> None:
        with contextlib.suppress(psutil.NoSuchProcess):
            parent = psutil.Process(root)
            while not done.is_set():
                for child in parent.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        seen.add(" ".join(child.cmdline()))
                done.wait(0.05)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    try:
        yield seen
    finally:
        done.set()
        watcher.join()


def debugger(command: str) -> bool:
    """Is this command line gdb's or lldb's (the program itself, not memray's ``--method gdb``)?"""
    return Path(command.split(" ", 1)[0]).name.startswith(("gdb", "lldb"))


def cli(args: list[str], cwd: Path, env: Mapping[str, str] | None = None) -> Cli:
    """``bsnexus-lab ARGS`` in a process of its own, its spawned processes watched while it runs."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bsnexus_lab", *args],
        cwd=cwd,
        env=os.environ | {"PWD": str(cwd)} | dict(env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        with spawned_commands(process.pid) as commands:
            out, err = process.communicate(timeout=600)
    finally:
        if process.poll() is None:
            process.kill()
    return Cli(process.returncode, out + err, commands)


# -- passwords changed on the running sandbox, always restored --------------------------------------------------
def _set_requirepass(port: int, current: str, new: str) -> None:
    with sync_redis.Redis(host="127.0.0.1", port=port, password=current) as admin:
        admin.config_set("requirepass", new)
        admin.execute_command("AUTH", new)  # the new password is the one that works from now on


def _alter_role(port: int, current: str, new: str) -> None:
    async def alter() -> None:
        import asyncpg

        conn = await asyncpg.connect(host="127.0.0.1", port=port, user=DB_USER, password=current, database=DB_NAME)
        try:
            await conn.execute(f"ALTER ROLE {DB_USER} PASSWORD '{new.replace(chr(39), chr(39) * 2)}'")
        finally:
            await conn.close()

    asyncio.run(alter())


@contextlib.contextmanager
def changed_passwords(sandbox: Sandbox, redis_password: str, postgres_password: str) -> Iterator[dict[str, str]]:
    """The sandbox's Redis and PostgreSQL passwords set to these (by admin clients of the test's own), as
    percent-encoded ``REDIS_URL`` / ``DATABASE_URL``; the originals are back afterwards, whatever happened."""
    redis_url, database_url = urlsplit(sandbox.urls()["redis_url"]), urlsplit(sandbox.urls()["database_url"])
    assert redis_url.port and redis_url.password and database_url.port and database_url.password
    with contextlib.ExitStack() as restore:
        restore.callback(sandbox.load, "healthy")  # last: traffic that lost its connections starts afresh
        _set_requirepass(redis_url.port, redis_url.password, redis_password)
        restore.callback(_set_requirepass, redis_url.port, redis_password, redis_url.password)
        _alter_role(database_url.port, database_url.password, postgres_password)
        restore.callback(_alter_role, database_url.port, postgres_password, database_url.password)
        yield {
            "REDIS_URL": f"redis://:{quote(redis_password, safe='')}@127.0.0.1:{redis_url.port}/0",
            "DATABASE_URL": f"postgresql://{DB_USER}:{quote(postgres_password, safe='')}@127.0.0.1:"
            f"{database_url.port}/{DB_NAME}",
        }


@pytest.fixture
def planted(sandbox: Sandbox) -> dict[str, bytes]:
    """A fresh healthy world; the credentials it holds, as needles."""
    sandbox.load("healthy")
    return bsnexus_secrets(sandbox)


@pytest.fixture
def service(sandbox: Sandbox, one_source: None) -> Iterator[dict[str, Any]]:
    """The sandbox's BSNexus-shaped service, for the profiling runbooks (which do not depend on the server build)."""
    sandbox.start_service()
    yield sandbox._state()["service"]
    sandbox.stop_service()


@pytest.fixture(params=list(PASSWORDS))
def credentials(
    request: pytest.FixtureRequest, sandbox: Sandbox, planted: dict[str, bytes]
) -> Iterator[tuple[dict[str, str], dict[str, bytes]]]:
    """One password case set on the sandbox: the URLs, and every needle (BSNexus's secrets included)."""
    redis_password, postgres_password, anywhere = PASSWORDS[request.param]
    wanted = planted | needles("redis password", redis_password, anywhere=anywhere)
    wanted |= needles("postgres password", postgres_password, anywhere=anywhere)
    with changed_passwords(sandbox, redis_password, postgres_password) as urls:
        yield urls, wanted


# -- the tests --------------------------------------------------------------------------------------------------
@pytest.mark.long
def test_every_runbook_and_the_postmortem_leak_no_secret(
    sandbox: Sandbox, service: dict[str, Any], planted: dict[str, bytes], tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    runs = project / "runs"
    wanted = planted | needles("redis password", ODD[0]) | needles("postgres password", ODD[1])
    # Another role's password, which the lab is never given, kept by pg_stat_statements in the statement's text.
    reporting = f"CREATE ROLE lab_reporting LOGIN PASSWORD '{OTHER_ROLE_PASSWORD}'"
    asyncio.run(superuser(sandbox, f"{reporting}; DROP ROLE lab_reporting", script=True))
    wanted |= needles("another role's password", OTHER_ROLE_PASSWORD)
    leaks: dict[str, list[str]] = {}
    with changed_passwords(sandbox, *ODD) as urls:
        profile = project / "bsnexus-lab.toml"
        profile.write_text(
            f'[profiles.odd]\nredis_url = "{urls["REDIS_URL"]}"\ndatabase_url = "{urls["DATABASE_URL"]}"\n'
            f'service_url = "{service["url"]}"\nprocess = {{ pid = {service["pid"]} }}\n'
            f"log_files = {service['log_files']!r}\n".replace("'", '"')
        )
        assert found_in(profile.read_bytes(), wanted)  # the search sees the passwords where they are written
        for name, params in QUICK.items():
            done = cli(
                ["run", name, "--target", "odd", "--output-dir", str(runs), *(f"-p{p}" for p in params)], project
            )
            assert done.code in (EXIT_OK, EXIT_FINDINGS), (name, done.output.decode()[-3000:])
            leaks |= done.leaks(name, wanted)
            assert any("ipykernel" in c for c in done.commands), (name, done.commands)  # the watch saw the kernel
            tool = {"cpu_profile": "py-spy", "memory_growth": "memray"}.get(name)
            assert tool is None or any(tool in c for c in done.commands), (name, done.commands)
            # memray attaches through a debugger, whose command line the watch must have seen to call it clean
            assert name != "memory_growth" or any(debugger(c) for c in done.commands), (name, done.commands)
    postmortem = cli(["postmortem", "INC-secrets", "--since", "1h", "--runs-dir", str(runs)], project)
    assert postmortem.code == 0, postmortem.output.decode()
    leaks |= postmortem.leaks("postmortem", wanted)
    leaks |= leaks_under(runs, wanted) | leaks_under(project / "postmortems", wanted)
    assert leaks == {}, json.dumps(leaks, indent=1)
    # the runs did read what holds the secrets: the keyspace (worker tokens), the database, the service's process
    assert (runs / "history.sqlite").is_file() and len(list(runs.glob("*/*/notebook.ipynb"))) == len(QUICK)
    (keyspace,) = runs.glob("redis_health/*/notebook.ipynb")
    assert "worker:token:***" in keyspace.read_text()  # token keys among the biggest keys, shown masked
    (db_run,) = runs.glob("db_health/*/notebook.ipynb")
    assert "registration_tokens" in db_run.read_text()  # the table's statistics, not its rows
    assert reporting.replace(OTHER_ROLE_PASSWORD, "***") in db_run.read_text()  # the statement shown, masked


def test_odd_short_and_common_passwords_leak_nowhere(
    credentials: tuple[dict[str, str], dict[str, bytes]], tmp_path: Path
) -> None:
    urls, wanted = credentials
    books = tmp_path / "books"
    # A careless cell (or a library) that echoes the URLs, then raises with one in its message: the runner's last net.
    write_runbook(
        books,
        "echo_urls",
        [
            parameters_cell(),
            nbformat.v4.new_code_cell(
                'import os\nprint("connecting to", os.environ["REDIS_URL"], os.environ["DATABASE_URL"])'
            ),
            nbformat.v4.new_code_cell("raise ConnectionError(f\"cannot reach {os.environ['DATABASE_URL']}\")"),
        ],
    )
    env = urls | {"BSNEXUS_LAB_RUNBOOKS": str(books)}
    runs = tmp_path / "runs"
    backlog = cli(["run", "stream_backlog", "--output-dir", str(runs), *(f"-p{p}" for p in QUICK["stream_backlog"])],
                  tmp_path, env)  # fmt: skip
    assert backlog.code in (EXIT_OK, EXIT_FINDINGS), backlog.output.decode()[-3000:]
    echo = cli(["run", "echo_urls", "--output-dir", str(runs)], tmp_path, env)
    assert echo.code == EXIT_FAILED and b"raised ConnectionError" in echo.output, echo.output.decode()
    (run_dir,) = runs.glob("stream_backlog/*")
    shown = json.loads((run_dir / "run.json").read_text())["target"]
    # hidden without renaming what holds them: "redis" is also a key of run.json and a URL scheme
    assert shown["redis"].startswith("redis://:***@127.0.0.1:"), shown
    assert History(runs).run(run_dir.name)["target_redis"] == shown["redis"]
    assert shown["database"].startswith(f"postgresql://{DB_USER}:***@127.0.0.1:"), shown
    (echoed,) = runs.glob("echo_urls/*/notebook.ipynb")
    assert "connecting to " in echoed.read_text() and "@127.0.0.1:" in echoed.read_text()  # the echo ran, masked
    leaks = leaks_under(runs, wanted)
    for name, done in (("stream_backlog", backlog), ("echo_urls", echo)):
        assert any("ipykernel" in c for c in done.commands)
        leaks |= done.leaks(name, wanted)
    assert leaks == {}, json.dumps(leaks, indent=1)


@pytest.mark.usefixtures("one_source")
def test_secret_looking_parameters_are_refused_or_kept_out_of_every_artefact(sandbox: Sandbox, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    wanted = dict(SHORT_PARAMETER)
    long_enough = {name: value for name, value in SECRET_PARAMETERS.items() if len(value) >= MIN_SCRUBBED_LEN}
    wanted |= {label: needle for name, value in long_enough.items() for label, needle in needles(name, value).items()}
    password = quote(SECRET_PARAMETERS["password"], safe="")
    # The shipped runbooks declare no such parameter, and a URL with a password is refused as a target parameter.
    for pair in (f"token={SECRET_PARAMETERS['api_token']}", "password=s3", f"target=redis://:{password}@db/0"):
        refused = cli(["run", "stream_backlog", "--target", "sandbox", "--output-dir", str(runs), "-p", pair], tmp_path)
        assert refused.code == EXIT_FAILED and not found_in(refused.output, wanted), refused.output.decode()
        assert b"unknown parameter" in refused.output or b"carries a password" in refused.output
    assert not runs.exists()  # refused before anything was written
    # A runbook of one's own may declare them: the kernel gets the values, the artefacts never show them.
    books = tmp_path / "books"
    declared = "\n".join(f'{name}: str = ""' for name in SECRET_PARAMETERS)
    write_runbook(
        books,
        "with_secrets",
        [
            parameters_cell(f'target: str = ""\n{declared}'),
            nbformat.v4.new_code_cell(
                "import hashlib\nimport bsnexus_lab as bl\n"
                f"got = [hashlib.sha256(globals()[n].encode()).hexdigest() for n in {list(SECRET_PARAMETERS)!r}]\n"
                'print("using token", api_token, "and password", password)  # a careless print\n'
                'bl.emit([bl.Finding("params.received", bl.Severity.OK, "arrived", evidence={"digests": got})])'
            ),
        ],
    )
    args = ["run", "with_secrets", "--target", "sandbox", "--output-dir", str(runs)]
    done = cli(
        [*args, *(f"-p{n}={v}" for n, v in SECRET_PARAMETERS.items())], tmp_path, {"BSNEXUS_LAB_RUNBOOKS": str(books)}
    )
    assert done.code == EXIT_OK, done.output.decode()
    (run_dir,) = runs.glob("with_secrets/*")
    received = document.records(run_dir / "findings.json")[0]["evidence"]["digests"]
    assert received == [hashlib.sha256(v.encode()).hexdigest() for v in SECRET_PARAMETERS.values()]
    injected = next(
        c for c in nbformat.read(run_dir / "notebook.ipynb", 4).cells if "injected-parameters" in c.metadata.tags
    )
    assert all(f'{name} = "***"' in injected.source for name in SECRET_PARAMETERS), injected.source
    leaks = leaks_under(runs, wanted)
    # The CLI's own command line holds the -p values the user typed; the processes it spawns must not.
    leaks |= done.leaks("with_secrets", wanted)
    assert leaks == {}, json.dumps(leaks, indent=1)
