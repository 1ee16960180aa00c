"""Recognise a file's format from its content, never from its extension.

:func:`sniff` returns a *kind* (``"nifti"``, ``"stl-binary"``, ``"markups-json"`` ...) and
:func:`category` maps a kind to what medface reads it as: ``"volume"``, ``"mesh"``,
``"landmarks"`` or ``"image"``. Only the standard library is used, so sniffing is cheap.
"""

from __future__ import annotations

import gzip
import os
import re
import struct
import zlib
from pathlib import Path

from ..errors import InputError
from .limits import require_regular_file
from .textfiles import load_json

#: kind -> (category, how to name it in a sentence)
KINDS: dict[str, tuple[str, str]] = {
    "dicom-folder": ("volume", "a DICOM series folder"),
    "dicom": ("volume", "a DICOM file"),
    "nifti": ("volume", "a NIfTI image"),
    "nrrd": ("volume", "a NRRD image"),
    "metaimage": ("volume", "a MetaImage (.mha/.mhd) image"),
    "stl-binary": ("mesh", "a binary STL mesh"),
    "stl-ascii": ("mesh", "an ASCII STL mesh"),
    "ply": ("mesh", "a PLY mesh"),
    "obj": ("mesh", "a Wavefront OBJ mesh"),
    "vtp": ("mesh", "a VTK XML PolyData (.vtp) mesh"),
    "vtk-legacy": ("mesh", "a legacy VTK (.vtk) data set"),
    "png": ("image", "a PNG image"),
    "jpeg": ("image", "a JPEG image"),
    "markups-json": ("landmarks", "a 3D Slicer Markups JSON file"),
    "csv": ("landmarks", "a landmark CSV file"),
}

CATEGORIES: dict[str, tuple[str, str]] = {
    # category -> (noun with article, reader to use)
    "volume": ("a volume", "read_volume"),
    "mesh": ("a mesh", "read_mesh"),
    "landmarks": ("a landmark file", "read_landmarks"),
    "image": ("an image", "read_image"),
}

SUPPORTED = (
    "supported formats: volumes: DICOM (a file or a series folder), NIfTI (.nii, .nii.gz), NRRD, "
    "MetaImage (.mha, .mhd); meshes: STL (binary or ASCII), PLY, OBJ, VTP, legacy VTK; "
    "landmarks: 3D Slicer Markups JSON (.mrk.json), CSV (id,x,y,z); images: PNG, JPEG"
)

_HEAD = 8192
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_OBJ_KEYWORDS = {"v", "vt", "vn", "vp", "f", "l", "p", "o", "g", "s", "mtllib", "usemtl"}
_META_KEYS = {"ObjectType", "NDims", "ElementDataFile"}


def category(kind: str) -> str:
    """``"volume"``, ``"mesh"``, ``"landmarks"`` or ``"image"`` for a kind :func:`sniff` returns."""
    try:
        return KINDS[kind][0]
    except KeyError:
        raise ValueError(f"unknown file kind {kind!r}; known kinds: {', '.join(KINDS)}") from None


def describe(kind: str) -> str:
    """A phrase naming a kind, e.g. ``"a PNG image"``."""
    return KINDS[kind][1]


def sniff(path) -> str:
    """The kind of the file or folder at ``path``, recognised from its content.

    Raises :class:`InputError` (naming the path) when it does not exist, is neither a folder
    nor a regular file (a named pipe, a device, a symlink loop), cannot be read, is empty, or
    holds nothing medface reads; the message lists the supported formats.
    """
    p = Path(path)
    if not p.exists() and not p.is_symlink():
        raise InputError("does not exist", path=p, hint="check the path and the current folder")
    if p.is_dir():
        return _sniff_folder(p)
    require_regular_file(p, "input")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            head = fh.read(_HEAD)
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", path=p) from exc
    if size == 0:
        raise InputError("is empty (0 bytes)", path=p, hint="it may be an interrupted copy or download")
    kind = _sniff_bytes(p, head, size)
    if kind is None:
        raise InputError(_unrecognised(head, size), path=p, hint=SUPPORTED)
    return kind


def require_category(path, wanted: str) -> str:
    """Sniff ``path`` and check it holds a ``wanted`` category; return its kind.

    ``read_mesh("photo.png")`` fails here with "... is a PNG image, not a mesh".
    """
    kind = sniff(path)
    found = category(kind)
    if found != wanted:
        noun, _ = CATEGORIES[wanted]
        _, reader = CATEGORIES[found]
        raise InputError(
            f"{os.fspath(path)} is {describe(kind)}, not {noun}",
            path=path,
            hint=f"read it with medface.io.{reader}, or with medface.io.read which picks the reader",
        )
    return kind


# folders --------------------------------------------------------------------------------
def _sniff_folder(folder: Path) -> str:
    try:
        entries = sorted(folder.iterdir())
    except OSError as exc:
        raise InputError(f"cannot list the folder: {exc.strerror or exc}", path=folder) from exc
    for entry in entries:
        if entry.is_file() and is_dicom_file(entry):
            return "dicom-folder"
    raise InputError(
        "is a folder without DICOM files (no file in it has the 'DICM' marker at byte 128)",
        path=folder,
        hint="pass a file, or a folder holding the files of one DICOM series; " + SUPPORTED,
    )


