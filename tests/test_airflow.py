"""The generated Airflow DAG loads into Airflow's DagBag, in Airflow's own virtual environment.

`.ci/airflow-venv` (called by `make test`) creates `.airflow-venv` when missing; without it this test skips.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
from pathlib import Path

import pytest

from bsnexus_lab.cli import main

REPO = Path(__file__).resolve().parent.parent
AIRFLOW_PYTHON = Path(os.environ.get("AIRFLOW_VENV", REPO / ".airflow-venv")) / "bin" / "python"
LOAD = """
import json, sys
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow 2
    from airflow.models.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"errors": {k: str(v) for k, v in bag.import_errors.items()},
                  "dags": {d: sorted(t.task_id for t in dag.tasks) for d, dag in bag.dags.items()}}))
"""


def write_dags(tmp_path: Path) -> Path:
    os.chdir(tmp_path)
    assert (
        main(["airflow", "dags", "--targets", "prod-eu,prod-us", "--runbooks", "stream_backlog", "--every", "30m"]) == 0
    )
    return tmp_path / "bsnexus_lab_dags.py"


def test_dag_file_is_python_with_one_task_per_target_and_runbook(tmp_path: Path) -> None:
    text = write_dags(tmp_path).read_text()
    ast.parse(text)
    assert "task_id='stream_backlog__prod-eu'" in text and "task_id='stream_backlog__prod-us'" in text
    assert "run stream_backlog --target prod-eu --fail-on new" in text
    assert main(["airflow", "dags", "--targets", ",", "--runbooks", "stream_backlog"]) == 2


@pytest.mark.skipif(not AIRFLOW_PYTHON.exists(), reason="no .airflow-venv: run .ci/airflow-venv (make test does)")
def test_dag_file_loads_into_airflow_dagbag(tmp_path: Path) -> None:
    path = write_dags(tmp_path)
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    env.pop("PYTHONPATH", None)  # Airflow's environment, not the lab's
    done = subprocess.run([str(AIRFLOW_PYTHON), "-c", LOAD, str(path)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert loaded["errors"] == {}
    assert loaded["dags"] == {"bsnexus_lab": ["stream_backlog__prod-eu", "stream_backlog__prod-us"]}
