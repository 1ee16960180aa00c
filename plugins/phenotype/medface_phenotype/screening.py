"""Screening logic: a photo (or many) in, a typed :class:`ScreeningResult` out; no files, no CLI.

Photo -> face detection -> quality gate (refuses with reasons) -> 5-point alignment -> the
screening network through the runtime's Predictor (flip test-time augmentation) -> conditions
ranked by cosine distance to their nearest gallery photo (frequent and gallery-only conditions
alike), calibrated softmax probabilities for the trained conditions, a syndromic-versus-
unaffected score and an attention map (occlusion of landmark-defined facial regions) for the
top trained condition::

    from medface_phenotype import Screener

    screener = Screener()                       # the bundled demo model, loaded on first use
    found = screener.screen(pixels)[0]          # FaceImage(s) or (H, W, 3) uint8 arrays
    found.verdict, found.top_condition, found.syndromic_score, found.attention

The commands (``phenotype screen``, ``screen-mesh``) are adapters over this module.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from medface.data import FaceImage
from medface.errors import InputError, ParameterError
from medface.face.quality import QualityReport

from .faces import PreparedFace, prepare
from .model import softmax

DEMO_MODEL = Path(__file__).parent / "models" / "phantom-demo"


class ScreeningPackage(NamedTuple):
    """A loaded screening package: its card, a Predictor on its network, its gallery and its
    out-of-distribution gate (None for a package made before gates)."""

    card: Any
    predictor: Any
    gallery: Any
    gate: Any = None
    reference: Any = None  # the reference face of the attention maps (explain.py), or None


def screening_settings(card, path=None) -> dict:
    """The screening settings of a package's card (``extra.screening``: temperature, control
    label, frequent and rare conditions); an InputError for a package not made by ``train``."""
    extra = (card.extra or {}).get("screening")
    if not extra:
        raise InputError("this model package has no screening settings (card extra.screening): it was not made by "
                         "`medface phenotype train`", path=path)
    return extra


@functools.lru_cache(maxsize=4)
def load_package(model_dir: str, device: str = "auto") -> ScreeningPackage:
    """Load (once per folder and device) a package made by ``phenotype train``."""
    from medface.runtime import Predictor, read_card

    from . import model as _register  # noqa: F401  (puts phenotype.GestaltNet on the allow-list)
    from .gallery import load_gallery
    from .ood import load_gate

    card = read_card(model_dir)
    settings = screening_settings(card, model_dir)
    predictor = Predictor(model_dir, device=device, batch_size=16, num_workers=0)
    gallery = load_gallery(model_dir)
    gallery.check_model({"name": card.name, "version": card.version, "sha256": card.sha256})
    gate = load_gate(model_dir, (settings.get("ood") or {}).get("sha256"))
    return ScreeningPackage(card, predictor, gallery, gate, package_reference(model_dir))


@functools.lru_cache(maxsize=4)
def package_reference(model_dir: str):
    """The reference face of a package's attention maps (None without one), loaded once per
    folder without its network: what a batch's CPU stage needs of the package."""
    from medface.runtime import read_card

    from .explain import load_reference_face

    card = read_card(model_dir)
    return load_reference_face(model_dir, screening_settings(card, model_dir).get("reference_face_sha256"))


@dataclass
class RankedCondition:
    """One condition of the ranking: its similarity to the nearest gallery photo of it and, for a
    condition of the softmax head (``trained``), its calibrated probability."""

    rank: int
    condition: str
    similarity: float
    probability: float | None
    trained: bool
    nearest_gallery_subject: str | None = None
    name: str | None = None  # the condition's display name and HPO terms, when the phantom knows it
    hpo: str | None = None
    nearest_gallery_image: str | None = None  # the gallery image (id) behind the match

    def to_dict(self) -> dict:
        info = {} if self.name is None else {"name": self.name, "hpo": self.hpo}
        return {"rank": self.rank, "condition": self.condition, **info, "similarity": self.similarity,
                "probability": self.probability, "trained": self.trained,
                "nearest_gallery_subject": self.nearest_gallery_subject,
                "nearest_gallery_image": self.nearest_gallery_image}


