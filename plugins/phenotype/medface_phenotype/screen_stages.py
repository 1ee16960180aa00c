"""`phenotype screen` as streaming stages, for ``medface batch phenotype.screen --engine ray``.

The batch runs the command as a Ray Data pipeline (:mod:`medface.batches.streaming`) of the same
functions the command calls (:mod:`.screening`, :mod:`.screen`), cut where the network runs:

- :meth:`ScreenStages.prepare` (CPU, one photo): :func:`screening.prepare_photo` (orientation,
  detection, quality gate, alignment) and :func:`screening.occlusion_inputs` (the crop and its
  occluded copies for the attention map); a refused photo needs no network;
- :meth:`ScreenStages.model` (an actor, the package loaded once): one pass of the network over
  the crops of the whole batch, the gate's scores, the gallery's hits and the calibrated
  log-probabilities of the occluded copies;
- :meth:`ScreenStages.finish` (CPU, one photo): :func:`screening.score_found` and
  :func:`explain.region_attention` on those outputs, then :func:`screen.screen_result`: the
  Result `phenotype screen` gives for that photo, the refusal of a refused one included.

What travels between the stages are fixed-shape arrays (crops, the region masks) and JSON text
(the quality checks and the detected faces, with numpy dtypes kept so that every number comes
back bit for bit; the package's :class:`screening.PackageFacts`; the gallery's hits).
"""

from __future__ import annotations

import json
from dataclasses import fields

import numpy as np

from medface.face.detect import DetectedFace
from medface.face.quality import Check, QualityReport

from .explain import REGIONS
from .faces import DISPLAY_SIZE, MODEL_SIZE, PreparedFace

#: the most occluded copies of one crop (every region, ``outside`` included)
MAX_REGIONS = len(REGIONS) + 1
#: crops per forward pass of the model stage (a batch of photos brings up to MAX_REGIONS + 1 each)
NETWORK_BATCH = 256


# --------------------------------------------------------------------------- JSON with dtypes

