"""Cephalometric measurements from 3D landmarks, in any head orientation.

A landmark set (``{id: LPS point}`` or :class:`medface.data.Landmarks`) is first put into a
*head frame* built from the landmarks themselves, so every value is invariant to rotating and
translating all landmarks together:

* the **mid-sagittal plane** is fitted by least squares to the bilateral landmark pairs
  (:func:`midsagittal_plane`): its normal is the principal direction of the left-minus-right
  vectors, its offset the mean of the pair midpoints. Mandibular and soft-tissue pairs are left
  out when at least two other pairs exist, so an asymmetric jaw does not tilt the reference;
* the **horizontal** is the Frankfurt horizontal (porion to orbitale, both sides averaged) when
  those landmarks exist; on a face surface without them, the soft-tissue Frankfurt line (tragion
  to soft-tissue orbitale), about 2 degrees off the bony one on the phantom; else sella-nasion
  turned 7 degrees nose-down (S-N lies on average about 7 degrees to FH; Jacobson 2006).

Angles that a lateral cephalogram shows (SNA, SNB, ANB, the mandibular plane angle, the angle
of convexity) are measured in the projection onto the mid-sagittal plane, as on a radiograph
(Steiner 1953; Downs 1948). Face heights are 3D distances between midline points.
Definitions and sources: ``docs/surgery-plans.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from . import landmarks as vocabulary

SN_TO_FH_DEG = 7.0
"""Mean angle between sella-nasion and the Frankfurt horizontal used when porion/orbitale are absent."""

Points = Mapping[str, np.ndarray]


def as_point_dict(landmarks) -> dict[str, np.ndarray]:
    """``{id: (3,) float array}`` from a dict or a :class:`medface.data.Landmarks`."""
    items = landmarks.to_dict() if hasattr(landmarks, "to_dict") else dict(landmarks)
    out = {}
    for key, value in items.items():
        p = np.asarray(value, dtype=np.float64).reshape(-1)
        if p.shape != (3,) or not np.isfinite(p).all():
            raise InputError(f"landmark '{key}' must be 3 finite coordinates (LPS mm), got {value!r}")
        out[str(key)] = p
    return out


# ---------------------------------------------------------------------------------------------
# mid-sagittal plane and head frame
@dataclass(frozen=True)
class SymmetryPlane:
    """A mid-sagittal plane: ``centre`` (LPS mm) and unit ``normal`` pointing to the patient's left."""

    centre: np.ndarray
    normal: np.ndarray
    pairs: tuple[tuple[str, str], ...] = ()

    def signed_distance(self, points) -> np.ndarray:
        """Distance of each point from the plane (mm; + on the patient's left)."""
        return (np.asarray(points, float) - self.centre) @ self.normal

    def reflect(self, points) -> np.ndarray:
        """Mirror points across the plane."""
        p = np.asarray(points, float)
        return p - 2.0 * np.outer(self.signed_distance(p.reshape(-1, 3)), self.normal).reshape(p.shape)

    def reflection_matrix(self) -> np.ndarray:
        """4x4 homogeneous matrix of the reflection (an improper rigid transform)."""
        return reflection_matrix(self.centre, self.normal)


def reflection_matrix(centre, normal) -> np.ndarray:
    """4x4 matrix reflecting points across the plane through ``centre`` with ``normal``."""
    n = np.asarray(normal, float)
    n = n / np.linalg.norm(n)
    c = np.asarray(centre, float)
    m = np.eye(4)
    m[:3, :3] -= 2.0 * np.outer(n, n)
    m[:3, 3] = 2.0 * (c @ n) * n
    return m


def _default_pairs(points: Points) -> list[tuple[str, str]]:
    present = [(l, r) for l, r in vocabulary.bilateral_pairs() if l in points and r in points]
    stable = [(l, r) for l, r in present
              if vocabulary.get(l).kind == "craniometric" and vocabulary.get(l).region != "mandible"]
    return stable if len(stable) >= 2 else present


