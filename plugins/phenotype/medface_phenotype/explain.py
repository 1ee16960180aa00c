"""Attention maps: which facial region carries the network's evidence for a condition.

Occlusion sensitivity (Zeiler & Fergus, ECCV 2014) over regions defined by the face's own
landmarks: each region of the aligned crop (eyes, nose, philtrum, lips, chin, ...; polygons
around MediaPipe Face Mesh points, :data:`REGIONS`) is in turn replaced by the same region of
the package's *reference face* (the mean aligned crop of its unaffected training subjects),
matched to this face's colour and contrast there, and the drop in the condition's calibrated
log-probability is that region's evidence: "if this region looked typical, how much less would
the face look like the condition?". A package without a reference face blurs the region
instead (its shape goes, its colour stays), which answers a weaker question: on phantom
photos the blur's evidence spread over the lips and brows, which carry the position cues of
neighbouring regions. The map paints each region with its evidence (scaled so
that the strongest is 1; regions whose blurring raised the probability count as 0), and the
table of evidence by region says in words where the network looked.

Why not Grad-CAM (used before): the encoder's last stage is 4 x 4 cells for a 112 px crop, so
its map cannot resolve a philtrum from a mouth, and on real photos its peak fell outside the
face in 4 of 5. Regions from landmarks follow the face whatever its proportions, and a region
outside the face (``outside``) says when the network leans on the background or hair.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

#: MediaPipe Face Mesh point indices outlining each region (the subject's right side is on the
#: image's left). Hulls of these points, in the aligned crop, are the regions. They follow the
#: anatomy of HPO's facial terms (the philtrum is part of the upper lip; the brows belong to the
#: orbital region): docs/phenotype.md says how they were chosen.
REGIONS: dict[str, tuple[int, ...]] = {
    "forehead": (54, 103, 67, 109, 10, 338, 297, 332, 284, 104, 69, 108, 151, 337, 299, 333),
    # the orbital region: both eyes with their lids, the brows and the inner canthal area between
    "eyes": (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246,
             263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466,
             70, 63, 105, 66, 107, 55, 65, 52, 53, 46, 300, 293, 334, 296, 336, 285, 295, 282, 283, 276),
    "nose": (1, 2, 4, 5, 6, 19, 45, 48, 64, 94, 97, 98, 115, 168, 195, 197, 220, 275, 278, 294, 326, 327, 344, 440),
    "cheek_right": (116, 117, 118, 100, 36, 205, 187, 147, 123),
    "cheek_left": (345, 346, 347, 329, 266, 425, 411, 376, 352),
    # the upper lip: philtrum (subnasale to the vermilion border) and the upper vermilion
    "philtrum": (97, 2, 326, 393, 164, 167, 61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291,
                 78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308),
    "lower_lip": (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 78, 95, 88, 178, 87, 14, 317, 402, 318, 324,
                  308),
    # the chin and the mandible's lower border: below the lower lip, from one side of the body of
    # the mandible to the other, down to the menton
    "chin": (91, 181, 84, 17, 314, 405, 321, 406, 313, 18, 83, 182, 201, 200, 421, 194, 418, 204, 424, 335,
             106, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365),
    "jaw_right": (132, 58, 172, 136, 138, 135, 213, 192, 215, 177, 214),
    "jaw_left": (361, 288, 397, 365, 367, 364, 433, 416, 435, 401, 434),
}
#: the face's outline (MediaPipe FACEMESH_FACE_OVAL); everything outside it is region "outside"
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148,
             176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)
REFERENCE_FILE = "reference_face.png"
#: SD (pixels of the 112 px crop) of the blur that removes a region's shape, and of the mask's edge
BLUR_SD_PX = 6.0
EDGE_SD_PX = 1.0
#: regions hold at least this many crop pixels (a region squeezed by the pose is left out)
MIN_REGION_PX = 12


@dataclass
class RegionAttention:
    """Evidence by region for one condition: ``evidence[name]`` is the drop in its calibrated
    log-probability when the region is blurred; ``map`` the (size, size) picture in [0, 1]."""

    condition: str
    evidence: dict
    map: np.ndarray

    @property
    def peak(self) -> str | None:
        """The region with the most evidence (None when blurring no region lowered the probability)."""
        name, value = max(self.evidence.items(), key=lambda kv: kv[1], default=(None, 0.0))
        return name if value > 0 else None

    def table(self) -> list[dict]:
        total = sum(max(v, 0.0) for v in self.evidence.values()) or 1.0
        return [{"region": k, "evidence": round(float(v), 4), "share": round(max(float(v), 0.0) / total, 3)}
                for k, v in sorted(self.evidence.items(), key=lambda kv: -kv[1])]


def _hull_mask(points: np.ndarray, size: int) -> np.ndarray:
    """Boolean (size, size) mask of the convex hull of ``points`` (crop pixels, corner convention)."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    hull = cv2.convexHull(np.round(points * 16).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(bool)