def _encode(value):
    if isinstance(value, np.ndarray):
        return {"__nd__": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if isinstance(value, np.generic):
        return {"__np__": value.dtype.str, "value": value.item()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    return value


def _decode(value):
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "__nd__" in value:
            return np.array(value["data"], dtype=np.dtype(value["__nd__"])).reshape(value["shape"])
        if "__np__" in value:
            return np.dtype(value["__np__"]).type(value["value"])
        if "__tuple__" in value:
            return tuple(_decode(v) for v in value["__tuple__"])
        return {k: _decode(v) for k, v in value.items()}
    return value


def _fields(obj) -> dict:
    return {f.name: _encode(getattr(obj, f.name)) for f in fields(obj)}


def face_text(face: PreparedFace, regions: list[str]) -> str:
    """JSON text of what :func:`prepared_face` needs besides the crops: quality checks, faces,
    alignment matrix, quarter turns and the names of the attention regions (in mask order)."""
    return json.dumps({"checks": [_fields(c) for c in face.quality.checks], "faces": [_fields(f) for f in face.faces],
                       "matrix": _encode(face.matrix), "turns": int(face.turns), "regions": list(regions)})


def prepared_face(text: str, crop: np.ndarray | None, display: np.ndarray | None) -> tuple[PreparedFace, list[str]]:
    """The PreparedFace (and region names) of :func:`face_text`, with its crops."""
    doc = json.loads(text)
    quality = QualityReport([Check(**{k: _decode(v) for k, v in c.items()}) for c in doc["checks"]])
    faces = [DetectedFace(**{k: _decode(v) for k, v in f.items()}) for f in doc["faces"]]
    return PreparedFace(quality, faces, crop, display, _decode(doc["matrix"]), int(doc["turns"])), doc["regions"]


def _text(value) -> str:
    """A string column's value as Ray Data hands it over (str, numpy str or 0-d array)."""
    value = np.asarray(value)
    return str(value.item() if value.ndim == 0 else value.ravel()[0])


# --------------------------------------------------------------------------- the stages

class ScreenStages:
    """The streaming stages of `phenotype screen` (the contract: :mod:`medface.batches.streaming`)."""

    def prepare(self, values: dict) -> dict:
        """One photo, on a CPU worker: the PreparedFace as JSON text and, for a face that passed
        the quality gate, its crop followed by its occluded copies (``n_crops`` of them used)."""
        from .screening import Screener, occlusion_inputs, package_reference, prepare_photo

        face = prepare_photo(values["image"])
        payload = self.placeholder()
        names: list[str] = []
        if face.usable:
            made = occlusion_inputs(face, package_reference(str(Screener(values.get("model")).model_dir)))
            stack = face.crop[None] if made is None else made[1]
            payload["crops"][:len(stack)] = stack
            payload["n_crops"] = len(stack)
            if made is not None:
                names = list(made[0])
                payload["masks"][:len(names)] = np.stack(list(made[0].values()))
        if face.display is not None:
            payload["display"][...] = face.display
        payload["face"] = face_text(face, names)
        return payload

    def placeholder(self) -> dict:
        return {"crops": np.zeros((MAX_REGIONS + 1, MODEL_SIZE, MODEL_SIZE, 3), np.uint8),
                "masks": np.zeros((MAX_REGIONS, MODEL_SIZE, MODEL_SIZE), np.uint8),
                "display": np.zeros((DISPLAY_SIZE, DISPLAY_SIZE, 3), np.uint8), "n_crops": 0, "face": "{}"}

    def model(self, values: dict, device: str):
        """The package of the batch's ``model`` on ``device``, loaded once; a callable from stacked
        payloads to each photo's gate score, logits, gallery hits (every condition: each photo
        cuts its own ``top``), the log-probabilities of its occluded copies and the package facts."""
        from medface.runtime import Predictor

        from .screening import Screener, calibrated_log_probs, gate_scores, package_facts

        screener = Screener(values.get("model"), device=device)
        package = screener.package
        predictor = Predictor(screener.model_dir, device=device, batch_size=NETWORK_BATCH, num_workers=0)
        facts = package_facts(package, screener.model_dir, str(predictor.device))
        facts_text, temperature = facts.to_json(), facts.temperature

        def run(batch: dict) -> dict:
            counts = np.asarray(batch["n_crops"], int)
            n, classes = len(counts), len(facts.classes)
            out = {"ood_score": np.full(n, np.nan), "logits": np.zeros((n, classes), np.float32),
                   "attention": np.full((n, MAX_REGIONS + 1, classes), np.nan),
                   "hits": np.array([""] * n, dtype=object), "facts": np.array([facts_text] * n, dtype=object)}
            rows = np.flatnonzero(counts > 0)
            if not len(rows):
                return out
            crops = [c for i in rows for c in batch["crops"][i][:counts[i]]]
            outputs = predictor.predict(crops).outputs  # one pass over every crop of the batch
            starts = np.concatenate([[0], np.cumsum(counts[rows])[:-1]])
            first = [outputs[s] for s in starts]
            scores = gate_scores(package.gate, np.stack([o["features"] for o in first]) if "features" in first[0]
                                 else None)
            logits = np.stack([o["logits"] for o in outputs])
            lp = calibrated_log_probs(logits, temperature)
            for j, (i, s) in enumerate(zip(rows, starts)):
                out["logits"][i] = first[j]["logits"]
                out["hits"][i] = json.dumps(package.gallery.nearest(first[j]["embedding"]))
                out["attention"][i, :counts[i]] = lp[s:s + counts[i]]
                if scores is not None:
                    out["ood_score"][i] = scores[j]
            return {k: (v.astype(str) if v.dtype == object else v) for k, v in out.items()}

        return run

    def finish(self, values: dict, payload: dict, output: dict):
        """One photo, on a CPU worker: the Result `phenotype screen` gives for it."""
        from .clinical_terms import fusion_face
        from .screen import pictures_wanted, screen_result
        from .screening import PackageFacts, attach_attention, attention_target, score_found, unranked
        from .explain import region_attention

        count = int(np.asarray(payload["n_crops"]))
        display = np.asarray(payload["display"], np.uint8)
        crops = np.asarray(payload["crops"], np.uint8)
        face, names = prepared_face(_text(payload["face"]), crops[0] if count else None,
                                    display if count else None)
        found = unranked(face)
        if face.quality.refused:
            return _with_terms(screen_result(found, None, values["image"], values.get("save_photo", False)), values)
        facts = PackageFacts.from_json(_text(output["facts"]))
        score = float(np.asarray(output["ood_score"]))
        every = json.loads(_text(output["hits"]))  # the gallery's ranking of the face, every label
        score_found(found, facts, every[:int(values.get("top", 10))], np.asarray(output["logits"]),
                    None if np.isnan(score) else score)
        condition = attention_target(found) if pictures_wanted(values.get("context")) else None
        if condition is not None and names:
            masks = {name: m.astype(bool) for name, m in zip(names, np.asarray(payload["masks"]))}
            lp = np.asarray(output["attention"], np.float64)[:count, facts.classes.index(condition)]
            attach_attention(found, region_attention(lp, masks, condition))
        result = screen_result(found, facts, values["image"], values.get("save_photo", False))
        return _with_terms(result, values, lambda: fusion_face(facts.folder, [h["label"] for h in every], every))


def _with_terms(result, values: dict, face_of=None):
    """The clinician's terms of the batch's parameters ranked into one photo's result, as `screen`
    does, and fused with the face when ``face_of`` (called only when there are terms) gives a
    face with a fusion model (:func:`.clinical_terms.fusion_face`)."""
    from .clinical_terms import NOT_RANKED, FaceForFusion, add_terms_ranking, recorded_terms

    terms = recorded_terms(values.get("hpo", ""), values.get("hpo_file"))
    if terms:
        face = face_of() if face_of is not None else FaceForFusion(None, {}, NOT_RANKED)
        add_terms_ranking(result, terms, int(values.get("top", 10)), face=face)
    return result
