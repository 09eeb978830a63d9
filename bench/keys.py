"""The keyspace audit against ``redis-cli --memkeys``, side by side on the same server and data. Prints figures.

A fresh redis-server (the machine's own, with the redis-cli of the same build) on a free loopback port gets
mixed keys (strings, hashes, sets, streams; a third of them with TTLs), built inside Redis by DEBUG POPULATE
and a loader script so that loading takes seconds. Per size (300,000 and 1,000,000 keys by default), three
rounds, the two tools taking turns to go first (interleaved: a neighbour's load hits both alike):

- ``lab.keys.audit()`` (a full scan, a fresh Lab, the whole call timed) and ``redis-cli --memkeys``;
- for each, with a PING loop running in its own process: the other client's PING p50/p99;
- for each, Redis's main-thread CPU per key (``used_cpu_user_main_thread`` + ``used_cpu_sys_main_thread``
  deltas in INFO, which include parsing and replies);
- for the lab, how long each batch held Redis's thread: the mean from ``INFO commandstats`` (every script
  call, exact) and the longest from ``SLOWLOG`` (every call over 100 us, timed by Redis around the script;
  the inner TYPE/PTTL/MEMORY calls are filtered out by name). Both are wall time inside Redis, so a batch
  during which the kernel took the CPU away from Redis counts that wait too: the CPU mean per batch
  (the INFO delta over the batches) and the server's involuntary context switches (``/proc/PID/status``)
  are printed beside them to tell the two apart. For redis-cli, SLOWLOG's longest single command;
- per-type key counts and bytes of both tools, which must agree.

The ratio is redis-cli's time over the lab's per round; the median of the rounds is the figure.
:func:`measure` returns the results and :func:`rows` the rows of ``make bench``'s table.

    .venv/bin/python bench/keys.py [--sizes 300000,1000000] [--runs 3] [--batch N]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from table import Row, markdown

import bsnexus_lab as bl
from bsnexus_lab.areas.keys.thresholds import KeysThresholds
from bsnexus_lab.sandbox import servers

# Builds ARGV[2] keys of kind ARGV[1] numbered from ARGV[3]; every third one expires (ARGV[4] seconds).
LOADER = """
local kind, count, start, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for i = start, start + count - 1 do
  local key
  if kind == 'hash' then
    key = 'project:' .. i
    redis.call('HSET', key, 'name', 'project ' .. i, 'status', 'active', 'repo', '/srv/repo/' .. i, 'tasks', i % 50)
  elseif kind == 'set' then
    key = 'tags:' .. i
    redis.call('SADD', key, 'python', 'git', 'linux', 'tag' .. (i % 100), 'team' .. (i % 7))
  elseif kind == 'stream' then
    key = 'events:' .. i
    for n = 1, 3 do redis.call('XADD', key, '*', 'event', 'task_moved', 'n', n) end
  else
    key = 'task:' .. i .. ':recovery_count'
    redis.call('SET', key, i % 3)
  end
  if i % 3 == 0 then redis.call('EXPIRE', key, ttl) end
end
return count
"""
# Says "ready" after its first PING, then PINGs every 2 ms until a line arrives on stdin; prints the summary.
PING_LOOP = """
import json, select, sys, time, redis
client = redis.Redis(port=int(sys.argv[1]), password=sys.argv[2])
client.ping()
print("ready", flush=True)
samples = []
while not select.select([sys.stdin], [], [], 0)[0]:
    t = time.perf_counter(); client.ping(); samples.append(time.perf_counter() - t)
    time.sleep(0.002)
