"""`medface export-slicer`: a result folder as a 3D Slicer scene bundle (.mrb), read back with
slicer-core. Acceptance: the round trip keeps geometry (vertices to 1e-4 mm, landmark
positions, volume spacing, origin, direction). docs/workstation.md."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("slicer")

import medface  # noqa: E402
from medface import io  # noqa: E402
from medface.cli import main  # noqa: E402
from medface.data import FaceImage, Landmarks, SurfaceMesh, Volume  # noqa: E402
from medface.errors import InputError, PluginError  # noqa: E402
from medface.workstation import mrml, slicer_scene  # noqa: E402

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"
POINTS_LPS = {"n": (10.0, 20.0, 30.0), "prn": (-3.125, -95.5, 12.75), "pog_s": (0.5, -80.25, -60.0)}


def _rotation(axis, degrees: float) -> np.ndarray:
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    angle = np.radians(degrees)
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * k @ k


def _oblique_volume() -> Volume:
    voxels = np.random.default_rng(3).integers(-1000, 2000, size=(4, 5, 6)).astype(np.int16)
    return Volume(voxels, spacing=(0.7, 0.9, 2.5), origin=(12.5, -30.25, 47.0),
                  direction=_rotation((1, 2, 3), 25.0), units="HU")


def _face_mesh() -> SurfaceMesh:
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=2, radius=60.0)
    vertices = sphere.vertices * (1.0, 1.2, 0.9) + (3.3, -41.7, 15.2)
    sd_mm = np.linspace(0.25, 4.75, len(vertices))
    return SurfaceMesh(vertices, sphere.faces, point_data={"sd_mm": sd_mm}, name="face")


def _photo() -> FaceImage:
    return FaceImage(np.random.default_rng(5).integers(0, 256, size=(7, 9, 3), dtype=np.uint8))


def _write_result(folder: Path, outputs: dict[str, str], command: str = "test.export") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "result.json").write_text(json.dumps({"command": command, "status": "ok", "outputs": outputs,
                                                    "figures": {}}), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A result folder with a volume, a mesh with point data, landmarks, a photo and a table,
    exported to scene.mrb and read back."""
    folder = tmp_path_factory.mktemp("result")
    io.write_volume(_oblique_volume(), folder / "ct.nrrd")
    io.write_mesh(_face_mesh(), folder / "face.vtp")
    io.write_landmarks(Landmarks.from_dict(POINTS_LPS, confidence={"n": 0.75}, descriptions={"prn": "pronasale"}),
                       folder / "landmarks.mrk.json")
    io.write_image(_photo(), folder / "photo.png")
    (folder / "distances.csv").write_text("name,value\nn,1.5\n", encoding="utf-8")
    _write_result(folder, {"ct": "ct.nrrd", "face": "face.vtp", "landmarks": "landmarks.mrk.json",
                           "photo": "photo.png", "distances": "distances.csv", "result": "result.json"})
    mrb = slicer_scene.export_slicer(folder, folder.parent / "scene.mrb")
    return folder, mrb, slicer_scene.read_mrb(mrb)


def _node(scene, class_name: str, name: str):
    nodes = scene.GetNodesByClassByName(class_name, name)
    assert nodes.GetNumberOfItems() == 1, f"expected one {class_name} named {name}"
    return nodes.GetItemAsObject(0)


def test_round_trip_keeps_geometry(exported):
    _, _, scene = exported
    volume, original = mrml.read_volume_node(_node(scene, "vtkMRMLScalarVolumeNode", "ct")), _oblique_volume()
    np.testing.assert_allclose(volume.spacing, original.spacing, atol=1e-6)
    np.testing.assert_allclose(volume.origin, original.origin, atol=1e-6)
    np.testing.assert_allclose(volume.direction, original.direction, atol=1e-6)
    assert volume.array.dtype == original.array.dtype and np.array_equal(volume.array, original.array)

    mesh, face = mrml.read_model_node(_node(scene, "vtkMRMLModelNode", "face")), _face_mesh()
    np.testing.assert_allclose(mesh.vertices, face.vertices, atol=1e-4)
    assert np.array_equal(mesh.faces, face.faces)
    np.testing.assert_allclose(mesh.point_data["sd_mm"], face.point_data["sd_mm"], atol=1e-12)

    landmarks = mrml.read_markups_node(_node(scene, "vtkMRMLMarkupsFiducialNode", "landmarks"))
    assert landmarks.ids == list(POINTS_LPS)
    np.testing.assert_allclose(landmarks.points, np.array(list(POINTS_LPS.values())), atol=1e-4)
    assert landmarks.confidence == {"n": 0.75} and landmarks.descriptions == {"prn": "pronasale"}

    photo = mrml.read_photo_node(_node(scene, "vtkMRMLVectorVolumeNode", "photo"))
    assert np.array_equal(photo.pixels, _photo().pixels)


