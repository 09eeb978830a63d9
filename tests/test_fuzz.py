"""Bad input, fuzzed: URLs, runbook parameters, stream replies, key names, consumer names and log lines either
come through or are refused with the lab's own one-line error; nothing crashes and no password shows.

Every ``@example`` below is a bug these properties found, kept as a regression.
"""

from __future__ import annotations

import html
import io
import json
import math
import re
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pandas as pd
import pytest
import redis as sync_redis
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

import bsnexus_lab as bl
from bsnexus_lab import ConfigError, RunbookError, Target, runbooks
from bsnexus_lab.areas import default_thresholds
from bsnexus_lab.areas.keys.names import prefix
from bsnexus_lab.areas.keys.tally import Tally
from bsnexus_lab.areas.logs.checks import repeated_errors
from bsnexus_lab.areas.logs.errors import grouped
from bsnexus_lab.areas.logs.read import read
from bsnexus_lab.areas.streams.checks import dead_consumer, lost_messages, poison_message, stuck_on_live_consumer
from bsnexus_lab.areas.streams.probes import body_row
from bsnexus_lab.cli import main
from bsnexus_lab.config import Conventions, postgres_url, resolve
from bsnexus_lab.errors import EXIT_FAILED
from bsnexus_lab.findings import Finding, document, to_html, to_json, to_text
from bsnexus_lab.masking import SECRET_SEGMENTS, mask_fields, mask_key
from bsnexus_lab.resp import decode, entry_id, text
from bsnexus_lab.sandbox import Sandbox

# The conftest's autouse isolation (environment, cwd) is per test, not per example, and needs no reset between
# examples: nothing here changes the environment.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
STREAMS = default_thresholds().streams


# -- URLs: a Target or a ConfigError, and the password in neither ------------------------------------------
RESERVED = "@#?%:/ "
UNICODE = st.characters(codec="utf-8")  # no lone surrogates: no password, and no URL, can hold one
PASSWORDS = st.one_of(
    st.text(alphabet=st.sampled_from([*RESERVED, *"aZ09é✓"]), min_size=1, max_size=16),  # delimiters galore
    st.text(UNICODE, min_size=1, max_size=16),  # any unicode a URL can carry
    UNICODE,  # one letter
    st.sampled_from(["password", "postgres", "redis", "secret", "admin", "bsnexus", "default", "None", "6379"]),
)
USERS = st.sampled_from(["", "default", "bsnexus"])
SCHEMES = st.sampled_from(["redis", "rediss", "postgresql", "postgresql+asyncpg", "postgres"])
HOST = "cachehost:6379/0"


def views(target: Target) -> str:
    """Everything a Target shows of itself."""
    return " ".join([repr(target), str(target), target.redis, str(target.database), str(target.describe())])


# What outputs say whatever the password: fragments found here cannot betray one.
PUBLIC = " ".join(
    [
        views(Target(name="t", redis_url="redis://c:1")),
        views(Target(name="t", redis_url="redis://u:pw@c:1/0", database_url="postgresql://u:pw@c:1/0")),
        "malformed ambiguous has no host must start with one of rediss:// unix:// postgresql+asyncpg://",
        "percent-encode reserved characters in the password (@ as %40, ? as %3F, # as %23, / as %2F)",
    ]
)


def betraying(password: str, public: str) -> list[str]:
    """The parts of a password that would betray it: at least 4 characters, cut where a URL parser may cut it,
    and not something every output says anyway (``redis``, the host)."""
    parts = [password, quote(password, safe=""), *re.split(r"[@#?%:/\s]", password)]
    return [p for p in parts if len(p) >= 4 and p not in PUBLIC and p not in public]


def build(scheme: str, user: str, secret: str) -> tuple[dict[str, str], bool]:
    """The target settings with ``secret`` in the URL's userinfo, and whether it is the Redis URL."""
    url = f"{scheme}://{user}:{secret}@{HOST}"
    if scheme.startswith("redis"):
        return {"redis_url": url}, True
    return {"redis_url": "redis://c:1", "database_url": url}, False


