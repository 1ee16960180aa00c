"""Face detection and landmarks behind a small interface, with MediaPipe as the default model.

A detector turns an upright (H, W, 3) uint8 RGB array into a list of :class:`DetectedFace`:
a box, a score, five alignment points (eye centres, nose tip, mouth corners) and, when the
model has them, a dense landmark set and a head-pose estimate. Sites can plug in another
model with :func:`register_detector`; everything downstream (the quality gate, the phenotype
plugin's alignment and CNN, the expression plugin's measurements) only reads
:class:`DetectedFace`.

The default, ``mediapipe``, runs Google's MediaPipe Face Mesh (0.10.14; BlazeFace detector +
478-point mesh with iris refinement, Apache-2.0). Its ``.tflite`` weights ship inside the
PyPI wheel, so nothing is downloaded. Why this model and not MTCNN or Haar cascades:
docs/phenotype.md. The 478 points' indices are those of MediaPipe's canonical face model
(468 mesh points, then 468-472 the subject's right iris and 473-477 the left: centre first).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import threading
import warnings
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from ..errors import InputError, ModelError, PluginError

# Five alignment points, in this order (names from the subject's side: the subject's right eye
# appears on the image's left in a frontal photo).
FIVE_POINTS = ("eye_right", "eye_left", "nose_tip", "mouth_right", "mouth_left")

# MediaPipe Face Mesh indices: canthi of each eye (the eye centre is their midpoint, which
# does not move with gaze or closed lids), pronasale, cheilion on each side; forehead and chin
# points for pitch.
_MESH_EYE_RIGHT = (33, 133)
_MESH_EYE_LEFT = (362, 263)
_MESH_NOSE_TIP = 1
_MESH_MOUTH_RIGHT, _MESH_MOUTH_LEFT = 61, 291
_MESH_FOREHEAD, _MESH_CHIN = 10, 152

# Gains and the pitch offset turn angles read off the mesh into head angles in degrees, in the
# phantom camera's sign convention; fitted on 60 phantom renders of known yaw and pitch
# (scripts/calibrate_pose.py: residual SD 3.5 deg yaw, 2.9 deg pitch). The forehead-chin line
# of an upright face leans back about 8 deg in the mesh, hence the offset.
YAW_GAIN = -0.98
PITCH_GAIN = -0.94
PITCH_OFFSET_DEG = 7.5

#: images are shrunk to this longest side for detection; landmarks come back in full resolution.
DETECTION_MAX_SIDE = 1280
#: ... and to this one for the orientation check (BlazeFace looks at 192 px anyway)
ORIENTATION_MAX_SIDE = 640
#: a face counts as upright when the line from its eyes to its mouth is within this angle of the
#: image's downward direction (degrees)
UPRIGHT_DEG = 45.0
#: an upright face with at least this short-range BlazeFace score in the unturned photo ends the
#: orientation search at once (upright phantom photos score 0.84-0.91, the two portraits of
#: ../shared/data 0.92-0.94; the model's false "upright" faces in the sample photo turned on its
#: side or upside down scored 0.57-0.67)
NEAR_UPRIGHT = 0.8
#: ... and with at least this full-range score, the search over the quarter turns (phantom
#: photos score 0.68-0.90, the two portraits 0.87-0.91)
CONFIDENT_UPRIGHT = 0.7


@dataclass
class DetectedFace:
    """One face in image pixels (x right, y down)."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    score: float
    points5: np.ndarray  # (5, 2) in FIVE_POINTS order
    landmarks: np.ndarray | None = field(default=None, repr=False)  # (N, 2) dense landmarks, if any
    pose: dict | None = None  # approximate yaw, pitch, roll in degrees (0, 0, 0: frontal, upright)

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.points5[1] - self.points5[0]))

    @property
    def width(self) -> float:
        return float(self.box[2] - self.box[0])

    def to_dict(self) -> dict:
        out = {"box": [round(float(v), 2) for v in self.box], "score": round(float(self.score), 4),
               "points5": {name: [round(float(x), 2), round(float(y), 2)] for name, (x, y) in
                           zip(FIVE_POINTS, self.points5)},
               "eye_distance_px": round(self.eye_distance, 2)}
        if self.pose is not None:
            out["pose_deg"] = {k: round(float(v), 1) for k, v in self.pose.items()}
        return out