@dataclass
class ScreeningResult:
    """What screening one face found.

    ``quality`` holds the verdict and every check; ``conditions`` the ranking (empty when the
    photo was refused); ``attention`` the occlusion map (MODEL_SIZE square, in [0, 1]) of
    ``attention_condition`` and ``attention_regions`` its evidence by facial region
    (:class:`medface_phenotype.explain.RegionAttention`); ``aligned`` the aligned face (DISPLAY_SIZE square, RGB) and
    ``crop`` the network's input; ``model`` names the package. ``error`` says why a photo never
    reached the quality gate (an unreadable file in batch screening). ``surface`` is the
    frontal view that was screened, for a 3D surface (:func:`surface.screen_surface`).
    """

    quality: QualityReport
    faces: list = field(default_factory=list)
    conditions: list[RankedCondition] = field(default_factory=list)
    syndromic_score: float | None = None
    attention: np.ndarray | None = field(default=None, repr=False)
    attention_condition: str | None = None
    aligned: np.ndarray | None = field(default=None, repr=False)
    crop: np.ndarray | None = field(default=None, repr=False)
    model: dict | None = None
    error: str | None = None
    surface: Any = field(default=None, repr=False)
    attention_regions: Any = field(default=None, repr=False)  # explain.RegionAttention: evidence by region
    ood_score: float | None = None  # the out-of-distribution gate's score (None: the package has no gate)
    ood_threshold: float | None = None
    matrix: np.ndarray | None = field(default=None, repr=False)  # upright photo -> MODEL_SIZE crop pixels
    turns: int = 0  # quarter turns (np.rot90) that made the photo upright; boxes and landmarks are in it
    embedding: np.ndarray | None = field(default=None, repr=False)  # the unit embedding that was ranked

    @property
    def in_distribution(self) -> bool | None:
        """Whether the face looks like the model's training photos (None when not screened or
        the package has no gate). Off-distribution, probabilities and the syndromic score are
        withheld and the ranking is similarity only."""
        if self.ood_score is None or self.ood_threshold is None:
            return None
        return self.ood_score <= self.ood_threshold

    @property
    def screened(self) -> bool:
        """Whether the face passed the quality gate and was ranked."""
        return self.error is None and not self.quality.refused and bool(self.conditions)

    @property
    def verdict(self) -> str:
        return self.error or self.quality.verdict

    @property
    def face(self):
        """The screened (largest) face: box, score, five points, landmarks, pose; or None."""
        return self.faces[0] if self.faces else None

    @property
    def landmarks(self) -> np.ndarray | None:
        """The face's dense landmarks (N, 2) in image pixels, when the detector gives them."""
        return None if self.face is None else self.face.landmarks

    @property
    def top_condition(self) -> str | None:
        return self.conditions[0].condition if self.conditions else None

    def attention_picture(self) -> np.ndarray | None:
        """The attention map blended over the aligned face (uint8 RGB), or None without a map."""
        from .explain import overlay

        if self.attention is None or self.aligned is None:
            return None
        return overlay(self.aligned, self.attention)


def condition_info(label: str) -> dict:
    """Display name and HPO terms of a phantom condition preset; {} for other labels."""
    try:
        from medface.phantom import tables as TB

        c = TB.condition(label)
    except ParameterError:
        return {}
    return {"name": c.name, "hpo": ", ".join(f"{code} {term}" for code, term in c.hpo)}


def _head_settings(card) -> tuple[list[str], str, float]:
    """(classes, control label, softmax temperature) of a package's card."""
    scr = screening_settings(card)
    return list(card.labels), scr.get("control_label", "unaffected"), float(scr["temperature"])


def _ranked(rank: int, label: str, similarity: float, probs: np.ndarray | None, classes: list[str],
            subject: str | None = None, image: str | None = None) -> RankedCondition:
    """One ranked condition, with its calibrated probability when the softmax head knows it and
    probabilities are given (None off-distribution)."""
    trained = label in classes
    probability = round(float(probs[classes.index(label)]), 4) if trained and probs is not None else None
    return RankedCondition(rank, label, similarity, probability, trained, subject, **condition_info(label),
                           nearest_gallery_image=image)


def syndromic(probs: np.ndarray, classes: list[str], control: str) -> float | None:
    """1 - P(control) of one query's calibrated probabilities; None without a control class."""
    return float(1.0 - probs[classes.index(control)]) if control in classes else None


def rank(card, gallery, embedding: np.ndarray, logits: np.ndarray, top: int, *,
         in_distribution: bool | None = None) -> tuple[list[RankedCondition], float | None]:
    """Ranked conditions (gallery order, softmax probability where trained) and the syndromic
    score; off-distribution (``in_distribution`` False) similarity only, with neither."""
    return rank_hits(_head_settings(card), gallery.nearest(embedding, top=top), logits,
                     in_distribution=in_distribution)


