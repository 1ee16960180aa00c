"""`forensic correspond`: skull and skin surfaces of any topology and pose brought into the
template's correspondence, ready for `forensic train`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import medface
from medface.data import SurfaceMesh
from medface.errors import InputError
from medface.io import read_mesh, write_mesh
from medface.phantom import cohort


def _remeshed(mesh: SurfaceMesh, keep: float) -> SurfaceMesh:
    """Another topology of the same surface (decimated), as a lab's own segmentation would give."""
    import pyvista as pv

    poly = pv.PolyData.from_regular_faces(np.asarray(mesh.vertices, float), np.asarray(mesh.faces))
    out = poly.decimate_pro(1.0 - keep, preserve_topology=True)
    return SurfaceMesh(np.asarray(out.points), np.asarray(out.faces).reshape(-1, 4)[:, 1:])


@pytest.fixture(scope="module")
def raw_pairs(tmp_path_factory):
    """Three phantom subjects as a lab would have them: remeshed, each in its own scanner pose."""
    root = tmp_path_factory.mktemp("raw")
    truth = {}
    for k, member in enumerate(cohort(3, seed=31)):
        head, s = member.head, member.subject
        rot = Rotation.from_euler("xyz", [10 * k, -20 + 15 * k, 5 * k], degrees=True).as_matrix()
        shift = np.array([20.0 * k, -40.0, 600.0 + 10 * k])

        def pose(v, rot=rot, shift=shift):
            return np.asarray(v) @ rot.T + shift

        skull = SurfaceMesh(np.concatenate([head.cranium.vertices, head.mandible.vertices]),
                            np.concatenate([head.cranium.faces, head.mandible.faces + len(head.cranium.vertices)]))
        sub = root / f"case{k}"
        sub.mkdir()
        rs = _remeshed(skull, 0.4)
        write_mesh(SurfaceMesh(pose(rs.vertices), rs.faces), sub / "skull.ply")
        rk = _remeshed(head.skin, 0.4)
        write_mesh(SurfaceMesh(pose(rk.vertices), rk.faces), sub / "skin.ply")
        (sub / "subject.json").write_text(json.dumps({"sex": s.sex, "age": float(s.age), "bmi": float(s.bmi)}),
                                          encoding="utf-8")
        truth[sub.name] = (pose(head.skin.vertices), pose(head.cranium.vertices))
    return root, truth


def test_pairs_of_any_topology_come_out_in_correspondence_and_train(raw_pairs, tmp_path):
    from medface_forensic.train import train_from_pairs

    root, truth = raw_pairs
    out = tmp_path / "pairs"
    result = medface.run("forensic.correspond", pairs=root, out=out)
    assert result.summary["corresponded"] == 3
    for name, (true_skin, true_cranium) in truth.items():
        skin = read_mesh(out / name / "skin.ply")
        cranium = read_mesh(out / name / "cranium.ply")
        assert skin.vertices.shape == true_skin.shape and cranium.vertices.shape == true_cranium.shape
        # vertex i lands near the true vertex i (the phantom knows the true correspondence); the
        # face region is what the model uses
        front = true_skin[:, 1] < np.percentile(true_skin[:, 1], 30)
        err = np.linalg.norm(skin.vertices - true_skin, axis=1)
        assert np.median(err[front]) < 3.0, (name, np.median(err[front]))
    rows = {r["id"]: r for r in result.tables["subjects"]}
    assert all(r["status"] == "ok" and r["skin_median_mm"] < 1.5 for r in rows.values())
    model = train_from_pairs(out)
    assert model.metadata["n_subjects"] == 3


def test_missing_skin_or_subject_file_is_refused_before_any_registration(raw_pairs, tmp_path):
    root, _ = raw_pairs
    broken = tmp_path / "broken"
    (broken / "a").mkdir(parents=True)
    (broken / "a" / "subject.json").write_text('{"sex": "F", "age": 40, "bmi": 24}', encoding="utf-8")
    with pytest.raises(InputError, match="missing skin.ply"):
        medface.run("forensic.correspond", pairs=broken, out=tmp_path / "o1")
    with pytest.raises(InputError, match="inside the input folder"):
        medface.run("forensic.correspond", pairs=root, out=root / "out")
