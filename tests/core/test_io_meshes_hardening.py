"""Mesh readers on files no one here wrote: a SurfaceMesh or an InputError, never another
exception, a crash, a hang or a memory blow-up (issue 14). Every file is written by the test."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

from medface.data import SurfaceMesh
from medface.data.mesh import MESH_CHECKS, mesh_problems
from medface.errors import InputError
from medface.io import read_mesh, write_mesh
from medface.io.meshes import merge_exact_duplicates


@pytest.fixture(scope="module")
def ico() -> SurfaceMesh:
    """A closed icosphere (42 vertices, 80 triangles) with scalar, integer and 2-D point data."""
    import trimesh

    sphere = trimesh.creation.icosphere(subdivisions=1, radius=10.0)
    n = len(sphere.vertices)
    point_data = {"distance_mm": np.linspace(-2.0, 3.0, n), "label": np.arange(n, dtype=np.int32),
                  "tc": np.random.default_rng(1).normal(size=(n, 2))}
    return SurfaceMesh(sphere.vertices, sphere.faces, point_data, name="ico")


def written(mesh, tmp_path, name, binary=True):
    return write_mesh(mesh, tmp_path / name, binary=binary)


def refused(path, match):
    """read_mesh(path) raises an InputError matching ``match`` that names the file."""
    with pytest.raises(InputError, match=match) as info:
        read_mesh(path)
    assert str(path) in str(info.value)
    return str(info.value)


# reproducers from the issue ---------------------------------------------------------------
def test_emptied_number_in_ascii_ply_is_an_input_error(tmp_path, ico):
    lines = written(ico, tmp_path, "ico.ply", binary=False).read_text(encoding="utf-8").split("\n")
    row = lines.index("end_header") + 5
    lines[row] = " ".join(lines[row].split()[:-1])  # one number of one vertex row emptied (was a ValueError)
    bad = tmp_path / "emptied.ply"
    bad.write_text("\n".join(lines), encoding="utf-8")
    refused(bad, r"vertex row \(line 5 after the header\).*does not hold the values")


@pytest.mark.parametrize("line", ["v 1.0 2.0", "f 3 4"])
def test_emptied_number_in_obj_is_an_input_error(tmp_path, line):
    path = tmp_path / "short.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nf 1 2 3\n" + line + "\nf 2 4 3\n", encoding="utf-8")
    refused(path, "on line 6")


def test_flipped_header_bytes_give_a_mesh_or_an_input_error(tmp_path, ico):
    """Every bit of the first bytes flipped in turn, in each format (a TypeError and crashes before)."""
    for name, binary in [("a.ply", False), ("b.ply", True), ("c.vtp", True), ("d.obj", True), ("e.stl", False)]:
        data = written(ico, tmp_path, name, binary=binary).read_bytes()
        rng = np.random.default_rng(len(name) + binary)
        for k, position in enumerate(rng.choice(min(len(data), 160), 12, replace=False)):
            flipped = bytearray(data)
            flipped[position] ^= 1 << int(rng.integers(8))
            path = tmp_path / f"flip{k}_{name}"
            path.write_bytes(bytes(flipped))
            try:
                assert read_mesh(path).n_faces > 0
            except InputError as exc:
                assert str(path) in str(exc)


def test_vtk_messages_quoting_non_utf8_bytes_are_an_input_error(tmp_path, ico):
    data = written(ico, tmp_path, "ico.vtk", binary=False).read_bytes()
    bad = tmp_path / "latin.vtk"
    bad.write_bytes(data.replace(b"LOOKUP_TABLE default", b"LOOKUP_TABLE d\xe9fault\xff"))  # VTK quotes the name
    try:
        read_mesh(bad)
    except InputError as exc:
        assert str(bad) in str(exc)


def test_vtp_with_number_of_points_minus_one_is_refused(tmp_path, ico):
    text = written(ico, tmp_path, "ico.vtp", binary=False).read_text(encoding="utf-8")
    bad = tmp_path / "minus.vtp"
    bad.write_text(text.replace('NumberOfPoints="42"', 'NumberOfPoints="-1"'), encoding="utf-8")
    refused(bad, r"NumberOfPoints.*'-1', which is not a count")


def test_vtp_declaring_a_huge_point_count_is_too_large(tmp_path, ico):
    text = written(ico, tmp_path, "ico.vtp", binary=False).read_text(encoding="utf-8")
    bad = tmp_path / "huge.vtp"
    bad.write_text(text.replace('NumberOfPoints="42"', 'NumberOfPoints="4000000000"'), encoding="utf-8")
    message = refused(bad, "too large: the file declares 4,000,000,000")
    assert "MEDFACE_MAX_VERTICES" in message


def test_truncated_binary_legacy_vtk_is_refused_not_filled_with_garbage(tmp_path, ico):
    data = written(ico, tmp_path, "ico.vtk", binary=True).read_bytes()
    cut = tmp_path / "cut.vtk"
    cut.write_bytes(data[: len(data) - 100])  # inside the last point-data array (the texture coordinates)
    refused(cut, r"truncated: FIELD array 'tc' needs 672 bytes but the file ends \d+ bytes early")


@pytest.mark.parametrize("fraction", [0.7, 0.9, 0.99])
def test_truncated_ascii_legacy_vtk_is_refused_even_inside_point_data(tmp_path, ico, fraction):
    data = written(ico, tmp_path, "ico.vtk", binary=False).read_bytes()
    cut = tmp_path / "cut.vtk"
    cut.write_bytes(data[: int(len(data) * fraction)])  # VTK itself fills what is missing with zeros
    refused(cut, r"truncated: .* declares \d+ values but only \d+ follow")


def test_truncated_obj_is_refused(tmp_path, ico):
    data = written(ico, tmp_path, "ico.obj").read_bytes()
    mid_line = tmp_path / "mid.obj"
    mid_line.write_bytes(data[: data.rindex(b"\nf ") + 6])  # cut inside the last face line
    refused(mid_line, "face with fewer than 3 corners on line .*cut off")
    boundary = tmp_path / "boundary.obj"
    face_starts = [m.start() for m in re.finditer(rb"\nf ", data)]
    boundary.write_bytes(data[: face_starts[40] + 1])  # at a line end, half the faces gone: the count comment says
    refused(boundary, "declares 80 triangles in its header comment but holds")


def test_obj_faces_beyond_the_vertices_are_refused(tmp_path):
    path = tmp_path / "far.obj"
    path.write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2 9\n", encoding="utf-8")
    refused(path, "faces that refer to vertices the file does not hold")


@pytest.mark.parametrize("name", ["nan.ply", "nan.vtk", "nan.vtp", "nan.obj", "nan.stl"])
def test_nan_and_inf_coordinates_are_refused_naming_the_vertices(tmp_path, ico, name):
    vertices = ico.vertices.copy()
    vertices[[3, 7]] = [[np.nan, 0, 0], [0, np.inf, 0]]
    mesh = SurfaceMesh.__new__(SurfaceMesh)  # a mesh medface itself would refuse to build
    mesh.vertices, mesh.faces, mesh.point_data, mesh.name, mesh.source = vertices, ico.faces, {}, "nan", None
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the STL writer computes normals of NaN triangles
        path = written(mesh, tmp_path, name)
    if name.endswith(".vtp"):  # VTK itself refuses the NaN range it wrote into the XML
        refused(path, "NaN or infinite coordinates|cannot be read as a VTK XML")
        return
    message = refused(path, "NaN or infinite coordinates")
    assert re.search(r"vertex indices 3, 7\b", message) or name.endswith(".stl")  # STL: numbered as merged


def test_named_pipe_is_refused_without_blocking(tmp_path):
    pipe = tmp_path / "skull.stl"
    os.mkfifo(pipe)
    refused(pipe, "named pipe, not a file")


def test_folder_is_refused(tmp_path):
    folder = tmp_path / "skull.stl"
    folder.mkdir()
    refused(folder, "folder|not a mesh")


def test_symlink_loop_is_refused(tmp_path):
    loop = tmp_path / "loop.stl"
    loop.symlink_to(loop)
    refused(loop, "cannot open the mesh")


# byte flips and isolation: in a subprocess, so that a crash fails a test instead of pytest --
_FLIP_SCRIPT = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from medface.errors import InputError
    from medface.io import read_mesh
    from medface.io.mesh_headers import MeshDeclared
    from medface.io.meshes import _read_vtk
    outcomes = {}
    for name in sys.argv[2:]:
        path = Path(name)
        try:
            if sys.argv[1] == "isolated-only":  # the header checks skipped: only the child process protects
                kind = "vtp" if name.endswith(".vtp") else "vtk-legacy"
                _read_vtk(path, kind, MeshDeclared(size=path.stat().st_size))
            else:
                read_mesh(path)
            outcomes[name] = "mesh"
        except InputError as exc:
            outcomes[name] = "InputError: " + str(exc)
    print(json.dumps(outcomes))
''')


def run_readers(paths, mode="read"):
    run = subprocess.run([sys.executable, "-c", _FLIP_SCRIPT, mode, *map(str, paths)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, f"the reader process died ({run.returncode}): {run.stderr[-2000:]}"
    return json.loads(run.stdout.strip().splitlines()[-1])


def test_byte_flips_in_binary_legacy_vtk_never_kill_the_process(tmp_path, ico):
    """Byte flips made `medface forensic inspect-skull` exit 139 with no message."""
    data = written(ico, tmp_path, "ico.vtk", binary=True).read_bytes()
    rng = np.random.default_rng(14)
    paths = []
    for k in range(60):
        flipped = bytearray(data)
        for position in rng.integers(0, len(data), 1 + k % 3):
            flipped[position] = int(rng.integers(256))
        paths.append(tmp_path / f"flip{k}.vtk")
        paths[-1].write_bytes(bytes(flipped))
    outcomes = run_readers(paths)
    assert len(outcomes) == len(paths)
    assert sum(o.startswith("InputError") for o in outcomes.values()) >= 20


def test_a_native_crash_becomes_an_input_error(tmp_path, ico):
    """With the header checks skipped, VTK aborts on a huge declared count (std::bad_alloc) or
    reads nonsense: the child process turns that into an InputError naming the file."""
    text = written(ico, tmp_path, "ico.vtp", binary=False).read_text(encoding="utf-8")
    paths = []
    for value in ("-1", "4000000000"):
        paths.append(tmp_path / f"points{value}.vtp")
        paths[-1].write_text(text.replace('NumberOfPoints="42"', f'NumberOfPoints="{value}"'), encoding="utf-8")
    outcomes = run_readers(paths, mode="isolated-only")
    for path in paths:
        assert outcomes[str(path)].startswith("InputError") and str(path) in outcomes[str(path)]
    assert "crash" in outcomes[str(paths[1])]


def test_vtk_cells_pointing_outside_the_points_are_refused(tmp_path):
    path = tmp_path / "far.vtk"
    path.write_text("# vtk DataFile Version 3.0\nx\nASCII\nDATASET POLYDATA\nPOINTS 3 float\n0 0 0 1 0 0 0 1 0\n"
                    "POLYGONS 2 8\n3 0 1 2\n3 0 1 99999\n", encoding="utf-8")
    refused(path, r"point numbers outside 0\.\.2")


def test_broken_cell_sizes_in_a_version_4_binary_vtk_are_refused(tmp_path, ico):
    """A flipped cell size in the legacy ``n i0 i1 i2`` list made VTK read out of bounds."""
    from vtkmodules.vtkIOLegacy import vtkPolyDataWriter

    writer = vtkPolyDataWriter()
    writer.SetInputData(ico.to_pyvista())
    writer.SetFileName(str(tmp_path / "v42.vtk"))
    writer.SetFileVersion(42)
    writer.SetFileTypeToBinary()
    writer.Write()
    data = bytearray((tmp_path / "v42.vtk").read_bytes())
    assert read_mesh(tmp_path / "v42.vtk").n_faces == 80
    start = data.index(b"POLYGONS 80 320\n") + len(b"POLYGONS 80 320\n")
    data[start + 16 * 5: start + 16 * 5 + 4] = (200).to_bytes(4, "big")  # the 6th triangle claims 200 corners
    (tmp_path / "bad.vtk").write_bytes(bytes(data))
    refused(tmp_path / "bad.vtk", "POLYGONS list whose cell sizes do not add up")
    data[start + 16 * 5: start + 16 * 5 + 8] = (3).to_bytes(4, "big") + (4000).to_bytes(4, "big")
    (tmp_path / "far.vtk").write_bytes(bytes(data))
    refused(tmp_path / "far.vtk", r"POLYGONS that refer to point numbers outside 0\.\.41")


def test_legacy_vtk_counts_that_disagree_are_refused(tmp_path, ico):
    data = written(ico, tmp_path, "ico.vtk", binary=True).read_bytes()
    cases = {b"POINT_DATA 42": (b"POINT_DATA 40", "POINT_DATA 40 but has 42 points"),
             b"Version 5.1": (b"Version 1e308.1", "version line VTK cannot read"),
             b"POINTS 42": (b"POINTS -42", "not a count")}
    for old, (new, match) in cases.items():
        bad = tmp_path / "bad.vtk"
        bad.write_bytes(data.replace(old, new))
        refused(bad, match)


# budgets and size ---------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "binary", "variable"), [
    ("big.stl", True, "MEDFACE_MAX_FACES"), ("big.stl", False, "MEDFACE_MAX_FACES"),
    ("big.ply", True, "MEDFACE_MAX_VERTICES"), ("big.obj", True, "MEDFACE_MAX_VERTICES"),
    ("big.vtp", True, "MEDFACE_MAX_FACES"), ("big.vtk", True, "MEDFACE_MAX_VERTICES")])
def test_declared_counts_beyond_the_budget_are_too_large(tmp_path, ico, monkeypatch, name, binary, variable):
    path = written(ico, tmp_path, name, binary=binary)
    monkeypatch.setenv(variable, "30")
    message = refused(path, "too large")
    assert variable in message
    monkeypatch.setenv(variable, "100")
    assert read_mesh(path).n_faces == 80


def test_binary_stl_whose_count_disagrees_with_its_length(tmp_path, ico):
    data = bytearray(written(ico, tmp_path, "ico.stl").read_bytes())
    data += bytes(50)  # one more record than the header declares
    bad = tmp_path / "long.stl"
    bad.write_bytes(bytes(data))
    with pytest.raises(InputError):
        read_mesh(bad)


def test_ascii_stl_without_endsolid_is_truncated(tmp_path, ico):
    text = written(ico, tmp_path, "ico.stl", binary=False).read_text(encoding="ascii")
    cut = tmp_path / "cut.stl"
    cut.write_text(text[: text.rindex("endsolid")], encoding="ascii")  # cut exactly after the last facet
    refused(cut, "without its closing 'endsolid'")


def test_ply_header_lies_are_refused(tmp_path, ico):
    text = written(ico, tmp_path, "ico.ply", binary=False).read_text(encoding="utf-8")
    cases = {"property double x": ("property doubel x", "TYPE one of"),
             "element vertex 42": ("element vertex 42.5", "not a count"),
             "element face 80": ("element face 81", "declares 81 face elements but only 80"),
             "end_header": ("end_headr", "no 'end_header'")}
    for old, (new, match) in cases.items():
        bad = tmp_path / "bad.ply"
        bad.write_text(text.replace(old, new, 1), encoding="utf-8")
        refused(bad, match)


@pytest.mark.parametrize("count", ["inf", "1e308", "nan", "-3", "2.5"])
def test_ascii_ply_list_counts_that_are_not_counts(tmp_path, ico, count):
    """A face row's list count patched to inf raised an OverflowError (fuzz finding)."""
    lines = written(ico, tmp_path, "ico.ply", binary=False).read_text(encoding="utf-8").split("\n")
    row = lines.index("end_header") + 1 + 42 + 7  # the 8th face row
    lines[row] = " ".join([count, *lines[row].split()[1:]])
    bad = tmp_path / "count.ply"
    bad.write_text("\n".join(lines), encoding="utf-8")
    refused(bad, r"face row \(line 50 after the header\)")