def driver_password(url: str, is_redis: bool) -> str | None:
    """The password as the URL's driver reads it (redis-py: urllib, unquoted; asyncpg: SQLAlchemy)."""
    if is_redis:
        password = urlsplit(url).password
        return None if password is None else unquote(password)
    return postgres_url(url).password


@FUZZ
@given(password=PASSWORDS, scheme=SCHEMES, user=USERS)
def test_a_percent_encoded_password_always_works_and_never_shows(password: str, scheme: str, user: str) -> None:
    settings_, is_redis = build(scheme, user, quote(password, safe=""))
    target = Target(name="t", **settings_)
    shown = target.redis if is_redis else target.database
    assert shown == f"{scheme if is_redis else 'postgresql'}://{user}:***@{HOST}"
    url = settings_["redis_url" if is_redis else "database_url"]
    assert driver_password(url, is_redis) == password
    if is_redis:
        assert password in target.secrets()
    else:
        assert target.sqlalchemy()[0].password == password
    for part in betraying(password, f"{scheme}://{user}:@{HOST}"):
        assert part not in views(target)


@FUZZ
@given(password=PASSWORDS, scheme=SCHEMES, user=USERS)
@example(password="@00?", scheme="redis", user="")  # was read as host "00": "redis://:***@00?@cachehost..."
@example(password="@0000?", scheme="postgresql", user="")  # SQLAlchemy dropped "?@cachehost...": host "0000"
def test_an_unencoded_password_is_read_as_the_driver_reads_it_or_refused(password: str, scheme: str, user: str) -> None:
    settings_, is_redis = build(scheme, user, password)
    url = settings_["redis_url" if is_redis else "database_url"]
    try:
        target = Target(name="t", **settings_)
    except ConfigError as exc:
        shown = str(exc)
        assert "\n" not in shown
    else:
        shown = views(target)
        if driver_password(url, is_redis) == password:  # read whole: shown exactly like an encoded one
            assert (target.redis if is_redis else target.database) == (
                f"{scheme if is_redis else 'postgresql'}://{user}:***@{HOST}"
            )
    for part in betraying(password, f"{scheme}://{user}:@{HOST}"):
        assert part not in shown, (url, part, shown)


@FUZZ
@given(password=PASSWORDS, is_redis=st.booleans())
def test_a_password_in_the_query_never_shows(password: str, is_redis: bool) -> None:
    secret = quote(password, safe="")
    if is_redis:
        target = Target(name="q", redis_url=f"redis://{HOST}?password={secret}&ssl_cert_reqs=none")
        assert target.redis == f"redis://{HOST}?password=***&ssl_cert_reqs=none"
    else:
        target = Target(name="q", redis_url="redis://c:1", database_url=f"postgresql://u@{HOST}?password={secret}")
        assert target.database == f"postgresql://u@{HOST}?password=***"
    for part in betraying(password, HOST):
        assert part not in views(target)


@FUZZ
@given(
    start=st.sampled_from(["", "redis://", "rediss://", "unix://", "postgresql://", "postgres://u:", "http://"]),
    secret=st.one_of(st.just(""), PASSWORDS),
    rest=st.text(max_size=60),
    as_database=st.booleans(),
)
@example(start="", secret="", rest="0\n0", as_database=False)  # the error quoted the URL across two lines
@example(start="redis://", secret="hunter2-pw", rest="cache:6379/0", as_database=False)
@example(start="postgresql://", secret="hunter2-pw", rest="db/bsnexus", as_database=True)
@example(start="unix://", secret="@00?", rest="", as_database=False)  # a socket URL showed the password's tail
def test_any_text_is_a_target_or_a_config_error(start: str, secret: str, rest: str, as_database: bool) -> None:
    """Any text around a password planted in the userinfo: a Target or a one-line error, the password in neither."""
    url = start + (f":{secret}@" if secret else "") + rest
    settings_ = {"redis_url": "redis://c:1", "database_url": url} if as_database else {"redis_url": url}
    try:
        target = Target(name="t", **settings_)
    except ConfigError as exc:
        shown = str(exc)
        assert shown and "\n" not in shown
    else:
        shown = views(target)
        target.secrets()
    assert shown.strip()  # what is searched below is real output
    for part in betraying(secret, start + rest):
        assert part not in shown, (url, part, shown)


