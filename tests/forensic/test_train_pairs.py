"""`forensic train`: a skull-face model from a pairs folder (phantom subjects written in the pairs
layout), its checks of bad input, and the trained model in `forensic reconstruct`.

One pairs folder of 8 phantom subjects is written once; the bad-input cases link 3 of its
subjects into a fresh folder and spoil one file of the first subject, so each reads little."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from medface_forensic.shape_model import load_model
from medface_forensic.train import read_pairs, write_phantom_pairs
from medface_forensic.train_command import train_command
from scipy.spatial import cKDTree

import medface
from medface.data import Landmarks, SurfaceMesh
from medface.errors import InputError, ParameterError
from medface.io import read_landmarks, read_mesh, write_landmarks, write_mesh

N = 8
SMALL = {"cranium": 800, "mandible": 300, "face": 1500}
PARTS = ("cranium", "mandible", "skin")


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    return write_phantom_pairs(tmp_path_factory.mktemp("pairs") / "lab_pairs", N, seed=3)


@pytest.fixture(scope="module")
def subject_ids(pairs) -> list[str]:
    return sorted(p.name for p in pairs.iterdir() if p.name != "template")


@pytest.fixture(scope="module")
def trained(pairs, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "lab_model"
    return out, medface.run("forensic.train", pairs=pairs, out=out)


@pytest.fixture(scope="module")
def skull_ply(pairs, subject_ids, tmp_path_factory) -> Path:
    """The cranium and mandible of a training subject in one file, as a lab would have it."""
    cr, md = (read_mesh(pairs / subject_ids[0] / f"{p}.ply") for p in ("cranium", "mandible"))
    path = tmp_path_factory.mktemp("skull") / "skull.ply"
    write_mesh(SurfaceMesh(np.concatenate([cr.vertices, md.vertices]),
                           np.concatenate([cr.faces, md.faces + len(cr.vertices)])), path)
    return path


def _subject(pairs: Path, sid: str):
    meshes = [read_mesh(pairs / sid / f"{p}.ply").vertices for p in PARTS]
    return (*meshes, json.loads((pairs / sid / "subject.json").read_text(encoding="utf-8")))


def _link(src: Path, dst: Path, ids: list[str], template: bool = True) -> Path:
    """A pairs folder of symbolic links to ``src``'s files (cheap to build and to spoil)."""
    for name in ids + (["template"] if template else []):
        (dst / name).mkdir(parents=True)
        for f in (src / name).iterdir():
            (dst / name / f.name).symlink_to(f)
    return dst


def _replace(path: Path, write) -> None:
    path.unlink()
    write(path)


