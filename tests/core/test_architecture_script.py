"""The 30-line script of docs/architecture.md runs as written, on the logic API alone."""

from __future__ import annotations

import re

import numpy as np
import pytest

from .test_architecture import REPO


def _script() -> str:
    page = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = page[page.index("## One script, no files"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_script_is_at_most_30_lines_and_opens_no_file():
    code = _script()
    assert len(code.strip().splitlines()) <= 30
    assert not re.search(r"\bopen\(|read_|write_|\.save\(|medface\.run|\bcli\b", code)


def test_the_script_registers_reconstructs_plans_and_screens(tmp_path, monkeypatch):
    pytest.importorskip("mediapipe")
    monkeypatch.chdir(tmp_path)  # nothing may be written: the folder must stay empty
    scope: dict = {}
    exec(compile(_script(), "docs/architecture.md", "exec"), scope)
    assert list(tmp_path.iterdir()) == []
    assert np.median(scope["face_error_mm"]) < 2.0  # a phantom face from its own skull: close
    assert scope["a_move_mm"] == pytest.approx(4.0, abs=0.05)  # the plan's advance, carried by the segment
    assert 0.5 < scope["sim"].max_skin_change_mm < 8.0
    assert scope["found"].screened and scope["found"].conditions