def test_a_million_triangle_stl_reads_in_linear_memory(tmp_path):
    """10 M triangles must not blow up: the exact-duplicate merge is one hash sort (it was an
    O(n log n) np.unique over rows taking ~5x longer). 1 M random triangles (3 M vertices) here."""
    import time

    n = 1_000_000
    records = np.zeros(n, dtype=[("normal", "<f4", 3), ("v", "<f4", (3, 3)), ("attr", "<u2")])
    rng = np.random.default_rng(0)
    records["v"] = rng.normal(size=(n, 3, 3))
    records["v"][1::2, 0] = records["v"][0::2, 1]  # shared corners, to be merged
    path = tmp_path / "million.stl"
    with open(path, "wb") as fh:
        fh.write(bytes(80) + np.uint32(n).tobytes() + records.tobytes())
    start = time.perf_counter()
    mesh = read_mesh(path)
    elapsed = time.perf_counter() - start
    assert mesh.n_faces == n and mesh.n_vertices == 3 * n - n // 2
    assert elapsed < 20, elapsed  # about 2 s alone on a laptop core


def test_hash_merge_agrees_with_exact_merge():
    rng = np.random.default_rng(5)
    vertices = rng.integers(0, 4, size=(3000, 3)).astype(float)  # many exact duplicates
    vertices[::7] *= -1.0  # -0.0 and 0.0 count as equal, as np.unique counts them
    faces = rng.integers(0, len(vertices), size=(1000, 3))
    merged, new_faces, _ = merge_exact_duplicates(vertices, faces)
    _, first = np.unique(vertices, axis=0, return_index=True)
    np.testing.assert_array_equal(merged, vertices[np.sort(first)])
    np.testing.assert_array_equal(merged[new_faces], vertices[faces] + 0.0)


