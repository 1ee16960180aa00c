"""Header pre-checks for mesh files, run before trimesh or VTK sees a file.

The parsers trust what a file declares: a VTP with ``NumberOfPoints="-1"`` or a legacy VTK whose
counts were flipped makes VTK crash, a huge declared count makes it allocate until
``std::bad_alloc`` aborts the process, a binary legacy VTK cut short leaves arrays
uninitialised, an ASCII PLY with one number missing shifts every value after it. The functions
here read what each format declares (binary STL's triangle count, ASCII STL's facets, PLY's
header, OBJ's lines, VTP's ``<Piece>`` counts, the sections of a legacy VTK) and refuse, with an
:class:`InputError` naming the file, counts beyond the budgets of :mod:`medface.io.limits`, counts
that the file's length or content contradicts, and structures the readers would misread.

:func:`check_mesh_header` returns the declared sizes, which bound the memory a native read in a
child process (:mod:`medface.io.isolated`) may use.
"""

from __future__ import annotations

import mmap
import re
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError, MedfaceError
from .limits import budget, check_count

__all__ = ["MeshDeclared", "ObjCounts", "PlyElement", "check_mesh_header", "check_obj_text", "check_ply_ascii_rows",
           "check_vtk_legacy", "check_legacy_cells", "read_ply_header"]

_CHUNK = 1 << 24  # bytes scanned at a time (memory stays bounded whatever the file size)
_HEADER_LIMIT = 1 << 20  # a PLY header or VTP XML head longer than this is refused / not parsed
_MAX_COMPONENTS = 4096  # components of one array (VTK point data, texture coordinates)
_CELL_SIZE_FACTOR = 64  # connectivity entries per cell allowed on average (a hexahedron has 8)


@dataclass(frozen=True)
class MeshDeclared:
    """What a mesh file declares, once checked (``None`` where the format declares nothing)."""

    points: int | None = None
    cells: int | None = None
    size: int = 0


def check_mesh_header(path, kind: str) -> MeshDeclared:
    """Check what a ``kind`` mesh file (a kind from :func:`medface.io.sniff`) declares against
    the budgets and the file itself; :class:`InputError` for anything a parser must not see."""
    path = Path(path)
    checks = {"stl-binary": _check_stl_binary, "stl-ascii": _check_stl_ascii, "ply": _check_ply,
              "obj": _check_obj, "vtp": _check_vtp, "vtk-legacy": check_vtk_legacy}
    try:
        size = path.stat().st_size
        return checks[kind](path, size)
    except MedfaceError:
        raise
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", path=path) from None
    except (ValueError, OverflowError, UnicodeDecodeError, struct.error, IndexError) as exc:
        raise InputError(f"has a header that cannot be parsed ({type(exc).__name__}: {exc})", path=path,
                         hint="the file may be corrupt; export it again") from None


# STL --------------------------------------------------------------------------------------
def _check_stl_binary(path: Path, size: int) -> MeshDeclared:
    with open(path, "rb") as fh:
        head = fh.read(84)
    count = struct.unpack("<I", head[80:84])[0]
    expected = 84 + 50 * count
    if size != expected:
        raise InputError(f"is a binary STL declaring {count:,} triangles ({expected:,} bytes) but it has {size:,} "
                         "bytes: it is truncated or corrupt", path=path, hint="copy or export the file again")
    return MeshDeclared(points=None, cells=check_count(count, "max_faces", "triangles", path), size=size)


def _check_stl_ascii(path: Path, size: int) -> MeshDeclared:
    """Count the facets (the format declares no count) and look for the closing ``endsolid``."""
    facets, tail = 0, b""
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            lowered = (tail + block).lower()
            facets += lowered.count(b"endfacet") - tail.lower().count(b"endfacet")
            tail = lowered[-16:]
    check_count(facets, "max_faces", "triangles", path)
    if not _ends_with(path, size, b"endsolid"):
        raise InputError("is an ASCII STL without its closing 'endsolid' line: it is truncated", path=path,
                         hint="copy or export the file again")
    return MeshDeclared(cells=facets, size=size)


