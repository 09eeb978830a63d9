"""The generated Airflow DAG, in Airflow's own virtual environment: loaded into a DagBag, its exit-status mapping
checked, and run against the sandbox with `airflow dags test` (no scheduler; AIRFLOW_HOME in tmp, SQLite).

`.ci/airflow-venv` (called by `make test`) creates `.airflow-venv` when missing; without it these tests skip.
"""

from __future__ import annotations

import ast
import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bsnexus_lab.cli import main
from bsnexus_lab.history import History
from bsnexus_lab.sandbox import Sandbox

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_BIN = Path(os.environ.get("AIRFLOW_VENV", REPO / ".airflow-venv")) / "bin"
needs_airflow = pytest.mark.skipif(
    not (AIRFLOW_BIN / "python").exists(), reason="no .airflow-venv: run .ci/airflow-venv (make test does)"
)
# Loads the DAG file, then calls its run_lab with commands exiting as `bsnexus-lab run` can: the state each maps to.
LOAD = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
dag = bag.dags["bsnexus_lab"]
run_lab = dag.get_task("stream_backlog__prod-eu").python_callable
mapped = {}
for name, script in {"ok": "exit 0", "finding": "exit 1", "refused": "echo 'bsnexus-lab: bad -p'; exit 2",
                     "failed": "echo 'run directory: /x (dead-kernel)'; exit 2", "busy": "exit 3",
                     "sigint": "exit 130", "sigterm": "exit 143"}.items():
    try:
        run_lab(["sh", "-c", script])
        mapped[name] = "success"
    except Exception as exc:
        mapped[name] = type(exc).__name__
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()}, "mapped": mapped,
                  "dags": {d: sorted(t.task_id for t in dag.tasks) for d, dag in bag.dags.items()}}))
"""


def write_dags(directory: Path, targets: str, *params: str) -> Path:
    os.chdir(directory)
    args = ["airflow", "dags", "--targets", targets, "--runbooks", "stream_backlog", "--output", "dags/lab.py"]
    assert main([*args, *(a for p in params for a in ("-p", p))]) == 0
    return directory / "dags" / "lab.py"


def airflow_env(home: Path) -> dict[str, str]:
    """Airflow's own environment: its home in tmp (SQLite), this checkout on the path for the lab's runs."""
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "PYTHONPATH": str(REPO),  # the runs it starts import this checkout's lab, as the tests do
    }


def test_dag_file_is_python_with_one_task_per_target_and_runbook(tmp_path: Path) -> None:
    text = write_dags(tmp_path, "prod-eu,prod-us", "duration_s=5").read_text()
    ast.parse(text)
    assert "task_id='stream_backlog__prod-eu'" in text and "task_id='stream_backlog__prod-us'" in text
    assert "'run', 'stream_backlog', '--target', 'prod-eu', '-p', 'duration_s=5']" in text  # no --fail-on new
    assert main(["airflow", "dags", "--targets", ",", "--runbooks", "stream_backlog"]) == 2
    assert main(["airflow", "dags", "--targets", "a", "--runbooks", "stream_backlog", "-p", "nope"]) == 2


@needs_airflow
def test_dag_file_loads_into_airflow_and_maps_every_exit_status(tmp_path: Path) -> None:
    path = write_dags(tmp_path, "prod-eu,prod-us")
    done = subprocess.run(
        [str(AIRFLOW_BIN / "python"), "-c", LOAD, str(path.parent)],
        capture_output=True,
        text=True,
        env=airflow_env(tmp_path),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["errors"] == {}
    assert loaded["dags"] == {"bsnexus_lab": ["fleet", "stream_backlog__prod-eu", "stream_backlog__prod-us", "verdict"]}
    fail, retry = "AirflowFailException", "AirflowException"  # fail without a retry; fail, Airflow retries
    assert loaded["mapped"] == {
        "ok": "success", "finding": fail, "refused": fail, "failed": retry,
        "busy": "AirflowSkipException", "sigint": retry, "sigterm": retry,
    }  # fmt: skip


def task_logs(output: str) -> dict[str, str]:
    """`airflow dags test` prints each task's log after its "[DAG TEST] starting task_id=..." line."""
    logs: dict[str, str] = {}
    for part in output.split("[DAG TEST] starting task_id=")[1:]:
        task, _, log = part.partition(" ")
        logs[task] = log
    return logs


@pytest.mark.long
@needs_airflow
@pytest.mark.usefixtures("one_source")
def test_a_dag_run_against_the_sandbox(sandbox: Sandbox, stuck: dict[str, Any], tmp_path: Path) -> None:
    """One `airflow dags test`: a calm target (an empty Redis database) succeeds, the one with the planted dead
    worker fails with the finding in its log, an unreachable one fails as that target's failure without a retry
    (retries are 1), the fleet page is written after them and the DAG run fails."""
    urls = sandbox.urls()
    (tmp_path / "bsnexus-lab.toml").write_text(
        f'[profiles.calm]\nredis_url = "{urls["redis_url"][:-1]}1"\ndatabase_url = "{urls["database_url"]}"\n'
        f'[profiles.stuck]\nredis_url = "{urls["redis_url"]}"\ndatabase_url = "{urls["database_url"]}"\n'
        '[profiles.gone]\nredis_url = "redis://127.0.0.1:9/0"\n'
    )
    write_dags(tmp_path, "calm,stuck,gone", "duration_s=1", "every_s=0.25", "idle_threshold_s=60")
    env = airflow_env(tmp_path)
    migrated = subprocess.run([str(AIRFLOW_BIN / "airflow"), "db", "migrate"], capture_output=True, text=True, env=env)
    assert migrated.returncode == 0, migrated.stderr[-2000:]
    done = subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), "dags", "test", "bsnexus_lab"], capture_output=True, text=True, env=env
    )
    with sqlite3.connect(tmp_path / "airflow" / "airflow.db") as db:
        states = {task: (state, tries) for task, state, tries in db.execute(
            "SELECT task_id, state, try_number FROM task_instance")}  # fmt: skip
        [run_state] = [state for (state,) in db.execute("SELECT state FROM dag_run")]
    assert states == {
        "stream_backlog__calm": ("success", 1),
        "stream_backlog__stuck": ("failed", 1),
        "stream_backlog__gone": ("failed", 1),  # not retried: the target's failure, found
        "fleet": ("success", 1),
        "verdict": ("failed", 1),
    }, done.stdout[-3000:]
    assert run_state == "failed"
    logs = task_logs(done.stdout + done.stderr)
    assert f"CRITICAL Dead consumer {stuck['dead_consumer']}" in logs["stream_backlog__stuck"]
    assert "exited 1: a finding" in logs["stream_backlog__stuck"]
    assert "CRITICAL redis is unreachable [deps.unreachable]" in logs["stream_backlog__gone"]
    assert "Verdict: OK" in logs["stream_backlog__calm"]
    index = History(tmp_path / "runs")
    assert sorted(index.latest()["target"]) == ["calm", "gone", "stuck"]
    page = (tmp_path / "runs" / "fleet.html").read_text()
    assert all(f"<td>{target}</td>" in page for target in ("calm", "gone", "stuck"))
    assert f"Dead consumer {stuck['dead_consumer']}" in page
