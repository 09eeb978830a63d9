"""The keyspace audit on a real three-primary Redis Cluster of redis-server processes on loopback."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

import bsnexus_lab as bl
from bsnexus_lab.findings import Severity
from bsnexus_lab.sandbox import servers

PASSWORD = "cluster-pw"
KEYS = 3000


def _start(binary: Path, directory: Path, port: int) -> int:
    directory.mkdir()
    args = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "yes", "--dir", str(directory)]
    args += ["--pidfile", str(directory / "redis.pid"), "--logfile", str(directory / "redis.log"), "--save", ""]
    args += ["--cluster-enabled", "yes", "--cluster-config-file", str(directory / "nodes.conf")]
    args += ["--cluster-node-timeout", "2000", "--requirepass", PASSWORD, "--masterauth", PASSWORD]
    args += ["--cluster-port", str(servers.free_port())]  # port + 10000 may not exist for a high free port
    subprocess.run(args, check=True, capture_output=True)
    client = redis.Redis(host="127.0.0.1", port=port, password=PASSWORD)
    deadline = time.monotonic() + 30
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    return int((directory / "redis.pid").read_text())


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    system = [b for b in servers.redis_binaries() if b.source == "system"]
    cli = shutil.which("redis-cli")
    if not system or not cli:
        pytest.skip("needs a system redis-server and redis-cli")
    root = tmp_path_factory.mktemp("cluster")
    ports = [servers.free_port() for _ in range(3)]
    pids: list[int] = []
    try:
        for port in ports:  # recorded one by one: a node that fails to start leaves none running behind
            pids.append(_start(system[0].path, root / str(port), port))
        nodes = [f"127.0.0.1:{port}" for port in ports]
        create = ["--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"]
        subprocess.run([cli, "-a", PASSWORD, "--no-auth-warning", *create], check=True, capture_output=True)
        deadline = time.monotonic() + 60
        while redis.Redis(host="127.0.0.1", port=ports[0], password=PASSWORD).cluster("info")["cluster_state"] != "ok":
            assert time.monotonic() < deadline, "the cluster did not come up"
            time.sleep(0.2)
        writer = RedisCluster(host="127.0.0.1", port=ports[0], password=PASSWORD)
        pipe = writer.pipeline()
        for n in range(KEYS):
            pipe.set(f"cache:item:{n}", "v", ex=None if n % 10 else 600)
        pipe.set("worker:token:0123456789abcdef0123", "w", ex=86400)
        pipe.execute()
        writer.close()
        yield {"ports": ports, "pids": pids}
    finally:
        for pid in pids:
            servers.terminate(pid, servers.REDIS)


def _lab(port: int) -> bl.Lab:
    return bl.connect(redis_url=f"redis://:{PASSWORD}@127.0.0.1:{port}/0")


def test_every_primary_is_walked_and_totalled(cluster: dict[str, object]) -> None:
    ports = cluster["ports"]
    with _lab(ports[0]) as lab:
        audit = lab.keys.audit(progress=False)
        findings = lab.check(audit.frames(), area="keys")
    nodes = audit.by_node.set_index("node")
    assert set(nodes.index) == {f"127.0.0.1:{p}" for p in ports}
    assert (nodes["status"] == "ok").all() and (nodes["keys"] > 0).all()
    assert nodes["keys"].sum() == audit.totals["keys"].iloc[0] == KEYS + 1
    row = audit.by_prefix.set_index("prefix").loc["cache:item:*"]
    assert (row["keys"], row["ttl_none"], row["ttl_under_1h"]) == (KEYS, KEYS * 9 // 10, KEYS // 10)
    assert "worker:token:{token}" in set(audit.by_prefix["prefix"])
    assert "0123456789abcdef0123" not in audit.biggest.to_csv()
    assert set(audit.biggest["node"]) <= set(nodes.index)
    assert not [f for f in findings if f.severity.rank > Severity.INFO.rank]


def test_a_node_down_is_reported_not_fatal(cluster: dict[str, object]) -> None:
    ports, pids = cluster["ports"], cluster["pids"]
    servers.terminate(pids[2], servers.REDIS)
    with _lab(ports[0]) as lab:
        audit = lab.keys.audit(progress=False)
        findings = lab.check(audit.frames(), area="keys")
    nodes = audit.by_node.set_index("node")
    assert nodes.loc[f"127.0.0.1:{ports[2]}", "status"].startswith("down")
    assert audit.totals["nodes_down"].iloc[0] == 1
    assert 0 < audit.totals["keys"].iloc[0] < KEYS
    down = [f for f in findings if f.check == "keys.coverage" and f.severity == Severity.WARNING]
    assert down and f"127.0.0.1:{ports[2]}" in down[0].evidence["nodes"]