samples.sort()
print(json.dumps({"n": len(samples), "p50_ms": samples[len(samples) // 2] * 1e3,
                  "p99_ms": samples[int(len(samples) * 0.99)] * 1e3, "max_ms": samples[-1] * 1e3}))
"""
# The least any per-key audit asks of Redis: SCAN, then TYPE, PTTL and MEMORY USAGE of each key, nothing kept.
FLOOR = """
local reply = redis.call('SCAN', ARGV[1], 'COUNT', ARGV[2])
for _, key in ipairs(reply[2]) do
  redis.call('TYPE', key); redis.call('PTTL', key); redis.call('MEMORY', 'USAGE', key)
end
return {reply[1], #reply[2]}
"""
CLI_TYPES = {"string": "strings", "hash": "hashs", "set": "sets", "stream": "streams", "list": "lists", "zset": "zsets"}
SLOWLOG_US = 100  # every batch script over this is logged with its duration; single commands never reach it
SCRIPT_COMMANDS = {b"eval_ro", b"eval"}
CLI_COMMANDS = {b"scan", b"type", b"memory"}


@dataclass
class Run:
    """One tool's pass over the keyspace."""

    tool: str
    seconds: float
    keys: int
    cpu_us_per_key: float  # Redis's main thread
    client_us_per_key: float  # the tool's own process
    ping: dict[str, float]
    per_type: dict[str, tuple[int, int]]  # type -> (keys, bytes)
    batches: int = 0
    hold_mean_ms: float = 0.0  # commandstats: wall time inside Redis per script call
    hold_cpu_ms: float = 0.0  # INFO CPU delta over the batches
    hold_max_ms: float = 0.0  # SLOWLOG: the longest script call (redis-cli: the longest single command)
    holds_over_1ms: int = 0
    preempted: int = 0  # the server's involuntary context switches during the run


@dataclass
class Size:
    keys: int
    idle_ping: dict[str, float]
    rounds: list[tuple[Run, Run]] = field(default_factory=list)  # (lab, redis-cli)
    floor_us: float = 0.0  # Redis CPU per key of the bare look-ups (FLOOR)

    def ceiling(self) -> float:
        """The most any per-key audit could beat redis-cli by here: redis-cli's time over Redis's bare look-ups."""
        return self.median(1, "seconds") / (self.keys * self.floor_us / 1e6) if self.floor_us else 0.0

    def ratios(self) -> list[float]:
        return [cli.seconds / lab.seconds for lab, cli in self.rounds]

    def median(self, tool: int, attribute: str) -> float:
        return statistics.median(getattr(pair[tool], attribute) for pair in self.rounds)

    def ping(self, tool: int, key: str) -> float:
        return statistics.median(pair[tool].ping[key] for pair in self.rounds)

    def agree(self) -> bool:
        return all(lab.per_type == cli.per_type and lab.keys == cli.keys for lab, cli in self.rounds)


def load(client: redis.Redis, keys: int) -> dict[str, int]:
    """60 % strings (40 % of them by DEBUG POPULATE), 15 % hashes, 10 % sets, 5 % streams, 10 % expiring strings."""
    plan = {"string": keys * 40 // 100, "hash": keys * 15 // 100, "set": keys * 10 // 100, "stream": keys * 5 // 100}
    plan["counter"] = keys - sum(plan.values())
    client.execute_command("DEBUG", "POPULATE", plan["string"], "cache:item")
    chunk = 10_000
    for kind in ("hash", "set", "stream", "counter"):
        for start in range(0, plan[kind], chunk):
            client.eval(LOADER, 0, kind, min(chunk, plan[kind] - start), start, 7 * 86400)
    return {
        "string": plan["string"] + plan["counter"],
        "hash": plan["hash"],
        "set": plan["set"],
        "stream": plan["stream"],
    }


class Server:
    """The bench's own redis-server: its CPU, its preemptions, its slow log."""

    def __init__(self, port: int, password: str, pid: int) -> None:
        self.port, self.password, self.pid = port, password, pid
        self.client = redis.Redis(port=port, password=password)

    def cpu_s(self) -> float:
        info = self.client.info("cpu")
        return info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"]

    def preemptions(self) -> int:
        """Involuntary context switches of the server's main thread (the kernel ran something else)."""
        status = Path(f"/proc/{self.pid}/task/{self.pid}/status").read_text()
        return int(re.search(r"nonvoluntary_ctxt_switches:\s+(\d+)", status).group(1))

    def ping_loop(self) -> subprocess.Popen[str]:
        """Another client's PING every 2 ms in its own process, until it reads a line."""
        command = [sys.executable, "-c", PING_LOOP, str(self.port), self.password]
        return subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def start(self) -> tuple[float, int, subprocess.Popen[str]]:
        self.client.config_resetstat()
        self.client.slowlog_reset()
        pinger = self.ping_loop()
        if pinger.stdout is None or pinger.stdout.readline() != "ready\n":
            sys.exit("the PING loop did not start")
        return self.cpu_s(), self.preemptions(), pinger

    def finish(self, started: tuple[float, int, subprocess.Popen[str]], run: Run, scripted: bool) -> Run:
        cpu, preempted, pinger = started
        cpu = self.cpu_s() - cpu
        run.preempted = self.preemptions() - preempted
        run.ping = json.loads(pinger.communicate("stop\n")[0])
        run.cpu_us_per_key = cpu / run.keys * 1e6 if run.keys else 0.0
        entries = self.client.slowlog_get(1_000_000)
        if scripted:
            stats = self.client.info("commandstats")
            calls = [stats[f"cmdstat_{c.decode()}"] for c in SCRIPT_COMMANDS if f"cmdstat_{c.decode()}" in stats]
            run.batches = sum(c["calls"] for c in calls)
            run.hold_mean_ms = sum(c["usec"] for c in calls) / run.batches / 1e3 if run.batches else 0.0
            run.hold_cpu_ms = cpu / run.batches * 1e3 if run.batches else 0.0
        sent = SCRIPT_COMMANDS if scripted else CLI_COMMANDS
        entries = [e for e in entries if e["command"].split(b" ", 1)[0].lower() in sent]
        durations = [e["duration"] / 1e3 for e in entries]
        run.hold_max_ms = max(durations, default=0.0)
        run.holds_over_1ms = sum(d >= 1.0 for d in durations)
        return run


def cpu_s(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def floor_us(server: Server, batch: int) -> float:
    """Redis main-thread CPU per key of :data:`FLOOR` over the whole keyspace: no tool that looks each key up
    (TYPE, PTTL, MEMORY USAGE) can cost Redis less, so keys x this bounds how fast any audit can be."""
    sha = server.client.script_load(FLOOR)
    before, cursor, keys = server.cpu_s(), b"0", 0
    while True:
        cursor, seen = server.client.evalsha(sha, 0, cursor, batch)
        keys += seen
        if cursor in (b"0", 0):
            return (server.cpu_s() - before) / keys * 1e6 if keys else 0.0


def lab_run(server: Server, batch: int | None) -> Run:
    thresholds = {"keys.scan_batch": batch, "keys.batch_hold_ms": 0} if batch else None  # --batch: fixed size
    url = f"redis://:{server.password}@127.0.0.1:{server.port}/0"
    with bl.connect(redis_url=url, thresholds=thresholds) as lab:
        started = server.start()
        began, client = time.perf_counter(), cpu_s(resource.RUSAGE_SELF)
        audit = lab.keys.audit(progress=False)
        seconds, client = time.perf_counter() - began, cpu_s(resource.RUSAGE_SELF) - client
    types = audit.by_type.set_index("type")
    per_type = {t: (int(types.loc[t, "keys"]), int(types.loc[t, "memory_bytes"])) for t in types.index}
    keys = int(audit.totals["scanned"].iloc[0])
    run = Run("lab", seconds, keys, 0.0, client / keys * 1e6 if keys else 0.0, {}, per_type)
    return server.finish(started, run, scripted=True)


def cli_run(server: Server, cli: str) -> Run:
    started = server.start()
    began, client = time.perf_counter(), cpu_s(resource.RUSAGE_CHILDREN)  # the PING loop is reaped later
    out = subprocess.run(
        [cli, "-p", str(server.port), "-a", server.password, "--no-auth-warning", "--memkeys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seconds, client = time.perf_counter() - began, cpu_s(resource.RUSAGE_CHILDREN) - client
    per_type = {t: (int(n), int(b)) for n, t, b in re.findall(r"^(\d+) (\w+) with (\d+) bytes", out, re.M)}
    per_type = {kind: per_type[name] for kind, name in CLI_TYPES.items() if per_type.get(name, (0, 0))[0]}
    sampled = int(re.search(r"Sampled (\d+) keys", out).group(1))
    run = Run("redis-cli", seconds, sampled, 0.0, client / sampled * 1e6 if sampled else 0.0, {}, per_type)
    return server.finish(started, run, scripted=False)


def measure(sizes: list[int], runs: int = 3, batch: int | None = None, report: Any = print) -> list[Size]:
    """Every size on a fresh keyspace of one fresh server, ``runs`` interleaved rounds each."""
    system = [b for b in servers.redis_binaries() if b.source == "system"]
    cli = shutil.which("redis-cli")
    if not system or not cli:
        sys.exit("needs the machine's redis-server and redis-cli")
    password, port = secrets.token_hex(8), servers.free_port()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as root:
        directory = Path(root)
        command = [str(system[0].path), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes"]
        command += ["--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log")]
        command += ["--dir", root, "--save", "", "--requirepass", password, "--enable-debug-command", "yes"]
        command += ["--slowlog-log-slower-than", str(SLOWLOG_US), "--slowlog-max-len", "1000000"]
        subprocess.run(command, check=True, capture_output=True)
        time.sleep(0.5)
        server = Server(port, password, int((directory / "redis.pid").read_text()))
        try:
            report(system[0].version())
            for keys in sizes:
                server.client.flushall()
                started = time.monotonic()
                planted = load(server.client, keys)
                report(f"loaded {server.client.dbsize():,} keys in {time.monotonic() - started:.1f} s: {planted}")
                started_ping = server.start()[2]
                time.sleep(2.0)
                size = Size(keys, json.loads(started_ping.communicate("stop\n")[0]))
                for n in range(runs):
                    first_lab = n % 2 == 0
                    one = lab_run(server, batch) if first_lab else cli_run(server, cli)
                    other = cli_run(server, cli) if first_lab else lab_run(server, batch)
                    lab, cli_ = (one, other) if first_lab else (other, one)
                    size.rounds.append((lab, cli_))
                    report(f"  round {n + 1} ({'lab' if first_lab else 'redis-cli'} first): {describe(lab, cli_)}")
                size.floor_us = floor_us(server, batch or KeysThresholds().scan_batch)
                report(f"  bare look-ups (SCAN, TYPE, PTTL, MEMORY USAGE): Redis CPU {size.floor_us:.2f} us a key")
                results.append(size)
        finally:
            servers.terminate(server.pid, servers.REDIS)
    return results


def describe(lab: Run, cli: Run) -> str:
    return (
        f"lab {lab.seconds:.2f} s, redis-cli {cli.seconds:.2f} s = {cli.seconds / lab.seconds:.1f}x; "
        f"Redis CPU/key {lab.cpu_us_per_key:.1f} vs {cli.cpu_us_per_key:.1f} us, client CPU/key "
        f"{lab.client_us_per_key:.1f} vs {cli.client_us_per_key:.1f} us; batch hold mean {lab.hold_mean_ms:.2f} ms "
        f"(CPU {lab.hold_cpu_ms:.2f}), max {lab.hold_max_ms:.2f} ms, {lab.holds_over_1ms} of {lab.batches:,} >= 1 ms, "
        f"{lab.preempted:,} preemptions; PING p99 {lab.ping['p99_ms']:.2f} vs {cli.ping['p99_ms']:.2f} ms"
    )


def rows(results: list[Size]) -> list[Row]:
    """One row per size: the median round's ratio, absolute figures as context."""
    table = []
    for size in results:
        ratio = statistics.median(size.ratios())
        longest = max(lab.hold_max_ms for lab, _ in size.rounds)
        cpu_lab, cpu_cli = size.median(0, "cpu_us_per_key"), size.median(1, "cpu_us_per_key")
        table.append(
            Row(
                f"keys audit, {size.keys:,} keys",
                "redis-cli --memkeys",
                ratio,
                "redis-cli's time / the lab's",
                ">= 5x; every batch < 1 ms; Redis CPU/key <= redis-cli's; same counts and bytes",
                ratio >= 5 and longest < 1 and cpu_lab <= cpu_cli and size.agree(),
                f"{size.median(0, 'seconds'):.2f} s vs {size.median(1, 'seconds'):.2f} s; Redis CPU/key "
                f"{cpu_lab:.1f} vs {cpu_cli:.1f} us; batch hold mean {size.median(0, 'hold_mean_ms'):.2f} ms, "
                f"longest {longest:.2f} ms; PING p99 {size.ping(0, 'p99_ms'):.2f} vs {size.ping(1, 'p99_ms'):.2f} ms; "
                f"bare look-ups alone {size.floor_us:.1f} us/key in Redis: {size.ceiling():.1f}x at most",
            )
        )
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="300000,1000000", help="comma-separated key counts")
    parser.add_argument("--runs", type=int, default=3, help="interleaved rounds per size (the median is kept)")
    parser.add_argument("--batch", type=int, default=None, help="a fixed SCAN COUNT per batch (default: sized by time)")
    args = parser.parse_args()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results = measure([int(n) for n in args.sizes.split(",")], args.runs, args.batch)
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    batch = args.batch or "sized by time"
    print(f"\nmedian of {args.runs} interleaved rounds (batch {batch}); goal >= 5x, holds < 1 ms")
    for size in results:
        ratios = ", ".join(f"{r:.1f}x" for r in size.ratios())
        print(
            f"\n{size.keys:,} keys: lab {size.median(0, 'seconds'):.2f} s, "
            f"redis-cli {size.median(1, 'seconds'):.2f} s: "
            f"{statistics.median(size.ratios()):.1f}x (rounds {ratios})"
        )
        print(
            f"  Redis main-thread CPU per key: lab {size.median(0, 'cpu_us_per_key'):.2f} us, "
            f"redis-cli {size.median(1, 'cpu_us_per_key'):.2f} us; the tool's own process: lab "
            f"{size.median(0, 'client_us_per_key'):.2f} us, redis-cli {size.median(1, 'client_us_per_key'):.2f} us"
        )
        print(
            f"  lab batch hold: mean {size.median(0, 'hold_mean_ms'):.2f} ms wall (commandstats), "
            f"{size.median(0, 'hold_cpu_ms'):.2f} ms CPU; max {size.median(0, 'hold_max_ms'):.2f} ms (SLOWLOG), "
            f"{size.median(0, 'holds_over_1ms'):.0f} of {size.median(0, 'batches'):,.0f} batches >= 1 ms; "
            f"server preempted {size.median(0, 'preempted'):,.0f} times (redis-cli's run: "
            f"{size.median(1, 'preempted'):,.0f}); redis-cli's longest command {size.median(1, 'hold_max_ms'):.2f} ms"
        )
        idle = size.idle_ping
        print(
            f"  other client's PING p50/p99: idle {idle['p50_ms']:.2f}/{idle['p99_ms']:.2f} ms, during the lab "
            f"{size.ping(0, 'p50_ms'):.2f}/{size.ping(0, 'p99_ms'):.2f} ms, during redis-cli "
            f"{size.ping(1, 'p50_ms'):.2f}/{size.ping(1, 'p99_ms'):.2f} ms"
        )
        lab, cli = size.rounds[-1]
        print("  per type      lab keys   cli keys      lab bytes      cli bytes  agree")
        for kind in sorted(set(lab.per_type) | set(cli.per_type)):
            (lk, lb), (ck, cb) = lab.per_type.get(kind, (0, 0)), cli.per_type.get(kind, (0, 0))
            agree = "yes" if (lk, lb) == (ck, cb) else "NO"
            print(f"  {kind:10} {lk:11,} {ck:10,} {lb:14,} {cb:14,}  {agree}")
        print(f"  every round: counts and bytes {'equal' if size.agree() else 'DIFFER'}")
        print(
            f"  Redis CPU of the bare look-ups alone: {size.floor_us:.2f} us a key, "
            f"{size.keys * size.floor_us / 1e6:.2f} s for {size.keys:,} keys: no per-key audit beats redis-cli's "
            f"{size.median(1, 'seconds'):.2f} s by more than {size.ceiling():.1f}x here"
        )
    print(f"\nbench process peak RSS {rss_peak / 1024:.0f} MB (before {rss_before / 1024:.0f} MB)")
    print()
    print(markdown(rows(results)))


if __name__ == "__main__":
    main()