def rank_hits(head: tuple[list[str], str, float], hits: list[dict], logits: np.ndarray, *,
              in_distribution: bool | None = None) -> tuple[list[RankedCondition], float | None]:
    """:func:`rank` from the gallery's hits (:meth:`Gallery.nearest`, already cut to the top) and
    the softmax head's settings ``head`` (classes, control label, temperature)."""
    classes, control, temperature = head
    probs = None if in_distribution is False else softmax(np.asarray(logits)[None], temperature)[0]
    rows = [_ranked(k, hit["label"], round(1.0 - hit["distance"], 4), probs, classes, hit["subject"],
                    hit.get("image_id")) for k, hit in enumerate(hits, start=1)]
    return rows, None if probs is None else syndromic(probs, classes, control)


def calibrated_log_probs(logits: np.ndarray, temperature: float) -> np.ndarray:
    """(N, classes) log of the calibrated softmax of a stack of logits (floored at 1e-12)."""
    return np.log(np.maximum(softmax(logits, temperature), 1e-12))


@dataclass(frozen=True)
class PackageFacts:
    """What a screening's ranking and Result need of its package, without the weights: the card's
    name, version, hash and whether it is synthetic, the folder, the device the network ran on,
    the softmax head (classes, control label, temperature), the gate's threshold (None without
    a gate) and ``info``, the ``model`` entry of each result (:attr:`Screener.model_info`).
    JSON text travels between the stages of a batch (:mod:`medface_phenotype.screen_stages`)."""

    name: str
    version: str
    sha256: str
    synthetic: bool
    folder: str
    device: str
    classes: tuple
    control: str
    temperature: float
    threshold: float | None
    info: dict

    @property
    def head(self) -> tuple[list[str], str, float]:
        return list(self.classes), self.control, self.temperature

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "PackageFacts":
        doc = json.loads(text)
        return cls(**{**doc, "classes": tuple(doc["classes"])})


def _model_info(card, gallery) -> dict:
    return {"name": card.name, "version": card.version, "sha256": card.sha256,
            "training_data": card.training_data, "gallery_photos": len(gallery)}


def package_facts(package: ScreeningPackage, folder, device: str) -> PackageFacts:
    """The :class:`PackageFacts` of a loaded package in ``folder`` whose network runs on ``device``."""
    card, gate = package.card, package.gate
    classes, control, temperature = _head_settings(card)
    return PackageFacts(card.name, card.version, card.sha256, bool(card.is_synthetic), str(folder), str(device),
                        tuple(classes), control, temperature, None if gate is None else float(gate.threshold),
                        _model_info(card, package.gallery))


def score_found(found: "ScreeningResult", facts: PackageFacts, hits: list[dict], logits: np.ndarray,
                ood_score: float | None) -> None:
    """Fill a face's gate score, ranking (``hits`` cut to the top), syndromic score and model from
    the network's outputs: the step after the network, the same for one photo and for a batch."""
    if ood_score is not None and facts.threshold is not None:
        found.ood_score, found.ood_threshold = round(float(ood_score), 4), round(float(facts.threshold), 4)
    found.conditions, found.syndromic_score = rank_hits(facts.head, hits, logits,
                                                        in_distribution=found.in_distribution)
    found.model = dict(facts.info)


def attention_target(found: "ScreeningResult") -> str | None:
    """The condition whose attention map a screened face gets: the top trained condition of its
    ranking, none off-distribution."""
    trained = [c for c in found.conditions if c.trained]
    return trained[0].condition if trained and found.in_distribution is not False else None


def attach_attention(found: "ScreeningResult", regions) -> None:
    """Put an attention result (:class:`explain.RegionAttention`, or None) on a screened face."""
    if regions is not None:
        found.attention_condition, found.attention = regions.condition, regions.map
        found.attention_regions = regions


def occlusion_inputs(face: PreparedFace, reference: np.ndarray | None):
    """(region masks, crop and its occluded copies) of a prepared face's attention map
    (:func:`explain.occlusion_batch`), None without a crop or dense landmarks."""
    from .explain import occlusion_batch

    if face.crop is None or face.face is None or face.face.landmarks is None:
        return None
    m = face.matrix
    landmarks = face.face.landmarks @ m[:, :2].T + m[:, 2]
    return occlusion_batch(face.crop, landmarks, reference)


