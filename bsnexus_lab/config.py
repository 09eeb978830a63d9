"""Which deployment the lab looks at, and where each setting came from.

Resolution, per setting, first match wins:

1. explicit arguments (``connect(redis_url=...)``, CLI flags);
2. when a profile is named explicitly (``connect("prod")``, ``--target prod``): that profile, and nothing else;
3. ``BSNEXUS_LAB_*`` environment variables (or the same names in ``./.env``);
4. BSNexus's own ``REDIS_URL`` / ``DATABASE_URL`` (environment or ``./.env``);
   (in a Jupyter kernel, ``.env`` and ``bsnexus-lab.toml`` where the user started Jupyter count too, after
   the notebook's own directory: see :func:`bsnexus_lab.kernel.start_dir`)
5. the profile named by ``BSNEXUS_LAB_TARGET``;
6. BSNexus's checkout around that ``.env``: ``service_url``, ``process``, ``log_files`` and ``versions_dir``
   from its ``SERVER_HOST``/``SERVER_PORT``/``LOG_DIR``, the backend listening and its ``alembic.ini`` (see
   :mod:`bsnexus_lab.checkout`);
7. the sandbox profile, written by ``bsnexus-lab sandbox up``.

Profiles live in ``./bsnexus-lab.toml``, ``~/.config/bsnexus-lab/profiles.toml`` and the sandbox's state
directory, as ``[profiles.NAME]`` tables. Credentials stay inside :class:`Target`: its repr, ``describe()``
and every error show ``redis://:***@host:6379/0``.
"""

from __future__ import annotations

import html
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, parse_qsl, quote, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from bsnexus_lab.errors import ConfigError
from bsnexus_lab.kernel import search_dirs

SANDBOX = "sandbox"

# Stream names from BSNEXUS.md; a deployment that renamed them overrides ``streams`` in its profile (and the
# names the checks rely on in its ``conventions``, see :class:`Conventions`).
DEFAULT_STREAMS = ("tasks:queue", "tasks:qa", "tasks:results", "tasks:escalation", "events:board")
DEFAULT_WORKER_KEY = "worker:{consumer}"
DEFAULT_DIRECT_STREAMS = ("events:board",)  # read with XREAD/XRANGE, no consumer group by design
WORKER_ID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"  # str(uuid4()): BSNexus's worker ids
CONVENTIONS = "bsnexus_lab.conventions"  # DataFrame.attrs key: the Conventions a probe read the frame under

_REDIS_SCHEMES = {"redis", "rediss", "unix"}
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}


# Scrubbing free text (a traceback, an executed notebook) replaces values at least this long as whole words, and
# shorter ones only where they stand as credentials: a one-letter password must not turn "cells" into "c***lls",
# nor "postgres" "postgresql://", yet "redis://:e@host" still loses its "e".
MIN_SCRUBBED_LEN = 4
_ENCODE_HINT = "percent-encode reserved characters in the password (@ as %40, ? as %3F, # as %23, / as %2F)"


def redact_url(url: str) -> str:
    """``scheme://user:***@host:port/path``: passwords (in the user part or a ``password=`` query) replaced.

    The URL is taken apart the way its driver takes it apart (SQLAlchemy's ``make_url`` for PostgreSQL,
    urllib for redis-py); one that does not parse shows nothing before its last ``@``.
    """
    try:
        if url.split("://", 1)[0] in _POSTGRES_SCHEMES:
            return _redact_postgres(url)
        return _redact_redis(url)
    except ValueError:
        return _mask_userinfo(url)


def _redact_redis(url: str) -> str:
    parts = urlsplit(url)
    query = "&".join(
        f"{k}=***" if k == "password" else (f"{k}={v}" if v else k) for k, v in parse_qsl(parts.query, True)
    )
    if parts.password is None and query == parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        port = f":{parts.port}" if _safe_port(parts) else ""
        netloc = f"{parts.username or ''}:***@{parts.hostname or ''}{port}"
    shown = urlunsplit(parts._replace(netloc=netloc, query=query))
    return shown if netloc else shown.replace(":", "://", 1)  # keep unix:///path as written


def _redact_postgres(url: str) -> str:
    parsed = postgres_url(url)
    if "password" in parsed.query:
        parsed = parsed.update_query_dict({"password": "***"})
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", "***")


