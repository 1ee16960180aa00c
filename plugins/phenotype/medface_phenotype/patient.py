"""Patients, not photos: several photos of one person combined into one ranking.

Each photo goes through the same quality gate as a single screening; those that pass are run
through the network together, and the patient's ranking comes from the mean of their unit
embeddings (renormalised, so the gallery's cosine distances apply unchanged) and the mean of
their logits (the softmax head's probabilities). The out-of-distribution gate is conservative:
the patient counts as off-distribution when any screened photo is (the highest gate score),
and then probabilities and the syndromic score are withheld, as for one photo. Refused photos
are reported with their reasons and left out of the combination. GestaltMatcher and Face2Gene
likewise give one result per patient from several images; the averaging here is this
project's choice (no comparison with other combinations was made).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.data import Result
from medface.errors import InputError

from .screening import ScreeningResult, gate_scores, prepare_photo, score_found, unranked

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_PHOTOS = 50


@dataclass
class PatientScreening:
    photos: list[ScreeningResult]  # one per photo, in order; refused ones are not ranked
    combined: ScreeningResult | None  # the patient's ranking (None when no photo passed the gate)
    used: list[int]  # the photos combined

    @property
    def screened(self) -> bool:
        return self.combined is not None


def mean_embedding(embeddings) -> np.ndarray:
    """The renormalised mean of unit embeddings (each normalised first)."""
    e = np.asarray(embeddings, np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    m = e.mean(axis=0)
    return m / max(float(np.linalg.norm(m)), 1e-12)


def screen_patient(screener, images) -> PatientScreening:
    """Screen several photos of one patient with a :class:`.screening.Screener`."""
    faces = [prepare_photo(image) for image in images]
    photos = [unranked(face) for face in faces]
    used = [i for i, face in enumerate(faces) if not face.quality.refused]
    if not used:
        return PatientScreening(photos, None, [])
    package, facts, top = screener.package, screener.facts, screener.top
    outputs = package.predictor.predict([faces[i].crop for i in used]).outputs
    features = [o.get("features") for o in outputs]
    scores = gate_scores(package.gate, np.stack(features)) if features[0] is not None else None
    for k, i in enumerate(used):
        score_found(photos[i], facts, package.gallery.nearest(outputs[k]["embedding"], top=top), outputs[k]["logits"],
                    None if scores is None else scores[k])
    combined = unranked(faces[used[0]])
    combined.embedding = mean_embedding([o["embedding"] for o in outputs]).astype(np.float32)
    score_found(combined, facts, package.gallery.nearest(combined.embedding, top=top),
                np.mean([o["logits"] for o in outputs], axis=0), None if scores is None else float(np.max(scores)))
    return PatientScreening(photos, combined, used)


def patient_photos(folder) -> list[Path]:
    """The photos of a patient folder (PNG, JPEG; sorted by name)."""
    folder = Path(folder)
    photos = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not photos:
        raise InputError("the folder holds no PNG or JPEG photo", path=folder)
    if len(photos) > MAX_PHOTOS:
        raise InputError(f"{len(photos)} photos: more than {MAX_PHOTOS} for one patient", path=folder,
                         hint="one folder per patient")
    return photos


def screen_patient_command(photos, model=None, top: int = 10, device: str = "auto", hpo: str = "",
                           hpo_file=None, context=None) -> Result:
    """CLI entry of `phenotype screen-patient`: a folder of one patient's photos."""
    from medface.io import read_image

    from .clinical_terms import add_terms_ranking, face_for_fusion, recorded_terms
    from .screen import screening_report
    from .screening import Screener

    terms = recorded_terms(hpo, hpo_file)
    images, unreadable = [], {}
    for k, path in enumerate(patient_photos(photos)):
        try:
            images.append(read_image(path))
        except InputError as exc:
            unreadable[k] = exc.message
    screener = Screener(model, device=device, top=top, attention=False)
    found = screen_patient(screener, images)
    if found.screened:
        result = screening_report(found.combined, screener, "phenotype.screen-patient")
        result.tables.pop("quality checks", None)  # the first photo's: each photo's verdict is in "photos"
        result.metrics.pop("quality", None)
    else:
        result = Result(command="phenotype.screen-patient")
        result.refuse("no photo of the patient passed the quality gate")
    total = len(images) + len(unreadable)
    result.summary["verdict"] = f"{len(found.used)} of {total} photos combined"
    result.tables["photos"] = _photo_rows(found, unreadable, total)
    if terms:
        add_terms_ranking(result, terms, top, face=face_for_fusion(screener, found.combined))
    return result


def _photo_rows(found: PatientScreening, unreadable: dict, total: int) -> list[dict]:
    """One row per photo, in file-name order (numbers, not names: a file name may name the patient)."""
    rows, readable = [], iter(enumerate(found.photos))
    for k in range(total):
        if k in unreadable:
            rows.append({"photo": k + 1, "verdict": f"unreadable: {unreadable[k]}", "combined": False,
                         "top_condition": None, "top_similarity": None, "in_distribution": None})
            continue
        index, photo = next(readable)
        top = photo.conditions[0] if photo.conditions else None
        rows.append({"photo": k + 1, "verdict": photo.quality.verdict, "combined": index in found.used,
                     "top_condition": top.condition if top else None,
                     "top_similarity": top.similarity if top else None, "in_distribution": photo.in_distribution})
    return rows
