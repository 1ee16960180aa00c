"""Tests that need ../shared/data say why they skip when it is absent: a reason in the summary."""

from __future__ import annotations

import os
import subprocess
import sys


def test_real_data_tests_name_the_missing_folder_in_the_summary(repo_root, tmp_path):
    missing = tmp_path / "no-such-data"
    env = {**os.environ, "MEDFACE_SHARED_DATA": str(missing)}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
                          "tests/core/test_io_meshes.py::test_real_skull_obj"],
                         cwd=repo_root, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 skipped" in run.stdout
    skipped = [line for line in run.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and str(missing) in skipped[0] and "MEDFACE_SHARED_DATA" in skipped[0]
