"""Which deployment the lab looks at, and where each setting came from.

Resolution, per setting, first match wins:

1. explicit arguments (``connect(redis_url=...)``, CLI flags);
2. when a profile is named explicitly (``connect("prod")``, ``--target prod``): that profile, and nothing else;
3. ``BSNEXUS_LAB_*`` environment variables (or the same names in ``./.env``);
4. BSNexus's own ``REDIS_URL`` / ``DATABASE_URL`` (environment or ``./.env``);
   (in a Jupyter kernel, ``.env`` and ``bsnexus-lab.toml`` where the user started Jupyter count too, after
   the notebook's own directory: see :func:`bsnexus_lab.kernel.start_dir`)
5. the profile named by ``BSNEXUS_LAB_TARGET``;
6. the sandbox profile, written by ``bsnexus-lab sandbox up``.

Profiles live in ``./bsnexus-lab.toml``, ``~/.config/bsnexus-lab/profiles.toml`` and the sandbox's state
directory, as ``[profiles.NAME]`` tables. Credentials stay inside :class:`Target`: its repr, ``describe()``
and every error show ``redis://:***@host:6379/0``.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qs, parse_qsl, unquote, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bsnexus_lab.errors import ConfigError
from bsnexus_lab.kernel import search_dirs

SANDBOX = "sandbox"

# Stream names from BSNEXUS.md; a deployment that renamed them overrides ``streams`` in its profile.
DEFAULT_STREAMS = ("tasks:queue", "tasks:qa", "tasks:results", "tasks:escalation", "events:board")
DEFAULT_WORKER_KEY = "worker:{consumer}"
DEFAULT_DIRECT_STREAMS = ("events:board",)  # read with XREAD/XRANGE, no consumer group by design

_REDIS_SCHEMES = {"redis", "rediss", "unix"}
_POSTGRES_SCHEMES = {"postgresql", "postgres", "postgresql+asyncpg"}


def redact_url(url: str) -> str:
    """``scheme://user:***@host:port/path``: passwords (in the user part or a ``password=`` query) replaced."""
    try:
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
    except ValueError:
        return _mask_userinfo(url)


def _mask_userinfo(url: str) -> str:
    """For a URL that does not parse: hide everything before its last ``@`` and any query."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    rest = rest.split("?", 1)[0]
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}{sep}{rest}"


def _safe_port(parts: SplitResult) -> int | None:
    try:
        return parts.port
    except ValueError:
        return None


def _check_url(url: str, schemes: set[str], what: str) -> str:
    """Validate a URL; errors show it masked, since a URL that fails to parse may not redact cleanly."""
    url = url.strip()
    shown = _mask_userinfo(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - urlsplit only validates the port when asked
    except ValueError as exc:
        raise ConfigError(f"{what} is malformed ({exc})", target=shown) from None
    if parts.scheme not in schemes or "://" not in url:
        raise ConfigError(
            f"{what} must start with one of {', '.join(sorted(s + '://' for s in schemes))}", target=shown
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ConfigError(f"{what} has no host", target=shown)
    return url


class ProcessMatch(BaseModel):
    """How to find the service process: exactly one of pid, listening port, or command-line substring."""

    model_config = ConfigDict(frozen=True)

    pid: int | None = None
    port: int | None = None
    cmdline: str | None = None


class Target(BaseModel):
    """One deployment. Build it with :func:`resolve`; it never shows its credentials."""

    model_config = ConfigDict(frozen=True, hide_input_in_errors=True)

    name: str
    redis_url: SecretStr
    database_url: SecretStr | None = None
    service_url: str | None = None
    process: ProcessMatch | None = None
    log_files: tuple[Path, ...] = ()
    streams: tuple[str, ...] = DEFAULT_STREAMS
    worker_key: str = DEFAULT_WORKER_KEY
    direct_streams: tuple[str, ...] = DEFAULT_DIRECT_STREAMS
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

    @property
    def sqlalchemy_url(self) -> str | None:
        """The database URL for SQLAlchemy's asyncpg dialect (contains the password: never print it)."""
        if self.database_url is None:
            return None
        return "postgresql+asyncpg://" + _plain_postgres(self.database_url.get_secret_value()).split("://", 1)[1]

    def secrets(self) -> list[str]:
        """Every password this target carries (as written and decoded), so artefacts can be scrubbed of them."""
        found = set()
        for url in (self.redis_url, self.database_url):
            if url is None:
                continue
            parts = urlsplit(url.get_secret_value())
            for password in [parts.password, *parse_qs(parts.query).get("password", [])]:
                if password:
                    found |= {password, unquote(password)}
        return sorted(found, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        for secret in self.secrets():
            text = text.replace(secret, "***")
        return text

    def describe(self) -> list[tuple[str, str, str]]:
        """(setting, shown value, source) rows for ``bsnexus-lab target show``."""
        rows = [
            ("name", self.name),
            ("redis_url", self.redis),
            ("database_url", self.database or "-"),
            ("service_url", self.service_url or "-"),
            ("process", _process_text(self.process)),
            ("log_files", ", ".join(map(str, self.log_files)) or "-"),
            ("streams", ", ".join(self.streams)),
            ("worker_key", self.worker_key),
            ("direct_streams", ", ".join(self.direct_streams) or "-"),
        ]
        return [(key, value, self.sources.get(key, "default")) for key, value in rows]

    def __repr__(self) -> str:
        return f"Target(name={self.name!r}, redis={self.redis!r}, database={self.database!r})"

    __str__ = __repr__


def _process_text(process: ProcessMatch | None) -> str:
    if process is None:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in process.model_dump().items() if v is not None) or "-"


