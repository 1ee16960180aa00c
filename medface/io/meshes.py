"""Read and write triangle surfaces: STL, PLY and OBJ through trimesh, VTP and legacy VTK through VTK.

Coordinates are never changed on reading: trimesh runs with ``process=False`` and only vertices
that are *exactly* equal are merged (STL stores three vertices per triangle), keeping the order
in which vertices first appear. VTK files are taken as they are. PLY and OBJ are written by
medface itself so that vertices keep full float64 precision.

Reading meets files no one here wrote: only regular files are opened, what a file declares is
checked first (:mod:`medface.io.mesh_headers`), and VTK, whose C++ can crash on a malformed
file, reads in a child process (:mod:`medface.io.isolated`) that hands back numpy arrays.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..data.mesh import SurfaceMesh, unique_rows
from ..errors import InputError, MedfaceError
from ._files import atomic_output, output_suffix
from .isolated import isolation_enabled, mapped_bytes, run_isolated
from .limits import require_regular_file
from .mesh_headers import (MeshDeclared, ObjCounts, check_mesh_header, check_obj_text, check_ply_ascii_rows,
                           read_ply_header)
from .sniff import describe, require_category

MESH_SUFFIXES = (".stl", ".ply", ".obj", ".vtp", ".vtk")

_TRIMESH_TYPES = {"stl-binary": "stl", "stl-ascii": "stl", "ply": "ply", "obj": "obj"}
_TRIMESH_OPTIONS = {
    "obj": {"maintain_order": True, "skip_materials": True},
    "ply": {"fix_texture": False, "skip_materials": True},
    "stl": {},
}
_PLY_GEOMETRY = {"x", "y", "z"}
_PLY_TYPES = {  # numpy dtype -> PLY property type
    "float64": "double", "float32": "float", "int32": "int", "uint32": "uint", "int16": "short",
    "uint16": "ushort", "int8": "char", "uint8": "uchar",
}


# reading ----------------------------------------------------------------------------------
def read_mesh(path) -> SurfaceMesh:
    """Read a triangle surface from STL (binary or ASCII), PLY, OBJ, VTP or legacy VTK.

    The format is recognised from the content. Vertices keep their exact coordinates and file
    order; in STL, PLY and OBJ exact duplicates are merged (see :func:`merge_exact_duplicates`);
    polygons are triangulated; VTK and PLY per-vertex arrays become ``point_data``; several
    geometries in one file are concatenated. Raises :class:`InputError` for anything but a
    regular file, for missing, empty, truncated or corrupt files, counts beyond the budgets of
    :mod:`medface.io.limits` and NaN coordinates. What a file declares is checked before a
    parser sees it (:mod:`medface.io.mesh_headers`), and VTK reads in a child process
    (:mod:`medface.io.isolated`), so no file can crash or exhaust the process.
    """
    if os.path.lexists(path):
        require_regular_file(path, "mesh")
    kind = require_category(path, "mesh")
    path = Path(path)
    declared = check_mesh_header(path, kind)
    if kind in ("vtp", "vtk-legacy"):
        vertices, faces, point_data = _read_vtk(path, kind, declared)
    else:
        vertices, faces, point_data = _read_trimesh(path, kind)
    return SurfaceMesh(vertices, faces, point_data, name=_stem(path), source=str(path))


def merge_exact_duplicates(vertices: np.ndarray, faces: np.ndarray,
                           point_data: dict[str, np.ndarray] | None = None):
    """Merge vertices that are bit-for-bit equal, in coordinates and in every point-data value.

    Returns ``(vertices, faces, point_data)`` with vertices in order of first appearance.
    Nothing moves (no tolerance is used), and vertices that differ only in their point data
    (say texture coordinates on a seam) stay apart. Linear in memory and O(n log n) in time
    (one sort of a 64-bit hash per vertex, every merge verified value by value).
    """
    point_data = {k: np.asarray(v) for k, v in (point_data or {}).items()}
    vertices = np.asarray(vertices, dtype=np.float64)
    if len(vertices) == 0 or not np.isfinite(vertices).all():
        return vertices, faces, point_data  # SurfaceMesh reports empty or NaN meshes
    key = np.column_stack([vertices, *(v.reshape(len(v), -1).astype(np.float64) for v in point_data.values())])
    first, inverse = unique_rows(key)
    if len(first) == len(vertices):
        return vertices, faces, point_data
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keep = first[order]
    new_faces = rank[np.asarray(inverse).reshape(-1)][np.asarray(faces, dtype=np.int64)]
    return vertices[keep], new_faces, {k: v[keep] for k, v in point_data.items()}


def _read_trimesh(path: Path, kind: str):
    """Vertices, faces and point data of an STL, PLY or OBJ file (exact duplicates merged)."""
    data = path.read_bytes()  # its size is bounded by check_mesh_header
    expected = _check_text(path, kind, data)
    try:
        vertices, faces, point_data = _trimesh_arrays(data, path, kind)
    except MedfaceError:
        raise
    except IndexError as exc:  # trimesh indexes its vertex list with a face number beyond it
        raise InputError(f"has faces that refer to vertices the file does not hold ({exc})", path=path,
                         hint="the file is truncated or corrupt") from None
    except MemoryError:
        raise InputError(f"needed more memory than available to read as {describe(kind)}", path=path,
                         hint="the file may declare sizes it does not hold") from None
    except Exception as exc:  # a third-party parser fails on bad bytes with any exception type
        raise InputError(f"cannot be read as {describe(kind)}: {type(exc).__name__}: {str(exc)[:200]}", path=path,
                         hint="the file may be truncated or corrupt") from None
    if isinstance(expected, ObjCounts):
        _check_obj_result(path, expected, len(faces))
    return vertices, faces, point_data


def _check_text(path: Path, kind: str, data: bytes):
    """Checks on the whole content before trimesh parses it (OBJ lines, ASCII PLY rows)."""
    if kind == "obj":
        return check_obj_text(path, data)
    if kind == "ply":
        fmt, elements, header_bytes = read_ply_header(path)
        if fmt == "ascii":
            try:
                body = data[header_bytes:].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise InputError(f"is an ASCII PLY file with bytes that are not text (at byte "
                                 f"{header_bytes + exc.start:,})", path=path, hint="the file is corrupt") from None
            check_ply_ascii_rows(path, elements, body)
    return None


def _check_obj_result(path: Path, counts: ObjCounts, n_triangles: int) -> None:
    if n_triangles < counts.face_lines:
        raise InputError(f"has {counts.face_lines:,} face lines but only {n_triangles:,} triangles could be read",
                         path=path, hint="some faces are malformed; the file is truncated or corrupt")
    if counts.declared_triangles is not None and counts.declared_triangles != n_triangles:
        raise InputError(f"declares {counts.declared_triangles:,} triangles in its header comment but holds "
                         f"{n_triangles:,}: it is truncated or was edited", path=path,
                         hint="copy or export the file again")
    if counts.declared_face_lines is not None and counts.declared_face_lines != counts.face_lines:
        raise InputError(f"declares {counts.declared_face_lines:,} faces in its header comment but holds "
                         f"{counts.face_lines:,}: it is truncated or was edited", path=path,
                         hint="copy or export the file again")


def _trimesh_arrays(data: bytes, path: Path, kind: str):
    import trimesh

    file_type = _TRIMESH_TYPES[kind]
    with _quiet_trimesh():
        scene = trimesh.load_scene(io.BytesIO(data), file_type=file_type, process=False, **_TRIMESH_OPTIONS[file_type])
    meshes = [(scene.graph[node][0], scene.geometry[scene.graph[node][1]]) for node in scene.graph.nodes_geometry]
    meshes = [(matrix, geom) for matrix, geom in meshes if isinstance(geom, trimesh.Trimesh) and len(geom.faces)]
    if not meshes:
        raise InputError(f"is {describe(kind)} without triangles that could be read (it is empty, truncated, "
                         "or holds only points or lines)", path=path)
    if kind == "ply":
        _check_ply_counts(meshes[0][1], path)
    vertices, faces, offset = [], [], 0
    for matrix, geom in meshes:
        v = np.asarray(geom.vertices, dtype=np.float64)
        if not np.array_equal(matrix, np.eye(4)):
            v = trimesh.transform_points(v, matrix)
        vertices.append(v)
        faces.append(np.asarray(geom.faces, dtype=np.int64) + offset)
        offset += len(v)
    point_data = _ply_point_data(meshes[0][1], offset) if kind == "ply" and len(meshes) == 1 else {}
    return merge_exact_duplicates(np.concatenate(vertices), np.concatenate(faces), point_data)


@contextmanager
def _quiet_trimesh() -> Iterator[None]:
    """trimesh logs tracebacks and numpy warns while parsing bad bytes; the InputError raised
    afterwards says what matters, so neither reaches the user's terminal."""
    import logging
    import warnings

    logger = logging.getLogger("trimesh")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            yield
    finally:
        logger.setLevel(level)