def test_hounsfield_units_survive_a_bundle(tmp_path):
    scene = mrml.new_scene()
    mrml.add_volume(scene, _oblique_volume(), "ct")
    read_back = slicer_scene.read_mrb(slicer_scene.write_scene_bundle(scene, tmp_path / "ct.mrb"))
    assert mrml.read_volume_node(_node(read_back, "vtkMRMLScalarVolumeNode", "ct")).units == "HU"


def _voxel_table(volume: Volume) -> np.ndarray:
    """Every voxel as (x, y, z, value) in LPS, sorted: what a grid means, whatever its index order."""
    k, j, i = np.indices(volume.array.shape).reshape(3, -1)
    points = volume.index_to_physical(np.column_stack([i, j, k]))
    table = np.column_stack([points.round(6), volume.array.reshape(-1)])
    return table[np.lexsort(table.T[::-1])]


def test_a_left_handed_grid_comes_back_right_handed_with_the_same_voxels(tmp_path):
    """Slicer's volume storage re-indexes a left-handed grid on reading (its
    forceRightHandedIJKCoordinateSystem): the direction and origin change, not where a voxel is."""
    original = Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4), spacing=(1.0, 2.0, 3.0),
                      origin=(5.0, 6.0, 7.0), direction=np.diag([1.0, 1.0, -1.0]))
    scene = mrml.new_scene()
    mrml.add_volume(scene, original, "flipped")
    read_back = slicer_scene.read_mrb(slicer_scene.write_scene_bundle(scene, tmp_path / "flipped.mrb"))
    volume = mrml.read_volume_node(_node(read_back, "vtkMRMLScalarVolumeNode", "flipped"))
    assert np.linalg.det(volume.direction) == pytest.approx(1.0)
    np.testing.assert_allclose(_voxel_table(volume), _voxel_table(original), atol=1e-6)


def test_a_corrupt_bundle_is_an_input_error(tmp_path):
    bad = tmp_path / "bad.mrb"
    bad.write_bytes(b"not a zip file")
    here = os.getcwd()
    with pytest.raises(InputError, match="could not read the scene bundle"):
        slicer_scene.read_mrb(bad)
    assert os.getcwd() == here  # slicer-core leaves its (removed) unpacking folder as the current one


def test_mesh_point_data_is_the_models_colour_map(exported):
    _, _, scene = exported
    display = _node(scene, "vtkMRMLModelNode", "face").GetDisplayNode()
    assert display.GetActiveScalarName() == "sd_mm" and display.GetScalarVisibility()
    colours = display.GetColorNode()
    assert colours is not None and colours.GetName() == "medface viridis" and colours.GetNumberOfColors() == 256
    assert display.GetScalarRange() == pytest.approx((0.25, 4.75))
    volume_display = _node(scene, "vtkMRMLScalarVolumeNode", "ct").GetDisplayNode()
    assert volume_display.GetColorNodeID() == "vtkMRMLColorTableNodeGrey" and volume_display.GetColorNode() is not None


def test_signed_point_data_gets_a_diverging_map_centred_at_zero():
    scene = mrml.new_scene()
    mesh = _face_mesh()
    signed = SurfaceMesh(mesh.vertices, mesh.faces, point_data={"distance_mm": np.linspace(-1.0, 3.0, mesh.n_vertices),
                                                                 "normals": np.ones((mesh.n_vertices, 3))})
    display = mrml.add_mesh(scene, signed, "change").GetDisplayNode()
    assert display.GetActiveScalarName() == "distance_mm"
    assert display.GetColorNode().GetName() == "medface RdBu_r"
    assert display.GetScalarRange() == pytest.approx((-3.0, 3.0))


def test_landmarks_are_ras_in_the_scene_and_lps_in_the_bundle(exported):
    scene = mrml.new_scene()
    node = mrml.add_landmarks(scene, Landmarks.from_dict({"n": (10.0, 20.0, 30.0)}), "points")
    position = [0.0, 0.0, 0.0]
    node.GetNthControlPointPosition(0, position)
    assert position == pytest.approx([-10.0, -20.0, 30.0])

    _, mrb, read_back = exported
    node = _node(read_back, "vtkMRMLMarkupsFiducialNode", "landmarks")
    node.GetNthControlPointPosition(0, position)
    assert node.GetNthControlPointLabel(0) == "n" and position == pytest.approx([-10.0, -20.0, 30.0])
    with zipfile.ZipFile(mrb) as bundle:
        name = next(n for n in bundle.namelist() if n.endswith(".mrk.json"))
        markups = json.loads(bundle.read(name))["markups"][0]
    assert markups["coordinateSystem"] == "LPS"
    assert markups["controlPoints"][0]["position"] == pytest.approx([10.0, 20.0, 30.0])


