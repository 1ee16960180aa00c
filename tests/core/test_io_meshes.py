"""Mesh reading and writing: coordinates are never moved, bad files give clear errors."""

from __future__ import annotations


import numpy as np
import pytest

from medface.data import FaceImage, SurfaceMesh
from medface.errors import InputError, OutputError
from medface.io import read_mesh, write_image, write_mesh
from medface.io.meshes import merge_exact_duplicates


@pytest.fixture
def sphere() -> SurfaceMesh:
    """An icosphere of radius 100 mm, moved off the origin, with scalar and vector point data."""
    import trimesh

    ico = trimesh.creation.icosphere(subdivisions=3, radius=100.0)
    vertices = ico.vertices + [12.3456789, -20.5, 7.25]
    n = len(vertices)
    point_data = {"distance_mm": np.linspace(-2.0, 3.0, n), "label": np.arange(n, dtype=np.int32),
                  "offset": np.random.default_rng(1).normal(size=(n, 3))}
    return SurfaceMesh(vertices, ico.faces, point_data, name="sphere")


def triangles(mesh: SurfaceMesh) -> np.ndarray:
    """(M, 3, 3) corner coordinates: compares meshes whatever their vertex numbering."""
    return mesh.vertices[mesh.faces]


# round trips ------------------------------------------------------------------------------
CASES = [(".stl", True), (".stl", False), (".ply", True), (".ply", False), (".obj", True),
         (".vtp", True), (".vtp", False), (".vtk", True), (".vtk", False)]


@pytest.mark.parametrize(("suffix", "binary"), CASES)
def test_round_trip_keeps_vertices_and_faces(tmp_path, sphere, suffix, binary):
    written = write_mesh(sphere, tmp_path / "out" / f"sphere{suffix}", binary=binary)
    back = read_mesh(written)
    assert back.n_vertices == sphere.n_vertices  # STL's 3 vertices per face are merged back exactly
    np.testing.assert_allclose(triangles(back), triangles(sphere), rtol=0, atol=1e-5)
    if suffix != ".stl":  # everything but STL keeps the vertex numbering and faces as they were
        np.testing.assert_array_equal(back.faces, sphere.faces)
        np.testing.assert_allclose(back.vertices, sphere.vertices, rtol=0, atol=1e-8)
    assert back.name == "sphere" and back.source == str(written)
    assert [p.name for p in written.parent.iterdir()] == [written.name]


@pytest.mark.parametrize("suffix", [".ply", ".vtp", ".vtk"])
def test_point_data_is_kept(tmp_path, sphere, suffix):
    back = read_mesh(write_mesh(sphere, tmp_path / f"sphere{suffix}"))
    assert set(back.point_data) == set(sphere.point_data)
    for key, values in sphere.point_data.items():
        np.testing.assert_array_equal(back.point_data[key], values)


def test_stl_float32_error_stays_below_1e5_mm_within_128_mm(tmp_path):
    far = np.array([[127.99, -127.99, 100.123456789], [-127.3, 126.1, -99.9], [0.1, 0.2, 127.7]])
    mesh = SurfaceMesh(far, [[0, 1, 2]])
    back = read_mesh(write_mesh(mesh, tmp_path / "far.stl"))
    error = np.abs(triangles(back) - triangles(mesh)).max()
    assert 0 < error < 1e-5


def test_exact_merge_moves_nothing_and_keeps_order():
    vertices = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0], [0, 1, 1e-12], [0, 0, 0]], float)
    faces = np.array([[0, 1, 2], [3, 4, 5]])
    merged, new_faces, data = merge_exact_duplicates(vertices, faces, {"q": [7, 8, 9, 8, 9, 7]})
    np.testing.assert_array_equal(merged, vertices[[0, 1, 2, 4]])  # 1e-12 apart is not a duplicate
    np.testing.assert_array_equal(new_faces, [[0, 1, 2], [1, 3, 0]])
    np.testing.assert_array_equal(data["q"], [7, 8, 9, 9])
    # vertices at the same place with different point data (a texture seam) stay apart
    seam, _, _ = merge_exact_duplicates(vertices, faces, {"u": np.arange(6.0)})
    assert len(seam) == 6


def test_obj_objects_are_concatenated(tmp_path):
    path = tmp_path / "two.obj"
    path.write_text("o left\nv 0 0 0\nv 1 0 0\nv 0 1 0\nusemtl a\nf 1 2 3\n"
                    "o right\nv 5 0 0\nv 6 0 0\nv 5 1 0\nusemtl b\nf 4 5 6\n")
    mesh = read_mesh(path)
    assert mesh.n_faces == 2 and mesh.n_vertices == 6
    np.testing.assert_array_equal(mesh.bounds(), [[0, 0, 0], [6, 1, 0]])


def test_unstructured_grid_surface_is_extracted(tmp_path):
    import pyvista as pv

    grid = pv.ImageData(dimensions=(3, 3, 3), spacing=(2.0, 2.0, 2.0)).cast_to_unstructured_grid()
    grid.point_data["height"] = grid.points[:, 2].copy()
    grid.save(tmp_path / "cube.vtk")
    mesh = read_mesh(tmp_path / "cube.vtk")
    assert mesh.is_watertight() and mesh.n_faces == 6 * 4 * 2
    np.testing.assert_allclose(mesh.extent, [4, 4, 4])
    np.testing.assert_array_equal(mesh.point_data["height"], mesh.vertices[:, 2])


