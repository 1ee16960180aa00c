"""The template head every forensic model, registration and metric shares: a versioned data file.

The template is the medface phantom's mean female head (cranium, mandible and skin meshes in
LPS mm, and its landmarks), frozen as ``data/template-v<N>.npz`` (the meshes) with
``data/template-v<N>.json`` beside it (format, version, the npz's sha256, the subject's sex,
age and BMI, vertex and triangle counts, the landmarks). :func:`template_head` reads it and
checks the sha256, so a damaged or replaced file is refused instead of silently giving other
numbers. Nothing here runs the phantom: editing the phantom's code (its photos, its hair
colours) changes neither the template nor any model keyed on it.

A new template (the phantom's head geometry changed on purpose) is a new version: raise
:data:`TEMPLATE_VERSION`, regenerate the files with ::

    python -m medface_forensic.template            # writes data/template-v<N>.npz and .json

(:func:`build_template_files`) and, because every model depends on the template's
vertices, raise ``MODEL_VERSION`` in :mod:`.model_cache` too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import ModelError

TEMPLATE_VERSION = 1
DATA_DIR = Path(__file__).with_name("data")
FORMAT = "medface-forensic-template"
PARTS = ("cranium", "mandible", "skin")
SOURCE = 'medface.phantom.make_head(medface.phantom.mean_subject("F"))'


@dataclass(frozen=True)
class TemplateSubject:
    """Who the template is: the covariates the phantom built the mean head with."""

    sex: str
    age: float
    bmi: float


@dataclass(frozen=True)
class TemplateHead:
    """The template's cranium, mandible and skin (SurfaceMesh, LPS mm), its landmarks (id ->
    (3,) mm) and subject. Shared by the whole plugin: do not modify."""

    cranium: SurfaceMesh
    mandible: SurfaceMesh
    skin: SurfaceMesh
    landmarks: dict
    subject: TemplateSubject
    version: int
    sha256: str


def data_paths(version: int = TEMPLATE_VERSION, folder: Path = DATA_DIR) -> tuple[Path, Path]:
    """The (npz, json) files of one template version."""
    return Path(folder) / f"template-v{version}.npz", Path(folder) / f"template-v{version}.json"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _read_description(path: Path, version: int) -> dict:
    if not path.is_file():
        raise ModelError(f"the forensic template description {path.name} is missing", path=path,
                         hint="reinstall medface-forensic, or regenerate it: python -m medface_forensic.template")
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("format") != FORMAT or info.get("version") != version:
        raise ModelError(f"{path.name} is not a version-{version} medface forensic template", path=path)
    return info


def _check_counts(meshes: dict, info: dict, path: Path) -> None:
    for part, mesh in meshes.items():
        expected = info["counts"][part]
        got = {"vertices": mesh.n_vertices, "triangles": mesh.n_faces}
        if got != expected:
            raise ModelError(f"the template's {part} has {got} but its description says {expected}", path=path,
                             hint="regenerate both files together: python -m medface_forensic.template")


def load_template(version: int = TEMPLATE_VERSION, folder: Path = DATA_DIR) -> TemplateHead:
    """Read and check one template version (see the module docstring); :class:`ModelError`
    when a file is missing, of another format or version, or its sha256 does not match."""
    npz, desc = data_paths(version, folder)
    info = _read_description(desc, version)
    if not npz.is_file():
        raise ModelError(f"the forensic template data {npz.name} is missing", path=npz,
                         hint="reinstall medface-forensic, or regenerate it: python -m medface_forensic.template")
    digest = file_sha256(npz)
    if digest != info["sha256"]:
        raise ModelError(f"{npz.name} does not match the sha256 in {desc.name} (damaged or replaced)", path=npz,
                         hint="reinstall medface-forensic, or regenerate both: python -m medface_forensic.template")
    if Path(folder).resolve() == DATA_DIR.resolve():  # the shipped files: pinned in the plugin's code
        from .model_hashes import template_pin_problem

        problem = template_pin_problem(version, info, digest)
        if problem:
            raise ModelError(f"the shipped forensic template is not authentic: {problem}", path=npz,
                             hint="reinstall medface-forensic; after regenerating it on purpose, update "
                                  "medface_forensic/model_hashes.py")
    with np.load(npz) as arrays:
        meshes = {p: SurfaceMesh(arrays[f"{p}_vertices"], arrays[f"{p}_faces"], name=p) for p in PARTS}
    _check_counts(meshes, info, npz)
    landmarks = {k: np.asarray(v, float) for k, v in info["landmarks"].items()}
    return TemplateHead(**meshes, landmarks=landmarks, subject=TemplateSubject(**info["subject"]), version=version,
                        sha256=digest)


@lru_cache(maxsize=1)
def template_head() -> TemplateHead:
    """The shipped template (:data:`TEMPLATE_VERSION`), read once per process. Shared: do not modify."""
    return load_template()


# landmarks the phantom places for its facial-feature vocabulary (trichion, the closed lids): not
# part of the template's anatomy, so version 1 stays as it shipped
FEATURE_LANDMARKS = frozenset({"tr", "ps_l", "ps_r"})


def phantom_template():
    """The head the phantom builds today for the template (a :class:`medface.phantom` Head)."""
    from medface import phantom

    return phantom.make_head(phantom.mean_subject("F"))


def build_template_files(folder: Path = DATA_DIR, version: int = TEMPLATE_VERSION) -> tuple[Path, Path]:
    """Write ``template-v<version>.npz`` and ``.json`` into ``folder`` from the phantom's mean
    female head (see the module docstring); returns their paths."""
    head = phantom_template()
    npz, desc = data_paths(version, folder)
    npz.parent.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for part in PARTS:
        mesh = getattr(head, part)
        arrays[f"{part}_vertices"] = np.ascontiguousarray(mesh.vertices, np.float64)
        arrays[f"{part}_faces"] = np.ascontiguousarray(mesh.faces, np.int32)
    np.savez_compressed(npz, **arrays)
    s = head.subject
    info = {"format": FORMAT, "version": version, "data": npz.name, "sha256": file_sha256(npz), "source": SOURCE,
            "units": "mm, LPS", "subject": {"sex": s.sex, "age": float(s.age), "bmi": float(s.bmi)},
            "counts": {p: {"vertices": getattr(head, p).n_vertices, "triangles": getattr(head, p).n_faces}
                       for p in PARTS},
            "landmarks": {k: [float(x) for x in np.asarray(v, float)] for k, v in head.landmarks.items()
                          if k not in FEATURE_LANDMARKS}}
    desc.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return npz, desc


if __name__ == "__main__":  # python -m medface_forensic.template
    for written in build_template_files():
        print(written)