def postgres_url(url: str) -> Any:
    """The database URL parsed exactly as SQLAlchemy (the driver's side) parses it; ambiguity refused.

    An unencoded ``@`` in the password makes SQLAlchemy take the password's tail for part of the host name:
    that URL means different things to different readers, so it is refused with a message instead.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    url = url.strip()
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):  # their messages echo the URL
        raise ValueError("unparsable") from None
    # The password ends at the first @ after the user name's colon; another @ anywhere after it (even in a
    # query SQLAlchemy drops) means the password's tail was read as the rest of the URL.
    after_password = url.split("://", 1)[-1].partition(":")[2].partition("@")[2] if parsed.password is not None else ""
    if "@" in (parsed.host or "") or "@" in (parsed.database or "").split("?")[0] or "@" in after_password:
        raise ValueError("ambiguous")
    return parsed


def _mask_userinfo(url: str) -> str:
    """For a URL that does not parse: hide everything before its last ``@`` and any query."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    else:  # no @: a "port" that is no number may be a password whose @ was forgotten (user:pass/db)
        netloc, slash, path = rest.partition("/")
        head, colon, port = netloc.rpartition(":")
        if colon and not port.isdigit():
            rest = f"{head}:***{slash}{path}"
    rest = rest.split("?", 1)[0].split("#", 1)[0]
    return f"{scheme}{sep}{rest}"


def _safe_port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _check_url(url: str, schemes: set[str], what: str) -> str:
    """Validate a URL the way its driver reads it; errors show it masked and never quote the parser."""
    url = url.strip()
    shown = _mask_userinfo(url)
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in schemes:
        raise ConfigError(
            f"{what} must start with one of {', '.join(sorted(s + '://' for s in schemes))}", target=shown
        )
    if scheme in _POSTGRES_SCHEMES:
        try:
            host = postgres_url(url).host
        except ValueError as exc:
            raise ConfigError(f"{what} is {'ambiguous' if str(exc) == 'ambiguous' else 'malformed'}",
                              target=shown, hint=_ENCODE_HINT) from None  # fmt: skip
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - urlsplit only validates the port when asked
        except ValueError:  # urllib's message quotes the "port", which may be the password's head
            raise ConfigError(f"{what} is malformed", target=shown, hint=_ENCODE_HINT) from None
        # a password's @ or tail; a socket path may hold an @ (a password's "/" leaves a netloc that ends in ":x")
        tail = parts.query + parts.fragment + (parts.path if parts.scheme != "unix" else "")
        if "@" in tail:
            raise ConfigError(f"{what} is ambiguous", target=shown, hint=_ENCODE_HINT)
        if parts.scheme == "unix" and ":" in parts.netloc and "@" not in parts.netloc:  # no port: a password's head
            raise ConfigError(f"{what} is ambiguous", target=shown, hint=_ENCODE_HINT)
        host = parts.hostname
    if scheme != "unix" and not host:
        raise ConfigError(f"{what} has no host", target=shown)
    return url


def history_url() -> str | None:
    """The shared run history's PostgreSQL URL (``BSNEXUS_LAB_HISTORY_URL``), checked the way its driver reads
    it; None for the default, ``<runs>/history.sqlite``."""
    url = os.environ.get(HISTORY_URL_ENV, "").strip()
    return _check_url(url, _POSTGRES_SCHEMES, HISTORY_URL_ENV) if url else None


def url_secrets(*urls: str) -> list[str]:
    """The passwords these URLs carry (in the user part or a ``password=`` query), each decoded, as written,
    percent-encoded and HTML-escaped, longest first: what scrubbing replaces."""
    found: set[str] = set()
    for url in urls:
        if url.split("://", 1)[0] in _POSTGRES_SCHEMES:
            parsed = postgres_url(url)
            found |= {p for p in (parsed.password, parsed.query.get("password")) if isinstance(p, str)}
        else:
            parts = urlsplit(url)
            found |= {p for p in [parts.password, *parse_qs(parts.query).get("password", [])] if p}
    found |= {unquote(p) for p in found} | {quote(p, safe="") for p in found}
    found |= {html.escape(p) for p in found}
    return sorted(found, key=len, reverse=True)


def redact_urls_in(text: str) -> str:
    """Free text with the credentials of any URL in it masked (for errors whose origin is unknown)."""
    return re.sub(r"(\b[a-z][a-z0-9+.-]*://)[^\s/@]*@", r"\1***@", text)


