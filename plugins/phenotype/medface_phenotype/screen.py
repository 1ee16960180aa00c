"""`phenotype screen`: the command over :class:`medface_phenotype.screening.Screener`.

The command binds parameters, screens the photo and turns the :class:`ScreeningResult` into a
medface Result: summary, quality checks, ranking, model provenance, and the aligned face and
attention map declared as images (the runner writes them when there is an output folder).
"""

from __future__ import annotations

from medface.data import FaceImage, Result

from .screening import DEMO_MODEL, PackageFacts, Screener, ScreeningResult, screen_many  # noqa: F401  (public here too)

LIMIT = ("A ranking of facial resemblance to the conditions in the model's gallery, not a diagnosis; conditions "
         "absent from the gallery cannot be suggested.")
OFF_DISTRIBUTION = ("off-distribution: this face does not look like the photos the model learned (gate score "
                    "{score:.3g} above its threshold {threshold:.3g}); its probabilities and syndromic score are "
                    "withheld, and the conditions below are ranked by similarity only")
SYNTHETIC_WARNING = ("The model was trained on synthetic phantom faces only and is not validated on patients: its "
                     "ranking of a real photo means nothing clinically.")


def screen(image: FaceImage, model=None, top: int = 10, save_photo: bool = False, device: str = "auto",
           hpo: str = "", hpo_file=None, context=None) -> Result:
    """CLI entry of `phenotype screen`; ``hpo``/``hpo_file``: the clinician's recorded terms
    (:mod:`.clinical_terms`), checked before the photo is screened."""
    from .clinical_terms import add_terms_ranking, face_for_fusion, recorded_terms

    terms = recorded_terms(hpo, hpo_file)
    screener = Screener(model, device=device, top=top, attention=pictures_wanted(context))
    found = screener.screen_one(image)
    result = screen_result(found, screener, image, save_photo)
    if terms:
        if context is not None:
            context.stage("ranking the syndrome catalogue by the clinician's terms (the ontology loads once)")
        add_terms_ranking(result, terms, top, face=face_for_fusion(screener, found))
    return result


def screen_result(found: ScreeningResult, package, image: FaceImage, save_photo: bool) -> Result:
    """The Result of `phenotype screen` for a screened (or refused) photo: the report, the aligned
    face and attention map, and the photo when asked for. ``package``: the Screener that ranked
    it, or its :class:`PackageFacts` (a batch's streaming stages, screen_stages.py)."""
    result = screening_report(found, package, "phenotype.screen")
    declare_pictures(result, found)
    declare_photo_overlays(result, found, image)
    if save_photo and found.screened:
        result.declare("photo", "photo.png", image, face=True)
    return result


def pictures_wanted(context) -> bool:
    """Whether the run writes its outputs with face pictures (so an attention map is worth computing)."""
    return context is None or (context.out_dir is not None and getattr(context, "face_images", True))


def screening_report(found: ScreeningResult, package, command: str) -> Result:
    """The Result of one screening: the quality gate always, the ranking when the face passed.
    ``package``: the :class:`Screener` that ranked it or its :class:`PackageFacts` (only read
    for a screened face)."""
    quality = found.quality
    result = Result(command=command)
    result.metrics["quality"] = quality.to_dict()
    result.tables["quality checks"] = [{"check": c.name, "status": c.status, "finding": c.message}
                                       for c in quality.checks]
    result.warnings.extend(quality.warnings)
    result.summary["verdict"] = quality.verdict
    if found.face is not None:
        result.metrics["face"] = found.face.to_dict()
    result.metrics["faces"] = faces_found(found)
    result.limits.append(LIMIT)
    if not found.screened:
        result.summary["screened"] = False
        result.refuse("; ".join(quality.reasons) or found.verdict)  # exit code 8 on the command line
        return result
    _add_ranking(result, found, package.facts if isinstance(package, Screener) else package)
    return result


