"""What `forensic reconstruct` leaves for others: VTP files whose point arrays VTK reads, working
report links, the model's hashes in the provenance, upright pictures in mm, and the fit check
(warned about, refused in casework)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

import medface
from medface.data import SurfaceMesh
from medface.data.provenance import sha256_file
from medface.io import read_mesh, write_mesh
from medface.phantom import cohort

ROTATION = Rotation.from_euler("xyz", [20, -35, 110], degrees=True).as_matrix()  # far from LPS


@pytest.fixture(scope="module")
def head():
    return next(cohort(1, seed=999)).head


@pytest.fixture(scope="module")
def skull_cm(head, tmp_path_factory):
    """The held-out skull turned away from LPS and stored in centimetres."""
    v = np.concatenate([head.cranium.vertices, head.mandible.vertices])
    f = np.concatenate([head.cranium.faces, head.mandible.faces + len(head.cranium.vertices)])
    path = tmp_path_factory.mktemp("skull") / "skull_cm.ply"
    write_mesh(SurfaceMesh((v @ ROTATION.T + [40.0, -25.0, 300.0]) / 10.0, f), path)
    return path


@pytest.fixture(scope="module")
def run(small_model, skull_cm, tmp_path_factory):
    out = tmp_path_factory.mktemp("rec")
    result = medface.run("forensic.reconstruct", skull=skull_cm, scale=10.0, model=small_model, variants=2, out=out,
                         figures=True)
    return result, out


def _vtk_arrays(path) -> dict[str, np.ndarray]:
    from vtkmodules.util.numpy_support import vtk_to_numpy
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    reader = vtkXMLPolyDataReader()
    reader.SetFileName(str(path))
    reader.Update()
    data = reader.GetOutput().GetPointData()
    return {data.GetArrayName(i): vtk_to_numpy(data.GetArray(i)) for i in range(data.GetNumberOfArrays())}


@pytest.mark.parametrize("stem, arrays", [("face", {"sd_mm", "tissue_thickness_mm", "model_sd_mm"}),
                                          ("variant_00", {"sd_mm"}), ("variant_01", {"sd_mm"}),
                                          ("tissue_depth_face", {"tissue_thickness_mm", "distance_to_model_mm"})])
def test_each_mesh_has_a_vtp_whose_point_arrays_vtk_and_pyvista_read(run, stem, arrays):
    import pyvista as pv

    _, out = run
    ply = read_mesh(out / f"{stem}.ply")
    by_vtk = _vtk_arrays(out / f"{stem}.vtp")
    assert set(by_vtk) == arrays
    poly = pv.read(out / f"{stem}.vtp")
    np.testing.assert_allclose(np.asarray(poly.points), ply.vertices, atol=1e-9)  # same vertices as the PLY
    for name in arrays:
        assert len(by_vtk[name]) == ply.n_vertices and np.all(np.isfinite(by_vtk[name]))
        np.testing.assert_allclose(np.asarray(poly.point_data[name]), by_vtk[name])
        np.testing.assert_allclose(by_vtk[name], ply.point_data[name], rtol=1e-6)
    assert np.all(by_vtk.get("sd_mm", np.ones(1)) > 0)


def test_report_links_all_lead_to_files(run):
    result, out = run
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "(not found)" not in html
    for name, path in result.outputs.items():
        assert (out / path).is_file() or Path(path).is_file(), name
    assert {"variant 00", "variant 01", "variant 00 (VTK)", "face (VTK)"} <= set(result.outputs)


def test_provenance_names_the_model_files_with_their_sha256(run, small_model):
    _, out = run
    models = json.loads((out / "result.json").read_text(encoding="utf-8"))["provenance"]["models"]
    model = next(m for m in models if m["name"] == "skull-face model")
    parts = {p["file"]: p["sha256"] for p in model["parts"]}
    assert parts["model.safetensors"] == sha256_file(small_model / "model.safetensors")
    assert parts["model.json"] == sha256_file(small_model / "model.json")
    assert any(m["name"] == "template head" and len(m["sha256"]) == 64 for m in models)


def test_a_model_only_in_memory_is_recorded_by_its_arrays(run, tmp_path, monkeypatch):
    from medface.plugin.context import RunContext
    from medface_forensic import model_cache
    from medface_forensic.reconstruct import _record_models

    rec = run[0].data["reconstruction"]
    monkeypatch.setattr(model_cache, "default_model_folder", lambda: tmp_path / "not-written")
    context = RunContext("forensic.reconstruct")
    _record_models(context, None, rec.model)
    record = context.models[0]
    assert record.kind == "in-memory" and len(record.sha256) == 64 and "memory" in record.name
    rec.model.W = rec.model.W + 1e-3  # another model, another hash
    other = RunContext("forensic.reconstruct")
    _record_models(other, None, rec.model)
    rec.model.W = rec.model.W - 1e-3
    assert other.models[0].sha256 != record.sha256


def test_pictures_are_upright_in_the_frankfurt_frame_and_in_mm(run, head):
    from medface_forensic.reconstruct import picture_frame

    result, out = run
    rec = result.data["reconstruction"]
    picture = picture_frame(rec)
    marks = {k: picture(np.asarray(v, float)[None])[0] for k, v in rec.registration.landmarks.to_dict().items()}
    # LPS: +x left, +y posterior, +z superior; porions and orbitale on the horizontal
    assert marks["po_l"][0] > 40 and marks["po_r"][0] < -40
    assert marks["n"][1] < -60 and abs(marks["n"][0]) < 5  # nasion in front, on the midline
    assert marks["n"][2] > marks["me"][2] + 80  # nasion well above menton
    assert abs(marks["or_l"][2] - 0.5 * (marks["po_l"][2] + marks["po_r"][2])) < 3.0
    # skull and face drawn in one unit: the face (file units x scale) wraps the skull (mm)
    bone = picture(rec.skull.mesh.vertices)
    face = picture(rec.face.vertices * rec.scale)
    assert 0.9 < np.ptp(face[:, 2]) / np.ptp(bone[:, 2]) < 1.6
    assert face[:, 0].min() < bone[:, 0].min() and face[:, 0].max() > bone[:, 0].max()  # skin outside the bone
    # the true skin, moved into the same frame, lies where the picture puts the face
    true = picture((head.skin.vertices @ ROTATION.T + [40.0, -25.0, 300.0]))
    assert np.median(np.linalg.norm(true - face, axis=1)) < 5.0
    assert (out / "reconstruction.png").stat().st_size > 10_000 and (out / "variants.png").is_file()


class _Check(SimpleNamespace):
    pass


@pytest.fixture
def failing(run, monkeypatch):
    """The run's reconstruction with a fit check that found problems (what the logic will report)."""
    from medface_forensic import reconstruction

    rec = run[0].data["reconstruction"]
    check = _Check(problems=["the skull lies 9.1 SD from what the model has seen (latent Mahalanobis distance)",
                             "mandible residual P95 26 mm: the fit failed there"],
                   mahalanobis=9.1, region_residuals={"cranium": {"median": 1.2, "p95": 3.4}, "mandible": 26.0})
    monkeypatch.setattr(rec, "fit_check", check, raising=False)
    monkeypatch.setattr(reconstruction.Reconstruction, "run", lambda self, skull, **kw: rec)
    return rec