def _ends_with(path: Path, size: int, word: bytes) -> bool:
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 4096))
        return word in fh.read().lower()


# PLY --------------------------------------------------------------------------------------
_PLY_SIZES = {"char": 1, "uchar": 1, "int8": 1, "uint8": 1, "short": 2, "ushort": 2, "int16": 2, "uint16": 2,
              "int": 4, "uint": 4, "int32": 4, "uint32": 4, "float": 4, "float32": 4, "double": 8, "float64": 8}
_PLY_INTEGERS = {name for name in _PLY_SIZES if not name.startswith(("float", "double"))}
_PLY_FORMATS = ("ascii", "binary_little_endian", "binary_big_endian")


@dataclass
class PlyElement:
    name: str
    count: int
    properties: list  # (name, type) for a scalar, (name, (count type, item type)) for a list


def read_ply_header(path: Path) -> tuple[str, list[PlyElement], int]:
    """(format, elements, header length in bytes) of a PLY file, checked property by property."""
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_LIMIT)
    match = re.search(rb"(^|\n)end_header[ \t]*\r?\n", head)
    if not match:
        raise InputError("is a PLY file whose header has no 'end_header' line (within its first MiB)", path=path,
                         hint="the file is truncated or not a PLY file")
    lines = head[: match.start()].decode("ascii", errors="replace").splitlines()
    fmt, elements = None, []
    for number, line in enumerate(lines[1:], 2):
        words = line.split()
        if not words or words[0] in ("comment", "obj_info"):
            continue
        if words[0] == "format":
            if len(words) != 3 or words[1] not in _PLY_FORMATS:
                raise _ply_error(path, number, line, f"the format must be one of {', '.join(_PLY_FORMATS)}")
            fmt = words[1]
        elif words[0] == "element":
            if len(words) != 3:
                raise _ply_error(path, number, line, "an element line is 'element NAME COUNT'")
            elements.append(PlyElement(words[1], _ply_count(words[1], words[2], path), []))
        elif words[0] == "property":
            if not elements:
                raise _ply_error(path, number, line, "a property comes before any element")
            elements[-1].properties.append(_ply_property(words, path, number, line))
        else:
            raise _ply_error(path, number, line, "unknown header keyword")
    if fmt is None:
        raise InputError("is a PLY file without a 'format' line", path=path, hint="the file is corrupt")
    return fmt, elements, match.end()


def _ply_count(name: str, text: str, path: Path) -> int:
    limit = "max_vertices" if name == "vertex" else "max_faces"
    return check_count(text if len(text) <= 30 else text[:30] + "...", limit, f"{name} elements", path)


def _ply_property(words: list[str], path: Path, number: int, line: str):
    if len(words) == 3 and words[1] in _PLY_SIZES:
        return words[2], words[1]
    if len(words) == 5 and words[1] == "list" and words[2] in _PLY_INTEGERS and words[3] in _PLY_SIZES:
        return words[4], (words[2], words[3])
    raise _ply_error(path, number, line, "a property is 'property TYPE NAME' or 'property list COUNTTYPE TYPE NAME' "
                                         f"with TYPE one of {', '.join(sorted(_PLY_SIZES))}")


def _ply_error(path: Path, number: int, line: str, why: str) -> InputError:
    return InputError(f"has a PLY header line {number} that cannot be read ({line.strip()[:80]!r}): {why}",
                      path=path, hint="the file is corrupt; export it again")


def _check_ply(path: Path, size: int) -> MeshDeclared:
    fmt, elements, header_bytes = read_ply_header(path)
    if fmt != "ascii":  # each row holds at least its scalars and its lists' counts
        least = sum(e.count * sum(_PLY_SIZES[t if isinstance(t, str) else t[0]] for _, t in e.properties)
                    for e in elements)
        if header_bytes + least > size:
            raise InputError(f"is truncated: its PLY header declares at least {least:,} bytes of data but the file "
                             f"holds {size - header_bytes:,}", path=path, hint="copy or export the file again")
    counts = {e.name: e.count for e in elements}
    return MeshDeclared(points=counts.get("vertex"), cells=counts.get("face"), size=size)