def midsagittal_plane(landmarks, pairs=None) -> SymmetryPlane:
    """Least-squares mid-sagittal plane from bilateral landmark pairs.

    The normal maximises the sum of squared projections of the unit left-minus-right vectors
    (the top eigenvector of their scatter matrix), oriented towards the left landmarks; the
    plane passes through the mean of the pair midpoints (the least-squares offset). ``pairs``
    defaults to every craniometric, non-mandibular pair present (all pairs when fewer than two).
    """
    points = as_point_dict(landmarks)
    pairs = list(pairs) if pairs is not None else _default_pairs(points)
    pairs = [(l, r) for l, r in pairs if l in points and r in points]
    if len(pairs) < 2:
        raise InputError(f"the mid-sagittal plane needs at least 2 bilateral landmark pairs (left and right), "
                         f"found {len(pairs)}", hint="add e.g. po_l/po_r, or_l/or_r, zy_l/zy_r")
    diffs = np.array([points[l] - points[r] for l, r in pairs])
    lengths = np.linalg.norm(diffs, axis=1)
    if (lengths < 1e-6).any():
        bad = [pairs[i][0] for i in np.flatnonzero(lengths < 1e-6)]
        raise InputError(f"bilateral landmarks coincide with their partner: {', '.join(bad)}")
    units = diffs / lengths[:, None]
    _, vectors = np.linalg.eigh(units.T @ units)
    normal = vectors[:, -1]
    if normal @ units.sum(axis=0) < 0:
        normal = -normal
    mids = np.array([0.5 * (points[l] + points[r]) for l, r in pairs])
    centre = mids.mean(axis=0)
    return SymmetryPlane(centre, normal, tuple(pairs))


@dataclass(frozen=True)
class HeadFrame:
    """An anatomical frame: ``axes`` rows are left, posterior, superior (as LPS for an upright head)."""

    origin: np.ndarray
    axes: np.ndarray
    horizontal: str  # "frankfurt", "frankfurt-soft-tissue" (tragion-orbitale') or "sella-nasion-7"
    plane: SymmetryPlane

    def to_frame(self, points) -> np.ndarray:
        """Coordinates of LPS points in the head frame (mm)."""
        return (np.asarray(points, float) - self.origin) @ self.axes.T

    def sagittal(self, point) -> np.ndarray:
        """(anterior, superior) coordinates of a point projected on the mid-sagittal plane."""
        q = self.to_frame(point)
        return np.array([-q[..., 1], q[..., 2]]).T

    @property
    def left(self) -> np.ndarray:
        return self.axes[0]

    @property
    def superior(self) -> np.ndarray:
        return self.axes[2]

    @property
    def anterior(self) -> np.ndarray:
        return -self.axes[1]


def _mean(points: Points, *ids: str) -> np.ndarray | None:
    got = [points[i] for i in ids if i in points]
    return np.mean(got, axis=0) if got else None


def head_frame(landmarks, pairs=None) -> HeadFrame:
    """The head frame of a landmark set (see the module docstring)."""
    points = as_point_dict(landmarks)
    plane = midsagittal_plane(points, pairs)
    x = plane.normal
    po, orb = _mean(points, "po_l", "po_r"), _mean(points, "or_l", "or_r")
    tragion, orb_soft = _mean(points, "t_l", "t_r"), _mean(points, "or_s_l", "or_s_r")
    if po is not None and orb is not None:
        anterior, horizontal = orb - po, "frankfurt"
        tilt = 0.0
    elif tragion is not None and orb_soft is not None:  # a face surface: the soft-tissue Frankfurt line
        anterior, horizontal, po = orb_soft - tragion, "frankfurt-soft-tissue", tragion
        tilt = 0.0
    elif "s" in points and "n" in points:
        anterior, horizontal = points["n"] - points["s"], "sella-nasion-7"
        tilt = np.radians(SN_TO_FH_DEG)
    else:
        raise InputError("a head frame needs porion and orbitale (po_l/po_r, or_l/or_r), tragion and soft-tissue "
                         "orbitale (t_l/t_r, or_s_l/or_s_r) or sella and nasion (s, n)")
    anterior = anterior - (anterior @ x) * x
    if np.linalg.norm(anterior) < 1e-6:
        raise InputError("the horizontal reference line is perpendicular to the mid-sagittal plane")
    anterior /= np.linalg.norm(anterior)
    up = np.cross(anterior, x)
    if tilt:  # turn the S-N line nose-down by the mean SN-FH angle
        anterior, up = np.cos(tilt) * anterior - np.sin(tilt) * up, np.sin(tilt) * anterior + np.cos(tilt) * up
    axes = np.array([x, -anterior, up])
    origin = plane.centre if po is None else po - ((po - plane.centre) @ x) * x
    return HeadFrame(origin, axes, horizontal, plane)


# ---------------------------------------------------------------------------------------------
# measurements
@dataclass(frozen=True)
class Measure:
    """One cephalometric measure: how it is named, its unit, definition, source and landmarks."""

    id: str
    name: str
    unit: str
    definition: str
    source: str
    needs: tuple[str, ...]