def test_vtp_with_raw_appended_binary_data(tmp_path, sphere):
    from vtkmodules.vtkIOXML import vtkXMLPolyDataWriter

    writer = vtkXMLPolyDataWriter()  # ParaView's way: XML header, then raw bytes
    writer.SetInputData(sphere.to_pyvista())
    writer.SetFileName(str(tmp_path / "raw.vtp"))
    writer.SetDataModeToAppended()
    writer.EncodeAppendedDataOff()
    writer.Write()
    back = read_mesh(tmp_path / "raw.vtp")
    np.testing.assert_array_equal(back.vertices, sphere.vertices)
    np.testing.assert_array_equal(back.point_data["offset"], sphere.point_data["offset"])


def test_ply_saved_as_stl_is_read_as_ply(tmp_path, sphere):
    ply = write_mesh(sphere, tmp_path / "sphere.ply")
    misleading = ply.rename(tmp_path / "sphere.stl")
    back = read_mesh(misleading)
    assert "distance_mm" in back.point_data  # only the PLY reader yields point data
    np.testing.assert_array_equal(back.vertices, sphere.vertices)


def test_binary_stl_whose_header_starts_with_solid(tmp_path, sphere):
    stl = write_mesh(sphere, tmp_path / "sphere.stl")
    data = bytearray(stl.read_bytes())
    data[:80] = b"solid exported by a scanner".ljust(80, b" ")
    stl.write_bytes(bytes(data))
    assert read_mesh(stl).n_vertices == sphere.n_vertices


def test_write_mesh_refuses_unknown_extensions(tmp_path, sphere):
    with pytest.raises(OutputError, match=r"\.stl, \.ply, \.obj, \.vtp, \.vtk") as info:
        write_mesh(sphere, tmp_path / "sphere.off")
    assert "sphere.off" in str(info.value)


# bad input --------------------------------------------------------------------------------
def test_nan_vertices_are_refused(tmp_path):
    path = tmp_path / "broken.obj"
    path.write_text("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n")
    with pytest.raises(InputError, match="NaN") as info:
        read_mesh(path)
    assert str(path) in str(info.value)


def test_truncated_binary_stl_is_refused(tmp_path, sphere):
    data = write_mesh(sphere, tmp_path / "sphere.stl").read_bytes()
    cut = tmp_path / "cut.stl"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="binary STL.*truncated") as info:
        read_mesh(cut)
    assert str(cut) in str(info.value)


TRUNCATIONS = [(suffix, binary, fraction) for suffix, binary in [(".ply", True), (".ply", False), (".vtp", True),
                                                                  (".vtp", False), (".vtk", True), (".vtk", False),
                                                                  (".stl", False)]
               for fraction in (0.5, 0.9)]
# VTK's legacy ASCII reader fills a point-data array cut short with zeros and reports nothing; the
# section walk of medface.io.mesh_headers counts the numbers first (see docs/file-formats.md).


@pytest.mark.parametrize(("suffix", "binary", "fraction"), TRUNCATIONS)
def test_truncated_files_are_refused(tmp_path, sphere, suffix, binary, fraction):
    data = write_mesh(sphere, tmp_path / f"sphere{suffix}", binary=binary).read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(InputError, match="truncated") as info:
        read_mesh(cut)
    assert str(cut) in str(info.value)


def test_empty_file_is_refused(tmp_path):
    empty = tmp_path / "empty.stl"
    empty.touch()
    with pytest.raises(InputError, match="empty") as info:
        read_mesh(empty)
    assert str(empty) in str(info.value)


def test_png_is_not_a_mesh(tmp_path):
    png = write_image(FaceImage(np.zeros((8, 8, 3), np.uint8)), tmp_path / "face.png")
    with pytest.raises(InputError, match="is a PNG image, not a mesh") as info:
        read_mesh(png)
    assert str(png) in str(info.value) and "read_image" in str(info.value)


def test_garbage_is_refused(tmp_path):
    junk = tmp_path / "junk.ply"
    junk.write_bytes(np.random.default_rng(3).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="does not recognise") as info:
        read_mesh(junk)
    assert str(junk) in str(info.value)


def test_stl_without_triangles_is_refused(tmp_path):
    empty_solid = tmp_path / "nothing.stl"
    empty_solid.write_text("solid nothing\nendsolid nothing\n")
    with pytest.raises(InputError, match="without triangles"):
        read_mesh(empty_solid)


# real data --------------------------------------------------------------------------------
def test_real_skull_obj(shared_data):
    path = shared_data / "meshes" / "skull_low_resolution.obj"
    skull = read_mesh(path)
    # trimesh would split the 5,154 vertices along normals and texture seams into 30,936;
    # merging exact duplicates gives back the file's own vertices, in the file's order.
    assert (skull.n_vertices, skull.n_faces) == (5154, 10312)
    file_vertices = np.array([line.split()[1:4] for line in path.read_text(encoding="utf-8").splitlines()
                              if line.startswith("v ")], dtype=float)
    np.testing.assert_array_equal(skull.vertices, file_vertices)
    np.testing.assert_allclose(skull.extent, [8.6876, 13.9079, 12.1118], atol=1e-3)  # arbitrary units


def test_real_canonical_face_keeps_landmark_order(shared_data):
    path = shared_data / "meshes" / "canonical_face_model.obj"
    face = read_mesh(path)
    file_vertices = np.array([line.split()[1:4] for line in path.read_text(encoding="utf-8").splitlines()
                              if line.startswith("v ")], dtype=float)
    assert face.n_vertices == 468
    np.testing.assert_array_equal(face.vertices, file_vertices)


def test_real_fran_face_scan_vtk(shared_data):
    fran = read_mesh(shared_data / "meshes" / "fran_cut.vtk")
    assert fran.n_vertices == 2205 and fran.n_faces == 4224
    assert fran.point_data["textureCoords"].shape == (2205, 2)