def check_ply_ascii_rows(path: Path, elements: list[PlyElement], text: str) -> None:
    """InputError unless each row of an ASCII PLY body holds the values its element declares
    (a missing or extra number would shift every value after it)."""
    lines = text.splitlines()  # the same rows trimesh's ASCII parser sees
    row = 0
    for element in elements:
        fixed = [t for _, t in element.properties if isinstance(t, str)]
        lists = [i for i, (_, t) in enumerate(element.properties) if not isinstance(t, str)]
        for offset, line in enumerate(lines[row: row + element.count]):
            if not _ply_row_fits(line.split(), len(fixed), lists, len(element.properties)):
                raise InputError(f"has a PLY {element.name} row (line {row + offset + 1} after the header) that does "
                                 f"not hold the values its header declares: {line.strip()[:80]!r}", path=path,
                                 hint="a number is missing or extra; the file is corrupt")
        if len(lines) < row + element.count:
            raise InputError(f"is truncated: its PLY header declares {element.count:,} {element.name} elements "
                             f"but only {max(0, len(lines) - row):,} are present", path=path,
                             hint="copy or export the file again")
        row += element.count
    extra = [line for line in lines[row:] if line.strip()]
    if extra:
        raise InputError(f"holds {len(extra):,} more rows than its PLY header declares", path=path,
                         hint="the counts in the header disagree with the data; the file is corrupt")


def _ply_row_fits(parts: list[str], n_fixed: int, lists: list[int], n_properties: int) -> bool:
    if not lists:
        return len(parts) == n_fixed
    position = 0
    try:
        for index in range(n_properties):
            if index in lists:
                count = float(parts[position])
                if not 0 <= count <= len(parts) or count != int(count):  # also refuses inf and nan
                    return False
                position += 1 + int(count)
            else:
                position += 1
    except (IndexError, ValueError, OverflowError):
        return False
    return position == len(parts)


# OBJ --------------------------------------------------------------------------------------
_OBJ_COUNT_COMMENTS = (
    (re.compile(rb"#\s*written by medface: (\d+) vertices, (\d+) triangles"), "triangles"),
    (re.compile(rb"#\s*Vertices:\s*(\d+)\s*\r?\n#\s*Faces:\s*(\d+)", re.I), "face lines"),
)


def _check_obj(path: Path, size: int) -> MeshDeclared:
    vertices = faces = 0
    with open(path, "rb") as fh:
        tail = b"\n"
        while block := fh.read(_CHUNK):
            text = tail + block
            vertices += text.count(b"\nv ") + text.count(b"\nv\t")
            faces += text.count(b"\nf ") + text.count(b"\nf\t")
            tail = text[-2:]  # a line start split between blocks is counted once
    check_count(vertices, "max_vertices", "vertices", path)
    check_count(faces, "max_faces", "faces", path)
    return MeshDeclared(points=vertices, cells=faces, size=size)


@dataclass(frozen=True)
class ObjCounts:
    vertices: int
    face_lines: int
    declared_triangles: int | None = None  # from a count comment in the file's head
    declared_face_lines: int | None = None


