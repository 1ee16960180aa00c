"""Format sniffing: content decides, extensions are ignored; the generic reader dispatches."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from medface.data import FaceImage, Landmarks, SurfaceMesh, Volume
from medface.errors import InputError
from medface.io import (category, read, sniff, write_dicom_series, write_image, write_landmarks, write_mesh,
                        write_volume)


def make_volume(path: Path) -> None:
    write_volume(Volume(np.arange(24, dtype=np.int16).reshape(2, 3, 4)), path)


def make_mesh(path: Path, binary: bool = True) -> None:
    write_mesh(SurfaceMesh(np.eye(3), [[0, 1, 2]]), path, binary=binary)


def make_image(path: Path) -> None:
    write_image(FaceImage(np.zeros((4, 4, 3), np.uint8)), path)


def make_landmarks(path: Path) -> None:
    write_landmarks(Landmarks(["n"], [[1.0, 2.0, 3.0]]), path)


# (name the writer needs, writer, expected kind)
FORMATS = [
    ("v.nii", make_volume, "nifti"),
    ("v.nii.gz", make_volume, "nifti"),
    ("v.nrrd", make_volume, "nrrd"),
    ("v.mha", make_volume, "metaimage"),
    ("v.mhd", make_volume, "metaimage"),
    ("m.stl", make_mesh, "stl-binary"),
    ("m.stl", lambda p: make_mesh(p, binary=False), "stl-ascii"),
    ("m.ply", make_mesh, "ply"),
    ("m.ply", lambda p: make_mesh(p, binary=False), "ply"),
    ("m.obj", make_mesh, "obj"),
    ("m.vtp", make_mesh, "vtp"),
    ("m.vtk", make_mesh, "vtk-legacy"),
    ("m.vtk", lambda p: make_mesh(p, binary=False), "vtk-legacy"),
    ("i.png", make_image, "png"),
    ("i.jpg", make_image, "jpeg"),
    ("l.mrk.json", make_landmarks, "markups-json"),
    ("l.csv", make_landmarks, "csv"),
]


@pytest.mark.parametrize(("name", "make", "kind"), FORMATS, ids=[f"{k}:{n}" for n, _, k in FORMATS])
def test_content_decides_not_the_extension(tmp_path, name, make, kind):
    make(tmp_path / name)
    misleading = (tmp_path / name).rename(tmp_path / "mystery.stl.png")
    assert sniff(misleading) == kind
    assert category(kind) in ("volume", "mesh", "landmarks", "image")


def test_dicom_file_and_folder(tmp_path):
    files = write_dicom_series(Volume(np.zeros((2, 4, 4), np.int16)), tmp_path / "series")
    assert sniff(files[0]) == "dicom"
    assert sniff(tmp_path / "series") == "dicom-folder"
    assert category("dicom-folder") == "volume"


def test_binary_stl_header_starting_with_solid(tmp_path):
    make_mesh(tmp_path / "m.stl")
    data = bytearray((tmp_path / "m.stl").read_bytes())
    data[:80] = b"solid but binary".ljust(80, b"\0")
    (tmp_path / "m.stl").write_bytes(bytes(data))
    assert sniff(tmp_path / "m.stl") == "stl-binary"


def test_categories():
    assert [category(k) for k in ("nifti", "obj", "csv", "jpeg")] == ["volume", "mesh", "landmarks", "image"]
    with pytest.raises(ValueError, match="unknown file kind"):
        category("docx")


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"Dear colleague, please find the scan attached.\n", "does not recognise"),
    (bytes(range(256)) * 4, "does not recognise"),
    (gzip.compress(b"not a nifti header" * 40, mtime=0), "does not hold a NIfTI image"),
    (json.dumps({"points": []}).encode(), "required key 'markups'"),
    (b'<?xml version="1.0"?>\n<VTKFile type="UnstructuredGrid" version="1.0">\n', "only PolyData"),
])
def test_unrecognised_content_is_refused(tmp_path, content, message):
    path = tmp_path / "input.nii"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        sniff(path)
    assert str(path) in str(info.value)


def test_unknown_content_lists_the_supported_formats(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("just some text\n")
    with pytest.raises(InputError, match=r"supported formats: volumes: DICOM .* images: PNG, JPEG"):
        sniff(path)


def test_missing_path_and_folder_without_dicom(tmp_path):
    with pytest.raises(InputError, match="does not exist") as info:
        sniff(tmp_path / "absent.stl")
    assert "absent.stl" in str(info.value)
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "readme.txt").write_text("hello")
    with pytest.raises(InputError, match="folder without DICOM files") as info:
        sniff(tmp_path / "folder")
    assert str(tmp_path / "folder") in str(info.value)


def test_generic_read_dispatches_on_content(tmp_path):
    make_volume(tmp_path / "v.nrrd")
    make_mesh(tmp_path / "m.ply")
    make_landmarks(tmp_path / "l.mrk.json")
    make_image(tmp_path / "i.png")
    assert isinstance(read(tmp_path / "v.nrrd"), Volume)
    assert isinstance(read(tmp_path / "m.ply", kind="mesh"), SurfaceMesh)
    assert isinstance(read(tmp_path / "l.mrk.json", kind="markups-json"), Landmarks)
    assert isinstance(read(tmp_path / "i.png"), FaceImage)
    with pytest.raises(InputError, match="is a PLY mesh, not a volume") as info:
        read(tmp_path / "m.ply", kind="volume")
    assert str(tmp_path / "m.ply") in str(info.value)
    with pytest.raises(ValueError, match="unknown kind"):
        read(tmp_path / "m.ply", kind="hologram")


def test_importing_io_loads_no_heavy_library():
    code = ("import sys, medface.io; heavy = ('SimpleITK', 'vtkmodules', 'vtk', 'trimesh', 'torch', 'pyvista', 'PIL');"
            "print(','.join(sorted({m.split('.')[0] for m in sys.modules} & set(heavy))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == ""