MEASURES: tuple[Measure, ...] = (
    Measure("sna", "SNA", "deg", "angle S-N-A at nasion, in the mid-sagittal projection", "Steiner 1953",
            ("s", "n", "a")),
    Measure("snb", "SNB", "deg", "angle S-N-B at nasion, in the mid-sagittal projection", "Steiner 1953",
            ("s", "n", "b")),
    Measure("anb", "ANB", "deg", "SNA minus SNB (+ when the maxilla is ahead of the mandible)", "Steiner 1953",
            ("s", "n", "a", "b")),
    Measure("sn_fh", "SN to FH", "deg", "angle between S-N and the Frankfurt horizontal (po-or)",
            "Jacobson 2006", ("s", "n", "po_l|po_r", "or_l|or_r")),
    Measure("mandibular_plane_sn", "Mandibular plane to SN", "deg",
            "angle between the mandibular plane Go-Me (gonion of both sides averaged) and S-N",
            "Steiner 1953 (Go-Gn); Jacobson 2006 (Go-Me)", ("s", "n", "go_l|go_r", "me")),
    Measure("mandibular_plane_fh", "FMA (mandibular plane to FH)", "deg",
            "angle between the mandibular plane Go-Me and the Frankfurt horizontal", "Tweed 1954; Jacobson 2006",
            ("po_l|po_r", "or_l|or_r", "go_l|go_r", "me")),
    Measure("convexity", "Angle of convexity N-A-Pog", "deg",
            "180 deg minus the angle N-A-Pog at A point (+ when A lies ahead of the N-Pog line)", "Downs 1948",
            ("n", "a", "pog")),
    Measure("upper_face_height", "Upper face height N-ANS", "mm", "3D distance nasion to anterior nasal spine",
            "Jacobson 2006", ("n", "ans")),
    Measure("lower_face_height", "Lower face height ANS-Me", "mm", "3D distance anterior nasal spine to menton",
            "Jacobson 2006", ("ans", "me")),
    Measure("total_face_height", "Total face height N-Me", "mm", "3D distance nasion to menton", "Jacobson 2006",
            ("n", "me")),
    Measure("lower_face_ratio", "Lower face ratio ANS-Me / N-Me", "%", "lower over total anterior face height",
            "Jacobson 2006", ("n", "ans", "me")),
    Measure("anterior_cranial_base", "Anterior cranial base S-N", "mm", "3D distance sella to nasion",
            "Riolo 1974", ("s", "n")),
    Measure("posterior_face_height", "Posterior face height S-Go", "mm",
            "3D distance sella to gonion, mean of the sides present", "Riolo 1974", ("s", "go_l|go_r")),
    Measure("mandibular_length", "Mandibular length Co-Gn", "mm",
            "3D distance condylion to gnathion, mean of the sides present", "Riolo 1974", ("co_l|co_r", "gn")),
    Measure("ramus_height", "Ramus height Co-Go", "mm",
            "3D distance condylion to gonion on the same side, mean of the sides present", "Riolo 1974",
            ("co_l|co_r", "go_l|go_r")),
    Measure("mandibular_body_length", "Mandibular body Go-Pog", "mm",
            "3D distance gonion to pogonion, mean of the sides present", "Riolo 1974", ("go_l|go_r", "pog")),
    Measure("palatal_length", "Palatal length ANS-PNS", "mm", "3D distance anterior to posterior nasal spine",
            "Riolo 1974", ("ans", "pns")),
    Measure("chin_deviation", "Chin deviation (menton)", "mm",
            "signed distance of menton from the mid-sagittal plane (+ towards the patient's left)",
            "mid-sagittal plane by least squares on bilateral pairs", ("me",)),
    Measure("asymmetry_rms", "Asymmetry index (RMS)", "mm",
            "root mean square distance between each left landmark and the mirror image of its right partner "
            "across the mid-sagittal plane, over every bilateral pair present", "this toolkit", ()),
)
MEASURE_BY_ID = {m.id: m for m in MEASURES}
#: bilateral lengths: the two landmark ids, ``{s}`` standing for the side (l, r)
_SIDED = {"posterior_face_height": ("s", "go_{s}"), "mandibular_length": ("co_{s}", "gn"),
          "ramus_height": ("co_{s}", "go_{s}"), "mandibular_body_length": ("go_{s}", "pog")}


def _has(points: Points, need: str) -> bool:
    return any(alt in points for alt in need.split("|"))