def check_obj_text(path: Path, data: bytes) -> ObjCounts:
    """Refuse OBJ lines a parser would silently drop or misread (a vertex with fewer than three
    coordinates, a face with fewer than three corners: an emptied number or a cut last line);
    return the counts the result must agree with."""
    offset = _obj_short_line(data)
    if offset >= 0:
        end = data.find(b"\n", offset)
        text = data[offset: end if end >= 0 else len(data)]
        what = "vertex with fewer than 3 coordinates" if text.startswith(b"v") else "face with fewer than 3 corners"
        line = data.count(b"\n", 0, offset) + 1
        cut = " (the file may be cut off there)" if end < 0 or not data[end:].strip() else ""
        raise InputError(f"has a {what} on line {line}: {text.strip()[:80]!r}{cut}", path=path,
                         hint="a number is missing; the file is truncated or corrupt")
    counts = {"vertices": data.count(b"\nv ") + data.count(b"\nv\t") + data.startswith((b"v ", b"v\t")),
              "face_lines": data.count(b"\nf ") + data.count(b"\nf\t") + data.startswith((b"f ", b"f\t"))}
    head = data[:4096]
    for pattern, what in _OBJ_COUNT_COMMENTS:
        match = pattern.search(head)
        if match:
            declared_vertices, declared_faces = int(match.group(1)), int(match.group(2))
            if declared_vertices != counts["vertices"]:
                raise InputError(f"declares {declared_vertices:,} vertices in its header comment but holds "
                                 f"{counts['vertices']:,}: it is truncated or was edited", path=path,
                                 hint="copy or export the file again")
            key = "declared_triangles" if what == "triangles" else "declared_face_lines"
            counts[key] = declared_faces
            break
    return ObjCounts(**counts)


def _obj_short_line(data: bytes) -> int:
    """Offset of the first ``v`` or ``f`` line holding fewer than 3 values after its keyword, or
    -1: words counted per line with numpy, a block of lines at a time (memory stays bounded)."""
    start = 0
    while start < len(data):
        end = data.find(b"\n", min(start + _CHUNK, len(data)))
        end = len(data) if end < 0 else end + 1
        buf = np.frombuffer(data, np.uint8, count=end - start, offset=start)
        space = (buf == 32) | (buf == 9) | (buf == 13) | (buf == 10)
        word = ~space & np.concatenate(([True], space[:-1]))
        lines = np.concatenate(([0], np.flatnonzero(buf[:-1] == 10) + 1))
        keyed = (buf[lines] == ord("v")) | (buf[lines] == ord("f"))
        keyed &= space[np.minimum(lines + 1, len(buf) - 1)] | (lines + 1 >= len(buf))  # "v", not "vt"
        short = np.flatnonzero(keyed & (np.add.reduceat(word.astype(np.int32), lines) < 4))
        if len(short):
            return start + int(lines[short[0]])
        start = end
    return -1


# VTP (VTK XML PolyData) -------------------------------------------------------------------
_PIECE = re.compile(rb"<Piece\b([^>]*)>")
_ATTRIBUTE = re.compile(rb'(\w+)\s*=\s*"([^"]*)"')
_DATA_ARRAY = re.compile(rb"<DataArray\b([^>]*)>")
_PIECE_COUNTS = {"NumberOfPoints": "max_vertices", "NumberOfVerts": "max_faces", "NumberOfLines": "max_faces",
                 "NumberOfStrips": "max_faces", "NumberOfPolys": "max_faces"}


def _check_vtp(path: Path, size: int) -> MeshDeclared:
    """Check the ``<Piece>`` counts and ``<DataArray>`` shapes in the XML before any data."""
    with open(path, "rb") as fh:
        head = fh.read(_HEADER_LIMIT)
    appended = head.find(b"<AppendedData")
    if appended >= 0:
        head = head[:appended]
    pieces = list(_PIECE.finditer(head))
    if not pieces and size <= _HEADER_LIMIT:
        raise InputError("is a VTK XML PolyData file without a <Piece> element", path=path,
                         hint="the file is truncated or corrupt")
    points = cells = 0
    for piece in pieces:
        attributes = {k.decode("latin-1"): v.decode("latin-1") for k, v in _ATTRIBUTE.findall(piece.group(1))}
        for name, limit in _PIECE_COUNTS.items():
            value = _xml_count(attributes.get(name, "0"), limit, f"{name} in a <Piece>", path)
            points += value if name == "NumberOfPoints" else 0
            cells += value if name != "NumberOfPoints" else 0
    check_count(points, "max_vertices", "points in all pieces", path)
    check_count(cells, "max_faces", "cells in all pieces", path)
    for array in _DATA_ARRAY.finditer(head):
        attributes = {k.decode("latin-1"): v.decode("latin-1") for k, v in _ATTRIBUTE.findall(array.group(1))}
        components = attributes.get("NumberOfComponents", "1").strip()
        if not re.fullmatch(r"\d{1,4}", components) or not 1 <= int(components) <= _MAX_COMPONENTS:
            raise InputError(f"declares a DataArray with NumberOfComponents={components[:20]!r}, not a count in "
                             f"1..{_MAX_COMPONENTS}", path=path, hint="the file is corrupt")
        if "NumberOfTuples" in attributes:
            _xml_count(attributes["NumberOfTuples"], "max_vertices", "NumberOfTuples of a DataArray", path)
    return MeshDeclared(points=points, cells=cells, size=size)