def _check_ply_counts(geom, path: Path) -> None:
    """Refuse a PLY file holding fewer elements than its header declares (trimesh accepts it)."""
    for name, element in geom.metadata.get("_ply_raw", {}).items():
        data = element.get("data")
        columns = data.values() if isinstance(data, dict) else [data]
        found = min((len(c) for c in columns if c is not None), default=0)
        if found < element.get("length", 0):
            raise InputError(f"is truncated: its PLY header declares {element['length']} {name} elements but "
                             f"only {found} are present", path=path, hint="copy or export the file again")


def _ply_point_data(geom, n_vertices: int) -> dict[str, np.ndarray]:
    """Per-vertex PLY properties other than x, y, z; ``name_0``, ``name_1`` ... become columns."""
    element = geom.metadata.get("_ply_raw", {}).get("vertex", {})
    data = element.get("data")
    columns = {}
    for key in element.get("properties", {}):
        if key in _PLY_GEOMETRY:
            continue
        values = np.asarray(data[key])  # a structured array (binary) or a dict of (N, 1) arrays (ASCII)
        if len(values) == n_vertices and values.size == n_vertices:
            columns[key] = values.reshape(-1)
    return _group_columns(columns)


def _group_columns(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    grouped: dict[str, np.ndarray] = {}
    used: set[str] = set()
    for key in columns:
        match = re.fullmatch(r"(.+)_0", key)
        if match:
            base = match.group(1)
            parts = []
            while f"{base}_{len(parts)}" in columns:
                parts.append(f"{base}_{len(parts)}")
            if len(parts) > 1:
                grouped[base] = np.column_stack([columns[p] for p in parts])
                used.update(parts)
    for key, values in columns.items():
        if key not in used:
            grouped[key] = values
    return grouped


def _read_vtk(path: Path, kind: str, declared: MeshDeclared):
    """VTP or legacy VTK through VTK, in a child process: a crash, an abort or a memory blow-up
    in VTK's C++ becomes an InputError; the child hands back numpy arrays only."""
    import pyvista  # noqa: F401 - imported here, once, rather than in every child (~0.25 s each)
    from vtkmodules import vtkFiltersGeometry, vtkIOLegacy, vtkIOXML  # noqa: F401
    from vtkmodules.util import numpy_support  # noqa: F401

    outcome = run_isolated(_vtk_arrays, str(path), kind, path=path, what="mesh",
                           timeout_s=120.0 + declared.size / 1e6, memory_bytes=_memory_cap(declared))
    if outcome[0] == "error":
        raise InputError(outcome[1], path=path, hint=outcome[2])
    return outcome[1:]


def _memory_cap(declared: MeshDeclared) -> int | None:
    """Address space for the child: what the process already maps plus room for the data the
    file declares (generous: VTK keeps the file's arrays and the triangulated copy)."""
    mapped = mapped_bytes()
    if mapped is None:
        return None
    threads = (os.cpu_count() or 8) * (128 << 20)  # thread stacks and malloc arenas VTK's thread pool may map
    return (mapped + (2 << 30) + threads + 24 * declared.size + 512 * (declared.points or 0)
            + 256 * (declared.cells or 0))


def _vtk_arrays(path: str, kind: str):
    """In the child: ``("ok", vertices, faces, point_data)`` or ``("error", message, hint)``."""
    from vtkmodules.vtkIOLegacy import vtkDataSetReader
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    if isolation_enabled():  # in the child: what the C++ runtime prints as it dies (std::bad_alloc) stays quiet
        _silence_stderr()
    reader = vtkXMLPolyDataReader() if kind == "vtp" else vtkDataSetReader()
    reader.SetFileName(path)
    with _vtk_messages() as messages:
        reader.Update()
    problems = messages()
    if problems:
        return "error", f"cannot be read as {describe(kind)}: {problems}", "the file may be truncated or corrupt"
    try:
        return ("ok", *_vtk_surface(reader.GetOutput(), Path(path), kind))
    except InputError as exc:
        return "error", exc.message, exc.hint
    except Exception as exc:  # what VTK or pyvista make of data that passed the checks
        return ("error", f"cannot be read as {describe(kind)}: {type(exc).__name__}: {str(exc)[:200]}",
                "the file may be truncated or corrupt")


def _silence_stderr() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    os.close(devnull)


def _vtk_surface(data, path: Path, kind: str):
    import pyvista as pv

    if data is None or data.GetClassName() not in ("vtkPolyData", "vtkUnstructuredGrid"):
        found = data.GetClassName() if data is not None else "nothing"
        raise InputError(f"is {describe(kind)} holding {found}, not a surface or a mesh of cells", path=path,
                         hint="only POLYDATA and UNSTRUCTURED_GRID data sets can be read as meshes")
    if data.GetNumberOfCells() == 0:
        raise InputError(
            f"has {data.GetNumberOfPoints()} points but no cells, so no surface; the file may be truncated",
            path=path)
    _check_vtk_cells(data, path)
    if data.GetClassName() == "vtkUnstructuredGrid":
        data = _outer_surface(data)
    mesh = SurfaceMesh.from_pyvista(pv.wrap(data), source=str(path))
    return mesh.vertices, mesh.faces, mesh.point_data


#: VTK cell type -> number of points, for the types whose size is fixed (others vary)
_CELL_POINTS = {1: 1, 3: 2, 5: 3, 8: 4, 9: 4, 10: 4, 11: 8, 12: 8, 13: 6, 14: 5, 15: 10, 16: 12, 21: 3, 22: 6,
                23: 8, 24: 10, 25: 20, 26: 15, 27: 13, 28: 9, 29: 27, 30: 6, 31: 12, 32: 18, 33: 24, 34: 7, 35: 4,
                37: 19}
_CELL_VARIABLE = {2, 4, 6, 7, 36, 41, 42, *range(68, 82)}


def _check_vtk_cells(data, path: Path) -> None:
    """Before any VTK filter walks the cells: offsets that add up, point numbers within the
    points, known cell types of the right size, point data with one tuple per point (a flipped
    byte in a binary file breaks these, and filters then read out of bounds)."""
    from vtkmodules.util.numpy_support import vtk_to_numpy

    n_points = data.GetNumberOfPoints()
    grid = data.GetClassName() == "vtkUnstructuredGrid"
    arrays = [data.GetCells()] if grid else [data.GetVerts(), data.GetLines(), data.GetPolys(), data.GetStrips()]
    for cells in arrays:
        if cells is None or cells.GetNumberOfCells() == 0:
            continue
        offsets = vtk_to_numpy(cells.GetOffsetsArray()).astype(np.int64)
        conn = vtk_to_numpy(cells.GetConnectivityArray())
        if offsets[0] != 0 or offsets[-1] != len(conn) or np.any(np.diff(offsets) < 0):
            raise InputError("has cells whose sizes do not add up to its connectivity list", path=path,
                             hint="the file is corrupt")
        if len(conn) and (conn.min() < 0 or conn.max() >= n_points):
            raise InputError(f"has cells that refer to point numbers outside 0..{n_points - 1}", path=path,
                             hint="the file is corrupt")
        if grid:
            _check_cell_types(vtk_to_numpy(data.GetCellTypesArray()), np.diff(offsets), path)
    point_data = data.GetPointData()
    for index in range(point_data.GetNumberOfArrays()):
        array = point_data.GetAbstractArray(index)
        if array is not None and array.GetNumberOfTuples() != n_points:
            raise InputError(f"has point data '{array.GetName()}' with {array.GetNumberOfTuples():,} values for "
                             f"{n_points:,} points", path=path, hint="the file is corrupt")


def _check_cell_types(types: np.ndarray, sizes: np.ndarray, path: Path) -> None:
    if len(types) != len(sizes):
        raise InputError(f"declares {len(types):,} cell types for {len(sizes):,} cells", path=path,
                         hint="the file is corrupt")
    known = np.zeros(256, bool)
    known[list(_CELL_POINTS) + list(_CELL_VARIABLE)] = True
    expected = np.zeros(256, np.int64)
    expected[list(_CELL_POINTS)] = list(_CELL_POINTS.values())
    types = types.astype(np.int64)
    if not known[types].all():
        raise InputError(f"has cells of unknown VTK type {int(types[~known[types]][0])}", path=path,
                         hint="the file is corrupt")
    fixed = expected[types] > 0
    if np.any(sizes[fixed] != expected[types][fixed]):
        raise InputError("has cells whose number of points does not match their cell type", path=path,
                         hint="the file is corrupt")


def _outer_surface(grid):
    """The boundary surface (polygons, point data kept) of an unstructured grid."""
    from vtkmodules.vtkFiltersGeometry import vtkDataSetSurfaceFilter

    surface = vtkDataSetSurfaceFilter()
    surface.SetInputData(grid)
    surface.Update()
    return surface.GetOutput()


@contextmanager
def _vtk_messages() -> Iterator:
    """Collect VTK's errors and warnings instead of printing them; yield a function returning them."""
    from vtkmodules.vtkCommonCore import vtkLogger, vtkOutputWindow, vtkStringOutputWindow

    previous = vtkOutputWindow.GetInstance()
    capture = vtkStringOutputWindow()
    verbosity = vtkLogger.GetCurrentVerbosityCutoff()
    vtkOutputWindow.SetInstance(capture)
    vtkLogger.SetStderrVerbosity(vtkLogger.VERBOSITY_OFF)
    try:
        yield lambda: _vtk_problem(capture.GetOutput())
    finally:
        vtkOutputWindow.SetInstance(previous)
        vtkLogger.SetStderrVerbosity(verbosity)


def _vtk_problem(text) -> str:
    """The first VTK error or warning message, without file and line noise ("" if none)."""
    if isinstance(text, bytes):  # VTK hands back bytes when a message quotes non-UTF-8 file content
        text = text.decode("utf-8", errors="replace")
    for block in re.split(r"\n\s*\n", text):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        if lines and re.match(r"(ERROR|Warning|Generic Warning)", lines[0]):
            detail = " ".join(lines[1:2]) or lines[0]
            return re.sub(r"^\w+ \(0x[0-9a-fA-F]+\):\s*", "", detail)[:300]
    return ""


def _stem(path: Path) -> str:
    name = path.name
    for suffix in MESH_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


# writing ----------------------------------------------------------------------------------
def write_mesh(mesh: SurfaceMesh, path, *, binary: bool = True) -> Path:
    """Write ``mesh`` as STL, PLY, OBJ, VTP or legacy VTK, chosen by the extension.

    PLY stores float64 vertices and point data as extra vertex properties (an (N, k) array
    ``a`` as ``a_0`` ... ``a_{k-1}``); OBJ stores 17 significant digits and no point data;
    VTP and VTK keep float64 vertices and all point data. STL stores float32 by specification
    (below 1e-5 mm error for coordinates within +-128 mm) and no point data. ``binary`` picks
    binary or ASCII for STL, PLY, VTP and VTK. The file appears only once complete.
    """
    path = Path(path)
    suffix = output_suffix(path, MESH_SUFFIXES, "mesh")
    writer = {".stl": _write_stl, ".ply": _write_ply, ".obj": _write_obj, ".vtp": _write_vtk, ".vtk": _write_vtk}
    with atomic_output(path, "mesh") as tmp:
        writer[suffix](mesh, tmp, binary)
    return path


def _write_stl(mesh: SurfaceMesh, path: Path, binary: bool) -> None:
    from trimesh.exchange.stl import export_stl, export_stl_ascii

    tm = mesh.to_trimesh()
    if binary:
        path.write_bytes(export_stl(tm))
    else:
        path.write_text(export_stl_ascii(tm), encoding="ascii")


def _write_obj(mesh: SurfaceMesh, path: Path, binary: bool) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(f"# written by medface: {mesh.n_vertices} vertices, {mesh.n_faces} triangles, LPS mm\n")
        if mesh.name:
            fh.write(f"o {_one_word(mesh.name)}\n")
        np.savetxt(fh, mesh.vertices, fmt="v %.17g %.17g %.17g")
        np.savetxt(fh, mesh.faces + 1, fmt="f %d %d %d")


def _one_word(name: str) -> str:
    return re.sub(r"\s+", "_", name.strip()) or "mesh"


def _ply_columns(mesh: SurfaceMesh) -> list[tuple[str, np.ndarray]]:
    """(property name, values) for x, y, z and every point-data component."""
    columns = [(axis, mesh.vertices[:, k]) for k, axis in enumerate("xyz")]
    for key, values in mesh.point_data.items():
        values = np.asarray(values)
        if values.dtype == bool:
            values = values.astype(np.uint8)
        if values.dtype.name not in _PLY_TYPES:
            values = values.astype(np.float64)
        name = _one_word(key)
        if values.ndim == 1:
            columns.append((name, values))
        else:
            flat = values.reshape(len(values), -1)
            columns.extend((f"{name}_{k}", flat[:, k]) for k in range(flat.shape[1]))
    return columns


def _write_ply(mesh: SurfaceMesh, path: Path, binary: bool) -> None:
    columns = _ply_columns(mesh)
    header = ["ply", f"format {'binary_little_endian' if binary else 'ascii'} 1.0", "comment written by medface (LPS, mm)",
              f"element vertex {mesh.n_vertices}"]
    header += [f"property {_PLY_TYPES[values.dtype.name]} {name}" for name, values in columns]
    header += [f"element face {mesh.n_faces}", "property list uchar int vertex_indices", "end_header"]
    with open(path, "wb") as fh:
        fh.write(("\n".join(header) + "\n").encode("ascii"))
        if binary:
            vertex = np.empty(mesh.n_vertices, dtype=[(n, values.dtype.newbyteorder("<")) for n, values in columns])
            for name, values in columns:
                vertex[name] = values
            face = np.empty(mesh.n_faces, dtype=[("n", "u1"), ("i", "<i4", (3,))])
            face["n"] = 3
            face["i"] = mesh.faces
            fh.write(vertex.tobytes())
            fh.write(face.tobytes())
        else:
            formats = " ".join("%d" if values.dtype.kind in "iu" else "%.17g" for _, values in columns)
            np.savetxt(fh, np.column_stack([v.astype(np.float64) for _, v in columns]), fmt=formats)
            np.savetxt(fh, mesh.faces, fmt="3 %d %d %d")


def _write_vtk(mesh: SurfaceMesh, path: Path, binary: bool) -> None:
    mesh.to_pyvista().save(str(path), binary=binary)