def unranked(face: PreparedFace) -> "ScreeningResult":
    """The screening result of a prepared face before the network: quality, faces and crops."""
    return ScreeningResult(face.quality, face.faces, aligned=face.display, crop=face.crop, matrix=face.matrix,
                           turns=face.turns)


def gate_scores(gate, features) -> np.ndarray | None:
    """The gate's scores of a batch of stage features, or None without a gate (or features)."""
    if gate is None or features is None:
        return None
    return gate.score(features)


def _pixels(image) -> np.ndarray:
    return image.pixels if isinstance(image, FaceImage) else np.asarray(image)


def prepare_photo(image) -> PreparedFace:
    """A FaceImage or upright RGB uint8 array prepared for screening: detection, quality gate,
    the network's crop and the report's picture (:func:`faces.prepare`)."""
    return prepare(_pixels(image), display=True)


def _as_images(images) -> list:
    """One image (a FaceImage or an (H, W, 3) array) or several, as a list."""
    if isinstance(images, FaceImage) or (isinstance(images, np.ndarray) and images.ndim == 3):
        return [images]
    return list(images)


class Screener:
    """Screens faces with one screening package, loaded once (on first use).

    ``model``: a package folder made by ``phenotype train`` (default: the bundled demo model);
    ``top``: how many ranked conditions to keep; ``attention``: compute the attention map of the
    top trained condition (one network pass per facial region, about 0.1 s on a CPU).
    """

    def __init__(self, model=None, *, device: str = "auto", top: int = 10, attention: bool = True):
        if int(top) < 1:
            raise ParameterError(f"top must be at least 1, got {top}", parameter="top")
        self.model_dir = Path(model) if model else DEMO_MODEL
        self.device, self.top, self.attention = device, int(top), bool(attention)

    @property
    def package(self) -> ScreeningPackage:
        return load_package(str(self.model_dir), self.device)

    @property
    def model_info(self) -> dict:
        return _model_info(self.package.card, self.package.gallery)

    @property
    def facts(self) -> PackageFacts:
        """The package's :class:`PackageFacts` (loads the network to know its device)."""
        return package_facts(self.package, self.model_dir, str(self.package.predictor.device))

    def screen(self, images) -> list[ScreeningResult]:
        """Screen FaceImage(s) or upright RGB uint8 array(s), one result per image, in order."""
        return [self.screen_one(image) for image in _as_images(images)]

    def screen_one(self, image) -> ScreeningResult:
        """Screen one FaceImage or upright RGB uint8 array."""
        return self.screen_prepared(prepare_photo(image))

    def screen_prepared(self, face: PreparedFace) -> ScreeningResult:
        """Rank an already prepared face (see :func:`faces.prepare`); a refused one is not ranked."""
        found = unranked(face)
        if face.quality.refused:
            return found
        package = self.package
        output = package.predictor.predict([face.crop]).outputs[0]
        scores = gate_scores(package.gate, output.get("features"))
        score_found(found, self.facts, package.gallery.nearest(output["embedding"], top=self.top), output["logits"],
                    None if scores is None else scores[0])
        found.embedding = np.asarray(output["embedding"], np.float32)
        condition = attention_target(found) if self.attention else None
        if condition is not None:
            attach_attention(found, self.explain(face, condition))
        return found

    def explain(self, face: PreparedFace, condition: str):
        """Evidence by facial region for a trained ``condition`` of a prepared face (occlusion of
        landmark-defined regions, :mod:`medface_phenotype.explain`); None without dense landmarks."""
        from .explain import region_attention

        card, predictor, reference = self.package.card, self.package.predictor, self.package.reference
        classes, _, temperature = _head_settings(card)
        if condition not in classes:
            raise ParameterError(f"{condition!r} is not a condition of the model's softmax head ({', '.join(classes)})",
                                 parameter="condition")
        made = occlusion_inputs(face, reference)
        if made is None:
            return None
        masks, batch = made
        logits = np.stack([o["logits"] for o in predictor.predict(list(batch)).outputs])
        return region_attention(calibrated_log_probs(logits, temperature)[:, classes.index(condition)], masks,
                                condition)

    def screen_mesh(self, mesh, *, units: str = "mm") -> ScreeningResult:
        """Screen a 3D face surface through its frontal render (:func:`surface.screen_surface`)."""
        from .surface import screen_surface

        return screen_surface(mesh, units=units, screener=self)

    def screen_batch(self, items: Iterable, *, workers: int = 2, batch_size: int = 64) -> list[ScreeningResult]:
        """Screen many photos (paths or RGB arrays): decoding, detection and alignment run in
        ``workers`` threads while the network runs on full batches (no attention maps). A photo
        that cannot be read or is refused gets a result with its reason and no ranking."""
        from medface.runtime import Predictor

        card, gallery, gate = self.package.card, self.package.gallery, self.package.gate
        seen = _PreparedFaces()
        predictor = Predictor(self.model_dir, device=self.device, batch_size=batch_size, num_workers=workers,
                              preprocess=seen.network_input)
        preds = predictor.predict(enumerate(items))
        failed = dict(preds.failures)
        results = [ScreeningResult(seen.quality(i), seen.faces(i), error=failed.get(i, "not screened"))
                   for i in range(len(preds))]
        good = [i for i, o in enumerate(preds.outputs) if o is not None]
        if good:
            self._rank_batch(results, good, preds.outputs, card, gallery, gate)
        return results

    def _rank_batch(self, results: list[ScreeningResult], good: list[int], outputs: Sequence, card,
                    gallery, gate) -> None:
        from . import protocol

        emb = np.stack([outputs[i]["embedding"] for i in good])
        logits = np.stack([outputs[i]["logits"] for i in good])
        scores = gate_scores(gate, np.stack([outputs[i]["features"] for i in good]) if "features" in outputs[good[0]]
                             else None)
        ranking = protocol.rank_by_gallery(emb, gallery.embeddings, gallery.labels)
        classes, control, temperature = _head_settings(card)
        probs = softmax(logits, temperature)
        model = self.model_info
        for row, i in enumerate(good):
            found = results[i]
            if scores is not None:
                found.ood_score, found.ood_threshold = round(float(scores[row]), 4), round(float(gate.threshold), 4)
            p = None if found.in_distribution is False else probs[row]
            found.conditions = [_ranked(k + 1, ranking.conditions[j], round(1.0 - float(ranking.distances[row][k]), 4),
                                        p, classes) for k, j in enumerate(ranking.order[row][:self.top])]
            found.error, found.model = None, model
            found.syndromic_score = None if p is None else syndromic(p, classes, control)
            found.embedding = emb[row]