class FaceDetector(Protocol):
    """What the quality gate and the plugins need from a detector."""

    name: str
    version: str

    def detect(self, pixels: np.ndarray) -> list[DetectedFace]:
        """All faces in an upright (H, W, 3) uint8 RGB image, best first."""

    # optional: ``upright_turns(pixels) -> int``, the quarter turns (``np.rot90(pixels, k)``) that
    # make the face upright, 0 when it already is or no face is seen (see MediaPipeDetector)


_FACTORIES: dict[str, Callable[..., FaceDetector]] = {}


def register_detector(name: str, factory: Callable[..., FaceDetector]) -> None:
    """Make ``factory(**options)`` available as detector ``name`` (e.g. a site's own model)."""
    if not name or not callable(factory):
        raise PluginError(f"a detector needs a name and a callable factory, got {name!r} and {factory!r}",
                          hint="register_detector('my-model', MyDetector)")
    _FACTORIES[name] = factory


def detector_names() -> list[str]:
    return sorted(_FACTORIES)


_LOCAL = threading.local()


def get_detector(name: str = "mediapipe", **options) -> FaceDetector:
    """This thread's detector ``name`` (made on first use; detectors are not shared between
    threads because MediaPipe graphs are not thread-safe)."""
    if name not in _FACTORIES:
        raise ModelError(f"unknown face detector {name!r}", hint=f"known detectors: {', '.join(detector_names())}")
    cache = getattr(_LOCAL, "detectors", None)
    if cache is None:
        cache = _LOCAL.detectors = {}
    key = (name, tuple(sorted(options.items())))
    if key not in cache:
        cache[key] = _FACTORIES[name](**options)
    return cache[key]


def check_pixels(pixels: np.ndarray) -> np.ndarray:
    """The pixels as a contiguous (H, W, 3) uint8 array, or a clear :class:`InputError`."""
    a = np.asarray(pixels)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise InputError(f"a face detector needs an (H, W, 3) uint8 RGB image, got shape {a.shape} {a.dtype}")
    if min(a.shape[:2]) < 2:
        raise InputError(f"the image is {a.shape[1]}x{a.shape[0]} px: too small to hold a face")
    return np.ascontiguousarray(a)


