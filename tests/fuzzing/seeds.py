"""The seed corpus: one small valid file per reader and format, written by medface's own writers.

Nothing is committed but this code: :func:`write_seeds` writes the corpus into a folder (a few KB
per file) deterministically, so every run mutates the same seeds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _icosphere():
    import trimesh

    from medface.data import SurfaceMesh

    sphere = trimesh.creation.icosphere(subdivisions=1, radius=40.0)
    return SurfaceMesh(np.asarray(sphere.vertices, float), np.asarray(sphere.faces, np.int64))


def _small_ct():
    from medface.data import Volume

    k, j, i = np.mgrid[0:6, 0:8, 0:8]
    head = ((i - 3.5) ** 2 + (j - 3.5) ** 2 + (k - 2.5) ** 2) < 10
    hu = np.where(head, 40.0, -1000.0)
    hu[2:4, 3:5, 3:5] = 700.0
    return Volume(hu.astype(np.int16), spacing=(2.0, 2.0, 2.5), origin=(-8.0, -8.0, -6.0))


def _volumes(folder: Path) -> dict[str, Path]:
    from medface import io

    ct = _small_ct()
    seeds = {}
    for name in ("ct.nii", "ct.nii.gz", "ct.nrrd", "ct.mha", "ct.mhd"):
        seeds[name] = io.write_volume(ct, folder / name, compress=name.endswith(".gz"))
    io.write_dicom_series(ct, folder / "dicom")
    seeds["dicom"] = folder / "dicom"
    return {k: Path(v) for k, v in seeds.items()}


def _meshes(folder: Path) -> dict[str, Path]:
    from medface import io

    mesh = _icosphere()
    seeds = {}
    for name, binary in (("mesh.stl", True), ("mesh_ascii.stl", False), ("mesh.ply", True),
                         ("mesh_ascii.ply", False), ("mesh.obj", False), ("mesh.vtp", True), ("mesh.vtk", True),
                         ("mesh_ascii.vtk", False)):
        seeds[name] = Path(io.write_mesh(mesh, folder / name, binary=binary))
    return seeds


def _landmarks(folder: Path) -> dict[str, Path]:
    from medface import io
    from medface.data import Landmarks

    points = Landmarks(["n", "prn", "pg"], np.array([[0.0, 1.0, 2.0], [10.0, -3.5, 4.25], [-7.0, 8.0, 1.0]]))
    return {"points.mrk.json": Path(io.write_landmarks(points, folder / "points.mrk.json")),
            "points.csv": Path(io.write_landmarks(points, folder / "points.csv"))}


def _images(folder: Path) -> dict[str, Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = (rng.random((24, 32, 3)) * 255).astype(np.uint8)
    seeds = {}
    for name in ("photo.png", "photo.jpg"):
        Image.fromarray(pixels).save(folder / name)
        seeds[name] = folder / name
    return seeds


def _documents(folder: Path) -> dict[str, Path]:
    from medface import io
    from medface_surgery import SurgeryPlan

    landmarks = io.read_landmarks(REPO / "sample_data" / "landmarks.mrk.json")
    seeds = {"plan.json": Path(SurgeryPlan.from_preset("genioplasty", landmarks).save(folder / "plan.json"))}
    manifest = REPO / "plugins" / "surgery" / "medface_surgery" / "medface-plugin.toml"
    seeds["medface-plugin.toml"] = folder / "medface-plugin.toml"
    shutil.copyfile(manifest, seeds["medface-plugin.toml"])
    card = REPO / "plugins" / "phenotype" / "medface_phenotype" / "models" / "phantom-demo" / "card.json"
    if card.is_file():
        (folder / "model").mkdir(exist_ok=True)
        seeds["card.json"] = folder / "model" / "card.json"
        shutil.copyfile(card, seeds["card.json"])
    return seeds


def write_seeds(folder) -> dict[str, Path]:
    """Write the corpus into ``folder``; returns seed name -> path (a DICOM seed is a folder)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    seeds = {}
    for part in (_volumes, _meshes, _landmarks, _images, _documents):
        seeds.update(part(folder))
    return seeds
