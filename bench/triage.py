"""Triage wall time: the runbook end to end (kernel start included) vs the same checks called from Python.

    python bench/triage.py          # prints seconds per repeat and the notebook's overhead ratio

Uses its own sandbox state directory (never the shared default) with the stuck-consumer scenario.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from table import Row, markdown

from bsnexus_lab.config import STATE_DIR_ENV

REPEATS = 3


def rows(repeats: int = REPEATS) -> list[Row]:
    state = Path(tempfile.mkdtemp(prefix="bsnexus-lab-bench-triage-", dir="/tmp"))
    state.chmod(0o755)
    os.environ[STATE_DIR_ENV] = str(state)
    from bsnexus_lab import runner, triage
    from bsnexus_lab.lab import connect
    from bsnexus_lab.sandbox import Sandbox

    sandbox = Sandbox(state)
    sandbox.up()
    try:
        sandbox.load("stuck-consumer")
        runs = state / "runs"
        params = {"window_s": 3.0, "every_s": 0.5}
        notebook, direct = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            result = runner.run("triage", target="sandbox", params=params, output_root=runs)
            notebook.append(time.perf_counter() - started)
            assert result.error is None, result.error
            started = time.perf_counter()
            with connect("sandbox") as lab:
                triage.run(lab, window_s=3.0, every_s=0.5, runs_dir=runs)
            direct.append(time.perf_counter() - started)
        nb, py = statistics.median(notebook), statistics.median(direct)
        print(f"triage runbook, end to end (kernel start included): median {nb:.2f} s  {_each(notebook)}")
        print(f"same checks called from Python:                     median {py:.2f} s  {_each(direct)}")
        window = params["window_s"]
        print(f"notebook overhead: {nb - py:.2f} s, ratio {nb / py:.2f}x (both include a {window:.0f} s lag window)")
    finally:
        sandbox.down()
    return [
        Row(
            "triage runbook end to end (kernel, report, history), stuck-consumer sandbox",
            "the same checks called from Python",
            nb / py,
            "the runbook's time / the anchor's",
            context=f"{nb:.2f} s vs {py:.2f} s, both with a {window:.0f} s lag window",
        )
    ]


def main() -> None:
    print()
    print(markdown(rows()))


def _each(times: list[float]) -> str:
    return "(" + ", ".join(f"{t:.2f}" for t in times) + ")"


if __name__ == "__main__":
    main()
