"""A pretrained identity encoder as a screening method: dlib's ResNet face descriptor.

GestaltMatcher (Hsieh et al., Nature Genetics 2022) found that a face-recognition encoder trained
on healthy faces only ("Enc-healthy") already carries syndromic signal. This module runs such an
encoder, dlib's ``face_recognition_model_v1`` (a 29-layer ResNet, 128-d descriptors, trained by
Davis King on about 3 M faces of 7,485 identities; licence of the weights and of their training
data: docs/phenotype.md, "Pretrained identity encoder"), on the faces our detector finds, and
offers it to the repeated-split comparison (crossval.py) as two methods:

- ``dlib``: the descriptors as they are, ranked against the gallery; no training, no probabilities.
- ``dlib+head``: the descriptors through a head trained on the training photos (a linear
  projection that starts as the identity and a cosine-margin softmax, temperature fitted on the
  validation photos); embeddings are the projected descriptors, probabilities the calibrated softmax.

Alignment. dlib's network expects the 150 x 150 chip that ``dlib.get_face_chip`` cuts from dlib's
five points (the two corners of each eye and the subnasale). Two ways to get them were measured on
the two real portraits and 30 phantom renders against dlib's own pipeline (its HOG detector and
5-point predictor; ``scripts/phenotype_encoder_comparison.py --check-alignment``, docs/phenotype.md):
mapping MediaPipe's canthi and subnasale to the five points is off by 6.9 % of the eye distance on
average (the mesh's canthi sit elsewhere than dlib's annotators put them) and gives descriptors
0.17 (euclidean) from dlib's own; running dlib's 5-point predictor on a square, dlib-style box
placed from our five points is off by 2.6 % and gives descriptors 0.10 from dlib's own. The
predictor is the default (``alignment="predictor"``): it reproduces the alignment the network was
trained with and needs only the five points any registered detector gives. The mesh mapping
(``alignment="mesh"``) is kept for comparison; it moves a little less when the photo is rescaled
by 6 % and shifted by a few pixels (0.062 against 0.080), both far below dlib's same-person
threshold of 0.6.

dlib (``dlib-bin``) and the weights (``face-recognition-models``) are an optional extra of the
plugin (``pip install 'medface-phenotype[identity]'``); without them every entry point raises a
:class:`~medface.errors.ModelError` that gives the pip command. The 68-point predictor that the
weights package also ships is never loaded (its training data, iBUG 300-W, excludes commercial use).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.data.provenance import sha256_file
from medface.errors import InputError, MedfaceError, ModelError, ParameterError
from medface.face.detect import DetectedFace

INSTALL_HINT = ("pip install 'medface-phenotype[identity]' (that is: pip install dlib-bin==20.0.1.post1 "
                "face-recognition-models==0.3.0)")
DESCRIPTOR_FILE = "dlib_face_recognition_resnet_model_v1.dat"
PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR_DIM = 128
#: dlib's chip: 150 x 150 px, a quarter of the face's size added as a margin on each side
CHIP_SIZE, CHIP_PADDING = 150, 0.25
ALIGNMENTS = ("predictor", "mesh")
#: MediaPipe Face Mesh indices in dlib's 5-point order: outer and inner corner of the subject's
#: left eye (image right), outer and inner corner of the right eye, subnasale
MESH_TO_DLIB5 = (263, 362, 33, 133, 94)
#: A dlib-style square box from our five points: side BOX_SIDE x (eye distance + eye-to-mouth
#: height), centre BOX_DOWN x the eye-to-mouth height below the eye midpoint. Fitted to dlib's HOG
#: detector boxes on the two real portraits and 52 phantom renders (side 1.16 +- 0.08, centre
#: 0.43 +- 0.08), so the 5-point predictor starts from the box it was trained on.
BOX_SIDE, BOX_DOWN = 1.16, 0.43
#: format of the cached descriptor files; bump it when what is stored changes
CACHE_FORMAT = 1


def _import_dlib():
    try:
        import dlib
    except ImportError as exc:
        raise ModelError("the dlib identity encoder needs the optional packages dlib-bin and "
                         "face-recognition-models, which are not installed", hint=INSTALL_HINT) from exc
    return dlib


def model_folder(model_dir: str | os.PathLike | None = None) -> Path:
    """The folder with dlib's ``.dat`` files: ``model_dir``, or the one face-recognition-models
    installs (found without importing it: its ``__init__`` needs setuptools' pkg_resources)."""
    if model_dir is not None:
        folder = Path(model_dir)
    else:
        spec = importlib.util.find_spec("face_recognition_models")
        if spec is None or not spec.submodule_search_locations:
            raise ModelError("dlib's face descriptor weights (package face-recognition-models) are not installed",
                             hint=INSTALL_HINT)
        folder = Path(list(spec.submodule_search_locations)[0]) / "models"
    missing = [name for name in (DESCRIPTOR_FILE, PREDICTOR_FILE) if not (folder / name).is_file()]
    if missing:
        raise ModelError(f"dlib model file(s) {', '.join(missing)} missing", path=folder, hint=INSTALL_HINT)
    return folder


def dlib_box(points5: np.ndarray) -> tuple[float, float, float, float]:
    """The square box (x0, y0, x1, y1) dlib's face detector would draw around a face, placed from
    our five points (eye centres, nose tip, mouth corners; BOX_SIDE and BOX_DOWN)."""
    p = np.asarray(points5, float)
    eyes, mouth = (p[0] + p[1]) / 2, (p[3] + p[4]) / 2
    across = p[1] - p[0]
    eye_distance = float(np.linalg.norm(across))
    if eye_distance <= 0:
        raise InputError("the two eye centres coincide: no face box can be placed")
    down = np.array([-across[1], across[0]]) / eye_distance
    height = abs(float(np.dot(mouth - eyes, down)))
    centre = eyes + BOX_DOWN * height * down
    half = BOX_SIDE * (eye_distance + height) / 2
    return (centre[0] - half, centre[1] - half, centre[0] + half, centre[1] + half)


def _rectangle(dlib, box) -> object:
    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    return dlib.rectangle(x0, y0, x1, y1)


class DlibEncoder:
    """dlib's 128-d face descriptor of faces found by our detector.

    ``alignment`` is ``"predictor"`` (dlib's 5-point predictor on a dlib-style box; the default)
    or ``"mesh"`` (MediaPipe's canthi and subnasale; needs dense landmarks). ``jitters`` > 0
    averages that many randomly jittered copies (dlib's own option; 0: deterministic).
    """

    name = "dlib"

    def __init__(self, model_dir: str | os.PathLike | None = None, *, alignment: str = "predictor",
                 jitters: int = 0):
        if alignment not in ALIGNMENTS:
            raise ParameterError(f"unknown alignment {alignment!r}", parameter="alignment",
                                 hint=f"one of {', '.join(ALIGNMENTS)}")
        if int(jitters) < 0:
            raise ParameterError(f"jitters must be 0 or more, got {jitters}", parameter="jitters")
        self._dlib = _import_dlib()
        self.folder = model_folder(model_dir)
        self.alignment, self.jitters = alignment, int(jitters)
        self._descriptor = self._dlib.face_recognition_model_v1(str(self.folder / DESCRIPTOR_FILE))
        self._predictor = self._dlib.shape_predictor(str(self.folder / PREDICTOR_FILE))
        self._key: str | None = None

    @property
    def version(self) -> str:
        return f"dlib {self._dlib.__version__}, resnet_model_v1, {self.alignment} alignment"

    @property
    def cache_key(self) -> str:
        """A hash of everything a descriptor depends on besides the photo: weights, dlib, the
        alignment and our detector."""
        if self._key is None:
            from medface import cache

            from medface.face.detect import get_detector

            detector = get_detector("mediapipe")
            self._key = cache.key(CACHE_FORMAT, self.version, self.jitters, BOX_SIDE, BOX_DOWN, MESH_TO_DLIB5,
                                  sha256_file(self.folder / DESCRIPTOR_FILE),
                                  sha256_file(self.folder / PREDICTOR_FILE), detector.name, detector.version)
        return self._key

    def shape(self, pixels: np.ndarray, face: DetectedFace):
        """dlib's five points of ``face`` (a ``dlib.full_object_detection``)."""
        if self.alignment == "predictor":
            return self._predictor(pixels, _rectangle(self._dlib, dlib_box(face.points5)))
        if face.landmarks is None or len(face.landmarks) <= max(MESH_TO_DLIB5):
            raise InputError("the 'mesh' alignment needs MediaPipe's dense landmarks, and this face has none",
                             hint="use alignment='predictor'")
        points = [self._dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks[list(MESH_TO_DLIB5)]]
        return self._dlib.full_object_detection(_rectangle(self._dlib, face.box), points)

    def chip(self, pixels: np.ndarray, face: DetectedFace) -> np.ndarray:
        """dlib's aligned 150 x 150 RGB face chip."""
        pixels = _rgb(pixels)
        return self._dlib.get_face_chip(pixels, self.shape(pixels, face), size=CHIP_SIZE, padding=CHIP_PADDING)

    def describe_chips(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """Descriptors (N, 128) of aligned chips, computed as one batch."""
        if not len(chips):
            return np.zeros((0, DESCRIPTOR_DIM))
        batch = [np.ascontiguousarray(c, dtype=np.uint8) for c in chips]
        return np.array([list(v) for v in self._descriptor.compute_face_descriptor(batch, self.jitters)])

    def describe(self, pixels: np.ndarray, face: DetectedFace) -> np.ndarray:
        """The 128-d descriptor of one face (dlib's scale: under 0.6 apart means the same person)."""
        return self.describe_chips([self.chip(pixels, face)])[0]

    def describe_batch(self, items: Sequence[tuple[np.ndarray, DetectedFace]], batch_size: int = 32) -> np.ndarray:
        """Descriptors (N, 128) of (photo, face) pairs, ``batch_size`` chips at a time."""
        out = [self.describe_chips([self.chip(p, f) for p, f in items[lo:lo + batch_size]])
               for lo in range(0, len(items), max(1, int(batch_size)))]
        return np.concatenate(out) if out else np.zeros((0, DESCRIPTOR_DIM))

    def describe_photo(self, pixels: np.ndarray) -> np.ndarray:
        """The descriptor of the largest face in a photo, found by the screening path's detector."""
        upright, face = upright_face(pixels)
        if face is None:
            raise InputError("no face was found in the photo")
        return self.describe(upright, face)


def upright_face(pixels: np.ndarray) -> tuple[np.ndarray, DetectedFace | None]:
    """The photo as the screening path sees it (turned upright when it lay on its side, so that
    the face's points fit it) and its largest face, or None."""
    from .faces import prepare

    found = prepare(pixels)
    upright = np.ascontiguousarray(np.rot90(pixels, found.turns)) if found.turns else pixels
    return upright, found.face


def _rgb(pixels: np.ndarray) -> np.ndarray:
    a = np.asarray(pixels)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"dlib's encoder needs an (H, W, 3) uint8 RGB photo, got shape {a.shape} {a.dtype}")
    return np.ascontiguousarray(a)


def l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


# --------------------------------------------------------------------------------------------
# descriptors of a data set's photos, cached per photo file
# --------------------------------------------------------------------------------------------

_HASHES: dict[tuple[str, int, int], str] = {}


def photo_hash(path: Path) -> str:
    """The sha256 of a photo file (remembered per path, size and modification time, so that
    repeated splits read each file once)."""
    st = Path(path).stat()
    key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        _HASHES[key] = sha256_file(Path(path))[:32]
    return _HASHES[key]


class DescriptorCache:
    """Descriptors of photo files under ``$MEDFACE_CACHE_DIR/phenotype/dlib-<encoder key>/``, one
    ``.npz`` per photo named by the hash of its bytes (a photo without a face is stored too, with
    its reason), so repeated splits and other data sets holding the same photo never recompute it."""

    def __init__(self, encoder: DlibEncoder, folder: Path | None = None, *, enabled: bool = True):
        from medface import cache

        self.encoder = encoder
        self.folder = Path(folder) if folder is not None else cache.folder("phenotype") / f"dlib-{encoder.cache_key}"
        self.enabled = enabled
        self._memory: dict[str, tuple[np.ndarray | None, str]] = {}

    def _file(self, digest: str) -> Path:
        return self.folder / f"{digest}.npz"

    def load(self, digest: str) -> tuple[np.ndarray | None, str] | None:
        if digest in self._memory:
            return self._memory[digest]
        path = self._file(digest)
        if not (self.enabled and path.is_file()):
            return None
        try:
            with np.load(path, allow_pickle=False) as z:
                found = (z["descriptor"] if z["found"] else None, str(z["reason"]))
        except (OSError, ValueError, KeyError):
            return None  # a damaged entry is computed again
        self._memory[digest] = found
        return found

    def store(self, digest: str, descriptor: np.ndarray | None, reason: str) -> None:
        self._memory[digest] = (descriptor, reason)
        if not self.enabled:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            tmp = self.folder / f"{digest}.{os.getpid()}.tmp.npz"
            np.savez(tmp, descriptor=np.zeros(DESCRIPTOR_DIM) if descriptor is None else descriptor,
                     found=descriptor is not None, reason=np.array(reason))
            os.replace(tmp, self._file(digest))
        except OSError:
            pass  # a cache is an optimisation: a read-only disk makes it slower, never wrong


def _detect(path: Path) -> tuple[np.ndarray | None, DetectedFace | None, str]:
    """(pixels, largest face, "") of a photo, or (None, None, why not)."""
    from medface.io import read_image

    try:
        pixels, face = upright_face(read_image(path).pixels)
    except MedfaceError as exc:
        return None, None, f"unreadable: {exc}"
    if face is None:
        return None, None, "no face found"
    return pixels, face, ""


def describe_files(paths: Sequence[Path], cache: DescriptorCache, *, workers: int = 2,
                   chunk: int = 32) -> tuple[np.ndarray, list[str]]:
    """Descriptors (N, 128) of photo files (NaN rows where no face was found) and the reasons
    ("" where found). Detection runs in ``workers`` threads; descriptors ``chunk`` at a time."""
    digests = [photo_hash(p) for p in paths]
    out = np.full((len(paths), DESCRIPTOR_DIM), np.nan)
    reasons = [""] * len(paths)
    todo = []
    for i, d in enumerate(digests):
        known = cache.load(d)
        if known is None:
            todo.append(i)
            continue
        if known[0] is not None:
            out[i] = known[0]
        reasons[i] = known[1]
    with ThreadPoolExecutor(max(1, int(workers))) as pool:
        for lo in range(0, len(todo), chunk):
            part = todo[lo:lo + chunk]
            found = list(pool.map(lambda i: _detect(Path(paths[i])), part))
            faces = [(i, px, f) for i, (px, f, _) in zip(part, found) if f is not None]
            desc = cache.encoder.describe_batch([(px, f) for _, px, f in faces])
            for (i, _, _), v in zip(faces, desc):
                out[i] = v
            for i, (_, f, why) in zip(part, found):
                reasons[i] = why
                cache.store(digests[i], out[i] if f is not None else None, why)
    return out, reasons


def _checked_descriptors(desc: np.ndarray, reasons: list[str], paths: Sequence[Path]) -> np.ndarray:
    bad = [i for i, r in enumerate(reasons) if r]
    if bad:
        listed = "; ".join(f"{Path(paths[i]).name}: {reasons[i]}" for i in bad[:5])
        raise InputError(f"dlib's encoder found no face in {len(bad)} photo(s): {listed}",
                         hint="pass only photos that passed the quality gate (PreparedSet.usable)")
    return desc


# --------------------------------------------------------------------------------------------
# a head on the descriptors
# --------------------------------------------------------------------------------------------

@dataclass
class HeadSettings:
    """Training of :class:`DescriptorHead`. The margin and scale are GestaltNet's (CosFace, Wang
    et al. 2018, m = 0.25, s = 16); steps, learning rate and the pull towards the identity
    projection are assumptions (full-batch AdamW on at most a few thousand 128-d vectors)."""

    margin: float = 0.25
    scale: float = 16.0
    steps: int = 200
    lr: float = 1e-2
    identity_weight: float = 1e-2  # assumption: weight of ||P - I||^2, keeps dlib's geometry unless the data disagree
    weight_decay: float = 0.0


class DescriptorHead:
    """A linear projection P (128 x 128, starting as the identity) and a cosine softmax over the
    classes (centres starting at the normalised class means), trained with a CosFace margin on
    L2-normalised descriptors. ``embed`` gives the normalised projected descriptors (so a gallery
    ranks in the head's space, also for conditions the head never saw), ``probabilities`` the
    softmax at the temperature fitted on validation descriptors (Guo et al. 2017)."""

    def __init__(self, settings: HeadSettings | None = None):
        self.settings = settings or HeadSettings()
        self.projection: np.ndarray | None = None
        self.centres: np.ndarray | None = None
        self.temperature = 1.0

    def fit(self, x: np.ndarray, y: np.ndarray, n_classes: int, x_val: np.ndarray | None = None,
            y_val: np.ndarray | None = None, seed: int = 0) -> "DescriptorHead":
        x, y = _checked_training(x, y, n_classes)
        self.projection, self.centres = _train_head(l2_normalise(x), y, n_classes, self.settings, seed)
        self.temperature = 1.0
        if x_val is not None and y_val is not None and len(y_val):
            from .model import fit_temperature

            self.temperature = fit_temperature(self.logits(x_val), np.asarray(y_val, int))
        return self

    def _check_fitted(self) -> None:
        if self.projection is None:
            raise ModelError("the descriptor head has not been fitted", hint="call fit(...) first")

    def embed(self, x: np.ndarray) -> np.ndarray:
        self._check_fitted()
        return l2_normalise(l2_normalise(np.asarray(x, float)) @ self.projection.T)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """``scale * cos(embedding, class centre)``, without the margin."""
        return self.settings.scale * self.embed(x) @ self.centres.T

    def probabilities(self, x: np.ndarray) -> np.ndarray:
        from .model import softmax

        return softmax(self.logits(x), self.temperature)


def _checked_training(x, y, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, float)
    y = np.asarray(y)
    if x.ndim != 2 or len(x) != len(y) or not len(y):
        raise InputError(f"the head needs matching descriptors (N, D) and labels (N,), got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)):
        raise InputError("the descriptors contain NaN or infinite values")
    if int(n_classes) < 2 or y.min() < 0 or y.max() >= n_classes:
        raise InputError(f"labels must be class indices 0..{int(n_classes) - 1} of at least two classes")
    return x, y.astype(np.int64)


def _class_means(x: np.ndarray, y: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """Normalised mean descriptor of each class (a seeded random direction for a class without
    training photos)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(n_classes, x.shape[1]))
    for k in np.unique(y):
        means[k] = x[y == k].mean(axis=0)
    return l2_normalise(means)


def _train_head(x: np.ndarray, y: np.ndarray, n_classes: int, s: HeadSettings,
                seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(projection, normalised class centres) after ``s.steps`` full-batch AdamW steps, on one
    CPU thread (for matrices this small more threads only add overhead; 200 steps on 36 toy
    descriptors took 1 s on one thread and 5 s on two busy cores)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run_head_steps(torch, x, y, n_classes, s, seed)
    finally:
        torch.set_num_threads(threads)


def _run_head_steps(torch, x: np.ndarray, y: np.ndarray, n_classes: int, s: HeadSettings,
                    seed: int) -> tuple[np.ndarray, np.ndarray]:
    from .model import cosface_loss

    torch.manual_seed(int(seed))
    xt, yt = torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y)
    eye = torch.eye(x.shape[1])
    proj = torch.nn.Parameter(eye.clone())
    centres = torch.nn.Parameter(torch.as_tensor(_class_means(x, y, n_classes, seed), dtype=torch.float32))
    opt = torch.optim.AdamW([proj, centres], lr=s.lr, weight_decay=s.weight_decay)
    loss_fn = cosface_loss(s.margin, s.scale)
    for _ in range(int(s.steps)):
        opt.zero_grad()
        emb = torch.nn.functional.normalize(xt @ proj.T, dim=1)
        logits = s.scale * emb @ torch.nn.functional.normalize(centres, dim=1).T
        loss = loss_fn(logits, yt) + s.identity_weight * ((proj - eye) ** 2).sum()
        loss.backward()
        opt.step()
    return proj.detach().numpy().astype(np.float64), l2_normalise(centres.detach().numpy().astype(np.float64))


# --------------------------------------------------------------------------------------------
# the two methods of the repeated-split comparison (crossval.EmbeddingMethod)
# --------------------------------------------------------------------------------------------

class DlibMethod:
    """``dlib``: dlib's descriptors, L2-normalised, for gallery matching; nothing is trained and
    there are no probabilities. ``encoder`` defaults to :class:`DlibEncoder` (made on first use)."""

    name = "dlib"

    def __init__(self, encoder: DlibEncoder | None = None, *, cache: bool = True, workers: int = 2):
        self._encoder = encoder
        self._use_cache, self.workers = cache, workers
        self._cache: DescriptorCache | None = None

    @property
    def descriptor_cache(self) -> DescriptorCache:
        if self._cache is None:
            self._cache = DescriptorCache(self._encoder or DlibEncoder(), enabled=self._use_cache)
        return self._cache

    def descriptors(self, ds, idx) -> np.ndarray:
        """Raw descriptors (len(idx), 128) of the data set's photos ``idx``."""
        paths = [ds.records[int(i)].path for i in np.asarray(idx, int)]
        desc, reasons = describe_files(paths, self.descriptor_cache, workers=self.workers)
        return _checked_descriptors(desc, reasons, paths)

    def fit(self, ds, prepared, train_idx, val_idx, classes: list[str], seed: int) -> None:
        """Nothing to learn."""

    def embed(self, ds, prepared, idx) -> np.ndarray:
        return l2_normalise(self.descriptors(ds, idx))

    def probabilities(self, ds, prepared, idx) -> np.ndarray | None:
        return None


class DlibHeadMethod(DlibMethod):
    """``dlib+head``: dlib's descriptors through a :class:`DescriptorHead` trained on the training
    photos of ``classes`` (temperature fitted on the validation photos of ``classes``)."""

    name = "dlib+head"

    def __init__(self, encoder: DlibEncoder | None = None, *, settings: HeadSettings | None = None,
                 cache: bool = True, workers: int = 2):
        super().__init__(encoder, cache=cache, workers=workers)
        self.head = DescriptorHead(settings)
        self.classes: list[str] = []

    def fit(self, ds, prepared, train_idx, val_idx, classes: list[str], seed: int) -> None:
        from .train import head_subset

        if len(classes) < 2:
            raise ParameterError(f"the head needs at least two classes, got {classes}", parameter="classes")
        labels = ds.labels
        train_keep, train_y = head_subset(labels, np.asarray(train_idx, int), list(classes))
        val_keep, val_y = head_subset(labels, np.asarray(val_idx, int), list(classes))
        if not len(train_keep):
            raise InputError(f"no training photo carries one of the head's classes {classes}")
        self.classes = list(classes)
        x_val = self.descriptors(ds, val_keep) if len(val_keep) else None
        self.head.fit(self.descriptors(ds, train_keep), train_y, len(classes), x_val, val_y, seed=seed)

    def embed(self, ds, prepared, idx) -> np.ndarray:
        return self.head.embed(self.descriptors(ds, idx))

    def probabilities(self, ds, prepared, idx) -> np.ndarray | None:
        return self.head.probabilities(self.descriptors(ds, idx))


def dlib_method(workers: int = 2, **_settings) -> DlibMethod:
    """crossval.METHODS factory of ``dlib`` (takes the TrainingSettings fields, uses ``workers``)."""
    return DlibMethod(workers=workers)


def dlib_head_method(workers: int = 2, **_settings) -> DlibHeadMethod:
    """crossval.METHODS factory of ``dlib+head`` (the split's seed reaches it through ``fit``)."""
    return DlibHeadMethod(workers=workers)