def _angle_at(frame: HeadFrame, a, vertex, b) -> float:
    u = frame.sagittal(a) - frame.sagittal(vertex)
    v = frame.sagittal(b) - frame.sagittal(vertex)
    c = u @ v / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def _sided_distance(points: Points, a: str, b: str) -> float | None:
    """Mean 3D distance a-b over the sides present (``a``/``b`` with ``{s}`` for l and r), or None."""
    got = [float(np.linalg.norm(points[a.format(s=s)] - points[b.format(s=s)])) for s in "lr"
           if a.format(s=s) in points and b.format(s=s) in points]
    return float(np.mean(got)) if got else None


def _line_angle(frame: HeadFrame, p1, p2, q1, q2) -> float:
    """Acute angle between lines p1-p2 and q1-q2 in the mid-sagittal projection (deg)."""
    u = frame.sagittal(p2) - frame.sagittal(p1)
    v = frame.sagittal(q2) - frame.sagittal(q1)
    c = abs(u @ v) / (np.linalg.norm(u) * np.linalg.norm(v))
    return float(np.degrees(np.arccos(np.clip(c, 0.0, 1.0))))


def asymmetry_index(landmarks, plane: SymmetryPlane | None = None) -> float:
    """RMS distance (mm) between each left landmark and its mirrored right partner."""
    points = as_point_dict(landmarks)
    plane = plane or midsagittal_plane(points)
    pairs = [(l, r) for l, r in vocabulary.bilateral_pairs() if l in points and r in points]
    if not pairs:
        raise InputError("no bilateral landmark pairs to measure asymmetry")
    left = np.array([points[l] for l, _ in pairs])
    mirrored = plane.reflect(np.array([points[r] for _, r in pairs]))
    return float(np.sqrt(np.mean(np.sum((left - mirrored) ** 2, axis=1))))


def measure(landmarks, frame: HeadFrame | None = None) -> dict[str, float]:
    """Every measure of :data:`MEASURES` whose landmarks are present, ``{id: value}``.

    Units: degrees and millimetres (see :data:`MEASURES`). The head frame is built from the
    landmarks unless given.
    """
    points = as_point_dict(landmarks)
    frame = frame or head_frame(points)
    p = points
    go = _mean(p, "go_l", "go_r")
    po, orb = _mean(p, "po_l", "po_r"), _mean(p, "or_l", "or_r")
    out: dict[str, float] = {}
    for m in MEASURES:
        if not all(_has(p, need) for need in m.needs):
            continue
        if m.id == "sna":
            out[m.id] = _angle_at(frame, p["s"], p["n"], p["a"])
        elif m.id == "snb":
            out[m.id] = _angle_at(frame, p["s"], p["n"], p["b"])
        elif m.id == "anb":
            out[m.id] = _angle_at(frame, p["s"], p["n"], p["a"]) - _angle_at(frame, p["s"], p["n"], p["b"])
        elif m.id == "sn_fh":
            out[m.id] = _line_angle(frame, p["s"], p["n"], po, orb)
        elif m.id == "mandibular_plane_sn":
            out[m.id] = _line_angle(frame, go, p["me"], p["s"], p["n"])
        elif m.id == "mandibular_plane_fh":
            out[m.id] = _line_angle(frame, go, p["me"], po, orb)
        elif m.id == "convexity":
            n, a, pog = frame.sagittal(p["n"]), frame.sagittal(p["a"]), frame.sagittal(p["pog"])
            u, w = pog - n, a - n
            sign = 1.0 if u[0] * w[1] - u[1] * w[0] >= 0 else -1.0
            out[m.id] = sign * (180.0 - _angle_at(frame, p["n"], p["a"], p["pog"]))
        elif m.id == "upper_face_height":
            out[m.id] = float(np.linalg.norm(p["n"] - p["ans"]))
        elif m.id == "lower_face_height":
            out[m.id] = float(np.linalg.norm(p["ans"] - p["me"]))
        elif m.id == "total_face_height":
            out[m.id] = float(np.linalg.norm(p["n"] - p["me"]))
        elif m.id == "lower_face_ratio":
            out[m.id] = 100.0 * float(np.linalg.norm(p["ans"] - p["me"]) / np.linalg.norm(p["n"] - p["me"]))
        elif m.id == "anterior_cranial_base":
            out[m.id] = float(np.linalg.norm(p["s"] - p["n"]))
        elif m.id == "palatal_length":
            out[m.id] = float(np.linalg.norm(p["ans"] - p["pns"]))
        elif m.id in _SIDED:
            value = _sided_distance(p, *_SIDED[m.id])
            if value is not None:
                out[m.id] = value
        elif m.id == "chin_deviation":
            out[m.id] = float(frame.plane.signed_distance(p["me"]))
        elif m.id == "asymmetry_rms" and any(l in p and r in p for l, r in vocabulary.bilateral_pairs()):
            out[m.id] = asymmetry_index(p, frame.plane)
    return out