def _xml_count(text: str, limit: str, what: str, path: Path) -> int:
    text = text.strip()
    return check_count(text if len(text) <= 30 else text[:30] + "...", limit, what, path)


# legacy VTK -------------------------------------------------------------------------------
_VTK_TYPE_SIZES = {"bit": 0, "unsigned_char": 1, "char": 1, "signed_char": 1, "unsigned_short": 2, "short": 2,
                   "unsigned_int": 4, "int": 4, "unsigned_long": 8, "long": 8, "float": 4, "double": 8,
                   "vtkidtype": 8, "vtktypeint64": 8, "vtktypeuint64": 8}
_VTK_UNSIZED = {"string", "utf8_string", "variant"}  # sizes unknown before reading: validation stops
_VTK_DATASETS = {"polydata", "unstructured_grid"}
_VTK_CELL_SECTIONS = {"vertices", "lines", "polygons", "triangle_strips", "cells"}
_VTK_ATTRIBUTE_WIDTH = {"vectors": 3, "normals": 3, "tensors": 9, "tensors6": 6, "global_ids": 1,
                        "pedigree_ids": 1, "edge_flags": 1}
_WORD = re.compile(rb"[ \t\r\n\v\f]*([^ \t\r\n\v\f]{1,256})")


class _StopWalk(Exception):
    """The file holds something whose size cannot be known without reading it: VTK decides."""