def region_masks(landmarks: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """The regions of :data:`REGIONS` and ``outside`` as boolean masks of a (size, size) crop, from
    MediaPipe landmarks already in crop pixels; empty when the landmarks are not MediaPipe's."""
    lm = np.asarray(landmarks, float)
    if lm.ndim != 2 or len(lm) < 468:
        return {}
    masks = {name: _hull_mask(lm[list(idx)], size) for name, idx in REGIONS.items()}
    masks["outside"] = ~_hull_mask(lm[list(FACE_OVAL)], size)
    return {k: m for k, m in masks.items() if m.sum() >= MIN_REGION_PX}


def blurred_copies(crop: np.ndarray, masks: dict[str, np.ndarray]) -> np.ndarray:
    """(len(masks), H, W, 3) uint8: the crop with each region in turn replaced by a blurred copy."""
    import cv2

    c = crop.astype(np.float32)
    blurred = cv2.GaussianBlur(c, (0, 0), BLUR_SD_PX, borderType=cv2.BORDER_REFLECT)
    out = []
    for mask in masks.values():
        w = _edge(mask)
        out.append(np.clip(c * (1.0 - w) + blurred * w, 0, 255).astype(np.uint8))
    return np.stack(out)


def _edge(mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(mask.astype(np.float32), (0, 0), EDGE_SD_PX)[..., None]


def reference_copies(crop: np.ndarray, masks: dict[str, np.ndarray], reference: np.ndarray) -> np.ndarray:
    """(len(masks), H, W, 3) uint8: the crop with each region in turn replaced by the reference
    face's, whose colour channels are matched there to the crop's mean and SD."""
    c = crop.astype(np.float32)
    ref = np.asarray(reference, np.float32)
    out = []
    for mask in masks.values():
        inside = mask.astype(bool)
        r_in, c_in = ref[inside], c[inside]
        matched = (ref - r_in.mean(axis=0)) / (r_in.std(axis=0) + 1e-6) * c_in.std(axis=0) + c_in.mean(axis=0)
        w = _edge(mask)
        out.append(np.clip(c * (1.0 - w) + matched * w, 0, 255).astype(np.uint8))
    return np.stack(out)


def mean_face(crops: np.ndarray) -> np.ndarray:
    """The reference face: the pixel mean of aligned uint8 crops."""
    crops = np.asarray(crops)
    if crops.ndim != 4 or not len(crops):
        raise ValueError("the reference face needs a non-empty stack of aligned crops")
    return np.clip(np.rint(crops.astype(np.float64).mean(axis=0)), 0, 255).astype(np.uint8)


def save_reference_face(reference: np.ndarray, folder) -> str:
    """Write the reference face into a package folder; returns its file's SHA-256."""
    import hashlib
    import io
    import os

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.asarray(reference, np.uint8)).save(buf, format="PNG")
    data = buf.getvalue()
    path = Path(folder) / REFERENCE_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return hashlib.sha256(data).hexdigest()


def load_reference_face(folder, sha256: str | None = None) -> np.ndarray | None:
    """The package's reference face, or None without one; an InputError when it does not match
    the card's hash or is not an RGB image."""
    import hashlib
    import io

    from PIL import Image, UnidentifiedImageError

    from medface.errors import InputError

    path = Path(folder) / REFERENCE_FILE
    if not path.is_file():
        return None
    data = path.read_bytes()
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise InputError(f"{REFERENCE_FILE} does not match the hash in the package's card", path=path)
    try:
        img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(f"the reference face cannot be read: {exc}", path=path) from exc
    return img


def occlusion_batch(crop: np.ndarray, landmarks_crop: np.ndarray,
                    reference: np.ndarray | None = None) -> tuple[dict[str, np.ndarray], np.ndarray] | None:
    """(region masks, uint8 stack of the crop followed by one copy per region with that region
    replaced: the reference face's or, without one, a blur), the network's input of an attention
    map; None without MediaPipe landmarks. CPU work only: the copies do not depend on the
    condition, so a batch can make them before the network runs."""
    size = crop.shape[0]
    masks = region_masks(landmarks_crop, size)
    if reference is not None:
        masks.pop("outside", None)  # the reference face's backdrop says nothing about a condition
    if not masks:
        return None
    copies = blurred_copies(crop, masks) if reference is None else reference_copies(crop, masks, reference)
    return masks, np.concatenate([crop[None], copies])


def region_attention(log_probs: np.ndarray, masks: dict[str, np.ndarray], condition: str) -> RegionAttention:
    """Evidence by region from the condition's calibrated log-probabilities of the
    :func:`occlusion_batch` (the crop's first, then one per region of ``masks``, in order)."""
    lp = np.asarray(log_probs, np.float64)
    evidence = {name: float(lp[0] - lp[k + 1]) for k, name in enumerate(masks)}
    first = next(iter(masks.values()))
    heat = np.zeros(first.shape, np.float32)
    for name, mask in masks.items():
        heat[mask] = np.maximum(heat[mask], max(evidence[name], 0.0))
    top = heat.max()
    return RegionAttention(condition, evidence, heat / top if top > 0 else heat)


def occlusion_attention(log_probs, crop: np.ndarray, landmarks_crop: np.ndarray, class_index: int,
                        condition: str, reference: np.ndarray | None = None) -> RegionAttention | None:
    """Evidence by region for class ``class_index``; ``log_probs(crops)`` gives calibrated
    log-probabilities (N, classes) of a stack of uint8 crops; ``reference``: the package's
    reference face (regions are blurred without one). None without MediaPipe landmarks."""
    made = occlusion_batch(crop, landmarks_crop, reference)
    if made is None:
        return None
    masks, batch = made
    return region_attention(np.asarray(log_probs(batch))[:, int(class_index)], masks, condition)


def overlay(display: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The heat map (resized to the display crop) blended over it in the 'inferno' colour map."""
    from matplotlib import colormaps
    from PIL import Image

    h, w = display.shape[:2]
    heat = np.asarray(Image.fromarray((np.clip(heat, 0, 1) * 255).astype(np.uint8)).resize(
        (w, h), Image.Resampling.BILINEAR), np.float32) / 255.0
    colour = colormaps["inferno"](heat)[..., :3] * 255.0
    a = alpha * (0.35 + 0.65 * heat[..., None])
    return np.clip(display * (1 - a) + colour * a, 0, 255).astype(np.uint8)
