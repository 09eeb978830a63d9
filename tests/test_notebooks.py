"""Every runbook runs against the sandbox, so none can rot; all are committed clean (notebooks/: see
test_kernel_notebooks.py, which runs them on the BSNexus Lab kernel)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import papermill
import pytest

ROOT = Path(__file__).resolve().parent.parent
QUICK = {"duration_s": 1.0, "every_s": 0.25}  # sample briefly: the suite stays fast
PARAMETERS = {"stream_backlog": QUICK, "redis_health": QUICK}
NOTEBOOKS = sorted(ROOT.glob("runbooks/*.ipynb"))  # notebooks/ run on the BSNexus Lab kernel: test_kernel_notebooks
# These profile the sandbox's service under a planted fault: executed in tests/test_profile_sandbox.py.
ON_THE_SERVICE = {"cpu_profile", "memory_growth"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_is_committed_without_outputs(path: Path) -> None:
    for cell in json.loads(path.read_text())["cells"]:
        assert not cell.get("outputs") and not cell.get("execution_count"), path


@pytest.mark.parametrize(
    "path", [p for p in NOTEBOOKS if p.stem not in ON_THE_SERVICE], ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_notebook_runs_on_the_sandbox(path: Path, stuck: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / path.name
    papermill.execute_notebook(
        str(path),
        str(out),
        parameters=PARAMETERS.get(path.stem, {}) | {"target": "sandbox"},
        kernel_name="python3",
        progress_bar=False,
    )
    executed = json.loads(out.read_text())
    # The keyspace runbook shows prefixes (the dead worker's token among them, masked), not consumers.
    expected = "worker:token:{token}" if path.stem == "redis_health" else stuck["dead_consumer"]
    assert expected in json.dumps(executed)