class _Cursor:
    """A position in a legacy VTK file: words of the header lines, data skipped by size."""

    def __init__(self, mm, pos: int, binary: bool, path: Path):
        self.mm, self.pos, self.binary, self.path, self.size = mm, pos, binary, path, len(mm)

    def word(self, what: str) -> str | None:
        """The next word (lower-cased), or None at the end of the file."""
        match = _WORD.match(self.mm, self.pos)
        if not match:
            if self.mm[self.pos:].strip():
                raise InputError(f"has an unreadable word where {what} was expected (at byte {self.pos:,})",
                                 path=self.path, hint="the file is corrupt")
            return None
        self.pos = match.end()
        return match.group(1).decode("latin-1").lower()

    def need(self, what: str) -> str:
        word = self.word(what)
        if word is None:
            raise InputError(f"is truncated: it ends where {what} was expected", path=self.path,
                             hint="copy or export the file again")
        return word

    def peek(self) -> str | None:
        match = _WORD.match(self.mm, self.pos)
        return match.group(1).decode("latin-1").lower() if match else None

    def count(self, what: str, limit: str, factor: int = 1, extra: int = 0) -> int:
        """The next word as a count within ``factor`` times the budget ``limit`` (plus ``extra``)."""
        text = self.need(what)
        if not re.fullmatch(r"\d{1,30}", text):
            raise InputError(f"declares {what} = {text!r}, which is not a count", path=self.path,
                             hint="the file is corrupt")
        value, allowed = int(text), factor * getattr(budget(), limit) + extra
        if value > allowed:
            raise InputError(f"too large: the file declares {value:,} for {what}, more than the budget of "
                             f"{allowed:,}", path=self.path,
                             hint=f"set MEDFACE_{limit.upper()} to allow more, if the file is genuine")
        return value

    def skip(self, values: int, vtk_type: str, what: str) -> None:
        """Step over ``values`` numbers of ``vtk_type``: bytes in a binary file, words in ASCII."""
        if vtk_type in _VTK_UNSIZED:
            raise _StopWalk
        if vtk_type not in _VTK_TYPE_SIZES:
            raise InputError(f"declares {what} of an unknown data type {vtk_type!r}", path=self.path,
                             hint="the file is corrupt")
        if values == 0:
            return
        if self.binary:
            return self._skip_bytes(values, vtk_type, what)
        return self._skip_words(values, what)

    def _skip_bytes(self, values: int, vtk_type: str, what: str) -> None:
        newline = self.mm.find(b"\n", self.pos)  # VTK discards the rest of the header line
        start = (newline + 1) if newline >= 0 else self.size
        width = _VTK_TYPE_SIZES[vtk_type]
        length = (values + 7) // 8 if width == 0 else values * width
        if start + length > self.size:
            raise InputError(f"is truncated: {what} needs {length:,} bytes but the file ends "
                             f"{start + length - self.size:,} bytes early", path=self.path,
                             hint="copy or export the file again")
        self.pos = start + length

    def _skip_words(self, values: int, what: str) -> None:
        left, pos, previous_space = values, self.pos, True
        while left:
            block = np.frombuffer(self.mm[pos: pos + _CHUNK], np.uint8)  # a copy: the mmap is never exported
            if not len(block):
                raise InputError(f"is truncated: {what} declares {values:,} values but only {values - left:,} "
                                 "follow", path=self.path, hint="copy or export the file again")
            space = (block == 32) | ((block >= 9) & (block <= 13))
            starts = np.flatnonzero(~space & np.concatenate(([previous_space], space[:-1])))
            if len(starts) >= left:
                self.pos = _WORD.match(self.mm, pos + int(starts[left - 1])).end()
                return
            left -= len(starts)
            previous_space = bool(space[-1])
            pos += len(block)

    def skip_metadata(self) -> None:
        """Skip an array's METADATA block (after its keyword): lines up to the first empty one."""
        self._line()
        while self.pos < self.size:
            if not self._line().strip():
                return

    def _line(self) -> bytes:
        newline = self.mm.find(b"\n", self.pos)
        end = newline if newline >= 0 else self.size
        line, self.pos = self.mm[self.pos: end], min(end + 1, self.size)
        return line