def is_dicom_file(path: Path) -> bool:
    """True if ``path`` is a DICOM Part 10 file ("DICM" after the 128-byte preamble)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


# files ------------------------------------------------------------------------------------
def _sniff_bytes(path: Path, head: bytes, size: int) -> str | None:
    if head.startswith(b"\x1f\x8b"):
        return _sniff_gzip(path)
    if head[128:132] == b"DICM":
        return "dicom"
    if is_nifti_header(head):
        return "nifti"
    if head.startswith(b"NRRD000"):
        return "nrrd"
    if head.startswith(_PNG_MAGIC):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if re.match(rb"ply\r?\n", head):
        return "ply"
    if head.startswith(b"# vtk DataFile"):
        return "vtk-legacy"
    if b"<VTKFile" in head[:2048]:  # XML, possibly followed by raw binary appended data
        return _sniff_vtk_xml(path, head[:2048].decode("latin-1"))
    # A binary STL header is free text and may even start with "solid": the size rule decides.
    if _is_binary_stl(head, size):
        return "stl-binary"
    if _is_metaimage(head):
        return "metaimage"
    text = _as_text(head)
    if text is None:
        return None
    return _sniff_text(path, text, size, cut=len(head) < size)


def is_nifti_header(head: bytes) -> bool:
    """True for a NIfTI-1 (348-byte header) or NIfTI-2 (540-byte header) file start."""
    if len(head) < 348:
        return False
    for order in "<>":
        sizeof_hdr = struct.unpack(order + "i", head[:4])[0]
        if sizeof_hdr == 348 and head[344:348] in (b"n+1\0", b"ni1\0"):
            return True
        if sizeof_hdr == 540 and head[4:8] in (b"n+2\0", b"ni2\0"):
            return True
    return False


def _sniff_gzip(path: Path) -> str:
    try:
        with gzip.open(path, "rb") as fh:
            inner = fh.read(1024)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"is gzip-compressed but cannot be decompressed: {exc}", path=path) from exc
    if is_nifti_header(inner):
        return "nifti"
    raise InputError(
        "is gzip-compressed but does not hold a NIfTI image (medface reads gzip only as .nii.gz)",
        path=path,
        hint="decompress it first; " + SUPPORTED,
    )


def _is_binary_stl(head: bytes, size: int) -> bool:
    if size < 84 or len(head) < 84 or (size - 84) % 50:
        return False
    return struct.unpack("<I", head[80:84])[0] == (size - 84) // 50


def _is_metaimage(head: bytes) -> bool:
    keys = set()
    for raw in head.split(b"\n")[:64]:
        match = re.match(rb"\s*([A-Za-z]\w*)\s*=", raw)
        if not match:
            break
        keys.add(match.group(1).decode("ascii"))
    return len(keys & _META_KEYS) >= 2


def _as_text(head: bytes) -> str | None:
    """The start of a text file as str, or None if it looks binary."""
    if b"\0" in head:
        return None
    text = head.decode("utf-8", errors="ignore").lstrip("\ufeff")
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return text if text and printable >= 0.95 * len(text) else None


def _sniff_text(path: Path, text: str, size: int, cut: bool) -> str | None:
    stripped = text.lstrip()
    if stripped.startswith("{"):
        return _sniff_json(path)
    lowered = stripped.lower()
    if lowered.startswith("solid") and ("facet" in lowered or "endsolid" in lowered):
        return "stl-ascii"
    lines = text.splitlines()
    if cut and len(lines) > 1:
        lines = lines[:-1]  # the peek cut the last line
    if _is_obj(lines):
        return "obj"
    if _is_landmark_csv(lines):
        return "csv"
    return None


def _sniff_vtk_xml(path: Path, text: str) -> str:
    match = re.search(r'<VTKFile[^>]*\btype="(\w+)"', text)
    if match and match.group(1) == "PolyData":
        return "vtp"
    found = match.group(1) if match else "unknown"
    raise InputError(
        f"is a VTK XML file of type '{found}'; medface reads only PolyData (.vtp) surfaces",
        path=path,
        hint="extract the surface and save it as .vtp, .stl or .ply",
    )


def _sniff_json(path: Path) -> str:
    try:
        doc = load_json(path, "JSON file")
    except InputError as exc:
        if exc.message.startswith("too large"):
            raise
        raise InputError(f"looks like JSON but cannot be parsed: {exc.message}", path=path, hint=exc.hint) from None
    if isinstance(doc, dict) and "markups" in doc:
        return "markups-json"
    raise InputError(
        "is a JSON file without the required key 'markups', so it is not a 3D Slicer Markups file",
        path=path,
        hint="save the landmarks from 3D Slicer as .mrk.json, or write them with medface.io.write_landmarks",
    )


def _is_obj(lines: list[str]) -> bool:
    words = [line.split(None, 1)[0] for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not words or "v" not in words:
        return False
    known = sum(w in _OBJ_KEYWORDS for w in words)
    return known >= 0.9 * len(words)


def landmark_csv_columns(header: str) -> list[str]:
    """The lower-cased, stripped column names of a CSV header line."""
    return [c.strip().strip('"').strip().lower() for c in header.split(",")]


def _is_landmark_csv(lines: list[str]) -> bool:
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cols = set(landmark_csv_columns(line))
        return bool(cols & {"id", "label"}) and {"x", "y", "z"} <= cols
    return False


def _unrecognised(head: bytes, size: int) -> str:
    if size >= 84 and _as_text(head) is None:
        promised = 84 + 50 * struct.unpack("<I", head[80:84])[0]
        if size < promised <= 64 * size:
            return (f"looks like a binary STL whose header promises {promised} bytes, but the file has "
                    f"only {size} bytes: it is truncated or corrupt")
    return f"has content medface does not recognise (it starts with {head[:16]!r})"