class _PreparedFaces:
    """The Predictor's preprocessing for batch screening, remembering each photo's quality report
    and faces (by index; preprocessing runs in several threads)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._prepared: dict[int, tuple[QualityReport, list]] = {}

    def network_input(self, indexed) -> np.ndarray:
        """(index, path or RGB array) -> aligned float CHW crop; a refused photo raises, so that
        the Predictor reports it by index with the reason."""
        from medface.io import read_image

        index, item = indexed
        pixels = read_image(item).pixels if isinstance(item, (str, Path)) else np.asarray(item)
        face = prepare(pixels)
        with self._lock:
            self._prepared[index] = (face.quality, face.faces)
        if face.quality.refused:
            raise InputError(face.quality.verdict)
        return face.crop.transpose(2, 0, 1).astype(np.float32) / np.float32(255.0)

    def quality(self, index: int) -> QualityReport:
        return self._prepared.get(index, (QualityReport(), []))[0]

    def faces(self, index: int) -> list:
        return self._prepared.get(index, (QualityReport(), []))[1]


def screen_many(items, model=None, *, device: str = "auto", workers: int = 2, batch_size: int = 64,
                top: int = 5) -> list[dict]:
    """Batch screening as plain dicts, one per item in order: ``{"index", "screened", "verdict"}``
    plus ``conditions`` (top ``top``: condition and similarity) and ``syndromic_score``."""
    results = Screener(model, device=device, top=top).screen_batch(items, workers=workers, batch_size=batch_size)
    return [_batch_row(i, r) for i, r in enumerate(results)]


def _batch_row(index: int, found: ScreeningResult) -> dict:
    if not found.screened:
        return {"index": index, "screened": False, "verdict": found.verdict}
    score = found.syndromic_score
    return {"index": index, "screened": True, "verdict": "acceptable", "in_distribution": found.in_distribution,
            "ood_score": found.ood_score,
            "conditions": [{"condition": c.condition, "similarity": c.similarity} for c in found.conditions],
            "syndromic_score": None if score is None else round(score, 4)}