def check_vtk_legacy(path: Path, size: int) -> MeshDeclared:
    """Walk the sections of a legacy VTK file (ASCII or binary) checking each declared count
    against the budgets and each section's data against what the file holds."""
    with open(path, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        binary, pos = _vtk_preamble(mm, path)
        cursor = _Cursor(mm, pos, binary, path)
        if cursor.need("DATASET") != "dataset":
            raise InputError("is a legacy VTK file without a DATASET line after its header", path=path,
                             hint="the file is corrupt")
        dataset = cursor.need("the data set type")
        if dataset not in _VTK_DATASETS:
            raise InputError(f"is a legacy VTK {dataset.upper()} data set, not a surface or a mesh of cells",
                             path=path, hint="only POLYDATA and UNSTRUCTURED_GRID data sets can be read as meshes")
        walk = _VtkWalk(cursor, version5=_vtk_version(mm) >= 5)
        try:
            walk.run()
        except _StopWalk:
            pass
        return MeshDeclared(points=walk.points, cells=walk.cells, size=size)


def _vtk_version(mm) -> int:
    match = re.match(rb"# vtk DataFile Version (\d{1,2})\.(\d{1,2})", mm[:64])
    return int(match.group(1)) if match else 0


def _vtk_preamble(mm, path: Path) -> tuple[bool, int]:
    """(binary?, position after the 3 header lines); InputError on a version VTK misreads."""
    lines, pos = [], 0
    for _ in range(3):
        newline = mm.find(b"\n", pos, pos + 257)
        if newline < 0:
            raise InputError("has a legacy VTK header line longer than 256 characters or is cut inside its header",
                             path=path, hint="the file is corrupt")
        lines.append(mm[pos:newline].rstrip(b"\r"))
        pos = newline + 1
    match = re.fullmatch(rb"# vtk DataFile Version (\d{1,2})\.(\d{1,2})\s*", lines[0])
    if not match or not 1 <= int(match.group(1)) <= 5:
        raise InputError(f"has a legacy VTK version line VTK cannot read: {lines[0][:60]!r}", path=path,
                         hint="known versions are 1.0 to 5.1; the file is corrupt")
    encoding = lines[2].strip().upper()
    if encoding not in (b"ASCII", b"BINARY"):
        raise InputError(f"has {lines[2][:40]!r} on its third line, where legacy VTK says ASCII or BINARY",
                         path=path, hint="the file is corrupt")
    return encoding == b"BINARY", pos


class _VtkWalk:
    """The legacy VTK sections of a POLYDATA or UNSTRUCTURED_GRID, in file order."""

    def __init__(self, cursor: _Cursor, version5: bool):
        self.c, self.version5 = cursor, version5
        self.points: int | None = None
        self.cells = 0
        self.attribute_count: int | None = None  # tuples per array after POINT_DATA / CELL_DATA

    def run(self) -> None:
        while (keyword := self.c.word("a section keyword")) is not None:
            if keyword == "metadata":
                self.c.skip_metadata()
            elif keyword == "points":
                self.points = self.c.count("POINTS", "max_vertices")
                self.c.skip(3 * self.points, self.c.need("the POINTS data type"), "POINTS")
            elif keyword in _VTK_CELL_SECTIONS:
                self._cells(keyword.upper())
            elif keyword == "cell_types":
                count = self.c.count("CELL_TYPES", "max_faces")
                self.c.skip(count, "int", "CELL_TYPES")
            elif keyword in ("point_data", "cell_data"):
                self._attribute_header(keyword)
            elif keyword == "field":
                self._field()
            elif keyword in ("scalars", "color_scalars", "lookup_table", "texture_coordinates") \
                    or keyword in _VTK_ATTRIBUTE_WIDTH:
                self._attribute(keyword)
            elif re.fullmatch(r"[a-z_]+", keyword):
                raise _StopWalk  # a section this walk does not know: VTK's reader decides
            else:
                raise InputError(f"has {keyword[:40]!r} where a section keyword was expected (at byte {self.c.pos:,}): "
                                 "the counts in the file disagree with its data", path=self.c.path,
                                 hint="a number is missing or extra; the file is corrupt")

    def _cells(self, section: str) -> None:
        what = f"the number of {section} offsets" if self.version5 else f"the number of {section}"
        first = self.c.count(what, "max_faces", extra=int(self.version5))  # version 5: cells + 1 offsets
        second = self.c.count(f"the size of {section}", "max_faces", factor=_CELL_SIZE_FACTOR)
        if not self.version5:
            self.cells += first
            self.c.skip(second, "int", section)
            if self.c.binary and second:
                data = np.frombuffer(self.c.mm[self.c.pos - 4 * second: self.c.pos], ">i4")
                check_legacy_cells(data, first, self.points, section, self.c.path)
            return
        if first < 1:
            return
        self.cells += first - 1
        for name, values in (("offsets", first), ("connectivity", second)):
            if self.c.need(name.upper()) != name:
                raise InputError(f"has a {section} section without its {name.upper()} array", path=self.c.path,
                                 hint="the file is corrupt")
            self.c.skip(values, self.c.need(f"the {name.upper()} data type"), f"{section} {name.upper()}")

    def _attribute_header(self, keyword: str) -> None:
        count = self.c.count(keyword.upper(), "max_vertices" if keyword == "point_data" else "max_faces")
        expected = self.points if keyword == "point_data" else self.cells
        if expected is not None and count != expected:
            noun = "points" if keyword == "point_data" else "cells"
            raise InputError(f"declares {keyword.upper()} {count:,} but has {expected:,} {noun}", path=self.c.path,
                             hint="the counts in the file disagree; it is corrupt")
        self.attribute_count = count

    def _attribute(self, keyword: str) -> None:
        if self.attribute_count is None:
            raise InputError(f"has {keyword.upper()} before any POINT_DATA or CELL_DATA line", path=self.c.path,
                             hint="the file is corrupt")
        name = keyword.upper()
        self.c.need(f"the {name} name")
        if keyword == "lookup_table":
            self.c.skip(4 * self.c.count("the LOOKUP_TABLE size", "max_vertices"), "unsigned_char", name)
        elif keyword == "color_scalars":
            width = self._components(name)
            self.c.skip(width * self.attribute_count, "unsigned_char", name)
        elif keyword == "texture_coordinates":
            width = self._components(name)
            self.c.skip(width * self.attribute_count, self.c.need("the data type"), name)
        elif keyword == "scalars":
            self._scalars()
        else:
            self.c.skip(_VTK_ATTRIBUTE_WIDTH[keyword] * self.attribute_count, self.c.need("the data type"), name)

    def _components(self, name: str) -> int:
        width = self.c.count(f"the number of components of {name}", "max_vertices")
        if not 1 <= width <= _MAX_COMPONENTS:  # VTK refuses 0 components; thousands are a corrupt count
            raise InputError(f"declares {width} components for {name}, outside 1..{_MAX_COMPONENTS}",
                             path=self.c.path, hint="the file is corrupt")
        return width

    def _scalars(self) -> None:
        vtk_type = self.c.need("the SCALARS data type")
        word = self.c.need("LOOKUP_TABLE or the number of components")
        width = 1
        if word != "lookup_table":
            if not re.fullmatch(r"\d{1,4}", word) or not 1 <= int(word) <= _MAX_COMPONENTS:
                raise InputError(f"declares SCALARS with {word[:20]!r} components", path=self.c.path,
                                 hint="the file is corrupt")
            width = int(word)
            if self.c.need("LOOKUP_TABLE") != "lookup_table":
                raise InputError("has SCALARS without their LOOKUP_TABLE line", path=self.c.path,
                                 hint="the file is corrupt")
        self.c.need("the lookup table name")
        self.c.skip(width * self.attribute_count, vtk_type, "SCALARS")

    def _field(self) -> None:
        self.c.need("the FIELD name")
        arrays = self.c.count("the number of FIELD arrays", "max_vertices")
        for _ in range(arrays):
            name = self.c.need("a FIELD array name")
            if name == "null_array":
                continue
            width = self._components("a FIELD array")
            tuples = self.c.count("the number of tuples of a FIELD array", "max_vertices")
            self.c.skip(width * tuples, self.c.need("the FIELD array data type"), f"FIELD array {name!r}")
            if self.c.peek() == "metadata":
                self.c.need("METADATA")
                self.c.skip_metadata()


def check_legacy_cells(data: np.ndarray, cells: int, points: int | None, section: str, path: Path) -> None:
    """A legacy cell list (``n i0 .. i(n-1)`` per cell) must hold exactly ``cells`` cells that
    number existing points; VTK's conversion of a broken one reads out of bounds. Vectorised
    when every cell has the size of the first (triangles), a walk over the cells otherwise."""
    data = data.astype(np.int64)
    size = int(data[0]) + 1
    if size > 1 and len(data) % size == 0 and len(data) // size == cells and np.all(data[::size] == size - 1):
        indices = data.reshape(cells, size)[:, 1:]
    else:
        starts, position = [], 0
        while position < len(data) and len(starts) <= cells:
            if data[position] < 0:
                break
            starts.append(position)
            position += int(data[position]) + 1
        if position != len(data) or len(starts) != cells:
            raise InputError(f"has a {section} list whose cell sizes do not add up to its declared {cells:,} cells "
                             f"and {len(data):,} numbers", path=path, hint="the file is corrupt")
        mask = np.ones(len(data), bool)
        mask[starts] = False
        indices = data[mask]
    if indices.size and (indices.min() < 0 or (points is not None and indices.max() >= points)):
        raise InputError(f"has {section} that refer to point numbers outside 0..{(points or 0) - 1}", path=path,
                         hint="the file is corrupt")
