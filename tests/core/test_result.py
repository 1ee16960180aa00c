"""Results serialise to JSON with provenance; plans round-trip; bad plans are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medface.data import Plan, Result, sha256_file
from medface.data.result import to_jsonable
from medface.errors import InputError
from medface.io import read_plan, write_plan


def test_result_json_round_trip_keeps_provenance(tmp_path):
    r = Result(command="x.y", summary={"n": np.int64(3), "v": np.array([1.5, 2.0])}, metrics={"bad": float("nan")})
    r.provenance.parameters = {"a": 1.0}
    r.provenance.seed = 5
    path = r.save(tmp_path / "r.json")
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert doc["summary"] == {"n": 3, "v": [1.5, 2.0]} and doc["metrics"]["bad"] is None
    back = Result.load(path)
    assert back.provenance.seed == 5 and back.provenance.parameters == {"a": 1.0}


def test_to_jsonable_handles_paths_and_nested_numpy(tmp_path):
    assert to_jsonable({"p": tmp_path, "x": [np.float32(0.5)]}) == {"p": str(tmp_path), "x": [0.5]}


def test_input_sha256_recorded_by_run(medface_plugins, tmp_path):
    from medface.data import SurfaceMesh
    from medface.io import write_mesh

    import medface

    medface_plugins.include_installed()
    tetra = SurfaceMesh(np.array([[0, 0, 0], [150, 0, 0], [0, 180, 0], [0, 0, 130.0]]),
                        np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))
    path = write_mesh(tetra, tmp_path / "t.stl")
    r = medface.run("forensic.inspect-skull", skull=path)
    rec = r.provenance.inputs[0]
    assert rec.name == "skull" and rec.sha256 == sha256_file(path) and rec.kind == "file"
    r2 = medface.run("forensic.inspect-skull", skull=tetra)
    assert r2.provenance.inputs[0].kind == "in-memory" and len(r2.provenance.inputs[0].sha256) == 64


def test_plan_round_trip_and_errors(tmp_path):
    plan = Plan("medface.surgery.plan", "1.0", {"moves": [{"segment": "maxilla", "advance_mm": 5}]})
    path = write_plan(plan, tmp_path / "plan.json")
    back = read_plan(path)
    assert back.kind == plan.kind and back.content == plan.content
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json.*not valid JSON"):
        read_plan(tmp_path / "bad.json")
    (tmp_path / "nokind.json").write_text('{"version": "1"}')
    with pytest.raises(InputError, match="lacks the key.*kind"):
        read_plan(tmp_path / "nokind.json")