def faces_found(found: ScreeningResult) -> list[dict]:
    """Every face the detector found, largest first: box, eye distance, detector score, width
    as a share of the largest, and whether it is the one screened."""
    if not found.faces:
        return []
    largest = max(found.faces[0].width, 1e-9)
    return [{"box": [round(float(v), 2) for v in face.box], "eye_distance_px": round(face.eye_distance, 2),
             "score": round(float(face.score), 4), "width_ratio": round(face.width / largest, 3),
             "screened": index == 0 and found.screened} for index, face in enumerate(found.faces)]


def _add_ranking(result: Result, found: ScreeningResult, facts: PackageFacts) -> None:
    from medface.data.provenance import InputRecord

    top, score = found.conditions[0], found.syndromic_score
    result.summary.update({"screened": True, "distribution": _distribution(found), "top_condition": top.condition,
                           "top_similarity": top.similarity,
                           "syndromic_score": None if score is None else round(score, 4),
                           "model": f"{facts.name} {facts.version}"})
    result.metrics["distribution"] = {"in_distribution": found.in_distribution, "score": found.ood_score,
                                      "threshold": found.ood_threshold}
    if found.in_distribution is False:
        result.warnings.append(OFF_DISTRIBUTION.format(score=found.ood_score, threshold=found.ood_threshold))
    if found.attention_regions is not None:
        result.tables["attention by region"] = found.attention_regions.table()
    result.tables["conditions"] = [c.to_dict() for c in found.conditions]
    add_face_suggestions(result, found.conditions)
    result.metrics["model"] = dict(found.model)
    result.provenance.models.append(InputRecord(f"{facts.name} {facts.version}", facts.folder, facts.sha256,
                                                "folder"))
    result.provenance.device = facts.device
    if facts.synthetic:
        result.warnings.append(SYNTHETIC_WARNING)


def add_face_suggestions(result: Result, conditions) -> None:
    """Syndromes (ids, names, distances, gallery image) and genes from the face's ranking, when the
    gallery's labels are disease ids (:mod:`.face_suggestions`); nothing for condition presets."""
    from .clinical_terms import record_annotations
    from .face_suggestions import face_suggestions

    found = face_suggestions(conditions, top=len(conditions))
    if found is None:
        return
    result.tables["suggested syndromes"] = found["suggested_syndromes"]
    result.tables["suggested genes"] = found["suggested_genes"]
    best = found["suggested_syndromes"][0]
    result.summary["top_syndrome"] = f"{best['id']} {best['name']}"
    genes = [g["gene"] for g in found["suggested_genes"][:3]]
    result.summary["top_genes"] = ", ".join(genes) or "none linked"
    record_annotations(result)


def _distribution(found: ScreeningResult) -> str:
    """The summary's word on the gate: in-distribution, off-distribution or not checked."""
    return {True: "in-distribution", False: "off-distribution"}.get(found.in_distribution,
                                                                     "not checked (the model has no gate)")


def declare_photo_overlays(result: Result, found: ScreeningResult, image: FaceImage) -> None:
    """Declare what goes over the photo in a viewer (:mod:`.photo_frame`): the detected face's
    five points and box corners, and the attention map on the photo's grid."""
    from .photo_frame import attention_on_photo, face_points_on_photo

    if not found.screened:
        return
    points = face_points_on_photo(found, image.width, image.height)
    if points is not None:
        result.declare("face_points", "face_points.mrk.json", points, kind="landmarks")
    attention = attention_on_photo(found, image.width, image.height)
    if attention is not None:
        result.declare("attention_on_photo", "attention_on_photo.nrrd", attention, kind="volume")


def declare_pictures(result: Result, found: ScreeningResult) -> None:
    """Declare the aligned face and the attention map of a screened face (shown in the report)."""
    if not found.screened:
        return
    result.declare("aligned_face", "aligned_face.png", found.aligned, kind="image", figure="aligned_face", face=True)
    if found.attention is not None:
        result.declare("attention", "attention.png", found.attention_picture(), kind="image",
                       figure=f"attention ({found.attention_condition})", face=True)