def test_photo_stands_in_the_coronal_plane_centred_at_the_origin():
    scene = mrml.new_scene()
    node = mrml.add_photo(scene, FaceImage(np.zeros((5, 11, 3), np.uint8)), "photo")
    ras = mrml.vtk_ijk_to_ras(node)
    assert ras @ np.array([5.0, 2.0, 0.0, 1.0]) == pytest.approx([0.0, 0.0, 0.0, 1.0])  # the centre pixel
    assert ras[:3, 0] == pytest.approx([-1.0, 0.0, 0.0])  # columns run to the patient's left (RAS -x)
    assert ras[:3, 1] == pytest.approx([0.0, 0.0, -1.0])  # rows run down (inferior)


def test_bundle_holds_slicer_formats_and_no_absolute_paths(exported):
    folder, mrb, scene = exported
    with zipfile.ZipFile(mrb) as bundle:
        names = bundle.namelist()
        contents = {name: bundle.read(name) for name in names}
    mrml_text = contents["scene/scene.mrml"].decode("utf-8")
    assert sorted(names) == ["scene/", "scene/Data/ct.nrrd", "scene/Data/face.vtk", "scene/Data/landmarks.mrk.json",
                             "scene/Data/photo.nrrd", "scene/Private/medface viridis.csv", "scene/scene.mrml"]
    for name, data in contents.items():  # where it was written (the output folder, Slicer's temporary folder)
        assert str(folder.parent).encode() not in data and b"/tmp" not in data, name
    assert 'fileName="/' not in mrml_text
    assert '<MRML version="Slicer 5.' in mrml_text  # not slicer-core's placeholder, which Slicer warns about
    hierarchy = scene.GetSubjectHierarchyNode()
    item = hierarchy.GetItemByDataNode(_node(scene, "vtkMRMLModelNode", "face"))
    assert hierarchy.GetItemName(hierarchy.GetItemParent(item)) == "test.export"


def test_cli_writes_the_bundle(exported, tmp_path, capsys):
    folder, _, _ = exported
    target = tmp_path / "case.mrb"
    assert main(["export-slicer", str(folder), str(target)]) == 0
    assert target.is_file() and zipfile.is_zipfile(target)
    assert str(target) in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.mrb"]  # no temporary file left


def test_refusals_leave_no_file(tmp_path, capsys):
    empty = tmp_path / "not_a_result"
    empty.mkdir()
    assert main(["export-slicer", str(empty), str(tmp_path / "scene.mrb")]) == InputError.exit_code == 3
    assert "result.json" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_result"]

    with pytest.raises(InputError, match=r"\.mrb"):
        slicer_scene.export_slicer(empty, tmp_path / "scene.zip")
    assert main(["export-slicer", str(empty), str(tmp_path / "scene.mrml")]) == 3

    tables_only = _write_result(tmp_path / "tables", {"table": "t.csv", "result": "result.json"})
    (tables_only / "t.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(InputError, match="no volume, mesh, landmarks or picture"):
        slicer_scene.export_slicer(tables_only, tmp_path / "scene.mrb")

    missing = _write_result(tmp_path / "missing", {"skin": "skin.ply"})
    with pytest.raises(InputError, match="skin.ply"):
        slicer_scene.export_slicer(missing, tmp_path / "scene.mrb")
    assert not (tmp_path / "scene.mrb").exists()


def test_a_listed_data_file_that_does_not_read_is_an_error(tmp_path):
    broken = _write_result(tmp_path / "broken", {"skin": "skin.ply"})
    (broken / "skin.ply").write_text("not a mesh\n", encoding="utf-8")
    with pytest.raises(InputError, match="skin.ply"):
        mrml.add_result(mrml.new_scene(), broken)


def test_missing_slicer_core_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "slicer", None)
    with pytest.raises(PluginError, match=r"pip install 'medface\[workstation\]'"):
        mrml.require_slicer()


def test_real_segmentation_result_exports_its_three_models(tmp_path):
    ct = SAMPLE / "head_ct.nii.gz"
    if not ct.is_file():
        pytest.skip("sample_data/head_ct.nii.gz is absent (run `medface sample-data`)")
    out = tmp_path / "segment"
    medface.run("surgery.segment", ct=ct, target_faces=20000, figures=False, out=out)
    scene = slicer_scene.read_mrb(slicer_scene.export_slicer(out, tmp_path / "segment.mrb"))
    assert scene.GetNumberOfNodesByClass("vtkMRMLModelNode") == 3
    for name in ("skin", "skull", "mandible"):
        model = _node(scene, "vtkMRMLModelNode", name)
        assert model.GetPolyData().GetNumberOfPoints() == io.read_mesh(out / f"{name}.ply").n_vertices