def _shrink(pixels: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """The image shrunk (area averaging) so that its longest side is at most ``max_side``, and
    the factor from the shrunk image's pixels to the original's."""
    h, w = pixels.shape[:2]
    if max(h, w) <= max_side:
        return pixels, 1.0
    from PIL import Image

    factor = max(h, w) / max_side
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    small = np.asarray(Image.fromarray(pixels).reduce(max(1, int(factor))).resize(size, Image.Resampling.BILINEAR))
    return small, w / size[0]


def head_pose(mesh3d: np.ndarray) -> dict:
    """Yaw, pitch and roll (degrees) from a MediaPipe mesh in pixel units (x, y, z).

    Roll is the angle of the line through the eye centres; yaw its turn out of the image
    plane; pitch the tilt of the forehead-chin line, corrected by gains fitted on renders with
    known pose."""
    right = mesh3d[list(_MESH_EYE_RIGHT)].mean(axis=0)
    left = mesh3d[list(_MESH_EYE_LEFT)].mean(axis=0)
    across = left - right
    roll = np.degrees(np.arctan2(across[1], across[0]))
    yaw = np.degrees(np.arctan2(across[2], np.hypot(across[0], across[1])))
    down = mesh3d[_MESH_CHIN] - mesh3d[_MESH_FOREHEAD]
    pitch = np.degrees(np.arctan2(-down[2], np.hypot(down[0], down[1])))
    return {"yaw": float(YAW_GAIN * yaw), "pitch": float(PITCH_GAIN * pitch - PITCH_OFFSET_DEG), "roll": float(roll)}


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_stderr():
    """Send file descriptor 2 to /dev/null for a moment: MediaPipe's C++ graphs print set-up
    notes (TF Lite delegate, feedback tensors) straight to it, on every new detector."""
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "wb") as null:
                os.dup2(null.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _upright_score(detections, shape) -> float:
    """The best BlazeFace score of an upright face among ``detections`` in an image of ``shape``
    (0 without one)."""
    h, w = shape[:2]
    best = 0.0
    for det in detections:
        kp = np.array([[k.x * w, k.y * h] for k in det.location_data.relative_keypoints])
        down = kp[3] - kp[:2].mean(axis=0)  # eye centres -> mouth centre
        if np.degrees(abs(np.arctan2(down[0], down[1]))) <= UPRIGHT_DEG:
            best = max(best, float(det.score[0]))
    return best


def _centre(box) -> tuple[float, float]:
    return (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0


def _inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def _ignore_protobuf_deprecation() -> None:
    """MediaPipe 0.10.14 calls a protobuf API that protobuf 4.25 marks deprecated, on every image.
    Set again on each call: a command runs inside ``warnings.catch_warnings()``, which drops a
    filter set during an earlier run (adding the same filter again replaces it, so none pile up)."""
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")


class MediaPipeDetector:
    """MediaPipe Face Mesh: faces, 478 landmarks (with iris refinement) and head pose.

    ``max_faces`` faces are looked for (more than one lets the quality gate report a group
    photo); ``min_confidence`` is the BlazeFace detection threshold.
    """

    name = "mediapipe"

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5):
        os.environ.setdefault("GLOG_minloglevel", "2")  # MediaPipe's C++ logging: errors only
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        _ignore_protobuf_deprecation()
        try:
            import mediapipe as mp
        except ImportError as exc:  # pragma: no cover - depends on the installation
            raise ModelError("the 'mediapipe' face detector is not installed",
                             hint="pip install 'mediapipe==0.10.14' (Python 3.9-3.12), or register another "
                                  "detector with medface.face.register_detector") from exc
        self.version = getattr(mp, "__version__", "unknown")
        self.max_faces = int(max_faces)
        self.min_confidence = float(min_confidence)
        self._last_near = None
        with _quiet_stderr():  # the graphs print set-up notes from their threads until they first run
            self._mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=self.max_faces,
                                                         refine_landmarks=True,
                                                         min_detection_confidence=self.min_confidence)
            # BlazeFace's short-range model (faces within about 2 m, as in a portrait; a third of the
            # full-range model's time) for the orientation and the face count, the full-range model
            # for photos in which nothing else is seen
            self._near = mp.solutions.face_detection.FaceDetection(model_selection=0,
                                                                   min_detection_confidence=self.min_confidence)
            self._boxes = mp.solutions.face_detection.FaceDetection(model_selection=1,
                                                                    min_detection_confidence=self.min_confidence)
            blank = np.full((64, 64, 3), 128, np.uint8)
            for graph in (self._mesh, self._near, self._boxes):
                graph.process(blank)

    def detect(self, pixels: np.ndarray) -> list[DetectedFace]:
        _ignore_protobuf_deprecation()
        return self._detect(check_pixels(pixels))

    def upright_turns(self, pixels: np.ndarray) -> int:
        """Quarter turns k (``np.rot90(pixels, k)``) that make the best-seen face upright; 0 when
        the face is upright already or none is seen in any turn.

        The face mesh cannot tell: on an upside-down face it fits an upright mesh (eyes on the
        mouth). BlazeFace's key points (eyes, mouth) give a face's direction. The short-range
        model looks first, at the photo as it is: an upright face there with a score of at least
        :data:`NEAR_UPRIGHT` ends the search (the path of an ordinary portrait). Otherwise the
        full-range model, which finds faces only up to about 90 degrees from upright and did not
        take an inverted face for an upright one (the short-range model did, scoring up to 0.67),
        looks at each quarter turn; the turn whose face is upright (eyes-to-mouth line within
        :data:`UPRIGHT_DEG` of straight down) with the highest score wins, and a confident
        (:data:`CONFIDENT_UPRIGHT`) upright face in the unturned photo ends that search too."""
        _ignore_protobuf_deprecation()
        small, _ = _shrink(check_pixels(pixels), ORIENTATION_MAX_SIDE)
        if _upright_score(self._near_faces(small), small.shape) >= NEAR_UPRIGHT:
            return 0
        best, best_score = 0, 0.0
        for k in range(4):
            turned = np.ascontiguousarray(np.rot90(small, k))
            score = _upright_score(self._boxes.process(turned).detections or [], turned.shape)
            if k == 0 and score >= CONFIDENT_UPRIGHT:
                return 0
            if score > best_score:
                best, best_score = k, score
        return best

    def _near_faces(self, pixels: np.ndarray) -> list:
        """The short-range model's detections in ``pixels``; the orientation check and the face
        count look at the same unturned photo, so the last answer is kept for pixels of the same
        content."""
        key = (pixels.shape, hashlib.blake2b(np.ascontiguousarray(pixels).data, digest_size=16).digest())
        if self._last_near is None or self._last_near[0] != key:
            self._last_near = (key, list(self._near.process(pixels).detections or []))
        return self._last_near[1]

    def _detect(self, pixels: np.ndarray) -> list[DetectedFace]:
        small, factor = _shrink(pixels, DETECTION_MAX_SIDE)
        h, w = small.shape[:2]
        result = self._mesh.process(small)
        faces = []
        for lm in result.multi_face_landmarks or []:
            mesh = np.array([[p.x * w, p.y * h, p.z * w] for p in lm.landmark], dtype=np.float64) * factor
            faces.append(self._face(mesh))
        # the mesh needs a roughly frontal face of some size; BlazeFace also sees profiles and
        # smaller faces (a child beside a parent), which the quality gate then reports, so that a
        # photo's faces are all counted and none is silently ignored
        boxes, box_factor = _shrink(pixels, ORIENTATION_MAX_SIDE)
        others = self._faces_besides(faces, self._near_faces(boxes), boxes.shape, box_factor)
        if others or not faces:
            # a face at the short-range model's limit gets a poor box: the full-range model
            # measures it (and looks for faces further away), in the few photos that have one
            others = self._faces_besides(faces, self._boxes.process(small).detections or [], small.shape,
                                         factor) or others
        faces.extend(others)
        faces.sort(key=lambda f: -f.width)
        return faces

    def _faces_besides(self, faces: list, detections, shape, factor: float) -> list[DetectedFace]:
        """Box-only faces of BlazeFace ``detections`` (in an image of ``shape``) outside ``faces``."""
        found = [self._box_only(det, shape[1], shape[0], factor) for det in detections]
        return [f for f in found if not any(_inside(_centre(f.box), g.box) for g in faces)]

    @staticmethod
    def _face(mesh: np.ndarray) -> DetectedFace:
        pts = np.stack([mesh[list(_MESH_EYE_RIGHT), :2].mean(axis=0), mesh[list(_MESH_EYE_LEFT), :2].mean(axis=0),
                        mesh[_MESH_NOSE_TIP, :2], mesh[_MESH_MOUTH_RIGHT, :2], mesh[_MESH_MOUTH_LEFT, :2]])
        x0, y0 = mesh[:, :2].min(axis=0)
        x1, y1 = mesh[:, :2].max(axis=0)
        return DetectedFace((float(x0), float(y0), float(x1), float(y1)), 1.0, pts, mesh[:, :2].copy(),
                            head_pose(mesh))

    @staticmethod
    def _box_only(det, w: int, h: int, factor: float) -> DetectedFace:
        """A BlazeFace detection without a mesh: box and its six key points (eyes, nose, mouth
        centre, ears), which place the eyes and nose but not the mouth corners."""
        rb = det.location_data.relative_bounding_box
        box = (rb.xmin * w * factor, rb.ymin * h * factor, (rb.xmin + rb.width) * w * factor,
               (rb.ymin + rb.height) * h * factor)
        kp = np.array([[k.x * w, k.y * h] for k in det.location_data.relative_keypoints]) * factor
        mouth = kp[3]
        pts = np.stack([kp[0], kp[1], kp[2], mouth, mouth])
        return DetectedFace(box, float(det.score[0]), pts, None, None)


register_detector("mediapipe", MediaPipeDetector)
