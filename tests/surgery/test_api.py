"""The surgery plugin's logic API (no CLI, no files): SurgeryPlan, SoftTissueModel set-up and
update, Simulation, and the commands as adapters that declare their outputs."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

import medface
from medface.errors import InputError, ParameterError
from medface.io import read_landmarks, read_mesh

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


@pytest.fixture(scope="module")
def landmarks():
    return {k: np.asarray(v, float) for k, v in read_landmarks(SAMPLE / "landmarks.mrk.json").to_dict().items()}


@pytest.fixture(scope="module")
def surfaces():
    return {"cranium": read_mesh(SAMPLE / "skull.ply"), "mandible": read_mesh(SAMPLE / "mandible.ply")}, \
        read_mesh(SAMPLE / "skin.ply")


@pytest.fixture(scope="module")
def genio(landmarks):
    from medface_surgery import SurgeryPlan

    return SurgeryPlan.from_preset("genio", landmarks, advance=4.0)  # an alias of genioplasty


def test_the_main_names_are_exported_lazily():
    import subprocess
    import sys

    code = ("import sys, medface_surgery as s; assert 'medface_surgery.fem' not in sys.modules; "
            "s.SoftTissueModel; assert 'medface_surgery.fem' in sys.modules; print(sorted(s.__all__))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("SurgeryPlan", "PlanResult", "SoftTissueModel", "Simulation", "SimulationResult"):
        assert name in proc.stdout


def test_surgery_plan_applies_the_preset_move_to_the_chin(genio, surfaces, landmarks):
    assert genio.procedure == "genioplasty" and genio.validate() == []
    move = np.asarray(genio.moves[0]["translation_mm"])
    assert np.linalg.norm(move) == pytest.approx(4.0)
    assert np.allclose(genio.transforms()["chin"][:3, 3], move)
    planned = genio.apply({"mandible": surfaces[0]["mandible"]})
    assert planned.landmark_segment["me"] == "chin"
    assert np.allclose(planned.landmarks["me"] - landmarks["me"], move)  # menton went with the chin
    assert np.allclose(planned.landmarks["n"], landmarks["n"])             # nasion did not
    assert planned.segments["chin"].is_watertight()


def test_surgery_plan_refuses_what_is_wrong_with_every_problem(genio):
    from medface_surgery import PlanError, SurgeryPlan

    doc = copy.deepcopy(genio.to_json_dict())
    doc["moves"][0]["segment"] = "zygoma"
    doc["osteotomies"][0]["normal"] = [0, 0, 0]
    bad = SurgeryPlan(doc)
    assert len(bad.validate()) == 2
    with pytest.raises(PlanError, match="unknown segment 'zygoma'") as err:
        bad.check()
    assert isinstance(err.value, ParameterError) and len(err.value.problems) == 2
    with pytest.raises(ParameterError, match="unknown procedure 'facelift'"):
        SurgeryPlan.from_preset("facelift", {})


def test_a_plane_edited_in_slicer_comes_back_into_the_plan(genio):
    docs = genio.slicer_planes()
    assert list(docs) == ["genioplasty"] and docs["genioplasty"]["markups"][0]["type"] == "Plane"
    edited = copy.deepcopy(docs["genioplasty"])
    node = edited["markups"][0]
    node["objectToBase"][11] -= 2.0  # the surgeon lowers the plane 2 mm (z of the translation column)
    node["medfaceBone"] = ""
    moved = genio.with_slicer_plane(edited)
    before, after = genio.osteotomies[0], moved.osteotomies[0]
    assert np.allclose(np.subtract(after["centre"], before["centre"]), [0, 0, -2.0])
    assert after["bone"] == "mandible" and after["description"] == before["description"]
    assert genio.osteotomies[0]["centre"] == before["centre"]  # the original plan is unchanged
    with pytest.raises(InputError, match="no \"Plane\" node"):
        genio.with_slicer_plane({"markups": []})


def test_soft_tissue_model_set_up_once_then_updated_gives_the_same_numbers():
    from medface_surgery import SoftTissueModel
    from medface_surgery.tissue_validation import two_sphere_case

    segments, skin, moves = two_sphere_case()
    model = SoftTissueModel(h=6.0).setup(segments, skin, fixed=["fixed"])
    at_once = SoftTissueModel(segments, skin, h=6.0, fixed=["fixed"])
    assert np.array_equal(model.update(moves), at_once.predict(moves))
    assert np.linalg.norm(model.update(moves) - skin.vertices, axis=1).max() > 1.0
    with pytest.raises(ParameterError, match="call setup"):
        SoftTissueModel(h=6.0).update(moves)
    with pytest.raises(ParameterError, match="both the bone segments and the skin"):
        SoftTissueModel(segments, None)


def test_simulation_from_a_script_returns_typed_results_and_writes_nothing(genio, surfaces, tmp_path, monkeypatch):
    from medface_surgery import Simulation, SimulationResult

    monkeypatch.chdir(tmp_path)
    stages = []
    sim = Simulation(genio, tissue="preview").run(*surfaces, stage=stages.append)
    assert isinstance(sim, SimulationResult) and list(tmp_path.iterdir()) == []
    assert stages[0].startswith("cutting") and len(stages) == 3  # no FEM stage with the preview
    assert sim.skin_fem is None and sim.preview_vs_fem is None and sim.fem_info is None
    assert list(sim.segments) == ["chin"] and sim.fixed == ["cranium (fixed)", "mandible (fixed)"]
    assert sim.max_skin_change_mm == pytest.approx(float(sim.skin_after.point_data["displacement_mm"].max()), abs=1e-5)
    assert 2.0 < sim.max_skin_change_mm <= 4.0 + 1e-6
    rows = {r["measure"]: r for r in sim.measures}
    assert abs(rows["sna"]["change"]) < 1e-9
    with pytest.raises(InputError, match="unknown tissue model 'spring'"):
        Simulation(genio, tissue="spring")


def test_simulate_command_declares_its_outputs_and_the_runner_writes_them(genio, tmp_path):
    plan_path = genio.save(tmp_path / "genio.json")
    common = dict(plan=plan_path, bone=SAMPLE / "skull.ply", mandible=SAMPLE / "mandible.ply",
                  skin=SAMPLE / "skin.ply", tissue="preview")
    result = medface.run("surgery.simulate", **common)
    assert result.outputs == {} and result.figures == {}
    assert [o.filename for o in result.declared] == ["segment_chin.stl", "mandible_rest.stl",
                                                     "plane_genioplasty.mrk.json", "landmarks_after.mrk.json",
                                                     "skin_predicted.ply", "before_after_left.png",
                                                     "before_after_frontal.png"]
    out = tmp_path / "sim"
    result = medface.run("surgery.simulate", **common, out=out, figures=False)
    assert list(result.outputs) == ["segment chin", "mandible (rest)", "osteotomy plane genioplasty",
                                    "landmarks after the plan", "predicted skin", "result", "report"]
    assert result.outputs["segment chin"] == str(out / "segment_chin.stl") and result.figures == {}
    assert read_mesh(out / "skin_predicted.ply").n_vertices == read_mesh(SAMPLE / "skin.ply").n_vertices


def test_plan_command_writes_the_plan_where_asked(tmp_path):
    path = tmp_path / "deep" / "my plan.json"
    result = medface.run("surgery.plan", landmarks=SAMPLE / "landmarks.mrk.json", procedure="lefort1",
                         advance=3.0, out=path)
    assert result.outputs == {"plan": str(path)} and sorted(p.name for p in path.parent.iterdir()) == ["my plan.json"]
    assert medface.io.read_plan(path).content["procedure"] == "le_fort_i"


def test_the_selftest_check_fails_when_the_chin_did_not_move(genio, surfaces, landmarks):
    from medface_surgery import Simulation
    from medface_surgery.selftest import _check_chin

    sim = Simulation(genio, tissue="preview").run(*surfaces)
    _check_chin(sim, landmarks, genio)
    sim.planned.landmarks["me"] = landmarks["me"].copy()  # as if menton had stayed behind
    with pytest.raises(AssertionError):
        _check_chin(sim, landmarks, genio)


def test_the_python_api_example_in_the_docs_runs(monkeypatch, landmarks):
    """docs/surgery.md, "Python API": the example runs as written (from the repository root)."""
    text = (SAMPLE.parent / "docs" / "surgery.md").read_text(encoding="utf-8")
    code = text.split("## Python API", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(SAMPLE.parent)
    namespace: dict = {}
    exec(compile(code, "docs/surgery.md", "exec"), namespace)
    assert np.linalg.norm(namespace["chin_move"]) == pytest.approx(4.0)
    sim, face = namespace["sim"], namespace["face"]
    assert face.shape == sim.skin.vertices.shape
    moved = np.linalg.norm(face - sim.skin.vertices, axis=1)
    near_chin = np.linalg.norm(sim.skin.vertices - landmarks["pog_s"], axis=1) < 10
    forehead = np.linalg.norm(sim.skin.vertices - landmarks["n"], axis=1) < 15
    assert 1.5 < moved[near_chin].mean() <= 4.0 + 1e-6  # the FEM's soft chin follows the 4 mm bony move
    assert moved[forehead].max() < 1e-6
