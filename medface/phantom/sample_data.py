"""`medface sample-data`: the committed sample files, regenerable bit for bit from a seed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.provenance import sha256_path
from .head import make_head, sample_subject

#: the sample expression session: a moderate right-sided palsy, photos small enough to commit
SAMPLE_PALSY = {"side": "right", "severity": {"brow": 0.6, "eye": 0.5, "smile": 0.7, "lower_lip": 0.5},
                "synkinesis": 0.3}
EXPRESSION_PHOTO_SIZE = 448
SAMPLE_CONDITIONS = (("hypertelorism", "severe"), ("micrognathia", "severe"), ("midface_retrusion", "severe"))
NOTE = ("Synthetic phantom data made by medface.phantom; no real person. Not for clinical use.")


def find_sample_data(names) -> Path | None:
    """The first folder holding every file in ``names``: ``$MEDFACE_SAMPLE_DATA``, ``./sample_data``,
    then the checkout's ``sample_data``; None when none does (self-tests then make their own)."""
    import os

    checkout = Path(__file__).resolve().parents[2] / "sample_data"
    for folder in (os.environ.get("MEDFACE_SAMPLE_DATA"), Path.cwd() / "sample_data", checkout):
        if folder and all((Path(folder) / name).is_file() for name in names):
            return Path(folder)
    return None


def write_sample_data(out, seed: int = 0, *, ct_spacing: float = 2.0, dicom_spacing: float = 3.0,
                      photo_size: int = 512) -> dict:
    """Write the sample head (CT, meshes, landmarks, photos) and condition photos to ``out``."""
    from ..io import write_dicom_series, write_image, write_landmarks, write_mesh, write_volume
    from .ct import head_ct
    from .photo import render_photo

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    subject = sample_subject(rng, sex="F", age=38.0, bmi=23.5, subject_id=f"sample-{seed}")
    head = make_head(subject)
    files: dict[str, str] = {}

    def record(name: str, description: str) -> None:
        files[name] = description

    ct = head_ct(head, spacing=ct_spacing, seed=seed)
    write_volume(ct, out / "head_ct.nii.gz")
    record("head_ct.nii.gz", f"CT of the sample head in HU, {ct_spacing:g} mm voxels, LPS, with noise")
    small = head_ct(head, spacing=dicom_spacing, seed=seed)
    write_dicom_series(small, out / "head_ct_dicom", uid_seed=f"medface-sample-{seed}",
                       series_description="medface synthetic phantom head CT")
    record("head_ct_dicom", f"the same head as a DICOM CT series, {dicom_spacing:g} mm voxels")
    for name, desc in (("skull", "cranium with the upper teeth (no mandible), LPS mm, watertight"),
                       ("mandible", "mandible with the lower teeth, LPS mm, watertight"),
                       ("skin", "skin surface with closed eyes, cut flat at the neck, LPS mm, watertight")):
        mesh = head.mesh("cranium" if name == "skull" else name)
        write_mesh(mesh, out / f"{name}.ply")
        record(f"{name}.ply", desc)
    write_landmarks(head.landmark_set(), out / "landmarks.mrk.json")
    record("landmarks.mrk.json", "craniometric and soft-tissue landmarks (3D Slicer markups, LPS)")
    for view in ("frontal", "left", "three_quarter_left"):
        image = render_photo(head, view=view, size=(photo_size, photo_size), seed=seed)
        write_image(image, out / f"photo_{view}.png")
        _write_json(out / f"photo_{view}.landmarks.json", image.landmarks_2d)
        record(f"photo_{view}.png", f"rendered {view.replace('_', ' ')} photo of the sample head")
        record(f"photo_{view}.landmarks.json", f"2D pixel positions of the visible soft-tissue landmarks in "
                                               f"photo_{view}.png (x right, y down)")
    for i, (condition, severity) in enumerate(SAMPLE_CONDITIONS):
        crng = np.random.default_rng([seed, i + 1])
        csub = sample_subject(crng, condition=condition, severity=severity, subject_id=f"{condition}-{seed}")
        image = render_photo(make_head(csub), view="frontal", size=(photo_size, photo_size), seed=seed + i + 1)
        name = f"condition_{condition}.png"
        write_image(image, out / name)
        record(name, f"frontal photo of a synthetic subject with {severity} {condition.replace('_', ' ')}")
    _write_expressions(out / "expressions", seed, record)
    _write_json(out / "subject.json", subject.to_dict())
    record("subject.json", "the sample subject's parameters (sex, age, BMI, shape targets, tissue z-scores)")
    index = {"description": NOTE, "seed": seed, "files": {}}
    for name, desc in sorted(files.items()):
        path = out / name
        index["files"][name] = {"description": desc, "sha256": sha256_path(path), "bytes": _size(path)}
    _write_json(out / "index.json", index)
    return index


def _write_expressions(folder: Path, seed: int, record) -> None:
    """One expression session of the mean woman with :data:`SAMPLE_PALSY` (for ``expression grade``)."""
    from .expressions import Palsy, render_expression_set, write_expression_set

    palsy = Palsy.from_dict(SAMPLE_PALSY)
    size = (EXPRESSION_PHOTO_SIZE, EXPRESSION_PHOTO_SIZE)
    images = render_expression_set(palsy=palsy, seed=seed, size=size)
    write_expression_set(folder, images, palsy)
    for name in images:
        record(f"expressions/{name}.png", f"frontal photo of the mean phantom woman, {name.replace('_', ' ')}, "
                                          "with open eyes and a moderate right facial palsy")
    record("expressions/truth.json", "the palsy (side, severity per region, synkinesis) and the movement applied "
                                     "per expression and side: the truth for `medface expression grade`")


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


def _write_json(path: Path, doc) -> None:
    from ..data.result import to_jsonable

    path.write_text(json.dumps(to_jsonable(doc), indent=2, sort_keys=True) + "\n", encoding="utf-8")
