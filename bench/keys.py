"""The keyspace audit against ``redis-cli --memkeys``, side by side on the same server and data. Prints figures.

A fresh redis-server (the machine's own, with the redis-cli of the same build) on a free loopback port gets
1,000,000 mixed keys (strings, hashes, sets, streams; a third of them with TTLs), built inside Redis by
DEBUG POPULATE and a loader script so that loading takes seconds. Then, in one run:

1. a concurrent PING loop (its own process) with nothing else running: p50/p99 baseline;
2. ``lab.keys.audit()`` (full scan) with the PING loop running: keys/s, peak RSS of this process, PING p99;
   then a sampled audit capped with ``keys_per_s``, PING p99 again;
3. ``redis-cli --memkeys`` with the PING loop running: keys/s, PING p99;
4. per-type key counts and bytes of both, which must agree.

    .venv/bin/python bench/keys.py [--keys 1000000] [--batch 250] [--cap 20000]
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import redis

import bsnexus_lab as bl
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
PING_LOOP = """
import json, sys, time, redis
client = redis.Redis(port=int(sys.argv[1]), password=sys.argv[2])
stop = time.monotonic() + float(sys.argv[3])
samples = []
while time.monotonic() < stop:
    t = time.perf_counter(); client.ping(); samples.append(time.perf_counter() - t)
    time.sleep(0.002)
samples.sort()
print(json.dumps({"n": len(samples), "p50_ms": samples[len(samples) // 2] * 1e3,
                  "p99_ms": samples[int(len(samples) * 0.99)] * 1e3, "max_ms": samples[-1] * 1e3}))
"""
CLI_TYPES = {"string": "strings", "hash": "hashs", "set": "sets", "stream": "streams", "list": "lists", "zset": "zsets"}


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


def ping_loop(port: int, password: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", PING_LOOP, str(port), password, str(seconds)], stdout=subprocess.PIPE, text=True
    )


def ping_result(process: subprocess.Popen[str]) -> dict[str, float]:
    out, _ = process.communicate()
    return json.loads(out)


def memkeys(cli: str, port: int, password: str) -> tuple[float, dict[str, tuple[int, int]], int]:
    """redis-cli --memkeys: seconds, per-type (keys, bytes), keys sampled."""
    started = time.monotonic()
    out = subprocess.run(
        [cli, "-p", str(port), "-a", password, "--no-auth-warning", "--memkeys"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    seconds = time.monotonic() - started
    per_type = {t: (int(n), int(b)) for n, t, b in re.findall(r"^(\d+) (\w+) with (\d+) bytes", out, re.M)}
    sampled = int(re.search(r"Sampled (\d+) keys", out).group(1))
    return seconds, per_type, sampled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--cap", type=int, default=20_000, help="keys/s of the capped run (5 s of it)")
    parser.add_argument("--batch", type=int, default=None, help="SCAN COUNT per batch (default: the threshold)")
    args = parser.parse_args()
    system = [b for b in servers.redis_binaries() if b.source == "system"]
    cli = shutil.which("redis-cli")
    if not system or not cli:
        sys.exit("needs the machine's redis-server and redis-cli")
    password, port = secrets.token_hex(8), servers.free_port()
    with tempfile.TemporaryDirectory(prefix="bench-keys-") as root:
        directory = Path(root)
        args_server = [str(system[0].path), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes"]
        args_server += ["--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log")]
        args_server += ["--dir", root, "--save", "", "--requirepass", password, "--enable-debug-command", "yes"]
        subprocess.run(args_server, check=True, capture_output=True)
        time.sleep(0.5)
        pid = int((directory / "redis.pid").read_text())
        try:
            client = redis.Redis(port=port, password=password)
            started = time.monotonic()
            planted = load(client, args.keys)
            print(f"{system[0].version()}")
            print(f"loaded {client.dbsize():,} keys in {time.monotonic() - started:.1f} s: {planted}")

            baseline = ping_result(ping_loop(port, password, 3.0))
            thresholds = {"keys.scan_batch": args.batch} if args.batch else None
            with bl.connect(redis_url=f"redis://:{password}@127.0.0.1:{port}/0", thresholds=thresholds) as lab:
                rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                pinger = ping_loop(port, password, 8.0)
                audit = lab.keys.audit(progress=False)
                lab_ping = ping_result(pinger)
                rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                round_trips = lab.counters.round_trips
                pinger = ping_loop(port, password, 6.0)
                capped = lab.keys.audit(sample=args.cap * 5, keys_per_s=args.cap, progress=False)
                capped_ping = ping_result(pinger)
            totals = audit.totals.iloc[0]
            script = client.info("commandstats").get("cmdstat_eval_ro", {})
            pinger = ping_loop(port, password, 8.0)
            cli_s, cli_types, cli_keys = memkeys(cli, port, password)
            cli_ping = ping_result(pinger)
        finally:
            servers.terminate(pid, servers.REDIS)

    lab_rate, cli_rate = totals["scanned"] / totals["seconds"], cli_keys / cli_s
    print(
        f"\nlab audit:        {int(totals['keys']):,} keys in {totals['seconds']:.1f} s = {lab_rate:,.0f} keys/s "
        f"({totals['modes']}, {round_trips:,} round trips, batch {args.batch or 'default'})"
    )
    print(f"redis-cli memkeys: {cli_keys:,} keys in {cli_s:.1f} s = {cli_rate:,.0f} keys/s")
    print(f"ratio:            {lab_rate / cli_rate:.1f}x (goal >= 5x)")
    print(
        f"script per batch: {script.get('usec_per_call', 0) / 1000:.1f} ms mean over {script.get('calls', 0):,} batches"
    )
    print(f"lab peak RSS:     {rss_peak / 1024:.0f} MB (before the audit {rss_before / 1024:.0f} MB; goal < 300 MB)")
    print(
        f"PING p50/p99/max: idle {baseline['p50_ms']:.2f}/{baseline['p99_ms']:.2f}/{baseline['max_ms']:.1f} ms, "
        f"during lab audit {lab_ping['p50_ms']:.2f}/{lab_ping['p99_ms']:.2f}/{lab_ping['max_ms']:.1f} ms, "
        f"during redis-cli {cli_ping['p50_ms']:.2f}/{cli_ping['p99_ms']:.2f}/{cli_ping['max_ms']:.1f} ms"
    )
    print(
        f"PING during the lab capped at {args.cap:,} keys/s ({capped.totals['keys_per_s'].iloc[0]:,.0f} reached): "
        f"{capped_ping['p50_ms']:.2f}/{capped_ping['p99_ms']:.2f}/{capped_ping['max_ms']:.1f} ms"
    )
    print("\nper type      lab keys   cli keys      lab bytes      cli bytes  agree")
    lab_types = audit.by_type.set_index("type")
    for kind, cli_name in CLI_TYPES.items():
        lab_keys = int(lab_types["keys"].get(kind, 0))
        lab_bytes = int(lab_types["memory_bytes"].get(kind, 0))
        keys, size = cli_types.get(cli_name, (0, 0))
        agree = "yes" if (lab_keys, lab_bytes) == (keys, size) else "NO"
        print(f"{kind:10} {lab_keys:11,} {keys:10,} {lab_bytes:14,} {size:14,}  {agree}")  # fmt: skip


if __name__ == "__main__":
    main()