def test_fit_problems_are_warnings_with_metrics_and_a_table(failing, skull_cm, small_model, tmp_path):
    result = medface.run("forensic.reconstruct", skull=skull_cm, scale=10.0, model=small_model, out=tmp_path,
                         figures=False, purpose="research")
    assert not result.refused and result.exit_code == 0
    assert any("Mahalanobis" in w for w in result.warnings) and any("mandible residual" in w for w in result.warnings)
    check = result.metrics["fit_check"]
    assert check["mahalanobis"] == pytest.approx(9.1) and len(check["problems"]) == 2
    assert check["region_residuals_mm"]["cranium"] == {"median_mm": 1.2, "p95_mm": 3.4}
    rows = result.tables["fit check: residual per skull region"]
    assert {"region": "mandible", "residual_mm": 26.0} in rows
    assert (tmp_path / "face.ply").is_file()


def test_casework_refuses_a_failed_fit_and_writes_no_face(failing, skull_cm, small_model, tmp_path):
    result = medface.run("forensic.reconstruct", skull=skull_cm, scale=10.0, model=small_model, out=tmp_path,
                         figures=False, purpose="casework")
    assert result.refused and result.exit_code == 8
    assert "Mahalanobis" in result.refusal and "mandible residual" in result.refusal
    assert not list(tmp_path.glob("*.ply")) and not list(tmp_path.glob("*.vtp"))
    saved = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert saved["status"] == "refused" and saved["metrics"]["fit_check"]["mahalanobis"] == pytest.approx(9.1)


def test_casework_keeps_a_fit_without_problems(failing, skull_cm, small_model):
    failing.fit_check = _Check(problems=[], mahalanobis=1.3, region_residuals={"cranium": 0.9})
    result = medface.run("forensic.reconstruct", skull=skull_cm, scale=10.0, model=small_model, figures=False,
                         purpose="casework")
    assert not result.refused and result.metrics["fit_check"]["mahalanobis"] == pytest.approx(1.3)
    assert [o.filename for o in result.declared][:2] == ["face.ply", "face.vtp"]


def test_no_fit_check_yet_means_no_fit_metrics(run):
    result, _ = run
    rec = result.data["reconstruction"]
    if getattr(rec, "fit_check", None) is None:
        assert "fit_check" not in result.metrics and not result.refused
    else:  # the logic reports one: it is in the metrics
        assert "mahalanobis" in result.metrics["fit_check"]


def test_fit_check_rows_listed_by_region_and_its_summary_are_kept():
    """A check that lists its regions as rows (``regions``) and summarises itself (``summary()``)."""
    from medface.data import Result
    from medface_forensic.reconstruct import _apply_fit_check

    check = SimpleNamespace(problems=["only 30% of the facial skeleton meets the input"], mahalanobis=2.0,
                            regions=[{"region": "orbit", "vertices": 120, "meets_bone": 0.3, "residual_p95_mm": 7.0}],
                            summary=lambda: {"latent_tail_p": 0.2, "bone_distance_p95_mm": 7.5})
    result = Result(command="forensic.reconstruct")
    _apply_fit_check(result, check, "education")
    assert not result.refused and result.warnings == check.problems
    assert result.tables["fit check: residual per skull region"] == [
        {"region": "orbit", "vertices": 120, "meets_bone": 0.3, "residual_p95_mm": 7.0}]
    assert result.metrics["fit_check"]["latent_tail_p"] == 0.2
    assert result.metrics["fit_check"]["region_residuals_mm"]["orbit"]["meets_bone"] == 0.3
    _apply_fit_check(result, check, "casework")
    assert result.refused and "30%" in result.refusal