# mesh sanity ---------------------------------------------------------------------------------
def test_mesh_problems_of_a_clean_closed_surface_is_empty(ico):
    assert mesh_problems(ico) == []


def test_mesh_problems_names_each_problem(ico):
    v, f = ico.vertices, ico.faces
    open_mesh = SurfaceMesh(v, f[1:])
    assert any(p.startswith("open: 3 boundary edges") for p in mesh_problems(open_mesh))
    two = SurfaceMesh(np.vstack([v, v + 50]), np.vstack([f, f + len(v)]))
    assert "2 separate components" in " ".join(mesh_problems(two))
    flipped = f.copy()
    flipped[0] = flipped[0, ::-1]
    assert "3 edges where neighbouring triangles wind in opposite directions" in " ".join(
        mesh_problems(SurfaceMesh(v, flipped)))
    assert "wind inward" in " ".join(mesh_problems(SurfaceMesh(v, f[:, ::-1])))
    degenerate = SurfaceMesh(v, np.vstack([f, [[0, 0, 1]]]))
    assert "1 degenerate triangles" in " ".join(mesh_problems(degenerate, checks=("degenerate",)))
    doubled = SurfaceMesh(np.vstack([v, v[:1]]), np.vstack([f, [[len(v), 1, 2]]]))
    assert "1 duplicated vertices" in " ".join(mesh_problems(doubled))
    assert "1 duplicated triangles" in " ".join(mesh_problems(SurfaceMesh(v, np.vstack([f, f[:1]]))))
    assert "1 vertices used by no triangle" in " ".join(mesh_problems(SurfaceMesh(np.vstack([v, [[0, 0, 99]]]), f)))


def test_mesh_problems_warns_about_very_large_meshes(ico, monkeypatch):
    import medface.data.mesh as mesh_module

    monkeypatch.setattr(mesh_module, "LARGE_MESH_FACES", 50)
    assert mesh_problems(ico, checks=("size",)) == [
        "80 triangles: processing will be slow and need much memory (consider decimating the mesh)"]
    with pytest.raises(ValueError, match="unknown mesh checks"):
        mesh_problems(ico, checks=("nonsense",))
    assert set(MESH_CHECKS) >= {"open", "components", "degenerate", "duplicate_vertices", "winding", "inward"}


def test_inspect_skull_reports_mesh_problems_as_warnings(tmp_path, ico):
    from medface_forensic.inspect import inspect_skull

    skull = SurfaceMesh(ico.vertices * 10, np.vstack([ico.faces, ico.faces[:1], [[0, 0, 1]]]), name="skull")
    warnings = inspect_skull(skull).warnings
    assert any("duplicated triangles" in w for w in warnings) and any("degenerate" in w for w in warnings)
