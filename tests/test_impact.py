"""Bounded impact: while the lab's heaviest work runs, another client's PING and ``SELECT 1`` stay fast.

A robustness bound, not a speed goal (the figures are printed by ``bench/impact.py``): each p99 stays under ten
times the idle p99, or under BOUND_FLOOR_MS where that is larger. The floor is there because an idle loopback
p99 is a fraction of a millisecond, below what a shared 2-core machine's scheduler guarantees anyone; what the
bound catches is the lab holding a server: a whole-keyspace script, an unpaged scan or a lock pile-up stalls
every other client for hundreds of milliseconds to seconds.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bsnexus_lab.sandbox import Sandbox

sys.path.append(str(Path(__file__).resolve().parents[1] / "bench"))  # the benches import each other as scripts do
from impact import AUDIT_KEYS, BOUND_FLOOR_MS, BOUND_RATIO, measure

# Latency bounds: run alone (see `serial` in pyproject.toml).
pytestmark = pytest.mark.serial


@pytest.fixture
def service(sandbox: Sandbox, one_source: None) -> Iterator[Sandbox]:
    sandbox.load("healthy")
    sandbox.start_service()
    yield sandbox
    sandbox.stop_service()


def test_ping_and_select_1_stay_fast_while_the_lab_works(service: Sandbox, tmp_path: Path) -> None:
    figures = measure(service, tmp_path / "runs")
    idle = figures.pop("idle")
    assert set(figures) == {f"keys audit ({AUDIT_KEYS:,} keys)", "db_health run", "cpu_profile run"}
    for probe in ("ping", "select"):
        assert idle[probe]["n"] > 100, idle  # the probe really ran
        bound = max(BOUND_RATIO * idle[probe]["p99_ms"], BOUND_FLOOR_MS)
        for phase, seen in figures.items():
            assert seen[probe]["n"] > 20, (phase, seen)
            assert seen[probe]["p99_ms"] < bound, f"{probe} p99 during {phase}: {seen[probe]} vs idle {idle[probe]}"
