"""Header pre-checks for volume files, run before ITK sees a file.

ITK's readers trust what a header declares: a MetaImage with ``NDims = 1e308`` kills the
process, a NIfTI with a NaN ``pixdim`` silently gets 1 mm voxels, a gzip-compressed NRRD that
declares 2 GiB is allocated before a byte is decompressed. The functions here parse the header
of each format themselves (NIfTI-1/2, NRRD and detached ``.nhdr``, MetaImage ``.mha``/``.mhd``)
and refuse, with an :class:`InputError` that names the file and the field, any declared size
outside the budgets of :mod:`medface.io.limits`, any number that is not finite, and voxel data
that the files cannot hold (truncated, or a decompression bomb). What passes is read by ITK in
a child process (:mod:`medface.io.isolated`), so that what no pre-check can foresee still ends
in an error rather than a crash.

:func:`data_files` lists the files a volume is stored in (a header and its data files), for
provenance hashes.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.volume import ORIENTATION_TOLERANCE, PLAUSIBLE_SPACING_MM
from ..errors import InputError, MedfaceError
from .limits import budget, check_count, require_regular_file

__all__ = ["Declared", "check_header", "data_files"]

_HEADER_LIMIT = 1 << 20  # text headers (NRRD, MetaImage) longer than this are refused
_MAX_DATA_FILES = 100_000  # data files one header may name (a slice per file)
_EXPANSION_SLACK = 64 << 20  # compressed data may expand this much beyond max_expansion x its size
_ABSURD = 1 << 48  # no count in a volume header (sizes, dimensions, offsets) is this large


@dataclass(frozen=True)
class Declared:
    """What a volume header declares, once checked: voxel count, bytes of voxel data (as
    decompressed), and the files it is stored in (the header first)."""

    voxels: int
    data_bytes: int
    files: tuple[Path, ...]


def check_header(path, kind: str) -> Declared | None:
    """Check the header of a ``kind`` (``"nifti"``, ``"nrrd"``, ``"metaimage"``) volume file
    against the budgets and the file sizes; InputError on anything ITK must not see."""
    path = Path(path)
    checks = {"nifti": check_nifti, "nrrd": check_nrrd, "metaimage": check_metaimage}
    if kind not in checks:
        return None
    try:
        return checks[kind](path)
    except MedfaceError:
        raise
    except OSError as exc:
        raise InputError(f"cannot be read: {exc.strerror or exc}", path=path) from None
    except (ValueError, OverflowError, MemoryError, RecursionError, UnicodeError) as exc:
        raise InputError(f"has a malformed header ({type(exc).__name__}: {str(exc)[:200]})", path=path,
                         hint="the file may be corrupt; export it again") from None


def data_files(path) -> list[Path]:
    """The files that hold the volume at ``path``: the header and every data file it names.

    ``.mhd`` -> the header and its ``.raw`` (or one file per slice), ``.nhdr`` -> the header
    and its data file(s), a NIfTI ``.hdr`` -> the header and its ``.img``. Any other path
    (a single-file volume, a folder, a mesh) gives ``[path]``. Only existing regular files
    are listed, and a header that cannot be parsed lists itself alone: this serves hashing
    for provenance, and never raises for a file the readers refuse.
    """
    path = Path(path)
    try:
        if not path.is_file():
            return [path]
        with open(path, "rb") as fh:
            head = fh.read(_HEADER_LIMIT)
        files = _named_files(path, head)
    except (MedfaceError, OSError, LookupError, ValueError, OverflowError, MemoryError, RecursionError,
            UnicodeError):
        return [path]
    out = [path]
    for f in files:
        if f not in out and f.is_file():
            out.append(f)
    return out


def _named_files(path: Path, head: bytes) -> list[Path]:
    from .sniff import is_nifti_header

    if head.startswith(b"NRRD000"):
        fields, _, listed = _nrrd_fields(path, head)
        return _nrrd_data_files(path, fields, listed, check=False)
    if _looks_like_metaimage(head):
        fields, _, listed = _metaimage_fields(path, head)
        dims = _counts(fields["DimSize"], _ndims(fields, path), "DimSize", path)
        return _metaimage_data_files(path, fields, listed, dims, check=False)
    if is_nifti_header(head) and _nifti_fields(head)["pair"]:
        return [_nifti_pair_data(path, check=False)]
    return []


# numbers ----------------------------------------------------------------------------------
def _number(token: str, what: str, path) -> float:
    try:
        value = float(token)
    except (ValueError, OverflowError):
        raise InputError(f"declares {what} = {token[:40]!r}, which is not a number", path=path) from None
    if not math.isfinite(value):
        raise InputError(f"declares {what} = {token[:40]!r}, which is not a finite number", path=path,
                         hint="the header is corrupt, or was written by a program that failed")
    return value


def _numbers(text: str, n: int, what: str, path) -> list[float]:
    tokens = text.replace(",", " ").split()
    if len(tokens) != n:
        raise InputError(f"declares {len(tokens)} values for {what} where {n} are needed", path=path)
    return [_number(t, what, path) for t in tokens]


def _count(token: str, what: str, path, minimum: int = 1) -> int:
    try:
        value = int(token)
    except ValueError:  # "1e3", or more than 4300 digits
        value = _number(token, what, path)
        if value != int(value):
            raise InputError(f"declares {what} = {token[:40]!r}, which is not a whole number", path=path) from None
        value = int(value)
    if value < minimum:
        raise InputError(f"declares {what} = {value}, less than {minimum}", path=path)
    if value > _ABSURD:
        raise InputError(f"declares {what} = {token[:40]}, an absurd size", path=path, hint="the header is corrupt")
    return value


def _counts(text: str, n: int, what: str, path) -> list[int]:
    tokens = text.split()
    if len(tokens) != n:
        raise InputError(f"declares {len(tokens)} values for {what} where {n} are needed", path=path)
    return [_count(t, what, path) for t in tokens]


def _check_rotation(matrix: np.ndarray, what: str, path) -> None:
    """Refuse an orientation that is not a rotation (possibly with a flip) before ITK sees it:
    its own handling of such matrices can hang (a TransformMatrix entry of 1e308)."""
    with np.errstate(over="ignore", invalid="ignore"):
        deviation = float(np.abs(matrix.T @ matrix - np.eye(len(matrix))).max())
    if not deviation <= ORIENTATION_TOLERANCE:
        raise InputError(f"declares an orientation ({what}) that is not a rotation: the axes must be unit vectors "
                         f"at right angles "
                         f"(largest deviation from orthonormal {deviation:.3g})", path=path,
                         hint="a scale or shear (e.g. a gantry-tilt matrix) cannot be a volume's orientation; "
                              "resample the image onto a regular grid first")


def _product(values) -> int:
    out = 1
    for v in values:
        out *= int(v)
    return out


def _voxels(count: int, path) -> int:
    """``count`` voxels checked against the budget (its message stays short for absurd counts)."""
    if count > _ABSURD:
        raise InputError(f"too large: the file declares more than {_ABSURD:.2e} voxels, far more than the budget of "
                         f"{budget().max_voxels:,}", path=path, hint="the header is corrupt")
    return check_count(count, "max_voxels", "voxels", path)


def _check_expansion(declared: int, compressed: int, path) -> None:
    """Refuse compressed data that would have to expand more than the budget allows."""
    limit = budget().max_expansion
    if declared > limit * compressed + _EXPANSION_SLACK:
        raise InputError(
            f"too large: the header declares {declared:,} bytes of voxel data stored in {compressed:,} compressed "
            f"bytes, an expansion of more than {limit}x (a decompression bomb, or a header that lies)", path=path,
            hint="set MEDFACE_MAX_EXPANSION to allow more, if the file is genuine")


def _truncated(path, declared: int, held: int, what: str = "its header promises") -> InputError:
    return InputError(f"is truncated: {what} {declared:,} bytes of voxel data but it holds only {held:,}",
                      path=path, hint="copy or download it again")


def _data_file(path: Path, what: str, check: bool) -> Path:
    return require_regular_file(path, what) if check else path


def _pattern_names(fmt: str, first: str, last: str, step: str, path) -> list[str]:
    """File names from a C format and a range, as NRRD and MetaImage headers give them."""
    lo, hi = _count(first, "the first file number", path, 0), _count(last, "the last file number", path, 0)
    stride = _count(step.lstrip("-"), "the file number step", path, 1) * (-1 if step.startswith("-") else 1)
    n = (hi - lo) // stride + 1
    if not 1 <= n <= _MAX_DATA_FILES:
        raise InputError(f"names {max(n, 0):,} data files with the pattern {fmt!r}; medface reads 1 to "
                         f"{_MAX_DATA_FILES:,}", path=path)
    try:
        return [fmt % (lo + k * stride) for k in range(n)]
    except (TypeError, ValueError) as exc:
        raise InputError(f"names its data files with the pattern {fmt!r}, which is not a file name pattern "
                         f"({exc})", path=path) from None


# NIfTI --------------------------------------------------------------------------------------
_NIFTI_BITS = {  # the datatypes ITK's NIfTI reader supports -> bits per voxel
    2: 8, 4: 16, 8: 32, 16: 32, 32: 64, 64: 64, 128: 24, 256: 8, 512: 16, 768: 32, 1024: 64, 1280: 64,
    1792: 128, 2304: 32,
}


def _nifti_fields(header: bytes) -> dict:
    """The fields of a NIfTI-1 (348-byte) or NIfTI-2 (540-byte) header that the checks use."""
    import struct

    if len(header) < 348:
        raise InputError("does not start with a NIfTI-1 or NIfTI-2 header")
    for order in "<>":
        size = struct.unpack(order + "i", header[:4])[0]
        if size == 540 and len(header) < 540:
            raise InputError("does not start with a complete NIfTI-2 header")
        if size == 348 and header[344:348] in (b"n+1\0", b"ni1\0"):
            f = struct.unpack(order + "8h", header[40:56]), *struct.unpack(order + "hh", header[70:74])
            pixdim, offset = struct.unpack(order + "8f", header[76:108]), struct.unpack(order + "f", header[108:112])[0]
            codes = struct.unpack(order + "hh", header[252:256])
            quatern, srow = struct.unpack(order + "6f", header[256:280]), struct.unpack(order + "12f", header[280:328])
            pair = header[344:348] == b"ni1\0"
            break
        if size == 540 and header[4:8] in (b"n+2\0", b"ni2\0"):
            f = struct.unpack(order + "8q", header[16:80]), *struct.unpack(order + "hh", header[12:16])
            pixdim, offset = struct.unpack(order + "8d", header[104:168]), struct.unpack(order + "q", header[168:176])[0]
            codes = struct.unpack(order + "ii", header[344:352])
            quatern, srow = struct.unpack(order + "6d", header[352:400]), struct.unpack(order + "12d", header[400:496])
            pair = header[4:8] == b"ni2\0"
            break
    else:
        raise InputError("does not start with a NIfTI-1 or NIfTI-2 header")
    dims, datatype, bitpix = f
    return dict(size=size, dims=dims, datatype=datatype, bitpix=bitpix, pixdim=pixdim, vox_offset=offset,
                qform_code=codes[0], sform_code=codes[1], quatern=quatern, srow=srow, pair=pair)


def check_nifti(path: Path) -> Declared:
    """A single-file NIfTI (.nii, .nii.gz) or a .hdr/.img pair."""
    compressed = _is_gzip(path)
    header = _nifti_header(path, compressed)
    try:
        f = _nifti_fields(header)
    except InputError:
        raise InputError("does not start with a complete NIfTI-1 or NIfTI-2 header", path=path,
                         hint="the file may be truncated; copy or download it again") from None
    voxels = _nifti_voxels(f, path)
    bits = _NIFTI_BITS.get(f["datatype"])
    if bits is None:
        raise InputError(f"declares the NIfTI datatype {f['datatype']}, which medface does not read", path=path,
                         hint="supported: integer types of 8 to 64 bits, float32/64, complex and RGB(A)")
    data_bytes = (voxels * bits + 7) // 8
    _check_nifti_geometry(f, path)
    offset = _nifti_offset(f, path)
    if not f["pair"]:
        _check_nifti_data(path, compressed, max(offset, f["size"]) + data_bytes)
        return Declared(voxels, data_bytes, (path,))
    image = _nifti_pair_data(path, check=True)
    _check_nifti_data(image, _is_gzip(image), offset + data_bytes)
    return Declared(voxels, data_bytes, (path, image))


def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


def _nifti_header(path: Path, compressed: bool) -> bytes:
    try:
        if compressed:
            with gzip.open(path, "rb") as fh:
                return fh.read(544)
        with open(path, "rb") as fh:
            return fh.read(544)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"is a truncated or corrupt gzip-compressed NIfTI file ({exc})", path=path,
                         hint="copy or download it again") from None


def _nifti_voxels(f: dict, path) -> int:
    dims = f["dims"]
    ndim = dims[0]
    if not 1 <= ndim <= 7:
        raise InputError(f"declares {ndim} dimensions (dim[0]); a NIfTI image has 1 to 7", path=path,
                         hint="the header is corrupt")
    for axis in range(1, ndim + 1):
        if dims[axis] < 1:
            raise InputError(f"declares {dims[axis]} voxels along axis {axis} (dim[{axis}]); sizes must be at "
                             "least 1", path=path, hint="the header is corrupt")
    return _voxels(_product(dims[1:ndim + 1]), path)


def _check_nifti_geometry(f: dict, path) -> None:
    for axis in range(1, min(f["dims"][0], 3) + 1):
        p = f["pixdim"][axis]
        if not math.isfinite(p) or (p == 0 and f["dims"][axis] > 1):  # 0 is common on a single slice
            raise InputError(f"declares a voxel spacing pixdim[{axis}] = {p:g}, which is not a usable size "
                             "(ITK would silently use 1 mm)", path=path, hint="the header is corrupt; fix or re-export it")
    if f["qform_code"] and not all(math.isfinite(v) for v in f["quatern"]):
        raise InputError("declares a qform (quatern_b/c/d, qoffset) with NaN or infinite values, so its "
                         "orientation is unknown", path=path, hint="the header is corrupt; fix or re-export it")
    if f["sform_code"] and not all(math.isfinite(v) for v in f["srow"]):
        raise InputError("declares an sform (srow_x/y/z) with NaN or infinite values, so its orientation is "
                         "unknown", path=path, hint="the header is corrupt; fix or re-export it")
    if f["sform_code"]:
        _check_sform_shear(np.array(f["srow"], dtype=float).reshape(3, 4)[:, :3], path)


def _check_sform_shear(matrix: np.ndarray, path) -> None:
    """A sheared sform (the slice axis not at right angles to the slices: a CT acquired with a
    tilted gantry and stored uncorrected) is refused with what it is: ITK cannot represent it and
    would otherwise fall back to the qform, the nearest rotation, and shift every slice."""
    lengths = np.linalg.norm(matrix, axis=0)
    if not np.all(lengths > 0):
        return  # a degenerate sform; ITK reports it
    unit = matrix / lengths
    cosines = np.abs(np.clip([unit[:, 0] @ unit[:, 1], unit[:, 0] @ unit[:, 2], unit[:, 1] @ unit[:, 2]], -1, 1))
    worst = float(np.degrees(np.arcsin(cosines.max())))  # the largest departure from a right angle
    if worst > _SHEAR_TOLERANCE_DEG:
        raise InputError(f"declares a sheared orientation (sform): its axes are {worst:.1f} degrees from right "
                         "angles, as in a CT acquired with a tilted gantry and stored without correction",
                         path=path, hint="re-export it from the DICOM series with gantry-tilt correction, or "
                                         "resample it onto a regular grid")


_SHEAR_TOLERANCE_DEG = 0.05  # float32 rounding of an orthonormal sform stays far below this


def _nifti_offset(f: dict, path) -> int:
    offset = f["vox_offset"]
    if not math.isfinite(offset) or offset < 0 or offset != int(offset):
        raise InputError(f"declares vox_offset = {offset!r}, which is not a byte offset (a whole number >= 0)",
                         path=path, hint="the header is corrupt; fix or re-export it")
    return int(offset)


def _nifti_pair_data(path: Path, check: bool) -> Path:
    """The .img of a .hdr/.img NIfTI pair (also .hdr.gz -> .img.gz)."""
    name = path.name
    for hdr, img in ((".hdr.gz", ".img.gz"), (".HDR.GZ", ".IMG.GZ"), (".hdr", ".img"), (".HDR", ".IMG")):
        if name.endswith(hdr):
            return _data_file(path.with_name(name[: -len(hdr)] + img), "NIfTI image data (.img)", check)
    raise InputError("is the header of a NIfTI .hdr/.img pair but is not named .hdr, so its .img cannot be found",
                     path=path, hint="name the pair NAME.hdr and NAME.img")


def _check_nifti_data(path: Path, compressed: bool, needed: int) -> None:
    """Refuse a NIfTI file holding less than ``needed`` bytes (ITK would fill the rest with zeros)."""
    size = path.stat().st_size
    if not compressed:
        if size < needed:
            raise _truncated(path, needed, size, "its NIfTI header promises")
        return
    _check_expansion(needed, size, path)
    held = 0
    try:
        with gzip.open(path, "rb") as fh:
            while held < needed:
                block = fh.read(min(1 << 22, needed - held))
                if not block:
                    break
                held += len(block)
    except (OSError, EOFError, zlib.error) as exc:
        raise InputError(f"is a truncated or corrupt gzip-compressed NIfTI file ({exc})", path=path,
                         hint="copy or download it again") from None
    if held < needed:
        raise _truncated(path, needed, held, "its NIfTI header promises")


# text headers -------------------------------------------------------------------------------
def _header_lines(head: bytes):
    """``(line, end offset)`` for each complete line of a text header in ``head``."""
    pos = 0
    while True:
        end = head.find(b"\n", pos)
        if end < 0:
            if len(head) < _HEADER_LIMIT and pos < len(head):  # a last line without newline (the file's end)
                yield head[pos:].rstrip(b"\r").decode("latin-1"), len(head)
            return
        yield head[pos:end].rstrip(b"\r").decode("latin-1"), end + 1
        pos = end + 1


def _header_too_long(path: Path, what: str) -> InputError:
    return InputError(f"has no end of its {what} header in its first {_HEADER_LIMIT >> 20} MiB", path=path,
                      hint="the file is corrupt, or not what it says it is")


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(_HEADER_LIMIT)


# NRRD ---------------------------------------------------------------------------------------
_NRRD_TYPES = {
    **dict.fromkeys(("signed char", "int8", "int8_t", "uchar", "unsigned char", "uint8", "uint8_t"), 1),
    **dict.fromkeys(("short", "short int", "signed short", "signed short int", "int16", "int16_t", "ushort",
                     "unsigned short", "unsigned short int", "uint16", "uint16_t"), 2),
    **dict.fromkeys(("int", "signed int", "int32", "int32_t", "uint", "unsigned int", "uint32", "uint32_t",
                     "float"), 4),
    **dict.fromkeys(("longlong", "long long", "long long int", "signed long long", "signed long long int",
                     "int64", "int64_t", "ulonglong", "unsigned long long", "unsigned long long int", "uint64",
                     "uint64_t", "double"), 8),
}
_NRRD_ENCODINGS = {"raw": "raw", "txt": "text", "text": "text", "ascii": "text", "hex": "hex", "gz": "gzip",
                   "gzip": "gzip", "bz2": "bzip2", "bzip2": "bzip2"}


def _nrrd_fields(path: Path, head: bytes) -> tuple[dict[str, str], int | None, list[str]]:
    """(fields by lower-case name without spaces, offset of attached data or None, LIST file names)."""
    fields: dict[str, str] = {}
    listed: list[str] = []
    lines = _header_lines(head)
    first, _ = next(lines, ("", 0))
    if not first.startswith("NRRD000"):
        raise InputError("does not start with a NRRD magic line (NRRD0001 ... NRRD0005)", path=path)
    for n, (line, end) in enumerate(lines, start=2):
        if listed or fields.get("datafile", "").upper().startswith("LIST"):
            if line.strip():
                listed.append(line.strip())
                continue
            return fields, end, listed
        if not line.strip():
            return fields, end, listed
        if line.startswith("#") or ":=" in line:
            continue
        key, sep, value = line.partition(":")
        if not sep:
            raise InputError(f"line {n} of its NRRD header is not 'field: value': {line[:60]!r}", path=path)
        name = key.strip().lower().replace(" ", "")
        if name in fields:
            raise InputError(f"gives the NRRD field '{key.strip()}' twice (line {n})", path=path,
                             hint="the header is corrupt")
        fields[name] = value.strip()
    if len(head) >= _HEADER_LIMIT:
        raise _header_too_long(path, "NRRD")
    return fields, None, listed


def _nrrd_required(fields: dict, name: str, path) -> str:
    if name not in fields:
        raise InputError(f"has no '{name}' field in its NRRD header", path=path, hint="the header is incomplete")
    return fields[name]


def check_nrrd(path: Path) -> Declared:
    """A NRRD file (attached data) or a detached header (.nhdr) with its data file(s)."""
    fields, data_at, listed = _nrrd_fields(path, _read_head(path))
    dim = _count(_nrrd_required(fields, "dimension", path), "dimension", path)
    if dim > 16:
        raise InputError(f"declares dimension {dim}; NRRD allows at most 16", path=path)
    sizes = _counts(_nrrd_required(fields, "sizes", path), dim, "sizes", path)
    voxels = _voxels(_product(sizes), path)
    kind = " ".join(_nrrd_required(fields, "type", path).lower().split())
    if kind not in _NRRD_TYPES:
        raise InputError(f"declares the NRRD type {kind[:40]!r}, which medface does not read", path=path,
                         hint="supported: 8- to 64-bit integers, float, double")
    encoding = _NRRD_ENCODINGS.get(_nrrd_required(fields, "encoding", path).lower())
    if encoding is None:
        raise InputError(f"declares the NRRD encoding {fields['encoding'][:40]!r}, which medface does not read",
                         path=path, hint="supported: raw, gzip, bzip2, ascii, hex")
    _check_nrrd_geometry(fields, dim, path)
    files = _nrrd_data_files(path, fields, listed, check=True)
    data_bytes = voxels * _NRRD_TYPES[kind]
    _check_nrrd_size(path, fields, encoding, (voxels, data_bytes), files, data_at)
    return Declared(voxels, data_bytes, (path, *files))


def _vectors(text: str, what: str, path) -> list[list[float] | None]:
    import re

    out = []
    for match in re.finditer(r"\(([^)]*)\)|(none)", text, flags=re.IGNORECASE):
        if match.group(2):
            out.append(None)
        else:
            out.append([_number(t, what, path) for t in match.group(1).replace(",", " ").split()])
    return out


def _check_nrrd_geometry(fields: dict, dim: int, path) -> None:
    if "spacedirections" in fields:
        vectors = _vectors(fields["spacedirections"], "space directions", path)
        if len(vectors) != dim:
            raise InputError(f"declares {len(vectors)} space directions for {dim} axes", path=path)
        given = [v for v in vectors if v is not None]
        if len({len(v) for v in given}) > 1 or any(not v for v in given):
            raise InputError("declares space directions of different lengths", path=path)
        _check_nrrd_directions(np.array(given, dtype=float), path)
    if "spaceorigin" in fields:
        vectors = _vectors(fields["spaceorigin"], "space origin", path)
        if len(vectors) != 1 or vectors[0] is None:
            raise InputError(f"declares a space origin that is not one vector: {fields['spaceorigin'][:60]!r}",
                             path=path)


def _check_nrrd_directions(vectors: np.ndarray, path) -> None:
    """Each space direction is an axis times its spacing: a plausible length, at right angles."""
    if not len(vectors):
        return
    with np.errstate(over="ignore"):
        lengths = np.sqrt(np.sum(np.square(vectors / 2.0), axis=1)) * 2.0
    low, high = PLAUSIBLE_SPACING_MM
    if not np.all(np.isfinite(lengths)) or np.any(lengths < low) or np.any(lengths > high):
        shown = ", ".join(f"{v:.4g}" for v in lengths)
        raise InputError(f"declares space directions of length {shown} mm, which is no plausible voxel spacing "
                         f"(medface expects {low:g} to {high:g} mm): is the file in millimetres?", path=path,
                         hint="fix the header or re-export the image in mm")
    if vectors.shape[0] == vectors.shape[1]:
        _check_rotation(vectors / lengths[:, None], "space directions", path)


def _nrrd_data_files(path: Path, fields: dict, listed: list[str], check: bool) -> list[Path]:
    spec = fields.get("datafile")
    if spec is None:
        return []
    parts = spec.split()
    if not parts:
        raise InputError("has an empty 'data file' field", path=path)
    if parts[0].upper() == "LIST":
        names = listed
        if not names:
            raise InputError("declares 'data file: LIST' but lists no file", path=path)
        if len(names) > _MAX_DATA_FILES:
            raise InputError(f"lists {len(names):,} data files; medface reads at most {_MAX_DATA_FILES:,}", path=path)
    elif len(parts) >= 4 and "%" in parts[0]:
        names = _pattern_names(*parts[:4], path)
    else:
        names = [spec]
    return [_data_file(path.parent / name, "NRRD data", check) for name in names]


def _check_nrrd_size(path: Path, fields: dict, encoding: str, declared: tuple[int, int], files: list[Path],
                     data_at: int | None) -> None:
    voxels, data_bytes = declared
    skip = int(_number(fields.get("byteskip", "0"), "byte skip", path))
    if skip < -1:
        raise InputError(f"declares byte skip = {skip}; it must be -1 or more", path=path)
    if files:
        available = sum(f.stat().st_size for f in files) - max(skip, 0) * len(files)
    elif data_at is None:
        raise InputError("is a NRRD header without data: it ends without a blank line and names no data file",
                         path=path, hint="give the .nhdr with its 'data file' field, or the complete .nrrd")
    else:
        available = path.stat().st_size - data_at - max(skip, 0)
    available = max(available, 0)
    if encoding == "raw" and available < data_bytes:
        raise _truncated(path, data_bytes, available, "its NRRD header declares")
    if encoding in ("gzip", "bzip2"):
        _check_expansion(data_bytes, available, path)
    if encoding == "text" and available < voxels:
        raise _truncated(path, voxels, available, "its NRRD header declares ASCII values for")
    if encoding == "hex" and available < 2 * data_bytes:
        raise _truncated(path, 2 * data_bytes, available, "its NRRD header declares hex digits for")


# MetaImage ----------------------------------------------------------------------------------
_META_TYPES = {"MET_CHAR": 1, "MET_UCHAR": 1, "MET_SHORT": 2, "MET_USHORT": 2, "MET_INT": 4, "MET_UINT": 4,
               "MET_LONG": 4, "MET_ULONG": 4, "MET_LONG_LONG": 8, "MET_ULONG_LONG": 8, "MET_FLOAT": 4,
               "MET_DOUBLE": 8}
_META_VECTORS = ("ElementSpacing", "ElementSize", "Offset", "Position", "Origin", "CenterOfRotation")
_META_MATRICES = ("TransformMatrix", "Rotation", "Orientation")


def _looks_like_metaimage(head: bytes) -> bool:
    from .sniff import _is_metaimage

    return _is_metaimage(head)


def _metaimage_fields(path: Path, head: bytes) -> tuple[dict[str, str], int, list[str]]:
    """(fields by exact key, as MetaIO reads them; offset just after ElementDataFile; LIST names)."""
    fields: dict[str, str] = {}
    for n, (line, end) in enumerate(_header_lines(head), start=1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise InputError(f"line {n} of its MetaImage header is not 'Key = Value': {line[:60]!r}", path=path)
        key = key.strip()
        if key in fields:
            raise InputError(f"gives the MetaImage key '{key[:40]}' twice (line {n})", path=path,
                             hint="the header is corrupt")
        fields[key] = value.strip()
        if key == "ElementDataFile":
            listed = []
            if value.split()[:1] and value.split()[0].upper() == "LIST":
                listed = [name for name, _ in _header_lines(head[end:]) if name.strip()]
            return fields, end, [name.strip() for name in listed]
    if len(head) >= _HEADER_LIMIT:
        raise _header_too_long(path, "MetaImage")
    raise InputError("has no ElementDataFile line, which ends a MetaImage header", path=path,
                     hint="the header is incomplete")


def _ndims(fields: dict, path) -> int:
    if "NDims" not in fields:
        raise InputError("has no NDims in its MetaImage header", path=path, hint="the header is incomplete")
    ndims = _count(fields["NDims"], "NDims", path)
    if ndims > 10:
        raise InputError(f"declares NDims = {ndims}; a MetaImage has 1 to 10 dimensions", path=path,
                         hint="the header is corrupt")
    return ndims


def check_metaimage(path: Path) -> Declared:
    """A MetaImage: ``.mha`` (data in the file) or ``.mhd`` with its data file(s)."""
    fields, data_at, listed = _metaimage_fields(path, _read_head(path))
    ndims = _ndims(fields, path)
    if "DimSize" not in fields:
        raise InputError("has no DimSize in its MetaImage header", path=path, hint="the header is incomplete")
    dims = _counts(fields["DimSize"], ndims, "DimSize", path)
    channels = _count(fields.get("ElementNumberOfChannels", "1"), "ElementNumberOfChannels", path)
    voxels = _voxels(_product(dims) * channels, path)
    etype = fields.get("ElementType", "")
    if etype not in _META_TYPES:
        raise InputError(f"declares ElementType = {etype[:40]!r}, which medface does not read", path=path,
                         hint="supported: " + ", ".join(_META_TYPES))
    for key in _META_VECTORS:
        if key in fields:
            _numbers(fields[key], ndims, key, path)
    for key in _META_MATRICES:
        if key in fields:
            _check_rotation(np.array(_numbers(fields[key], ndims * ndims, key, path)).reshape(ndims, ndims),
                            key, path)
    files = _metaimage_data_files(path, fields, listed, dims, check=True)
    data_bytes = voxels * _META_TYPES[etype]
    _check_metaimage_size(path, fields, (voxels, data_bytes), files, data_at)
    return Declared(voxels, data_bytes, (path, *files))


def _metaimage_data_files(path: Path, fields: dict, listed: list[str], dims: list[int], check: bool) -> list[Path]:
    spec = fields.get("ElementDataFile", "")
    parts = spec.split()
    if not parts:
        raise InputError("has an empty ElementDataFile", path=path)
    if parts[0].upper() == "LOCAL":
        return []
    if parts[0].upper() == "LIST" or (len(parts) >= 4 and "%" in parts[0]):
        rest = parts[1:] if parts[0].upper() == "LIST" else parts[4:]
        sub = _count(rest[0].rstrip("Dd"), "the dimension of each data file", path) if rest else len(dims) - 1
        needed = _product(dims[sub:]) if sub < len(dims) else 1
        names = listed if parts[0].upper() == "LIST" else _pattern_names(*parts[:4], path)
        if len(names) < needed:
            raise InputError(f"names {len(names)} data files but its DimSize needs {needed}", path=path,
                             hint="data files are missing from the header's list")
        names = names[:needed]
    else:
        names = [spec]
    return [_data_file(path.parent / name, "MetaImage data", check) for name in names]


def _check_metaimage_size(path: Path, fields: dict, declared: tuple[int, int], files: list[Path],
                          data_at: int) -> None:
    voxels, data_bytes = declared
    skip = int(_number(fields.get("HeaderSize", "0"), "HeaderSize", path))
    if skip < -1:
        raise InputError(f"declares HeaderSize = {skip}; it must be -1 or more", path=path)
    if files:
        available = sum(f.stat().st_size for f in files) - max(skip, 0) * len(files)
    else:
        available = path.stat().st_size - data_at
    available = max(available, 0)
    compressed = fields.get("CompressedData", "False")[:1] in ("T", "t", "1")
    binary = fields.get("BinaryData", "True")[:1] in ("T", "t", "1")
    if compressed:
        if "CompressedDataSize" in fields:
            stated = _count(fields["CompressedDataSize"], "CompressedDataSize", path, minimum=0)
            if stated > available:
                raise _truncated(path, stated, available, "its header promises compressed data of")
        _check_expansion(data_bytes, available, path)
    elif binary and available < data_bytes:
        raise _truncated(path, data_bytes, available, "its MetaImage header declares")
    elif not binary and available < voxels:
        raise _truncated(path, voxels, available, "its MetaImage header declares ASCII values for")