@FUZZ
@given(secret=st.one_of(st.just(""), PASSWORDS), rest=st.text(max_size=40))
@example(secret="hunter2-pw", rest="cache:6379/0")
def test_resolve_turns_every_bad_url_into_a_config_error(secret: str, rest: str) -> None:
    """resolve() is what connect(redis_url=...) and the CLI use: pydantic's own errors must not get through, nor
    the password planted in the userinfo."""
    userinfo = f":{secret}@" if secret else ""
    try:
        target = resolve(redis_url=f"redis://{userinfo}{rest}", database_url=f"postgresql://u{userinfo}{rest}")
    except ConfigError as exc:
        shown = str(exc)
    else:
        shown = views(target)
    assert shown.strip()  # what is searched below is real output
    for part in betraying(secret, rest):
        assert part not in shown, (rest, part, shown)


# -- runbook parameters: coerced to the declared type and range, or one line naming the parameter ----------
DECLARED = {name: runbooks.parameters(path) for name, path in runbooks.available().items()}
NUMBERS = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.floats(),  # nan, inf, -0.0, 5e-324, 1.7e308
    st.sampled_from(["nan", "inf", "-inf", "1e999", "-1", "0", "1e9", "2.5", " 5 ", "1_000", "١٢", "0x10"]),
    st.one_of(st.integers(), st.floats()).map(str),
)
VALUES = st.one_of(
    NUMBERS,
    st.text(max_size=30),
    st.booleans(),
    st.none(),
    st.lists(st.one_of(st.text(max_size=5), st.integers()), max_size=3),
    st.sampled_from(["[", "[1, 2]", '"a"', "null", "none", "true", "redis://:pw@h:6379", "a@b"]),
)


@st.composite
def runbook_parameters(draw: Any) -> tuple[str, dict[str, Any]]:
    """A real runbook, and parameters by its declared names or by any name at all."""
    runbook = draw(st.sampled_from(sorted(DECLARED)))
    names = st.one_of(st.sampled_from(sorted(DECLARED[runbook])), st.text(min_size=1, max_size=12))
    return runbook, draw(st.dictionaries(names, VALUES, max_size=4))


def respects(param: runbooks.Parameter, value: Any) -> bool:
    """A value the runbook may receive for ``param``: its declared type, and a sensible number."""
    kind = param.type
    if kind == "str":
        return isinstance(value, str)
    if kind.startswith("list"):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind not in {"int", "float"}:
        return True
    if isinstance(value, bool) or not isinstance(value, int if kind == "int" else float) or not math.isfinite(value):
        return False
    if param.name.endswith("_s"):
        return 0 < value <= runbooks.MAX_SECONDS
    return 0 <= value <= runbooks.MAX_COUNT


@FUZZ
@given(case=runbook_parameters())
@example(case=("redis_health", {"sample": float("inf")}))  # was OverflowError from int(inf)
@example(case=("stream_backlog", {"duration_s": 10**400}))  # was OverflowError from float(10**400)
@example(case=("redis_health", {"sample": 2.5}))  # was silently truncated to 2
@example(case=("redis_health", {"sample": "1" * 400}))  # was OverflowError from math.isfinite(int("1" * 400))
@example(case=("stream_backlog", {"dur\nation_s": "1"}))  # was a message on two lines
def test_parameters_are_coerced_or_refused_in_one_line(case: tuple[str, dict[str, Any]]) -> None:
    runbook, given_ = case
    declared = DECLARED[runbook]
    try:
        coerced = runbooks.coerce(given_, declared)
    except RunbookError as exc:
        message = str(exc)
        assert "\n" not in message and len(message) < 1000, message
        assert any(f"parameter {n}" in message or repr(n) in message for n in given_), message
    else:
        assert set(coerced) == set(given_)
        for name, value in coerced.items():
            assert respects(declared[name], value), (name, given_[name], value)


