"""Read and write triangle surfaces: STL, PLY and OBJ through trimesh, VTP and legacy VTK through VTK.

Coordinates are never changed on reading: trimesh runs with ``process=False`` and only vertices
that are *exactly* equal are merged (STL stores three vertices per triangle), keeping the order
in which vertices first appear. VTK files are taken as they are. PLY and OBJ are written by
medface itself so that vertices keep full float64 precision.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..data.mesh import SurfaceMesh
from ..errors import InputError
from ._files import atomic_output, output_suffix
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
    geometries in one file are concatenated. Raises :class:`InputError` for missing, empty,
    truncated or corrupt files and NaN coordinates.
    """
    kind = require_category(path, "mesh")
    path = Path(path)
    if kind in ("vtp", "vtk-legacy"):
        vertices, faces, point_data = _read_vtk(path, kind)
    else:
        vertices, faces, point_data = merge_exact_duplicates(*_read_trimesh(path, kind))
    return SurfaceMesh(vertices, faces, point_data, name=_stem(path), source=str(path))


def merge_exact_duplicates(vertices: np.ndarray, faces: np.ndarray,
                           point_data: dict[str, np.ndarray] | None = None):
    """Merge vertices that are bit-for-bit equal, in coordinates and in every point-data value.

    Returns ``(vertices, faces, point_data)`` with vertices in order of first appearance.
    Nothing moves (no tolerance is used), and vertices that differ only in their point data
    (say texture coordinates on a seam) stay apart.
    """
    point_data = {k: np.asarray(v) for k, v in (point_data or {}).items()}
    vertices = np.asarray(vertices, dtype=np.float64)
    if len(vertices) == 0 or not np.isfinite(vertices).all():
        return vertices, faces, point_data  # SurfaceMesh reports empty or NaN meshes
    key = np.column_stack([vertices, *(v.reshape(len(v), -1).astype(np.float64) for v in point_data.values())])
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    if len(first) == len(vertices):
        return vertices, faces, point_data
    order = np.argsort(first)
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    keep = first[order]
    new_faces = rank[np.asarray(inverse).reshape(-1)][np.asarray(faces, dtype=np.int64)]
    return vertices[keep], new_faces, {k: v[keep] for k, v in point_data.items()}


def _read_trimesh(path: Path, kind: str):
    import trimesh

    file_type = _TRIMESH_TYPES[kind]
    try:
        with open(path, "rb") as fh:
            scene = trimesh.load_scene(fh, file_type=file_type, process=False, **_TRIMESH_OPTIONS[file_type])
    except Exception as exc:  # a third-party parser fails on bad bytes with any exception type
        raise InputError(f"cannot be read as {describe(kind)}: {type(exc).__name__}: {exc}", path=path,
                         hint="the file may be truncated or corrupt") from exc
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
    return np.concatenate(vertices), np.concatenate(faces), point_data


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


def _read_vtk(path: Path, kind: str):
    from vtkmodules.vtkIOLegacy import vtkDataSetReader
    from vtkmodules.vtkIOXML import vtkXMLPolyDataReader

    reader = vtkXMLPolyDataReader() if kind == "vtp" else vtkDataSetReader()
    reader.SetFileName(str(path))
    with _vtk_messages() as messages:
        reader.Update()
    data = reader.GetOutput()
    problems = messages()
    if problems:
        raise InputError(f"cannot be read as {describe(kind)}: {problems}", path=path,
                         hint="the file may be truncated or corrupt")
    return _vtk_surface(data, path, kind)


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
    if data.GetClassName() == "vtkUnstructuredGrid":
        data = _outer_surface(data)
    mesh = SurfaceMesh.from_pyvista(pv.wrap(data), source=str(path))
    return mesh.vertices, mesh.faces, mesh.point_data


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


def _vtk_problem(text: str) -> str:
    """The first VTK error or warning message, without file and line noise ("" if none)."""
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
