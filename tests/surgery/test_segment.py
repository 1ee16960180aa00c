"""`surgery segment`: CT to skin, skull and mandible meshes (phantom sample CT and headsq)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from medface.anatomy.ct_segmentation import calibrate_hu, segment_ct
from medface_surgery.segment_command import segment

from medface import io
from medface.data import Volume
from medface.errors import InputError, ParameterError


@pytest.fixture(scope="module")
def phantom_ct() -> Volume:
    from pathlib import Path

    return io.read_volume(Path(__file__).resolve().parents[2] / "sample_data" / "head_ct.nii.gz")


@pytest.fixture(scope="module")
def phantom_seg(phantom_ct):
    return segment_ct(phantom_ct, target_faces=40_000)


def _distances(points: np.ndarray, reference) -> np.ndarray:
    """Unsigned distance (mm) from each point to the reference surface (SurfaceMesh or PolyData)."""
    import pyvista as pv

    if hasattr(reference, "to_pyvista"):
        reference = reference.to_pyvista()
    poly = pv.PolyData(np.ascontiguousarray(points))
    return np.abs(np.asarray(poly.compute_implicit_distance(reference)["implicit_distance"]))


def test_meshes_are_closed_and_bone_is_inside_skin(phantom_seg):
    import pyvista as pv

    assert set(phantom_seg.meshes) == {"skin", "skull", "mandible"}
    for name, mesh in phantom_seg.meshes.items():
        assert mesh.is_watertight(), name
        assert mesh.signed_volume() > 0, name
    skin = phantom_seg.meshes["skin"].to_pyvista()
    for name in ("skull", "mandible"):
        pts = pv.PolyData(np.ascontiguousarray(phantom_seg.meshes[name].vertices))
        signed = np.asarray(pts.compute_implicit_distance(skin)["implicit_distance"])
        assert (signed < 0).mean() > 0.999, name  # negative = inside the skin


@pytest.fixture(scope="module")
def sources(phantom_ct):
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2] / "sample_data"
    meshes = {n: io.read_mesh(folder / f"{n}.ply").to_pyvista() for n in ("skin", "skull", "mandible")}
    meshes["bone"] = meshes["skull"].merge(meshes["mandible"])
    return meshes


@pytest.mark.parametrize("name,source", [("skin", "skin"), ("skull", "bone"), ("mandible", "bone")],
                         ids=["skin", "skull", "mandible"])
def test_surfaces_match_the_phantom_sources(phantom_seg, sources, name, source):
    """Within about one voxel (2 mm) of the meshes the CT was made from (bone against skull +
    mandible: where the split runs is checked below)."""
    d = _distances(phantom_seg.meshes[name].vertices, sources[source])
    assert np.median(d) < 1.0, (name, np.median(d))
    assert np.percentile(d, 95) < 2.0, (name, np.percentile(d, 95))


def test_mandible_is_separated_on_the_phantom(phantom_seg, sources):
    assert phantom_seg.mandible_method != "not separated"
    assert 40 < phantom_seg.volumes_ml["mandible"] < 120
    assert not any("mandible could not" in w for w in phantom_seg.warnings)
    # vertices nearer the other source bone than their own: the lower teeth and condyle tips stay
    # with the skull (about 5 %), nothing of the skull goes to the mandible
    for name, own, other, limit in (("skull", "skull", "mandible", 0.08), ("mandible", "mandible", "skull", 0.02)):
        v = phantom_seg.meshes[name].vertices
        wrong = _distances(v, sources[other]) < _distances(v, sources[own]) - 0.5
        assert wrong.mean() < limit, (name, wrong.mean())


def test_scanner_units_give_the_same_meshes(phantom_ct, phantom_seg):
    raw = (phantom_ct.array.astype(np.int32) + 1024).clip(0).astype(np.uint16)
    seg = segment_ct(phantom_ct.with_array(raw, units=""), target_faces=40_000)
    assert seg.calibration.method == "histogram two-point"
    assert abs(seg.calibration.slope - 1.0) < 0.02 and abs(seg.calibration.intercept + 1024) < 25
    assert any("not in HU" in w for w in seg.warnings)
    for name in ("skin", "skull"):
        d = _distances(seg.meshes[name].vertices, phantom_seg.meshes[name])
        assert np.median(d) < 0.2 and np.percentile(d, 99) < 1.0, name


def test_calibration_of_a_scaled_ct(phantom_ct):
    raw = (phantom_ct.array.astype(np.float32) * 2.5 + 3000.0).astype(np.uint16)
    cal = calibrate_hu(raw)
    hu = cal.apply(raw)
    assert abs(cal.slope - 0.4) < 0.01
    assert abs(float(np.median(hu[raw < 600])) + 1000) < 15


def test_no_bone_is_refused(phantom_ct):
    water = np.where(phantom_ct.array > -500, 20, -1000).astype(np.int16)  # the body as soft tissue only
    with pytest.raises(InputError, match="no bone"):
        segment_ct(phantom_ct.with_array(water))


def test_noise_is_refused():
    noise = np.random.default_rng(0).normal(500, 100, (40, 48, 48)).astype(np.int16)
    with pytest.raises(InputError, match="calibrat"):
        segment_ct(Volume(noise, spacing=(2.0, 2.0, 2.0)))


def test_parameters_are_checked(phantom_ct):
    with pytest.raises(ParameterError, match="face_direction"):
        segment_ct(phantom_ct, face_direction="up")
    with pytest.raises(ParameterError, match="bone_hu"):
        segment_ct(phantom_ct, bone_hu=-500)


@pytest.mark.parametrize("flip,face", [((), "-y"), ((1,), "+y"), ((0, 1), "+y")],
                         ids=["as-is", "face-plus-y", "upside-down"])
def test_face_direction_detected_without_orientation(phantom_ct, flip, face):
    """A volume that stores no orientation: face found, warning given, meshes turned to LPS."""
    array = np.ascontiguousarray(np.flip(phantom_ct.array, flip) if flip else phantom_ct.array)
    vol = Volume(array, spacing=phantom_ct.spacing)
    result = segment(vol, target_faces=20_000)
    seg = result.data["segmentation"]
    assert seg.orientation.face == face and seg.orientation.estimated
    assert seg.orientation.superior == ("-z" if 0 in flip else "+z")
    assert any("stores no orientation" in w for w in result.warnings)
    skin = result.data["skin"]
    # the face (nose) is the most anterior part: the lowest y in LPS, near the mid-sagittal plane
    tip = skin.vertices[np.argmin(skin.vertices[:, 1])]
    centre = skin.vertices.mean(0)
    assert abs(tip[0] - centre[0]) < 10
    assert tip[2] > skin.bounds()[0, 2] + 0.4 * skin.extent[2]  # the nose is in the upper part of the head


def test_command_writes_meshes_and_result(tmp_path):
    """The command declares its meshes and picture; the runner writes them under their old names."""
    import medface
    from pathlib import Path

    ct = Path(__file__).resolve().parents[2] / "sample_data" / "head_ct.nii.gz"
    result = medface.run("surgery.segment", ct=ct, out=tmp_path, target_faces=20_000, figures=True)
    for name in ("skin", "skull", "mandible"):
        mesh = io.read_mesh(tmp_path / f"{name}.ply")
        assert mesh.is_watertight()
        assert result.outputs[name] == str(tmp_path / f"{name}.ply")
    assert result.figures == {"segmentation": str(tmp_path / "segmentation.png")}
    assert (tmp_path / "segmentation.png").stat().st_size > 1000
    assert result.tables["calibration"][0]["slope"] == 1.0
    assert json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))["outputs"]["skull"].endswith("skull.ply")


def test_the_command_splits_the_sample_ct_at_the_landmarks_given(tmp_path):
    """The 2 mm sample CT's jaws touch at the voxel size: with --landmarks the mandible is split
    by the seeded watershed (no erosion warning), without them by erosion (warned)."""
    import medface

    sample = Path(__file__).resolve().parents[2] / "sample_data"
    seeded = medface.run("surgery.segment", ct=sample / "head_ct.nii.gz", landmarks=sample / "landmarks.mrk.json",
                         target_faces=10_000, figures=False)
    assert seeded.summary["mandible"].startswith("seeded at"), seeded.summary
    assert not any("teeth or condyles" in w for w in seeded.warnings)
    plain = medface.run("surgery.segment", ct=sample / "head_ct.nii.gz", target_faces=10_000, figures=False)
    assert plain.summary["mandible"].startswith("eroded") and any("teeth or condyles" in w for w in plain.warnings)
    assert 0.9 < seeded.metrics["mandible_volume_ml"] / plain.metrics["mandible_volume_ml"] < 1.2


def test_without_an_output_folder_the_command_writes_nothing(phantom_ct, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = segment(phantom_ct, target_faces=20_000)
    assert list(tmp_path.iterdir()) == [] and result.outputs == {}
    assert [o.filename for o in result.declared] == ["skin.ply", "skull.ply", "mandible.ply", "segmentation.png"]
    assert result.data["skull"].is_watertight()


def test_headsq_bone_and_skin(shared_data):
    """The real head CT (scanner units, no orientation): calibrated, face found, plausible volumes."""
    ct = io.read_volume(shared_data / "headsq" / "headsq.mhd")
    seg = segment_ct(ct.with_array(ct.array & 0x7FFF), target_faces=30_000)
    assert seg.calibration.method == "histogram two-point"
    assert seg.orientation.face == "-y" and seg.orientation.superior == "-z"
    assert 1500 < seg.volumes_ml["skin"] < 4000  # a head cut above the eyebrows and below the chin
    assert 150 < seg.volumes_ml["skull"] < 800
    # the jaws touch only through partial-volume voxels (3.2 mm in-plane): the denser bone holds
    # the mandible apart, a whole one (both rami to the condyles: about 11 cm across)
    assert seg.mandible_method.startswith("separate above"), seg.mandible_method
    assert 40 < seg.volumes_ml["mandible"] < 120
    assert 90 < np.ptp(seg.meshes["mandible"].vertices[:, 0]) < 140
    for mesh in seg.meshes.values():
        assert mesh.is_watertight()


def test_ambiguous_top_and_bottom_is_refused_not_guessed():
    """A phantom head whose nose profile barely differs above and below the tip (1 mm): without
    an orientation in the file the top of the head is not guessed (a wrong guess would turn every
    output upside down); the error says to give the volume an orientation."""
    from medface.phantom import cohort, head_ct

    ct = head_ct(next(cohort(1, seed=999)).head, spacing=2.0, noise_hu=10.0)
    bare = Volume(np.ascontiguousarray(ct.array), spacing=ct.spacing)
    with pytest.raises(InputError, match="top of the head") as err:
        segment_ct(bare, target_faces=5000)
    assert "orientation" in (err.value.hint or "")
    # with its orientation in the file the same head segments upright
    assert segment_ct(ct, target_faces=5000).orientation.superior == "+z"