@pytest.mark.parametrize(
    ("param", "message"),
    [("nope=1", "unknown parameter 'nope': accepted: target: str"), ("duration_s=nan", "must be a finite number")],
)
def test_the_cli_refuses_a_bad_parameter_in_one_line_before_a_kernel_starts(
    param: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", "stream_backlog", "-p", param, "--output-dir", str(tmp_path / "runs")])
    err = capsys.readouterr().err
    assert code == EXIT_FAILED
    assert err.startswith("bsnexus-lab: ") and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # no run directory: refused before the lock, the target or a kernel


# -- stream replies: arbitrary bytes decoded, ids parsed or refused ------------------------------------------
JSONISH = st.one_of(
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
        max_leaves=8,
    ).map(lambda v: json.dumps(v).encode()),
    st.tuples(st.sampled_from([b"{", b"[", b'{"a": ', b"[1, "]), st.binary(max_size=20)).map(b"".join),
    st.sampled_from([2, 200, 5000]).map(lambda n: b"[" * n + b"]" * n),  # deep, or deeper than json.loads goes
)
RAW = st.one_of(st.binary(max_size=40), st.text(max_size=40).map(str.encode), JSONISH)


@FUZZ
@given(raw=RAW)
@example(raw=b"[" * 100_000)  # was RecursionError out of json.loads
def test_a_field_value_is_text_or_its_json(raw: bytes) -> None:
    as_text = text(raw)
    try:
        assert as_text == raw.decode("utf-8")  # UTF-8 losslessly
    except UnicodeDecodeError:
        assert as_text == raw.decode("utf-8", errors="backslashreplace")  # or with \xNN for what is not
    as_text.encode("utf-8")  # no surrogates left to break a report
    value = decode(raw)
    assert json.dumps(value) == json.dumps(as_text if isinstance(value, str) else json.loads(as_text))


@FUZZ
@given(
    value=st.one_of(
        st.text(max_size=30), st.binary(max_size=30), st.from_regex(r"\d{1,22}(-\d{1,22})?", fullmatch=True)
    )
)
@example(value="１２３-0")  # fullwidth digits were taken for (123, 0)
@example(value=" 12-3")
@example(value="1_0-0")
def test_an_entry_id_is_parsed_exactly_or_refused(value: str | bytes) -> None:
    shown = text(value)
    try:
        ms, seq = entry_id(value)
    except ValueError as exc:
        assert str(exc) == f"not a stream entry id: {value!r}"
        assert not re.fullmatch(r"[0-9]{1,20}(-[0-9]{1,20})?", shown)
    else:
        head, _, tail = shown.partition("-")
        assert (ms, seq) == (int(head), int(tail or 0)) and re.fullmatch(r"[0-9]+(-[0-9]+)?", shown)


@given(ms=st.integers(0, 2**64 - 1), seq=st.integers(0, 2**64 - 1))
def test_every_id_redis_writes_round_trips(ms: int, seq: int) -> None:
    assert entry_id(f"{ms}-{seq}".encode()) == (ms, seq)


FIELD_NAMES = st.one_of(st.binary(max_size=10), st.sampled_from([b"id", b"stream", b"exists", b"body.id", b"token"]))


@FUZZ
@given(
    pairs=st.lists(st.tuples(FIELD_NAMES, RAW), max_size=6),
    resp3=st.booleans(),
)
@example(pairs=[(b"id", b"event-7"), (b"stream", b"other"), (b"exists", b"0")], resp3=False)  # overwrote the row
def test_a_message_body_becomes_a_row_without_losing_a_field(pairs: list[tuple[bytes, bytes]], resp3: bool) -> None:
    fields: Any = dict(pairs) if resp3 else [part for pair in pairs for part in pair]
    row = body_row("tasks:qa", "1-0", fields)
    assert (row["stream"], row["id"], row["exists"]) == ("tasks:qa", "1-0", True)
    decoded = {text(name): raw for name, raw in (dict(pairs).items() if resp3 else pairs)}  # the last one wins
    columns = list(row)[3:]
    assert len(columns) == len(decoded)  # every field kept, in order, a clashing name prefixed with "body."
    for column, (name, raw) in zip(columns, decoded.items(), strict=True):
        assert re.fullmatch(r"(body\.)*" + re.escape(name), column), (column, name)
        assert json.dumps(row[column]) == json.dumps(mask_fields({name: decode(raw)})[name])
    assert body_row("tasks:qa", "2-0", None) == {"stream": "tasks:qa", "id": "2-0", "exists": False}


