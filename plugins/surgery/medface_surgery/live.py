"""The `move-segment` panel: move a bone segment with six sliders and watch the skin follow.

:class:`SegmentMovePreview` is the logic of the workstation panel ``surgery.move-segment``
(manifest ``[[panels]]``; the contract is ``docs/plugin-guide.md``, "Interactive panels"). It is
built once from the fixed skull, the segment to move (a mandible, a maxilla, a chin), the skin
and optionally landmarks, and answers every slider move with a :class:`medface.data.PanelUpdate`.

**The move.** Translations along the LPS axes (x to the patient's left, y posterior, z
superior, mm) and rotations about axes through a pivot parallel to them (degrees, right-hand
rule, applied x then y then z): the matrix is the plan's own (:func:`.transforms.move_matrix`),
so a frame is exactly the plan move ``{"translation_mm", "rotation_deg", "pivot"}``. The pivot is
the midpoint of the condyles (``co_l``, ``co_r``) when the landmarks carry both and both lie on
the segment (a whole mandible turns about its condyles, the hinge axis of mandibular rotation
in orthognathic planning), else the segment's volume centroid.

**The skin** is the rigid-blend preview (:class:`.preview.RigidBlendPreview`, the skull fixed):
its blend weights are computed once here, so a frame is one weighted sum over the skin's
vertices. It has no tissue physics; ``surgery simulate`` (finite elements) gives the prediction.

**Landmarks.** A landmark within :data:`.apply.LANDMARK_REACH_MM` of the segment, and not nearer
the skull, moves with the segment; a soft-tissue landmark follows the predicted skin at its
nearest skin vertex; the others stay. The cephalometric measures
(:func:`medface.anatomy.cephalometry.before_after_table`, the same table as ``surgery
simulate``) are taken before and after in the head frame of the landmarks before the move.
"""

from __future__ import annotations

import numpy as np

from medface.anatomy.cephalometry import as_point_dict, before_after_table, head_frame
from medface.anatomy.landmarks import soft_tissue_ids
from medface.data import Landmarks, PanelUpdate, SurfaceMesh
from medface.errors import InputError

from .apply import LANDMARK_REACH_MM
from .cutting import volume_centroid
from .preview import RigidBlendPreview
from .transforms import move_matrix, rotation_angle_deg, transform_points

SKULL, SEGMENT = "skull", "segment"
CONDYLES = ("co_l", "co_r")
#: summary keys carry the unit of each cephalometric measure
UNIT_KEYS = {"deg": "deg", "mm": "mm", "%": "pct"}
PREVIEW_NOTE = ("skin by the rigid-blend preview (no tissue physics); `surgery simulate` gives the finite-element "
                "prediction")


