"""A wheel ships the runbooks and notebooks: `bsnexus-lab run --list` works from a fresh virtual environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_wheel_in_a_fresh_venv_lists_its_runbooks_and_the_users_win(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    shutil.copytree(
        REPO, source, symlinks=True, ignore=shutil.ignore_patterns(".git", ".*venv*", "runs", "build", "*.egg-info")
    )
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "BSNEXUS_LAB_RUNBOOKS"}}
    wheels = tmp_path / "wheels"
    build = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        str(source),
        "--no-deps",
        "-q",
        "-w",
        str(wheels),
    ]
    subprocess.run(build, check=True, capture_output=True, env=env)
    [wheel] = wheels.glob("bsnexus_lab-*.whl")
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    fresh = env_dir / "bin" / "python"
    site = Path(
        subprocess.check_output(
            [str(fresh), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], text=True
        ).strip()
    )
    install = [sys.executable, "-m", "pip", "--python", str(fresh), "install", "--no-deps", "-q", str(wheel)]
    subprocess.run(install, check=True, capture_output=True, env=env)
    # The dependencies come from this interpreter's site-packages (a plain path entry: its editable install of the
    # lab is not activated); the lab itself only from the wheel, installed first.
    (site / "deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    work = tmp_path / "elsewhere"
    work.mkdir()
    listed = subprocess.run(
        [str(env_dir / "bin" / "bsnexus-lab"), "run", "--list"], cwd=work, env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    assert f"stream_backlog  ({site}/bsnexus_lab/runbooks/stream_backlog.ipynb)" in listed.stdout
    assert "-p idle_threshold_s: float = 300.0" in listed.stdout
    assert (site / "bsnexus_lab" / "notebooks" / "rca_template.ipynb").is_file()

    (work / "runbooks").mkdir()  # the user's own runbooks directory takes precedence
    shutil.copy(site / "bsnexus_lab" / "runbooks" / "stream_backlog.ipynb", work / "runbooks")
    mine = subprocess.run(
        [str(env_dir / "bin" / "bsnexus-lab"), "run", "--list"], cwd=work, env=env, capture_output=True, text=True
    )
    assert f"stream_backlog  ({work}/runbooks/stream_backlog.ipynb)" in mine.stdout