def scrub_text(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret where it stands as a whole word (when at least :data:`MIN_SCRUBBED_LEN` long) and,
    however short, where it stands as a credential: a URL's password (``:pw@``) or a ``password=`` value."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        escaped = re.escape(secret)
        if len(secret) >= MIN_SCRUBBED_LEN:
            text = re.sub(rf"(?<!\w){escaped}(?!\w|://)", "***", text)  # a word before :// is a URL scheme
        elif secret:
            text = re.sub(rf"(?<=:){escaped}(?=@)|(?<=password=){escaped}(?![^\s&'\"])", "***", text)
    return text


def scrub_data(value: Any, secrets: Iterable[str]) -> Any:
    """Scrub every string inside JSON-like data (a notebook, a manifest): the structure stays valid."""
    secrets = list(secrets)
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, Mapping):
        return {k: scrub_data(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [scrub_data(v, secrets) for v in value]
    return value


class ProcessMatch(BaseModel):
    """How to find the service process: exactly one of pid, listening port, or command-line substring."""

    model_config = ConfigDict(frozen=True)

    pid: int | None = None
    port: int | None = None
    cmdline: str | None = None


class Conventions(BaseModel):
    """BSNexus's names and sizes that the checks rely on (shared/BSNEXUS.md), for a deployment that changed them.

    Set in a profile as a ``[profiles.NAME.conventions]`` table (or ``connect(conventions={...})``); what is not
    set keeps BSNexus's value. It holds no secret, so probes stamp it on the frames they return
    (:meth:`stamp`) and checks read it back (:meth:`of`): a check stays a pure function of its frames, and a
    hand-built frame is read with BSNexus's names.
    """

    model_config = ConfigDict(frozen=True)

    queue_stream: str = "tasks:queue"  # tasks to execute, read by the workers
    worker_group: str = "workers"
    qa_stream: str = "tasks:qa"  # tasks to review, read by the reviewers
    reviewer_group: str = "reviewers"
    reviewer_field: str = "reviewer_id"  # the field of a QA message that names its reviewer
    worker_consumers: str = WORKER_ID  # a regular expression that a worker consumer's whole name matches
    orchestrator_consumers: tuple[str, ...] = ("pm-0", "architect-0")  # the backend's own loops: no registry key
    # MAXLEN of the streams trimmed to another length than thresholds.streams.trim_limit (trim_streams())
    trim_limits: Mapping[str, int] = Field(default_factory=lambda: {"events:board": 5000})
    task_keys: tuple[str, ...] = ("task:{task_id}:needs_intervention", "task:{task_id}:recovery_count")
    pool_size: int = 5  # the backend's SQLAlchemy pool (SQLAlchemy's defaults, which BSNexus keeps)
    max_overflow: int = 10

    @field_validator("worker_consumers")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ConfigError(f"conventions.worker_consumers is not a regular expression: {exc}") from None
        return value

    def is_worker(self, consumer: str) -> bool:
        """Whether a consumer is a worker (it has a registry key). Only the whole name counts: by default the
        canonical form ``str(uuid4())`` writes, not braces, ``urn:uuid:``, upper case or a stray space."""
        return re.fullmatch(self.worker_consumers, consumer, flags=re.ASCII) is not None

    def is_orchestrator(self, consumer: str) -> bool:
        return consumer in self.orchestrator_consumers

    @property
    def worker_groups(self) -> frozenset[str]:
        return frozenset({self.worker_group, self.reviewer_group})

    def trim_limit(self, stream: str, default: int) -> int:
        return self.trim_limits.get(stream, default)

    def stamp(self, frame: Any) -> Any:
        """The frame, marked as read under these conventions; returns the same frame."""
        frame.attrs[CONVENTIONS] = self
        return frame

    @classmethod
    def of(cls, *frames: Any) -> Conventions:
        """The conventions the first stamped frame was read under (None skipped); BSNexus's own for frames no
        probe stamped."""
        stamped = (f.attrs[CONVENTIONS] for f in frames if f is not None and CONVENTIONS in f.attrs)
        return next(stamped, None) or cls()


class Target(BaseModel):
    """One deployment. Build it with :func:`resolve`; it never shows its credentials."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    name: str
    redis_url: SecretStr
    database_url: SecretStr | None = None
    service_url: str | None = None
    process: ProcessMatch | None = None
    log_files: tuple[Path, ...] = ()
    log_timezone: str | None = None  # IANA zone BSNexus's log timestamps are in; None: this machine's
    versions_dir: Path | None = None  # the Alembic versions directory db.migrations compares alembic_version with
    streams: tuple[str, ...] = DEFAULT_STREAMS
    worker_key: str = DEFAULT_WORKER_KEY
    direct_streams: tuple[str, ...] = DEFAULT_DIRECT_STREAMS
    conventions: Conventions = Field(default_factory=Conventions)
    sources: Mapping[str, str] = Field(default_factory=dict)

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: SecretStr) -> SecretStr:
        return SecretStr(_check_url(value.get_secret_value(), _REDIS_SCHEMES, "the Redis URL"))

    @field_validator("database_url")
    @classmethod
    def _database(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(_check_url(value.get_secret_value(), _POSTGRES_SCHEMES, "the database URL"))

    @property
    def redis(self) -> str:
        """The Redis URL as it may be shown."""
        return redact_url(self.redis_url.get_secret_value())

    @property
    def database(self) -> str | None:
        """The database URL as it may be shown, in plain ``postgresql://`` form."""
        if self.database_url is None:
            return None
        return redact_url(_plain_postgres(self.database_url.get_secret_value()))

    def sqlalchemy(self) -> tuple[Any, dict[str, Any]]:
        """The database URL for SQLAlchemy's asyncpg dialect and the connect arguments its TLS settings need.

        libpq's ``sslmode``/``sslrootcert``/``sslcert``/``sslkey`` (what BSNexus's ``DATABASE_URL`` carries)
        become asyncpg's ``ssl`` argument, which the dialect would otherwise pass through as unknown keywords.
        The URL contains the password: never print it.
        """
        if self.database_url is None:
            raise ConfigError("this target has no database_url", target=self.name)
        url = postgres_url(self.database_url.get_secret_value()).set(drivername="postgresql+asyncpg")
        tls = {k: url.query[k] for k in ("sslmode", "sslrootcert", "sslcert", "sslkey") if k in url.query}
        if not tls:
            return url, {}
        return url.difference_update_query(tls), {"ssl": _ssl_argument(**tls)}

    def secrets(self) -> list[str]:
        """Every password this target carries (decoded and as written), so artefacts can be scrubbed of them."""
        urls = [self.redis_url, *([self.database_url] if self.database_url is not None else [])]
        return url_secrets(*(url.get_secret_value() for url in urls))

    def scrub(self, text: str) -> str:
        """Free text with this target's passwords replaced (see :func:`scrub_text`)."""
        return scrub_text(text, self.secrets())

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, shown value, source) rows for ``bsnexus-lab target show``."""
        rows = [
            ("name", self.name),
            ("redis_url", self.redis),
            ("database_url", self.database or "-"),
            ("service_url", self.service_url or "-"),
            ("process", _process_text(self.process)),
            ("log_files", ", ".join(map(str, self.log_files)) or "-"),
            ("log_timezone", self.log_timezone or "-"),
            ("versions_dir", str(self.versions_dir or "-")),
            ("streams", ", ".join(self.streams)),
            ("worker_key", self.worker_key),
            ("direct_streams", ", ".join(self.direct_streams) or "-"),
        ]
        shown = [(key, value, self.sources.get(key, "default")) for key, value in rows]
        conventions = self.sources.get("conventions", "default")
        return shown + [
            (
                f"conventions.{key}",
                _setting_text(value),
                conventions if key in self.conventions.model_fields_set else "default",
            )
            for key, value in self.conventions.model_dump().items()
        ]

    def __repr__(self) -> str:
        return f"Target(name={self.name!r}, redis={self.redis!r}, database={self.database!r})"

    __str__ = __repr__


def _setting_text(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return ", ".join(value) if isinstance(value, tuple) else str(value)


def _process_text(process: ProcessMatch | None) -> str:
    if process is None:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in process.model_dump().items() if v is not None) or "-"


def _ssl_argument(sslmode: str = "prefer", sslrootcert: str | None = None, sslcert: str | None = None,
                  sslkey: str | None = None) -> Any:  # fmt: skip
    """asyncpg's ``ssl`` for libpq's settings: the mode name, or a context when files are named."""
    import ssl

    if sslmode not in {"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}:
        raise ConfigError(f"the database URL has an unknown sslmode {sslmode!r}",
                          hint="use disable, allow, prefer, require, verify-ca or verify-full")  # fmt: skip
    if not (sslrootcert or sslcert):
        return sslmode
    named = {"sslrootcert": sslrootcert, "sslcert": sslcert, "sslkey": sslkey}
    for setting, path in named.items():
        if path and not Path(path).is_file():  # else ssl's FileNotFoundError reads as an unreachable server
            raise ConfigError(f"the database URL's {setting} is not a readable file: {path}")
    try:
        context = ssl.create_default_context(cafile=sslrootcert)
        if sslcert:
            context.load_cert_chain(sslcert, sslkey)
    except (ssl.SSLError, OSError) as exc:
        raise ConfigError(f"the database URL's certificates cannot be used: {exc.strerror or exc}") from None
    if sslmode not in {"verify-ca", "verify-full"}:
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    elif sslmode == "verify-ca":
        context.check_hostname = False
    return context


def _plain_postgres(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme in _POSTGRES_SCHEMES else url


# The lab's own environment variables that more than one module reads or sets (the URLs are read only here).
TARGET_ENV = "BSNEXUS_LAB_TARGET"  # the profile to use when none is named
STATE_DIR_ENV = "BSNEXUS_LAB_STATE_DIR"  # where the sandbox keeps its servers and profile
RUN_DIR_ENV = "BSNEXUS_LAB_RUN_DIR"  # set for a runbook's kernel: the directory of the run in progress
RUNS_DIR_ENV = "BSNEXUS_LAB_RUNS_DIR"  # where run directories and the history go (else the nearest runs/)
HISTORY_URL_ENV = "BSNEXUS_LAB_HISTORY_URL"  # a shared run history in PostgreSQL (else <runs>/history.sqlite)
RUNBOOKS_ENV = "BSNEXUS_LAB_RUNBOOKS"  # a directory of runbooks, searched before ./runbooks and the packaged ones


def run_dir() -> Path | None:
    """The run directory when this process is a runbook's kernel (the runner sets :data:`RUN_DIR_ENV`): its
    writes are journalled there, its captures kept there; None outside a run."""
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None


_LAB_VARIABLES = {"redis_url": "BSNEXUS_LAB_REDIS_URL", "database_url": "BSNEXUS_LAB_DATABASE_URL",
                  "service_url": "BSNEXUS_LAB_SERVICE_URL", "versions_dir": "BSNEXUS_LAB_VERSIONS_DIR"}  # fmt: skip
_SERVICE_VARIABLES = {"redis_url": "REDIS_URL", "database_url": "DATABASE_URL"}  # read the way BSNexus reads them


def env_files() -> list[Path]:
    """The ``.env`` files read, first wins: here, then where the user started (see kernel.search_dirs)."""
    return [d / ".env" for d in search_dirs()]


def _variables(names: Mapping[str, str]) -> dict[str, tuple[str, str]]:
    """setting -> (value, source) from the environment, else the first ``.env`` that sets the variable."""
    from dotenv import dotenv_values

    found: dict[str, tuple[str, str]] = {}
    files = [(path, dotenv_values(path)) for path in env_files() if path.is_file()]
    for key, variable in names.items():
        value = os.environ.get(variable) or os.environ.get(variable.lower())
        if value:
            found[key] = (value, f"environment ({variable})")
            continue
        for path, values in files:
            if value := values.get(variable) or values.get(variable.lower()):
                found[key] = (value, f"{path} ({variable})")
                break
    return found


def state_dir() -> Path:
    """Where the sandbox keeps its servers and profile.

    Root's home is usually closed to other users, and PostgreSQL must run as one (it refuses root), so root
    gets ``/var/lib/bsnexus-lab``.
    """
    if explicit := os.environ.get(STATE_DIR_ENV):
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/lib/bsnexus-lab")
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "bsnexus-lab"


def profile_files() -> list[Path]:
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [
        *(directory / "bsnexus-lab.toml" for directory in search_dirs()),
        config_home / "bsnexus-lab" / "profiles.toml",
        state_dir() / "profiles.toml",
    ]


def load_profiles(files: Iterable[Path] | None = None) -> dict[str, tuple[dict[str, Any], Path]]:
    """Every profile by name with the file it came from; earlier files win."""
    found: dict[str, tuple[dict[str, Any], Path]] = {}
    for path in files if files is not None else profile_files():
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read profiles from {path}", hint=str(exc)) from None
        for name, values in data.get("profiles", {}).items():
            if isinstance(values, dict):
                found.setdefault(name, (values, path))
    return found


def resolve(target: str | None = None, **overrides: Any) -> Target:
    """Resolve a :class:`Target` from arguments, environment, ``.env``, profiles and the sandbox."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    def offer(source: str, candidates: Mapping[str, Any]) -> None:
        for key, value in candidates.items():
            if value is not None and key not in values:
                values[key] = value
                sources[key] = source

    offer("argument", overrides)
    profiles = load_profiles()
    if target is not None:
        offer(*_profile(target, profiles))
    else:
        for names in (_LAB_VARIABLES, _SERVICE_VARIABLES):
            for key, (value, source) in _variables(names).items():
                offer(source, {key: value})
        if named := _variables({"target": TARGET_ENV}).get("target"):
            offer(*_profile(named[0], profiles))
        if "redis_url" in values:  # a deployment, not the sandbox: its checkout fills what nothing explicit set
            _offer_checkout(values, sources)
        if "redis_url" not in values and SANDBOX in profiles:
            offer(*_profile(SANDBOX, profiles))
    if "redis_url" not in values:
        raise _no_target(sources.get("database_url"))
    origin = sources["redis_url"]
    values.setdefault("name", origin.split()[1] if origin.startswith("profile ") else "env")
    try:
        return Target(**values, sources=sources)
    except ConfigError:
        raise
    except ValueError as exc:
        raise _config_error(exc) from None


def _offer_checkout(values: dict[str, Any], sources: dict[str, str]) -> None:
    """Add what BSNexus's checkout suggests; a setting it finds several candidates for keeps only their list."""
    from bsnexus_lab.checkout import DISCOVERED, discover

    env = next((path for path in env_files() if path.is_file()), None)
    explicit = _process_match(values.get("process"))
    pid, port = (explicit.pid, explicit.port) if explicit is not None else (None, None)
    for key, found in discover(env, skip=set(values), pid=pid, port=port).items():
        if found.value is not None:
            values[key] = found.value
        sources[key] = DISCOVERED + found.source


def _process_match(process: Any) -> ProcessMatch | None:
    """An explicit process setting as a ProcessMatch; None when absent or malformed (the Target refuses it)."""
    if process is None or isinstance(process, ProcessMatch):
        return process
    try:
        return ProcessMatch.model_validate(process)
    except ValueError:
        return None


def _profile(name: str, profiles: Mapping[str, tuple[dict[str, Any], Path]]) -> tuple[str, dict[str, Any]]:
    if name not in profiles:
        if name == SANDBOX:
            raise ConfigError("the sandbox is not running", hint="start it with `bsnexus-lab sandbox up`")
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(
            f"no profile named {name!r}",
            hint=f"known profiles: {known}; files read: " + ", ".join(str(p) for p in profile_files()),
        )
    values, path = profiles[name]
    return f"profile {name} ({path})", values


def _no_target(database_source: str | None) -> ConfigError:
    looked = ", ".join(["the environment", *map(str, env_files()), *map(str, profile_files())])
    if database_source is not None:
        return ConfigError(
            f"a database URL is set ({database_source}) but no Redis URL",
            hint=f"set REDIS_URL (next to DATABASE_URL) or BSNEXUS_LAB_REDIS_URL (next to BSNEXUS_LAB_DATABASE_URL);"
            f" looked in {looked}",
        )
    return ConfigError(
        "no target configured and the sandbox is not running",
        hint="run `bsnexus-lab sandbox up`, name a profile, or set REDIS_URL and DATABASE_URL (or"
        f" BSNEXUS_LAB_REDIS_URL and BSNEXUS_LAB_DATABASE_URL); looked in {looked}",
    )


def _config_error(exc: ValueError) -> ConfigError:
    """Pydantic's message, minus the input it echoes (which may hold a password)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        for error in errors():
            inner = error.get("ctx", {}).get("error")
            if isinstance(inner, ConfigError):
                return inner
        first = errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        return ConfigError(f"invalid target setting {where}", hint=first.get("msg", "invalid value"))
    return ConfigError("invalid target settings")