class SegmentMovePreview:
    """A bone segment moved live over a fixed skull, with the skin predicted and landmarks measured.

    ``skull``: the fixed bone (cranium); ``segment``: the bone that moves; ``skin``: the face
    surface; ``landmarks`` (optional): craniometric and soft-tissue landmarks, moved and measured.
    :meth:`update` takes the six controls and returns the frame (see the module docstring).
    """

    def __init__(self, skull: SurfaceMesh, segment: SurfaceMesh, skin: SurfaceMesh, landmarks: Landmarks | None = None):
        self.skull, self.segment, self.skin = skull, segment, skin
        self.preview = RigidBlendPreview({SKULL: skull, SEGMENT: segment}, skin, fixed=[SKULL])
        self.points = as_point_dict(landmarks) if landmarks is not None else {}
        self.carried = carried_landmarks(self.points, segment, skull)
        self.on_skin = nearest_skin_vertices(self.points, skin)
        self.pivot, self.pivot_name = segment_pivot(self.points, self.carried, segment)
        self.frame, self.notes = self._head_frame()

    def _head_frame(self):
        """(head frame of the landmarks before the move or None, notes for every frame)."""
        if not self.points:
            return None, [PREVIEW_NOTE]
        try:
            return head_frame(self.points), [PREVIEW_NOTE]
        except InputError as exc:
            return None, [PREVIEW_NOTE, f"no cephalometric measures: {exc.message}"]

    def move(self, translation_mm, rotation_deg) -> np.ndarray:
        """The 4x4 move of the segment: rotate about the pivot, then translate (LPS mm, degrees)."""
        return move_matrix(self.plan_move(translation_mm, rotation_deg))

    def plan_move(self, translation_mm, rotation_deg) -> dict:
        """The move as a plan's move entry (``{"segment", "translation_mm", "rotation_deg", "pivot"}``)."""
        return {"segment": SEGMENT, "translation_mm": [float(x) for x in translation_mm],
                "rotation_deg": [float(x) for x in rotation_deg], "pivot": [float(x) for x in self.pivot]}

    def command_inputs(self, command: str, translation_x_mm: float = 0.0, translation_y_mm: float = 0.0,
                       translation_z_mm: float = 0.0, rotation_x_deg: float = 0.0, rotation_y_deg: float = 0.0,
                       rotation_z_deg: float = 0.0) -> dict:
        """The panel's action ``simulate``: the sliders' move as a plan (the segment moved whole,
        uncut, as the plan's bone ``mandible`` over the fixed ``cranium``) with the skull, segment,
        skin and landmarks, for the finite-element simulation."""
        from .plan import new_plan

        if command != "simulate":
            raise InputError(f"the move-segment panel runs only 'simulate', not {command!r}")
        move = self.plan_move((translation_x_mm, translation_y_mm, translation_z_mm),
                              (rotation_x_deg, rotation_y_deg, rotation_z_deg))
        plan = new_plan(name="move-segment panel", segments=[{"name": SEGMENT, "bone": "mandible"}], moves=[move],
                        landmarks=self.points or None)
        return {"plan": plan, "bone": self.skull, "mandible": self.segment, "skin": self.skin, "tissue": "fem"}

    def update(self, translation_x_mm: float = 0.0, translation_y_mm: float = 0.0, translation_z_mm: float = 0.0,
               rotation_x_deg: float = 0.0, rotation_y_deg: float = 0.0, rotation_z_deg: float = 0.0) -> PanelUpdate:
        """The frame for one position of the sliders: the moved segment, the predicted skin
        (point data ``skin_change_mm``), the moved landmarks and the summary."""
        translation = (translation_x_mm, translation_y_mm, translation_z_mm)
        rotation = (rotation_x_deg, rotation_y_deg, rotation_z_deg)
        matrix = self.move(translation, rotation)
        displacement = self.preview.predict_displacement({SEGMENT: matrix})
        change = np.linalg.norm(displacement, axis=1)
        meshes = {
            "segment_moved": SurfaceMesh(transform_points(matrix, self.segment.vertices), self.segment.faces,
                                         name="segment (moved)"),
            "skin_predicted": SurfaceMesh(self.skin.vertices + displacement, self.skin.faces, name="skin (predicted)",
                                          point_data={"skin_change_mm": change.astype(np.float32)}),
        }
        after = self.moved_landmarks(matrix, displacement)
        summary = {"max_skin_change_mm": round(float(change.max()), 3),
                   "translation_mm": round(float(np.linalg.norm(translation)), 3),
                   "rotation_deg": round(rotation_angle_deg(rotation), 3), "pivot": self.pivot_name,
                   **self.measures(after)}
        landmarks = {"landmarks_moved": Landmarks.from_dict(after, name="landmarks (moved)")} if after else {}
        return PanelUpdate(meshes=meshes, landmarks=landmarks, summary=summary, warnings=list(self.notes))

    def moved_landmarks(self, matrix: np.ndarray, displacement: np.ndarray) -> dict[str, np.ndarray]:
        """Every landmark after the move: carried by the segment, following the skin, or staying."""
        out = {}
        for lid, p in self.points.items():
            if lid in self.carried:
                out[lid] = transform_points(matrix, p)
            elif lid in self.on_skin:
                out[lid] = p + displacement[self.on_skin[lid]]
            else:
                out[lid] = p.copy()
        return out

    def measures(self, after: dict[str, np.ndarray]) -> dict[str, float]:
        """Each cephalometric measure after the move and its change, keyed with its unit (``snb_deg``,
        ``snb_change_deg``); none without a head frame."""
        if self.frame is None:
            return {}
        out = {}
        for row in before_after_table(self.points, after, frame=self.frame):
            unit = UNIT_KEYS.get(row["unit"], row["unit"])
            out[f"{row['measure']}_{unit}"] = round(float(row["after"]), 3)
            out[f"{row['measure']}_change_{unit}"] = round(float(row["change"]), 3)
        return out


def carried_landmarks(points: dict[str, np.ndarray], segment: SurfaceMesh, skull: SurfaceMesh) -> set[str]:
    """The landmarks that move with the segment: within :data:`.apply.LANDMARK_REACH_MM` of its
    vertices and not nearer the skull's (soft-tissue landmarks follow the skin instead)."""
    from scipy.spatial import cKDTree

    soft = set(soft_tissue_ids())
    ids = [lid for lid in points if lid not in soft]
    if not ids:
        return set()
    p = np.array([points[lid] for lid in ids])
    to_segment = cKDTree(segment.vertices).query(p)[0]
    to_skull = cKDTree(skull.vertices).query(p)[0]
    return {lid for lid, d, s in zip(ids, to_segment, to_skull) if d < LANDMARK_REACH_MM and d <= s}


def nearest_skin_vertices(points: dict[str, np.ndarray], skin: SurfaceMesh) -> dict[str, int]:
    """Soft-tissue landmark id -> the index of its nearest skin vertex (whose displacement it follows)."""
    from scipy.spatial import cKDTree

    ids = [lid for lid in soft_tissue_ids() if lid in points]
    if not ids:
        return {}
    index = cKDTree(skin.vertices).query(np.array([points[lid] for lid in ids]))[1]
    return {lid: int(i) for lid, i in zip(ids, index)}


def segment_pivot(points: dict[str, np.ndarray], carried: set[str], segment: SurfaceMesh) -> tuple[np.ndarray, str]:
    """(pivot in LPS mm, what it is): the condyles' midpoint when the segment carries both
    condyles, else the segment's volume centroid."""
    if all(c in carried for c in CONDYLES):
        return 0.5 * (points[CONDYLES[0]] + points[CONDYLES[1]]), "condyles' midpoint (co_l, co_r)"
    return volume_centroid(segment.vertices, segment.faces)[1], "segment centroid"
