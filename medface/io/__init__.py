"""Readers and writers for medface's data types; formats are recognised from content.

::

    from medface import io
    ct = io.read("head_ct/")                 # a DICOM folder -> Volume
    skull = io.read_mesh("skull.stl")        # -> SurfaceMesh (LPS mm)
    io.write_landmarks(points, "points.mrk.json")

Importing this package is cheap: SimpleITK, trimesh, VTK and Pillow load only when a reader
or writer needs them. See ``docs/file-formats.md`` for what each format keeps.
"""

from __future__ import annotations

from ..errors import InputError
from .images import read_image, write_image
from .markups import read_landmarks, write_landmarks
from .meshes import read_mesh, write_mesh
from .plans import read_plan, write_plan
from .sniff import CATEGORIES, KINDS, category, sniff
from .volumes import data_files, read_volume, write_dicom_series, write_volume

__all__ = ["read", "sniff", "category", "data_files", "read_volume", "read_mesh", "read_landmarks", "read_image",
           "write_volume", "write_mesh", "write_landmarks", "write_image", "write_dicom_series", "read_plan", "write_plan",
           "write_to_folder"]

_READERS = {"volume": read_volume, "mesh": read_mesh, "landmarks": read_landmarks, "image": read_image}
#: the format a data object is written in when only a folder is given: (suffix, writer) by type name
_DEFAULT_FORMATS = {"Volume": (".nrrd", write_volume), "SurfaceMesh": (".ply", write_mesh),
                    "Landmarks": (".mrk.json", write_landmarks), "FaceImage": (".png", write_image),
                    "Plan": (".json", write_plan)}


def read(path, kind: str | None = None):
    """Read any supported file: returns a Volume, SurfaceMesh, Landmarks or FaceImage.

    The reader is chosen from the content. ``kind`` may name the category you expect
    (``"volume"``, ``"mesh"``, ``"landmarks"``, ``"image"``) or an exact format from
    :func:`sniff` (``"nifti"``, ``"stl-binary"`` ...); a file that is something else raises
    :class:`InputError`.
    """
    found = sniff(path)
    if kind is not None:
        if kind not in CATEGORIES and kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; use one of {', '.join([*CATEGORIES, *KINDS])}")
        if kind != found and kind != category(found):
            raise InputError(f"is {KINDS[found][1]}, not {KINDS[kind][1] if kind in KINDS else CATEGORIES[kind][0]}",
                             path=path)
    return _READERS[category(found)](path)


def write_to_folder(data, folder, stem: str):
    """Write a data object as ``folder/stem`` plus its type's usual suffix (a volume as NRRD, a
    mesh as PLY with its point data, landmarks as Slicer markups JSON, a photo as PNG, a plan as
    JSON) and return the path; the folder is made when missing."""
    from pathlib import Path

    kind = type(data).__name__
    if kind not in _DEFAULT_FORMATS:
        raise TypeError(f"cannot write a {kind}; medface writes {', '.join(_DEFAULT_FORMATS)}")
    suffix, writer = _DEFAULT_FORMATS[kind]
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{stem}{suffix}"
    written = writer(data, target)
    return Path(written) if written is not None else target