def _plain_postgres(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme in _POSTGRES_SCHEMES else url


class _LabEnv(BaseSettings):
    """``BSNEXUS_LAB_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="BSNEXUS_LAB_", env_file=".env", extra="ignore")

    redis_url: str | None = None
    database_url: str | None = None
    service_url: str | None = None
    target: str | None = None


class _ServiceEnv(BaseSettings):
    """BSNexus's own variables, read the way BSNexus reads them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    redis_url: str | None = None
    database_url: str | None = None


def state_dir() -> Path:
    """Where the sandbox keeps its servers and profile.

    Root's home is usually closed to other users, and PostgreSQL must run as one (it refuses root), so root
    gets ``/var/lib/bsnexus-lab``.
    """
    if explicit := os.environ.get("BSNEXUS_LAB_STATE_DIR"):
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
        env_files = [directory / ".env" for directory in reversed(search_dirs())]  # pydantic: the last file wins
        lab_env = _LabEnv(_env_file=env_files)
        offer(_env_source("BSNEXUS_LAB_"), lab_env.model_dump(exclude={"target"}))
        offer(_env_source(""), _ServiceEnv(_env_file=env_files).model_dump())
        if lab_env.target:
            offer(*_profile(lab_env.target, profiles))
        if "redis_url" not in values and SANDBOX in profiles:
            offer(*_profile(SANDBOX, profiles))
    if "redis_url" not in values:
        raise ConfigError(
            "no target configured and the sandbox is not running",
            hint="run `bsnexus-lab sandbox up`, name a profile, or set BSNEXUS_LAB_REDIS_URL",
        )
    origin = sources["redis_url"]
    values.setdefault("name", origin.split()[1] if origin.startswith("profile ") else "env")
    try:
        return Target(**values, sources=sources)
    except ConfigError:
        raise
    except ValueError as exc:
        raise _config_error(exc) from None


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


def _env_source(prefix: str) -> str:
    names = [f"{prefix}REDIS_URL", f"{prefix}DATABASE_URL"]
    where = "environment" if any(n in os.environ for n in names) else ".env"
    return f"{where} ({prefix or 'BSNexus '}*)"


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
