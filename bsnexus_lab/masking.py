"""Secrets inside BSNexus's own data, masked before anything shows them.

BSNexus keeps credentials where a debugging tool looks: worker auth tokens are Redis key names
(``worker:token:{token}``) and the ``token`` field of every ``worker:{id}`` hash; PostgreSQL holds
``registration_tokens``, ``api_keys`` and each project's ``llm_config`` (provider API keys); its statistics keep
the text of ``ALTER ROLE ... PASSWORD '...'``. These pure functions mask them by structure (a key name's
segments, a field's or column's name, a SQL password literal); :func:`mask_key` is the one masker of Redis key
names (the keyspace audit, SLOWLOG), and :func:`mask_text` is the last net for text that mentions a token key or
a password literal. Every probe that reads such data applies them, and the runner applies
:func:`mask_data` to every artefact.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T", str, bytes)

MASK = "***"
# Field / column names whose value is a credential, wherever they appear (hash fields, SQL columns, JSON).
SECRET_NAMES = frozenset(
    [
        *("token", "password", "secret", "api_key", "apikey", "access_token", "refresh_token", "token_hash"),
        *("key_hash", "hashed_key", "secret_key", "private_key", "client_secret", "authorization", "credentials"),
    ]
)
_SECRET_SUFFIXES = ("_token", "_secret", "_password", "_api_key", "_apikey")
# A runbook parameter carries a credential when a word of its name (split on "_") says so: ``key`` and
# ``signing_key`` do, ``keys_per_s`` does not.
_SECRET_WORDS = frozenset(
    ["token", "password", "passwd", "pass", "secret", "key", "apikey", "credential", "credentials"]
)
# A key name segment named like this is followed by a secret: everything after it is masked (``worker:token:{t}``,
# ``app:session:{id}``). The keyspace audit's Lua script receives the same list.
SECRET_SEGMENTS = ("token", "tokens", "secret", "secrets", "password", "apikey", "api_key", "session")
# Values whose inside holds credentials next to harmless settings (model names): masked field by field.
NESTED_SECRETS = frozenset(["llm_config"])
# In free text: the token after ``worker:token:``, but not a ``{token}`` placeholder (a key pattern, as the keyspace
# audit names its prefixes) and not an already masked ``***``.
_TOKEN_KEY = re.compile(r"(worker:token:)(?!\{[a-z_]*\}|\*\*\*)[^\s'\",;)\]}]+")
# A password literal in SQL text (CREATE/ALTER ROLE ... PASSWORD '...'), as pg_stat_statements and pg_stat_activity
# keep it: any role's password, not only the target's own.
_SQL_PASSWORD = re.compile(r"(\bPASSWORD\s+)'(?:[^']|'')*'", re.IGNORECASE)


def is_secret_name(name: Any) -> bool:
    """Does a field, column or JSON key of this name hold a credential?"""
    if isinstance(name, bytes):
        name = name.decode(errors="replace")
    if not isinstance(name, str):
        return False
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(_SECRET_SUFFIXES)


def is_secret_parameter(name: str) -> bool:
    """Does a runbook parameter of this name carry a credential (its value then shows as ``***``)?"""
    return is_secret_name(name) or not _SECRET_WORDS.isdisjoint(name.lower().split("_"))


def mask_key(name: Any) -> Any:
    """A Redis key name as it may be shown: whatever follows a secret-named segment (:data:`SECRET_SEGMENTS`,
    any case) becomes ``***``, so ``worker:token:{token}`` shows as ``worker:token:***``.

    Bytes come back as bytes (a name that is not UTF-8 byte for byte); decode first to show one as text.
    """
    if isinstance(name, bytes):  # surrogateescape: a name that is not UTF-8 comes back byte for byte
        return mask_key(name.decode(errors="surrogateescape")).encode(errors="surrogateescape")
    if not isinstance(name, str):
        return name
    segments = name.split(":")
    for n, segment in enumerate(segments[:-1]):
        if segment.lower() in SECRET_SEGMENTS:
            return ":".join([*segments[: n + 1], MASK])
    return name


def mask_fields(fields: Mapping[Any, Any]) -> dict[Any, Any]:
    """A hash's fields (``worker:{id}``), a row or a JSON object with credential values masked."""
    masked = {}
    for name, value in fields.items():
        plain = name.decode(errors="replace") if isinstance(name, bytes) else name
        if value is None:
            masked[name] = value
        elif is_secret_name(plain):
            masked[name] = MASK
        elif isinstance(plain, str) and plain.lower() in NESTED_SECRETS:
            masked[name] = _mask_nested(value)
        elif isinstance(value, Mapping | list):  # a parsed JSON body: a credential may sit at any depth
            masked[name] = _mask_document(value)
        else:
            masked[name] = value
    return masked


def _mask_nested(value: Any) -> Any:
    """A JSON document (parsed or text) with its credential-named keys masked; unreadable text masked whole."""
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return MASK
        return json.dumps(_mask_document(parsed)) if isinstance(parsed, dict | list) else MASK
    return _mask_document(value)


def _mask_document(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: MASK if is_secret_name(k) and v is not None else _mask_document(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask_document(v) for v in value]
    return value


def mask_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A probe's or query's frame with credential columns masked and token key names hidden."""
    masked = frame.copy()
    for column in masked.columns:
        name = str(column)
        if is_secret_name(name):
            masked[column] = masked[column].map(lambda v: v if pd.api.types.is_scalar(v) and pd.isna(v) else MASK)
        elif name.lower() in NESTED_SECRETS:
            masked[column] = masked[column].map(_mask_nested)
        elif masked[column].dtype == object or pd.api.types.is_string_dtype(masked[column]):
            masked[column] = masked[column].map(lambda v: mask_text(v) if isinstance(v, str | bytes) else v)
    return masked


def mask_text(text: T) -> T:
    """Free text (or bytes) with worker-token key names and SQL password literals masked."""
    if isinstance(text, bytes):  # surrogateescape: bytes that are not UTF-8 come back byte for byte
        return mask_text(text.decode(errors="surrogateescape")).encode(errors="surrogateescape")
    return _SQL_PASSWORD.sub(rf"\g<1>'{MASK}'", _TOKEN_KEY.sub(rf"\g<1>{MASK}", text))


def mask_data(value: Any) -> Any:
    """JSON-like data (a notebook, findings, a manifest) with credential fields and token keys masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, Mapping):
        return {k: mask_data(v) for k, v in mask_fields(value).items()}
    if isinstance(value, list | tuple):
        return [mask_data(v) for v in value]
    return value