def before_after_table(before_landmarks, after_landmarks, *, frame: HeadFrame | None = None, sex=None,
                       norms: bool = False, age: float | None = None) -> list[dict]:
    """Rows ``{measure, name, before, after, change, unit}`` for every measure available in both.

    Both sets are measured in the *same* head frame (built from ``before_landmarks`` unless
    given): a surgical move of the jaws must not move the reference planes.

    With ``norms=True`` or a ``sex`` (``"M"``, ``"F"``; None / ``"unknown"``: pooled norms only),
    each row also gets ``norm_mean``, ``norm_sd``, ``normal_low``/``normal_high`` (mean -+ 1 SD),
    ``z_before``, ``z_after``, ``norm_sex``, ``norm_n``, ``age_group``, ``norm_source`` and
    ``norm_note`` from :mod:`.cephalometric_norms` (None where a measure has no usable norm, the
    note saying why). ``age`` (years) only adds a note where the norms' age group differs.
    """
    before = as_point_dict(before_landmarks)
    after = as_point_dict(after_landmarks)
    frame = frame or head_frame(before)
    b, a = measure(before, frame), measure(after, frame)
    rows = []
    for m in MEASURES:
        if m.id in b and m.id in a:
            rows.append({"measure": m.id, "name": m.name, "before": b[m.id], "after": a[m.id],
                         "change": a[m.id] - b[m.id], "unit": m.unit})
    if norms or sex is not None:
        add_norms(rows, sex, age)
    return rows


def add_norms(rows: list[dict], sex=None, age: float | None = None) -> list[dict]:
    """Add the norm columns and z-scores to :func:`before_after_table` rows, in place (and return them)."""
    from .cephalometric_norms import compare, z_score

    against = compare({r["measure"]: r["before"] for r in rows}, sex, age)
    for row in rows:
        got = dict(against[row["measure"]])
        z_before = got.pop("z")
        got_after = z_score(row["after"], got["norm_mean"], got["norm_sd"]) if got["norm_mean"] is not None else None
        row.update({"norm_mean": got["norm_mean"], "norm_sd": got["norm_sd"], "normal_low": got["normal_low"],
                    "normal_high": got["normal_high"], "z_before": z_before, "z_after": got_after,
                    "norm_sex": got["norm_sex"], "norm_n": got["norm_n"], "age_group": got["age_group"],
                    "norm_source": got["norm_source"], "norm_note": got["norm_note"]})
    return rows


def soft_tissue_change(before_vertices, after_vertices, regions: Mapping[str, np.ndarray] | None = None) -> dict:
    """Per-region displacement statistics between two vertex arrays of the same mesh.

    ``regions`` maps a name to vertex indices or a boolean mask (default: one region ``"all"``).
    Returns ``{name: {"n": count, "mean_mm": ..., "max_mm": ..., "rms_mm": ...}}``.
    """
    b = np.asarray(before_vertices, float)
    a = np.asarray(after_vertices, float)
    if b.shape != a.shape or b.ndim != 2 or b.shape[1] != 3:
        raise InputError(f"before and after vertices must be matching (N, 3) arrays, got {b.shape} and {a.shape}")
    d = np.linalg.norm(a - b, axis=1)
    regions = regions if regions is not None else {"all": np.arange(len(d))}
    out = {}
    for name, sel in regions.items():
        sel = np.asarray(sel)
        idx = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.int64)
        if sel.dtype == bool and len(sel) != len(d):
            raise InputError(f"region '{name}': mask has {len(sel)} entries for {len(d)} vertices")
        if idx.size and (idx.min() < 0 or idx.max() >= len(d)):
            raise InputError(f"region '{name}': vertex indices outside 0..{len(d) - 1}")
        v = d[idx]
        out[name] = {"n": int(v.size), "mean_mm": float(v.mean()) if v.size else 0.0,
                     "max_mm": float(v.max()) if v.size else 0.0,
                     "rms_mm": float(np.sqrt(np.mean(v ** 2))) if v.size else 0.0}
    return out
