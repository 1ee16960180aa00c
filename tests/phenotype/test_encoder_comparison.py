"""Comparisons of encoders run apart (a slow method on its own) merge into one table only when
they split the same photos the same way."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from medface.errors import InputError

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "phenotype_encoder_comparison.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("phenotype_encoder_comparison", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _report(method: str, *, seed: int = 0, test_photo: str = "b.png") -> dict:
    summary = {"settings": {"F/F": {"top1": {"mean": 0.8, "low": 0.7, "high": 0.9}}}}
    return {"data": "main", "n_images": 4, "seed": seed, "splits": 1, "frequent": ["x"], "rare": [],
            "prepared": {"usable": 4}, "split_images": [{"seed": seed, "train": ["a.png"], "test": [test_photo]}],
            "methods": {method: {"summary": summary}},
            "real": {"folder": "faces", "gallery": "split 1", "methods": {method: [{"photo": "p.png",
                                                                                  "verdict": "refused"}]}}}


def test_runs_on_the_same_splits_merge_into_one_table(script):
    merged = script.merge_reports([_report("gestaltnet"), _report("dlib")])
    assert list(merged["methods"]) == ["gestaltnet", "dlib"]
    assert list(merged["real"]["methods"]) == ["gestaltnet", "dlib"]
    table = script.comparison_table(merged)
    assert "| gestaltnet |" in table and "| dlib |" in table


@pytest.mark.parametrize("other", [dict(seed=1), dict(test_photo="c.png")])
def test_runs_on_different_splits_are_not_merged(script, other):
    with pytest.raises(InputError, match="same splits"):
        script.merge_reports([_report("gestaltnet"), _report("dlib", **other)])


def test_a_method_in_two_runs_is_not_merged(script):
    with pytest.raises(InputError, match="two comparisons"):
        script.merge_reports([_report("dlib"), _report("dlib")])