# -- key names: odd bytes classified without a crash, tokens masked ------------------------------------------
TOKENS = st.from_regex(r"[A-Za-z0-9_-]{16,43}", fullmatch=True)  # secrets.token_urlsafe's alphabet
SECRET_CASES = st.sampled_from(SECRET_SEGMENTS).flatmap(
    lambda word: st.sampled_from([word, word.upper(), word.title()])
)


@FUZZ
@given(name=st.binary(max_size=40), depth=st.integers(1, 4))
@example(name=b"bin:\xff", depth=2)  # mask_key turned \xff into \xef\xbf\xbd: another key's name
def test_any_key_name_is_classified_and_kept(name: bytes, depth: int) -> None:
    assert isinstance(prefix(name, depth), str) and isinstance(mask_key(text(name)), str)
    tally = Tally(depth=depth)
    tally.add_key("node", name, "string", -1, 10)
    assert tally.by_prefix()["prefix"].tolist() == [prefix(name, depth)]
    if not any(s.lower() in SECRET_SEGMENTS for s in text(name).split(":")[:-1]):
        assert mask_key(name) == name  # nothing to mask: the name as it is, byte for byte


@FUZZ
@given(
    lead=st.binary(max_size=20), word=SECRET_CASES, token=TOKENS, tail=st.binary(max_size=12), depth=st.integers(1, 4)
)
def test_a_token_after_a_secret_segment_never_shows(
    lead: bytes, word: str, token: str, tail: bytes, depth: int
) -> None:
    name = lead + b":" + word.encode() + b":" + token.encode() + (b":" + tail if tail else b"")
    assume(token not in text(lead))
    tally = Tally(depth=depth)
    tally.add_key("node", name, "string", -1, 10)
    shown = [
        mask_key(text(name)),
        prefix(name, depth),
        *tally.by_prefix()["prefix"],
        *tally.by_prefix()["examples_without_ttl"][0],
    ]
    assert all(token not in s for s in shown), shown


@FUZZ
@given(token=TOKENS, tail=st.binary(max_size=12))
def test_a_worker_token_key_never_shows_its_token(token: str, tail: bytes) -> None:
    name = b"worker:token:" + token.encode() + tail
    assume(token.encode() not in tail)
    assert prefix(name) == "worker:token:{token}"
    assert token.encode() not in mask_key(name)
    assert token not in mask_key(text(name))


# -- consumer names: spaces, unicode, escaped bytes ----------------------------------------------------------
CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
SPELLINGS = [str.upper, lambda u: "{" + u + "}", lambda u: "urn:uuid:" + u, lambda u: u.replace("-", ""),
             lambda u: u[:-1] + " ", lambda u: "٠" + u[1:], lambda u: u[:-2] + "_" + u[-1]]  # fmt: skip
CONSUMERS = st.one_of(
    st.text(min_size=1, max_size=20),
    st.sampled_from(["worker 1", "wörker-✓", "\\xff\\xfe", "pm-0", " ", "名前", "a\tb", "'quoted'"]),
    st.uuids().map(str),
    st.tuples(st.uuids().map(str), st.sampled_from(SPELLINGS)).map(lambda pair: pair[1](pair[0])),
)


@FUZZ
@given(name=CONSUMERS)
@example(name="0b7c4a52-3f0e-4a57-9d1e-6c1f0c2b9a1 ")  # uuid.UUID took these for worker ids
@example(name="٠b7c4a52-3f0e-4a57-9d1e-6c1f0c2b9a11")
@example(name="{0b7c4a52-3f0e-4a57-9d1e-6c1f0c2b9a11}")
def test_only_a_worker_id_as_bsnexus_writes_it_is_a_worker(name: str) -> None:
    assert Conventions().is_worker(name) == bool(CANONICAL_UUID.fullmatch(name))


