"""``make bench``: every bench, one after the other, then one table of ratios against anchors measured in the
same run. Each bench prints its own figures as it goes; the table at the end is what the README's performance
section shows, under the date and the machine it was measured on.

    .venv/bin/python bench/all.py [--only keys,streams,...]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from collections.abc import Callable

import db
import impact
import keys
import profiling
import psutil
import streams
import task_trace
import triage
from table import Row, markdown

BENCHES: dict[str, Callable[[], list[Row]]] = {
    "keys": lambda: keys.rows(keys.measure([300_000, 1_000_000], runs=3)),
    "streams": streams.rows,
    "db": db.rows,
    "trace": task_trace.rows,
    "triage": triage.rows,
    "profiling": profiling.rows,
    "impact": impact.rows,
}


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    python = platform.python_version()
    return f"{platform.machine()}, {psutil.cpu_count()} cores, {memory:.0f} GiB, Python {python}, load average {load}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",")]
    unknown = sorted(set(chosen) - set(BENCHES))
    if unknown:
        parser.error(f"unknown bench: {', '.join(unknown)}")
    started, before = time.monotonic(), machine()
    found: list[Row] = []
    for name in chosen:
        print(f"\n== {name}", flush=True)
        saved = dict(os.environ)  # a bench may point the sandbox target at its own state directory
        try:
            found += BENCHES[name]()
        finally:
            os.environ.clear()
            os.environ.update(saved)
    today = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")
    print(f"\n`make bench` on {today}, {before} at the start; {time.monotonic() - started:.0f} s in all\n")
    print(markdown(found))


if __name__ == "__main__":
    main()
