"""`surgery plan` and `surgery simulate` end to end on the sample phantom head."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import medface
from medface.errors import InputError, ParameterError
from medface.io import read_landmarks, read_mesh
from medface_surgery.plan import load_plan, save_plan


@pytest.fixture(scope="module")
def sample(repo_root_module):
    s = repo_root_module / "sample_data"
    return {"skull": s / "skull.ply", "mandible": s / "mandible.ply", "skin": s / "skin.ply",
            "landmarks": s / "landmarks.mrk.json"}


@pytest.fixture(scope="module")
def repo_root_module():
    from tests.conftest import REPO

    return REPO


@pytest.fixture(scope="module")
def genio_plan(sample, tmp_path_factory):
    path = tmp_path_factory.mktemp("plan") / "genio.json"
    medface.run("surgery.plan", landmarks=sample["landmarks"], procedure="genioplasty", advance=4.0, out=path)
    return path


def test_plan_command_writes_a_checked_plan(genio_plan):
    doc = json.loads(genio_plan.read_text(encoding="utf-8"))
    assert doc["kind"] == "medface.surgery.plan" and doc["osteotomies"][0]["bone"] == "mandible"
    move = doc["moves"][0]
    assert move["segment"] == "chin" and np.linalg.norm(move["translation_mm"]) == pytest.approx(4.0, abs=1e-6)
    assert load_plan(genio_plan).content["segments"][0]["name"] == "chin"


def test_plan_command_refuses_unknown_procedure_and_non_json(sample, tmp_path):
    with pytest.raises(ParameterError, match="unknown procedure 'facelift'"):
        medface.run("surgery.plan", landmarks=sample["landmarks"], procedure="facelift", out=tmp_path / "p.json")
    run = subprocess.run([sys.executable, "-m", "medface", "surgery", "plan", "--landmarks", str(sample["landmarks"]),
                          "--procedure", "lefort1", "--advance", "5", "--out", str(tmp_path / "plan.txt")],
                         capture_output=True, text=True, encoding="utf-8")
    assert run.returncode == 2 and ".json" in run.stderr


def test_simulate_genioplasty_moves_chin_bone_and_skin(sample, genio_plan, tmp_path):
    out = tmp_path / "sim"
    result = medface.run("surgery.simulate", plan=genio_plan, bone=sample["skull"], mandible=sample["mandible"],
                         skin=sample["skin"], out=out, figures=False)
    chin = read_mesh(out / "segment_chin.stl")
    assert len(chin.boundary_edges()) == 0
    skin_before, skin_after = read_mesh(sample["skin"]), read_mesh(out / "skin_predicted.ply")
    disp = np.linalg.norm(skin_after.vertices - skin_before.vertices, axis=1)
    marks = read_landmarks(sample["landmarks"]).to_dict()
    near_chin = np.linalg.norm(skin_before.vertices - np.asarray(marks["pog_s"] if "pog_s" in marks else marks["pog"]),
                               axis=1) < 10
    far = np.linalg.norm(skin_before.vertices - np.asarray(marks["n"]), axis=1) < 15
    assert 1.5 < disp[near_chin].mean() <= 4.0 + 1e-6  # soft chin follows the 4 mm bony advance, attenuated
    assert disp[far].max() < 1e-6                          # the forehead does not move
    rows = {r["measure"]: r for r in result.tables["measures"]}
    assert abs(rows["sna"]["change"]) < 1e-6 and abs(rows["snb"]["change"]) < 0.5
    metrics = result.metrics["preview_vs_fem"]["face"]
    assert metrics["within_2mm_pct"] > 80 and metrics["mean_mm"] < 1.0
    fem = result.metrics["fem"]
    assert fem["grade_mm"] == 15.0 and fem["mesher"] == "graded" and fem["hanging_nodes"] > 0  # the default mesh
    assert fem["gap_spacing_mm"] == 1.0  # the kerf between chin and mandible meshed in 1 mm cubes


def test_simulate_grade_zero_meshes_all_tissue_at_h_and_a_negative_grade_is_refused(sample, genio_plan, tmp_path):
    surfaces = dict(plan=genio_plan, bone=sample["skull"], mandible=sample["mandible"], skin=sample["skin"],
                    figures=False)
    with pytest.raises(ParameterError, match="grade"):
        medface.run("surgery.simulate", **surfaces, grade=-1.0, out=tmp_path / "bad")
    assert not (tmp_path / "bad" / "result.json").exists()
    fem = medface.run("surgery.simulate", **surfaces, grade=0.0, gaps=False, out=tmp_path / "uniform").metrics["fem"]
    assert fem["grade_mm"] is None and fem["mesher"] == "fitted" and fem["hanging_nodes"] == 0
    assert fem["gap_spacing_mm"] is None
    gaps = medface.run("surgery.simulate", **surfaces, grade=0.0, out=tmp_path / "gaps").metrics["fem"]
    assert gaps["mesher"] == "fitted" and gaps["gap_spacing_mm"] == 1.0 and gaps["hanging_nodes"] > 0
    assert gaps["free_dofs"] > fem["free_dofs"]


def test_plan_naming_an_unknown_segment_is_refused_on_save_and_on_simulate(sample, genio_plan, tmp_path):
    plan = load_plan(genio_plan)
    plan.content["moves"][0]["segment"] = "zygoma"
    with pytest.raises(ParameterError, match="unknown segment 'zygoma'"):
        save_plan(plan, tmp_path / "bad.json")
    doc = json.loads(genio_plan.read_text(encoding="utf-8"))
    doc["moves"][0]["segment"] = "zygoma"
    (tmp_path / "bad.json").write_text(json.dumps(doc), encoding="utf-8")  # edited by hand
    run = subprocess.run([sys.executable, "-m", "medface", "surgery", "simulate", "--plan", str(tmp_path / "bad.json"),
                          "--bone", str(sample["skull"]), "--mandible", str(sample["mandible"]),
                          "--skin", str(sample["skin"]), "--tissue", "preview"],
                         capture_output=True, text=True, encoding="utf-8")
    assert run.returncode == 2 and "unknown segment 'zygoma' (have: chin)" in run.stderr


def test_simulate_needs_surfaces(genio_plan, sample):
    with pytest.raises(InputError, match="needs a CT, or at least a bone and a skin"):
        medface.run("surgery.simulate", plan=genio_plan, mandible=sample["mandible"])


def test_simulate_from_the_sample_ct(repo_root_module, genio_plan, tmp_path):
    result = medface.run("surgery.simulate", plan=genio_plan, ct=repo_root_module / "sample_data" / "head_ct.nii.gz",
                         tissue="preview", figures=False, out=tmp_path)
    chin = read_mesh(tmp_path / "segment_chin.stl")
    assert len(chin.boundary_edges()) == 0 and len(chin.vertices) > 100
    change = {r["region"]: r for r in result.tables["soft-tissue change"]}
    assert change["lower"]["max_mm"] > 2.0 and change["upper"]["max_mm"] < 0.5