def rendered(findings: list[Finding]) -> tuple[str, str, list[dict[str, Any]]]:
    return to_text(findings), to_html(findings), document.records(to_json(findings))


@FUZZ
@given(name=CONSUMERS)
def test_checks_name_odd_consumers_and_their_findings_render(name: str) -> None:
    consumers = pd.DataFrame(
        [
            {
                "stream": "tasks:queue",
                "group": "workers",
                "consumer": name,
                "pending": 2,
                "oldest_pending_id": "1-0",
                "max_pending_idle_ms": 900_000,
                "longest_idle_id": "1-0",
                "registered": False,
            }
        ]
    ).astype({"registered": "boolean"})
    pending = pd.DataFrame(
        [{"stream": "tasks:results", "group": "pm", "id": "5-0", "consumer": name, "idle_ms": 900_000, "deliveries": 1},
         {"stream": "tasks:queue", "group": "workers", "id": "1-0", "consumer": name, "idle_ms": 5, "deliveries": 9}]
    )  # fmt: skip
    summary = pd.DataFrame(
        [{"stream": "tasks:queue", "group": "workers", "first_id": "3-0", "last_delivered_id": "4-0", "lag": 0,
          "lag_exact": True, "lag_reported": 0, "length": 2}]
    )  # fmt: skip
    [dead] = dead_consumer(consumers=consumers, thresholds=STREAMS)
    [poison] = poison_message(pending=pending, thresholds=STREAMS)
    stuck = stuck_on_live_consumer(pending=pending, thresholds=STREAMS)
    [bodyless] = lost_messages(summary=summary, thresholds=STREAMS, pending=pending)
    assert dead.evidence["consumer"] == name and name in dead.title and repr(name) in dead.remedy
    assert poison.evidence["consumer"] == name
    # Only the orchestrator's own consumers are judged stuck: any other name is a worker or unknown.
    assert len(stuck) == (name in ("pm-0", "architect-0")) and all(f.evidence["consumer"] == name for f in stuck)
    assert bodyless.evidence["consumers"] == name
    findings = [dead, poison, *stuck, bodyless]
    as_text, as_html, as_json = rendered(findings)
    assert name in as_text and html.escape(name) in as_html
    assert {f["evidence"].get("consumer", f["evidence"].get("consumers")) for f in as_json} == {name}


# -- consumer names on a real server --------------------------------------------------------------------------
ODD_CONSUMERS = {"worker 1": "worker 1", "wörker-✓": "wörker-✓", b"\xff\xfe": "\\xff\\xfe"}  # as sent: as shown
ODD_STREAM = "lab:odd-consumers"


def test_odd_consumer_names_come_back_from_the_server_and_findings_render(
    sandbox: Sandbox, writer: sync_redis.Redis
) -> None:
    writer.delete(ODD_STREAM)
    writer.xgroup_create(ODD_STREAM, "g", id="0", mkstream=True)
    for sent in ODD_CONSUMERS:
        writer.xadd(ODD_STREAM, {b"id": b"body-id", b"payload": b"[" * 5000, b"\xff": b"\xfe", "who": sent})
        writer.xreadgroup("g", sent, {ODD_STREAM: ">"}, count=1)
    writer.xadd(ODD_STREAM, {"task_id": "waiting"})
    shown = set(ODD_CONSUMERS.values())
    orchestrator = {"orchestrator_consumers": sorted(shown)}  # so that every odd name is in a finding
    try:
        with bl.connect("sandbox", conventions=orchestrator, thresholds={"streams.stuck_result_idle_s": 0}) as lab:
            summary = lab.streams.summary(ODD_STREAM)
            consumers = lab.streams.consumers(ODD_STREAM)
            pending = lab.streams.pending(ODD_STREAM)
            bodies = lab.streams.bodies(pending)
            findings = lab.streams.check(summary=summary, consumers=consumers, pending=pending, bodies=bodies)
    finally:
        writer.delete(ODD_STREAM)
    assert (int(summary["pending"].iloc[0]), int(summary["lag"].iloc[0])) == (3, 1)
    assert set(consumers["consumer"]) == set(pending["consumer"]) == shown
    assert consumers["registered"].isna().all()  # not worker ids: no registry key looked up
    assert list(bodies["id"]) == list(pending["id"]) and set(bodies["body.id"]) == {"body-id"}
    assert set(bodies["payload"]) == {"[" * 5000} and set(bodies["\\xff"]) == {"\\xfe"}
    stuck = [f for f in findings if f.check == "streams.stuck_on_live_consumer"]
    assert {f.evidence["consumer"] for f in stuck} == shown
    as_text, as_html, _ = rendered(findings)
    assert all(name in as_text and html.escape(name) in as_html for name in shown)


