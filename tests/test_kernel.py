"""The "BSNexus Lab" kernel spec, and a kernel finding the target from where the user started Jupyter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bsnexus_lab.cli import main
from bsnexus_lab.kernel import DISPLAY_NAME, KERNEL_NAME, START_DIR

RESOLVE = "from bsnexus_lab.config import resolve; t = resolve(); print(t.redis); print(t.sources['redis_url'])"


def test_kernel_install_registers_this_environment(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kernel", "install", "--prefix", str(tmp_path)]) == 0
    spec = json.loads((tmp_path / "share/jupyter/kernels" / KERNEL_NAME / "kernel.json").read_text())
    assert spec["display_name"] == DISPLAY_NAME == "BSNexus Lab"
    assert spec["argv"][0] == sys.executable  # this environment's Python
    assert "--ext=bsnexus_lab" in spec["argv"]  # %lab and the displays without a set-up cell
    assert DISPLAY_NAME in capsys.readouterr().out


def _kernel_like(cwd: Path, env: dict[str, str]) -> list[str]:
    """Run ``RESOLVE`` in a child of this process, as a Jupyter server runs a kernel in the notebook's folder."""
    clean = {k: v for k, v in os.environ.items() if k not in {START_DIR, "JPY_SESSION_NAME"}}
    done = subprocess.run(
        [sys.executable, "-c", RESOLVE], cwd=cwd, env=clean | env, capture_output=True, text=True, check=True
    )
    return done.stdout.splitlines()


@pytest.fixture
def started(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """The user starts Jupyter in ``start`` (which holds the .env) and opens a notebook in ``start/notebooks``."""
    start = tmp_path / "project"
    notebooks = start / "notebooks"
    notebooks.mkdir(parents=True)
    (start / ".env").write_text("BSNEXUS_LAB_REDIS_URL=redis://:s3cret@redis.internal:6379/0\n")
    monkeypatch.chdir(start)
    monkeypatch.setenv("BSNEXUS_LAB_STATE_DIR", str(tmp_path / "no-sandbox"))  # no sandbox profile to fall back on
    return start, notebooks


def test_a_kernel_reads_the_env_where_jupyter_started(started: tuple[Path, Path]) -> None:
    _, notebooks = started
    # a Jupyter server's kernel: JPY_SESSION_NAME set, the server (here: this test) started in the project
    redis, source = _kernel_like(notebooks, {"JPY_SESSION_NAME": str(notebooks / "00_start_here.ipynb")})
    assert redis == "redis://:***@redis.internal:6379/0" and source.startswith(".env")


def test_bsnexus_lab_lab_names_the_start_directory(started: tuple[Path, Path], tmp_path: Path) -> None:
    start, _ = started
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    redis, _ = _kernel_like(elsewhere, {START_DIR: str(start)})
    assert redis == "redis://:***@redis.internal:6379/0"


def test_the_notebooks_own_folder_wins(started: tuple[Path, Path]) -> None:
    _, notebooks = started
    (notebooks / ".env").write_text("BSNEXUS_LAB_REDIS_URL=redis://nearer:6379/1\n")
    redis, _ = _kernel_like(notebooks, {"JPY_SESSION_NAME": str(notebooks / "x.ipynb")})
    assert redis == "redis://nearer:6379/1"


def test_outside_jupyter_only_the_working_directory_counts(started: tuple[Path, Path]) -> None:
    _, notebooks = started
    child = subprocess.run(
        [sys.executable, "-c", RESOLVE],
        cwd=notebooks,
        env={k: v for k, v in os.environ.items() if k not in {START_DIR, "JPY_SESSION_NAME"}},
        capture_output=True,
        text=True,
    )
    assert child.returncode != 0 and "no target configured" in child.stderr


def test_lab_with_an_unknown_profile_says_so_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--target", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("bsnexus-lab: no profile named 'nosuch'") and err.count("\n") == 1