# ----------------------------------------------------------------------------- the happy path
def test_trained_model_gives_a_training_subject_its_own_face(pairs, subject_ids, trained):
    out, _ = trained
    model = load_model(out)  # beside model.json/.safetensors lie result.json and the report
    assert {"result.json", "report.html", "model.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    for sid in subject_ids[:2]:
        cr, md, sk, info = _subject(pairs, sid)
        post = model.condition(cr, md, sex=info["sex"], age=info["age"], bmi=info["bmi"])
        err = float(np.linalg.norm(post.mean - sk, axis=1)[model.face_idx].mean())
        base = float(np.linalg.norm(model.baseline_face(cr) - sk, axis=1)[model.face_idx].mean())
        assert err < 1.5, (sid, err)
        assert err < 0.5 * base, (sid, err, base)


def test_metadata_and_result_describe_the_pairs(pairs, subject_ids, trained):
    out, result = trained
    meta = json.loads((out / "model.json").read_text(encoding="utf-8"))
    assert "pairs folder lab_pairs" in meta["training_data"] and f"{N} subjects" in meta["training_data"]
    assert "synthetic" in meta["training_data"]  # subject.json says so: reconstruct then warns
    assert meta["n_subjects"] == N and meta["pairs_folder"] == str(pairs.resolve())
    assert meta["template_topology"] == "medface phantom template"
    assert result.summary["subjects"] == N and 1 <= result.summary["components"] <= N - 2
    assert 0.5 < result.summary["explained_variance"] <= 1.0 and result.summary["training_time_s"] > 0
    rows = result.tables["subjects"]
    assert [r["id"] for r in rows] == subject_ids
    for r in rows:
        info = json.loads((pairs / r["id"] / "subject.json").read_text(encoding="utf-8"))
        assert (r["sex"], r["age"], r["bmi"]) == (info["sex"], info["age"], info["bmi"])
    # 5-fold cross-validation: every subject held out once, the model beats the mean face
    held = result.tables["held-out reconstruction (face subset, mm)"]
    assert sorted(r["id"] for r in held) == subject_ids and {r["fold"] for r in held} == set(range(5))
    assert result.summary["held_out_mean_mm"] < result.summary["baseline_mean_mm"]
    assert any("synthetic" in w for w in result.warnings) and any("Only 8 subjects" in w for w in result.warnings)
    saved = json.loads((out / "result.json").read_text(encoding="utf-8"))
    assert saved["command"] == "forensic.train" and saved["summary"]["subjects"] == N
    assert saved["provenance"]["parameters"]["pairs"] == pairs.name  # the folder's name, not its path


def test_reconstruct_accepts_the_trained_model(pairs, subject_ids, trained, skull_ply, tmp_path):
    out, _ = trained
    rec = tmp_path / "rec"
    medface.run("forensic.reconstruct", skull=skull_ply, model=out, variants=1, figures=False, out=rec)
    face = read_mesh(rec / "face.ply").vertices
    true = read_mesh(pairs / subject_ids[0] / "skin.ply").vertices
    assert face.shape == true.shape
    front = true[:, 1] < np.percentile(true[:, 1], 30)
    assert np.mean(cKDTree(true).query(face[front])[0]) < 3.0


def test_reconstruct_refuses_an_unknown_landmark_id(trained, skull_ply, tmp_path):
    marks = tmp_path / "marks.mrk.json"
    write_landmarks(Landmarks.from_dict({"n": [0.0, -90.0, 20.0], "xyz_unknown": [0.0, -80.0, 0.0]}), marks)
    assert "xyz_unknown" in read_landmarks(marks)  # the file itself is fine: the id is the problem
    with pytest.raises(InputError, match="xyz_unknown"):
        medface.run("forensic.reconstruct", skull=skull_ply, landmarks=marks, model=trained[0], variants=0,
                    figures=False)


def test_cli_trains_and_maps_bad_input_to_exit_codes(pairs, subject_ids, tmp_path):
    exe = Path(sys.executable).with_name("medface")
    if not exe.is_file():
        pytest.skip(f"no medface script beside {sys.executable}")
    env = dict(os.environ, MEDFACE_QUIET="1")
    small = _link(pairs, tmp_path / "three", subject_ids[:3], template=False)
    run = subprocess.run([str(exe), "forensic", "train", "--pairs", str(small), "--out", str(tmp_path / "m")],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    assert load_model(tmp_path / "m").metadata["n_subjects"] == 3
    two = _link(pairs, tmp_path / "two", subject_ids[:2])
    bad = subprocess.run([str(exe), "forensic", "train", "--pairs", str(two), "--out", str(tmp_path / "m2")],
                         capture_output=True, text=True, env=env, timeout=300, check=False)
    assert bad.returncode == 3, bad.stderr  # InputError
    assert "medface: error:" in bad.stderr and "at least 3 subject folders, found 2" in bad.stderr
    assert "Traceback" not in bad.stderr
    bad = subprocess.run([str(exe), "forensic", "train", "--pairs", str(small), "--out", str(tmp_path / "m3"),
                          "--variance", "0.2"], capture_output=True, text=True, env=env, timeout=300, check=False)
    assert bad.returncode == 2 and "variance" in bad.stderr  # ParameterError, before any training


def test_own_topology_needs_template_landmarks_and_then_trains(pairs, subject_ids, tmp_path):
    """A lab template of another topology (here: one extra cranium vertex) needs landmarks to place
    the vertex subsets; with 3 subjects the model trains without cross-validation."""
    ids = subject_ids[:3]
    lab = _link(pairs, tmp_path / "lab", ids)
    for name in ids + ["template"]:
        cr = read_mesh(pairs / name / "cranium.ply")
        _replace(lab / name / "cranium.ply",
                 lambda p, cr=cr: write_mesh(SurfaceMesh(np.vstack([cr.vertices, cr.vertices[:1] + 1.0]), cr.faces),
                                             p))
    (lab / "template" / "landmarks.mrk.json").unlink()
    with pytest.raises(InputError, match="do not share the medface template's topology.*landmarks"):
        read_pairs(lab)
    (lab / "template" / "landmarks.mrk.json").symlink_to(pairs / "template" / "landmarks.mrk.json")
    result = train_command(lab, tmp_path / "model", seed=1, sizes=SMALL)
    model = load_model(tmp_path / "model")
    assert model.n_cranium == len(read_mesh(pairs / "template" / "cranium.ply").vertices) + 1
    assert model.metadata["template_topology"] == "user template" and len(model.face_idx) == SMALL["face"]
    assert any("cannot use this model" in w for w in result.warnings)
    assert any("No cross-validation" in w for w in result.warnings)
    cr, md, sk, info = _subject(lab, ids[1])
    post = model.condition(cr, md, sex=info["sex"], age=info["age"], bmi=info["bmi"])
    err = float(np.linalg.norm(post.mean - sk, axis=1)[model.face_idx].mean())
    assert err < float(np.linalg.norm(model.baseline_face(cr) - sk, axis=1)[model.face_idx].mean())


# --------------------------------------------------------------------------------- bad input
def test_missing_folder_and_too_few_subjects(pairs, subject_ids, tmp_path):
    with pytest.raises(InputError, match="pairs folder does not exist"):
        read_pairs(tmp_path / "nowhere")
    with pytest.raises(InputError, match="does not exist"):  # the parameter binder's check
        medface.run("forensic.train", pairs=tmp_path / "nowhere", out=tmp_path / "m")
    two = _link(pairs, tmp_path / "two", subject_ids[:2])
    with pytest.raises(InputError, match="at least 3 subject folders, found 2") as err:
        read_pairs(two)
    assert err.value.path == str(two) and err.value.hint


def test_model_folder_inside_the_pairs_folder_is_refused(pairs, subject_ids, tmp_path):
    lab = _link(pairs, tmp_path / "lab", subject_ids[:3])
    with pytest.raises(ParameterError, match="inside the pairs folder"):
        medface.run("forensic.train", pairs=lab, out=lab / "model")
    assert not (lab / "model").exists()  # no empty folder left to read as a subject next time


@pytest.fixture
def spoilt(pairs, subject_ids, tmp_path):
    """(pairs folder of 3 linked subjects, the first subject's folder, its id)."""
    lab = _link(pairs, tmp_path / "lab", subject_ids[:3])
    return lab, lab / subject_ids[0], subject_ids[0]


def test_missing_file(spoilt):
    lab, first, sid = spoilt
    (first / "mandible.ply").unlink()
    with pytest.raises(InputError, match=f"subject '{sid}': missing mandible.ply") as err:
        read_pairs(lab)
    assert err.value.path == str(first) and "layout" in err.value.hint
    (first / "subject.json").unlink()
    (first / "mandible.ply").symlink_to(first / "skin.ply")  # any mesh: subject.json is checked first
    with pytest.raises(InputError, match=f"subject '{sid}': missing subject.json"):
        read_pairs(lab)


@pytest.mark.parametrize("text, message", [
    ('{"sex": "F", "age": 40', "not valid JSON"),
    ('["F", 40, 24]', "must hold an object"),
    ('{"sex": "X", "age": 40, "bmi": 24}', "'sex' must be \"F\" or \"M\", got 'X'"),
    ('{"age": 40, "bmi": 24}', "'sex' must be"),
    ('{"sex": "M", "age": "forty", "bmi": 24}', "'age' must be a number"),
    ('{"sex": "M", "bmi": 24}', "has no 'age'"),
    ('{"sex": "F", "age": 40, "bmi": 240}', "'bmi' is 240 kg/m\\^2, outside the plausible 10-80"),
    ('{"sex": "F", "age": 40, "bmi": NaN}', "'bmi' is nan"),
])
def test_bad_subject_json(spoilt, text, message):
    lab, first, sid = spoilt
    _replace(first / "subject.json", lambda p: p.write_text(text, encoding="utf-8"))
    with pytest.raises(InputError, match=message) as err:
        read_pairs(lab)
    assert sid in str(err.value) and err.value.path == str(first / "subject.json")


def test_vertex_count_mismatch_names_the_subject(spoilt):
    lab, first, sid = spoilt
    _replace(first / "skin.ply", lambda p: p.symlink_to(os.path.realpath(first / "mandible.ply")))
    with pytest.raises(InputError, match=fr"subject '{sid}': skin.ply has \d+ vertices but the template's skin "
                                         r"has \d+") as err:
        read_pairs(lab)
    assert "correspondence" in err.value.hint


def test_nan_coordinates_name_the_subject_and_file(spoilt):
    lab, first, sid = spoilt
    src = read_mesh(first / "mandible.ply")
    ascii_ply = first.parent / "mandible_ascii.ply"
    write_mesh(src, ascii_ply, binary=False)
    text = ascii_ply.read_text(encoding="ascii")
    start = text.index("end_header\n") + len("end_header\n")
    end = text.index("\n", start)
    _replace(first / "mandible.ply",
             lambda p: p.write_text(text[:start] + "nan" + text[text.index(" ", start):end] + text[end:],
                                    encoding="ascii"))
    with pytest.raises(InputError, match=f"subject '{sid}': mandible.ply: 1 vertex has NaN"):
        read_pairs(lab)


def test_skin_with_other_triangles_is_refused(spoilt):
    lab, first, sid = spoilt
    skin = read_mesh(first / "skin.ply")
    _replace(first / "skin.ply", lambda p: write_mesh(SurfaceMesh(skin.vertices, skin.faces[:, [0, 2, 1]]), p))
    with pytest.raises(InputError, match=f"subject '{sid}': skin.ply has different triangles") as err:
        read_pairs(lab)
    assert "topology" in err.value.hint


def test_meshes_in_centimetres_are_refused_with_the_size(spoilt):
    lab, first, sid = spoilt
    for part in PARTS:
        mesh = read_mesh(first / f"{part}.ply")
        _replace(first / f"{part}.ply", lambda p, m=mesh: write_mesh(m.scaled(0.1), p))
    with pytest.raises(InputError, match=fr"subject '{sid}': the skull .* measures 2\d\.\d+ along its largest "
                                         "axis; a human skull in millimetres measures 140-300 mm") as err:
        read_pairs(lab)
    assert "in cm, multiply their coordinates by 10" in err.value.hint


def test_skin_in_another_frame_is_refused(spoilt):
    lab, first, sid = spoilt
    skin = read_mesh(first / "skin.ply")
    _replace(first / "skin.ply", lambda p: write_mesh(SurfaceMesh(skin.vertices + [0.0, 0.0, 500.0], skin.faces), p))
    with pytest.raises(InputError, match=f"subject '{sid}': the skin's centre lies \\d+ mm from the skull's"):
        read_pairs(lab)


def test_write_phantom_pairs_layout(pairs, subject_ids):
    assert len(subject_ids) == N
    assert {p.name for p in (pairs / "template").iterdir()} == {"cranium.ply", "mandible.ply", "skin.ply",
                                                                "landmarks.mrk.json"}
    for sid in subject_ids:
        assert {p.name for p in (pairs / sid).iterdir()} == {"cranium.ply", "mandible.ply", "skin.ply",
                                                             "subject.json"}
    info = json.loads((pairs / subject_ids[0] / "subject.json").read_text(encoding="utf-8"))
    assert info["sex"] in ("F", "M") and info["synthetic"] is True