# -- log lines that are not records ---------------------------------------------------------------------------
RECORD_TIMES = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
LEVELS = st.sampled_from(["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])
LOGGERS = st.from_regex(r"[a-z][a-z._]{0,15}", fullmatch=True)
MESSAGES = st.text(alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=30)


@st.composite
def record_lines(draw: Any) -> str:
    moment = draw(RECORD_TIMES)
    return f"{moment:%Y-%m-%d %H:%M:%S},{moment.microsecond // 1000:03d} {draw(LEVELS)} {draw(LOGGERS)}: " + draw(
        MESSAGES
    )


ANY_LINE = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=40).map(str.encode),
    record_lines().map(str.encode),
    st.from_regex(
        r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(,\d{3})? [A-Z]{1,8} [a-z.]{1,8}: .{0,10}", fullmatch=True
    ).map(str.encode),  # record-shaped: 2026-13-45, 9999-12-31 23:59:59, other scripts' digits
    st.sampled_from([b"Traceback (most recent call last):", b"ValueError: boom", b"backend-1  | \xff", b""]),
)


def read_lines(lines: list[bytes], timezone: str = "UTC") -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "bsnexus.log"
        path.write_bytes(b"\n".join(lines) + b"\n")
        return read(path, timezone=timezone)


@FUZZ
@given(lines=st.lists(ANY_LINE, max_size=12), timezone=st.sampled_from(["UTC", "Asia/Tokyo", "America/New_York"]))
@example(lines=[b"2026-13-45 10:00:00,000 ERROR x: boom"], timezone="UTC")  # was ValueError: month must be in 1..12
@example(lines=[b"0001-01-01 00:00:00,000 INFO x: y"], timezone="Asia/Tokyo")  # was OverflowError converting to UTC
@example(lines=[b"9999-12-31 23:59:59,999 INFO x: y"], timezone="America/New_York")
def test_any_log_line_is_kept_in_a_record_or_counted(lines: list[bytes], timezone: str) -> None:
    frame = read_lines(lines, timezone)
    content = b"\n".join(lines) + b"\n"
    seen = sum(1 for _ in io.TextIOWrapper(io.BytesIO(content), encoding="utf-8", errors="replace"))
    kept = sum(message.count("\n") + 1 for message in frame["message"])
    assert kept + sum(frame.attrs["unmatched_lines"].values()) == seen
    assert frame["time"].notna().all() and list(frame["time"]) == sorted(frame["time"])
    repeated_errors(records=frame, thresholds=default_thresholds().logs)
    grouped(frame)


NOT_A_RECORD = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="\r\n|"), max_size=30
).filter(lambda line: not line[:1].isdigit())


@FUZZ
@given(
    before=st.lists(NOT_A_RECORD, max_size=3),
    records=st.lists(st.tuples(record_lines(), st.lists(NOT_A_RECORD, max_size=2)), min_size=1, max_size=4),
)
def test_lines_before_the_first_record_are_counted_and_the_rest_kept_with_their_record(
    before: list[str], records: list[tuple[str, list[str]]]
) -> None:
    lines = [*before, *(line for head, rest in records for line in [head, *rest])]
    frame = read_lines([line.encode() for line in lines])
    assert sum(frame.attrs["unmatched_lines"].values()) == len(before)
    assert len(frame) == len(records)
    by_line = frame.sort_values("line")
    for (head, rest), message in zip(records, by_line["message"], strict=True):
        assert message == "\n".join([head.split(": ", 1)[1], *rest])
