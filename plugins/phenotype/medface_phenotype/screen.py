"""`phenotype screen`: rank the conditions whose facial gestalt a photo resembles.

Photo -> face detection -> quality gate (refuses with reasons) -> 5-point alignment -> the
screening network through the runtime's Predictor (flip test-time augmentation) -> conditions
ranked by cosine distance to their nearest gallery photo (frequent and gallery-only conditions
alike), calibrated softmax probabilities for the trained conditions, a syndromic-versus-
unaffected score and a Grad-CAM attention map for the top trained condition.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from medface.data import FaceImage, Result
from medface.errors import InputError

from .faces import prepare
from .model import softmax

DEMO_MODEL = Path(__file__).parent / "models" / "phantom-demo"


@functools.lru_cache(maxsize=4)
def _load(model_dir: str, device: str):
    from medface.runtime import Predictor, read_card

    from . import model as _register  # noqa: F401  (puts phenotype.GestaltNet on the allow-list)
    from .gallery import load_gallery

    card = read_card(model_dir)
    if not (card.extra or {}).get("screening"):
        raise InputError("this model package has no screening settings: it was not made by `medface phenotype "
                         "train`", path=model_dir)
    predictor = Predictor(model_dir, device=device, batch_size=1, num_workers=0)
    gallery = load_gallery(model_dir)
    gallery.check_model({"name": card.name, "version": card.version, "sha256": card.sha256})
    return card, predictor, gallery


def _condition_info(label: str) -> dict:
    try:
        from medface.phantom import tables as TB

        c = TB.condition(label)
    except KeyError:
        return {}
    return {"name": c.name, "hpo": ", ".join(f"{code} {term}" for code, term in c.hpo)}


def rank(card, gallery, embedding: np.ndarray, logits: np.ndarray, top: int) -> tuple[list[dict], float | None]:
    """Ranked conditions (gallery order, softmax probability where trained) and the syndromic score."""
    scr = card.extra["screening"]
    classes = list(card.labels)
    control = scr.get("control_label", "unaffected")
    probs = softmax(logits[None], float(scr["temperature"]))[0]
    syndromic = float(1.0 - probs[classes.index(control)]) if control in classes else None
    rows = []
    for k, hit in enumerate(gallery.nearest(embedding, top=top), start=1):
        label = hit["label"]
        rows.append({"rank": k, "condition": label, **_condition_info(label),
                     "similarity": round(1.0 - hit["distance"], 4),
                     "probability": round(float(probs[classes.index(label)]), 4) if label in classes else None,
                     "trained": label in classes, "nearest_gallery_subject": hit["subject"]})
    return rows, syndromic


def screen(image: FaceImage, out=None, model=None, top: int = 10, save_photo: bool = False,
           device: str = "auto") -> Result:
    """CLI entry of `phenotype screen` (see screen_pixels)."""
    return screen_pixels(image.pixels, out=out, model=model, top=top, device=device,
                         photo=image if save_photo else None)


def screen_pixels(pixels: np.ndarray, *, out=None, model=None, top: int = 10, device: str = "auto",
                  photo: FaceImage | None = None, command: str = "phenotype.screen") -> Result:
    """Screen an upright RGB image; with ``out``, write the aligned face, the attention map and
    (when ``photo`` is given) a copy of the photo there."""
    model_dir = Path(model) if model else DEMO_MODEL
    face = prepare(pixels, display=True)
    result = Result(command=command)
    result.metrics["quality"] = face.quality.to_dict()
    result.tables["quality checks"] = [{"check": c.name, "status": c.status, "finding": c.message}
                                       for c in face.quality.checks]
    result.warnings.extend(face.quality.warnings)
    result.summary["verdict"] = face.quality.verdict
    if face.face is not None:
        result.metrics["face"] = face.face.to_dict()
    result.limits.append("A ranking of facial resemblance to the conditions in the model's gallery, not a diagnosis; "
                         "conditions absent from the gallery cannot be suggested.")
    if face.quality.refused:
        result.summary["screened"] = False
        return result
    card, predictor, gallery = _load(str(model_dir), device)
    output = predictor.predict([face.crop]).outputs[0]
    rows, syndromic = rank(card, gallery, output["embedding"], output["logits"], top)
    trained = [r for r in rows if r["trained"]]
    result.summary.update({"screened": True, "top_condition": rows[0]["condition"],
                           "top_similarity": rows[0]["similarity"],
                           "syndromic_score": None if syndromic is None else round(syndromic, 4),
                           "model": f"{card.name} {card.version}"})
    result.tables["conditions"] = rows
    result.metrics["model"] = {"name": card.name, "version": card.version, "sha256": card.sha256,
                               "training_data": card.training_data, "gallery_photos": len(gallery)}
    from medface.data.provenance import InputRecord

    result.provenance.models.append(InputRecord(f"{card.name} {card.version}", str(model_dir), card.sha256,
                                                "folder"))
    result.provenance.device = str(predictor.device)
    if card.is_synthetic:
        result.warnings.append("The model was trained on synthetic phantom faces only and is not validated on "
                               "patients: its ranking of a real photo means nothing clinically.")
    if out is not None:
        _write_pictures(result, face, card, predictor, trained, Path(out), photo)
    return result


def _write_pictures(result: Result, face, card, predictor, trained: list[dict], out: Path, photo) -> None:
    from medface.io import write_image

    from .explain import gradcam, overlay

    out.mkdir(parents=True, exist_ok=True)
    display = face.display.copy()
    write_image(FaceImage(display), out / "aligned_face.png")
    result.figures["aligned_face"] = str(out / "aligned_face.png")
    result.outputs["aligned_face"] = str(out / "aligned_face.png")
    if trained:
        label = trained[0]["condition"]
        heat = gradcam(predictor.model, face.crop, list(card.labels).index(label))
        write_image(FaceImage(overlay(display, heat)), out / "attention.png")
        result.figures[f"attention ({label})"] = str(out / "attention.png")
        result.outputs["attention"] = str(out / "attention.png")
    if photo is not None:
        write_image(photo, out / "photo.png")
        result.outputs["photo"] = str(out / "photo.png")


def _prepare_for_network(item) -> np.ndarray:
    """Predictor preprocessing for batch screening: a path or RGB array -> aligned float CHW crop;
    a photo the quality gate refuses raises, so the Predictor reports it by index with the reason."""
    from medface.io import read_image

    pixels = read_image(item).pixels if isinstance(item, (str, Path)) else np.asarray(item)
    face = prepare(pixels)
    if face.quality.refused:
        raise InputError(face.quality.verdict)
    return face.crop.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)


def screen_many(items, model=None, *, device: str = "auto", workers: int = 2, batch_size: int = 64,
                top: int = 5) -> list[dict]:
    """Screen many photos (paths or RGB arrays): decoding, detection and alignment run in
    ``workers`` threads while the network runs on full batches. One dict per item, in order:
    ``{"index", "screened", "verdict"}`` plus ``conditions`` (top ``top``) and ``syndromic_score``."""
    from medface.runtime import Predictor

    from . import protocol

    card, _, gallery = _load(str(Path(model) if model else DEMO_MODEL), device)
    predictor = Predictor(Path(model) if model else DEMO_MODEL, device=device, batch_size=batch_size,
                          num_workers=workers, preprocess=_prepare_for_network)
    preds = predictor.predict(items)
    failed = dict(preds.failures)
    good = [i for i, o in enumerate(preds.outputs) if o is not None]
    out = [{"index": i, "screened": False, "verdict": failed.get(i, "not screened")} for i in range(len(preds))]
    if not good:
        return out
    emb = np.stack([preds.outputs[i]["embedding"] for i in good])
    logits = np.stack([preds.outputs[i]["logits"] for i in good])
    ranking = protocol.rank_by_gallery(emb, gallery.embeddings, gallery.labels)
    scr = card.extra["screening"]
    probs = softmax(logits, float(scr["temperature"]))
    classes = list(card.labels)
    control = scr.get("control_label", "unaffected")
    for row, i in enumerate(good):
        order = ranking.order[row][:top]
        out[i] = {"index": i, "screened": True, "verdict": "acceptable",
                  "conditions": [{"condition": ranking.conditions[j],
                                  "similarity": round(1.0 - float(ranking.distances[row][k]), 4)}
                                 for k, j in enumerate(order)],
                  "syndromic_score": round(float(1.0 - probs[row, classes.index(control)]), 4)
                  if control in classes else None}
    return out
