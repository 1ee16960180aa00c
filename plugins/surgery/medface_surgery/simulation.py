"""A plan applied to a patient's bone and skin surfaces, with the predicted face: the logic of
`surgery simulate`, usable from a script with no file system.

The plan's osteotomies cut the bones (:mod:`.cutting`), its moves carry the segments
(:mod:`.apply`), and the skin is predicted by the linear-elastic finite-element model
(:mod:`.fem`) and, for comparison, by the fast rigid-blend preview (:mod:`.preview`). Landmarks
move with their segments and the cephalometric measures are tabulated before and after
(:mod:`medface.anatomy.cephalometry`). Every output is a pure function of the inputs and the plan::

    from medface_surgery import Simulation, SurgeryPlan

    plan = SurgeryPlan.from_preset("genioplasty", landmarks, advance=4.0)
    sim = Simulation(plan, tissue="preview").run({"mandible": mandible, "cranium": skull}, skin)
    sim.skin_after, sim.max_skin_change_mm, sim.measures
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from medface.data import Plan, SurfaceMesh, Volume
from medface.errors import InputError, ParameterError

from .apply import PlanResult, apply_plan
from .fem import DEFAULT_GRADE_MM
from .plan_validation import check_plan

#: the plan's bone names for the surfaces of a segmentation
BONE_NAMES = {"skull": "cranium", "mandible": "mandible"}
TISSUE_MODELS = ("fem", "preview")
#: free tissue farther than this from the moving bone is held still (mm). Chosen by a study on
#: the sample head (docs/validation/surgery.md, "Region of interest"): a 5 mm Le Fort I advance
#: moves the nasal tip 0.00 / 0.28 / 0.27 of the bone's movement at 25 / 40 / 60 mm (h = 4 mm)
ROI_MM = 40.0

Stage = Callable[[str], None]


def _quiet(_text: str) -> None:
    """The default stage announcer: says nothing."""


@dataclass
class PatientSurfaces:
    """Bones by plan name (``cranium``, ``mandible``), the skin, and notes on where they came from."""

    bones: dict[str, SurfaceMesh]
    skin: SurfaceMesh
    notes: list[str] = field(default_factory=list)


def surfaces_from_ct(ct: Volume, *, landmarks=None, stage: Stage = _quiet) -> PatientSurfaces:
    """Bone and skin surfaces of a head CT (:func:`medface.anatomy.ct_segmentation.segment_ct`);
    the plan's ``landmarks`` seed the mandible split where the jaws touch in the CT."""
    from medface.anatomy.ct_segmentation import segment_ct

    stage("segmenting the CT into bone and skin")
    seg = segment_ct(ct, landmarks=landmarks)
    notes = list(seg.warnings)
    if "mandible" not in seg.meshes:
        notes.append("the mandible could not be split from the skull: plans that cut or move it cannot run")
    bones = {BONE_NAMES[k]: m for k, m in seg.meshes.items() if k in BONE_NAMES}
    return PatientSurfaces(bones, seg.meshes["skin"], notes)


def patient_surfaces(ct: Volume | None = None, bone: SurfaceMesh | None = None, mandible: SurfaceMesh | None = None,
                     skin: SurfaceMesh | None = None, *, landmarks=None, stage: Stage = _quiet) -> PatientSurfaces:
    """The surfaces to simulate on: segmented from a CT (``landmarks``, a plan's, seed its
    mandible split), or given as meshes (bone = cranium)."""
    if ct is not None:
        if any(m is not None for m in (bone, mandible, skin)):
            raise InputError("give either a CT or bone and skin meshes, not both")
        return surfaces_from_ct(ct, landmarks=landmarks, stage=stage)
    if bone is None or skin is None:
        raise InputError("simulate needs a CT, or at least a bone and a skin mesh",
                         hint="medface surgery simulate --ct CT --plan plan.json, or --bone B [--mandible M] --skin S")
    bones = {"cranium": bone}
    if mandible is not None:
        bones["mandible"] = mandible
    return PatientSurfaces(bones, skin)


#: the tissue model's name of the piece of a bone that stays: ``f"{bone}{FIXED_SUFFIX}"``
FIXED_SUFFIX = " (fixed)"


def tissue_segments(bones: dict[str, SurfaceMesh], planned: PlanResult) -> tuple[dict[str, SurfaceMesh], list[str]]:
    """Every bone piece before the moves (moving segments in their original place, bones no
    segment takes and remainders as fixed pieces) and the names of the fixed ones."""
    pieces, fixed = planned.segments_before(), []
    for bone, mesh in bones.items():
        if bone in planned.rest:
            piece = planned.rest[bone]
        elif bone in planned.kerf_volume or bone in planned.moved_whole:  # every piece of it moves
            continue
        else:
            piece = mesh  # not cut at all
        pieces[bone + FIXED_SUFFIX] = piece
        fixed.append(bone + FIXED_SUFFIX)
    return pieces, fixed


def saw_gaps(planned: PlanResult, pieces: dict[str, SurfaceMesh]) -> list[tuple[str, str]]:
    """Pairs of the :func:`tissue_segments` pieces cut from one bone (the saw's kerf lies between
    them): the gaps the tissue mesh resolves (``SoftTissueModel(resolve_gaps=...)``). Teeth in
    occlusion and joints are left out: the model's mouth is solid tissue without sliding, which
    a finer mesh there does not make right."""
    def bone_of(name: str) -> str:
        return planned.segment_bone.get(name, name.removesuffix(FIXED_SUFFIX))

    names = list(pieces)
    return [(a, b) for i, a in enumerate(names) for b in names[i + 1:] if bone_of(a) == bone_of(b)]


@dataclass
class SimulationResult:
    """What a simulation found (LPS mm).

    ``planned``: the applied plan (moved ``segments``, uncut ``rest``, transforms, moved
    landmarks); ``pieces``: every bone piece before the moves, ``fixed`` naming those that stay;
    ``skin``: the skin before; ``skin_preview`` / ``skin_fem``: predicted skin vertices (N, 3) by
    each tissue model (``skin_fem`` None with the preview only); ``skin_after``: the predicted
    skin as a mesh with ``displacement_mm`` per vertex, ``displacement`` the same distances (mm);
    ``measures``: cephalometric rows before and after; ``skin_change``: the skin's change per
    face region; ``preview_vs_fem``: how far the two predictions lie apart per region (None
    without the FEM); ``fem_info``: mesh counts, material and set-up timings of the FEM.
    """

    tissue: str
    planned: PlanResult
    pieces: dict[str, SurfaceMesh]
    fixed: list[str]
    skin: SurfaceMesh
    skin_preview: np.ndarray
    skin_after: SurfaceMesh
    displacement: np.ndarray
    measures: list[dict]
    skin_change: dict[str, dict]
    skin_fem: np.ndarray | None = None
    preview_vs_fem: dict[str, dict] | None = None
    fem_info: dict | None = None
    fem_warnings: list[str] = field(default_factory=list)

    @property
    def segments(self) -> dict[str, SurfaceMesh]:
        """The moved bone segments."""
        return self.planned.segments

    @property
    def max_skin_change_mm(self) -> float:
        return float(self.displacement.max())

    @property
    def mean_skin_change_mm(self) -> float:
        return float(self.displacement.mean())


class Simulation:
    """A plan's simulation: ``Simulation(plan, tissue="fem", h=3.0).run(bones, skin)``.

    ``tissue`` is ``"fem"`` (finite elements, seconds to set up, plus the preview for
    comparison) or ``"preview"`` (the rigid-blend preview alone, milliseconds); ``h`` the FEM grid
    spacing (mm), ``nu`` its Poisson ratio, ``roi`` its region of interest (mm, None: all tissue),
    ``grade_mm`` the distance from the moving bone beyond which its mesh is coarse (None or 0: uniform);
    ``gaps`` meshes the saw's gaps between pieces of one bone finer than ``h``
    (:func:`saw_gaps`, :mod:`.gap_refinement`; without it a 1 mm kerf is invisible to a 3 mm mesh);
    ``sex`` (``"M"``, ``"F"``, None / ``"unknown"``) picks the cephalometric norms the measures are
    compared with (:mod:`medface.anatomy.cephalometric_norms`; never guessed).
    """

    def __init__(self, plan, *, tissue: str = "fem", h: float = 3.0, nu: float = 0.45, roi: float | None = ROI_MM,
                 sex: str | None = None, grade_mm: float | None = DEFAULT_GRADE_MM, gaps: bool = True):
        if tissue not in TISSUE_MODELS:
            raise InputError(f"unknown tissue model {tissue!r}; use one of {', '.join(TISSUE_MODELS)}")
        if grade_mm is not None and not (np.isfinite(grade_mm) and grade_mm >= 0):
            raise ParameterError(f"grade must be a distance of 0 mm or more, got {grade_mm}", parameter="grade",
                                 hint="0 meshes all the tissue at h")
        self.plan: Plan = check_plan(plan)
        self.tissue, self.h, self.nu, self.roi = tissue, h, nu, roi
        self.grade_mm = grade_mm or None  # 0: a uniform mesh
        self.gaps = bool(gaps)
        from medface.anatomy.cephalometric_norms import norm_sex

        self.sex = norm_sex(sex)  # "M", "F" or None (pooled norms only); refused early when unknown

    def run(self, bones: dict[str, SurfaceMesh], skin: SurfaceMesh, *, stage: Stage = _quiet) -> SimulationResult:
        """Cut and move the bones, predict the skin, measure; ``stage`` hears each step's name."""
        from .fem import SoftTissueModel
        from .preview import RigidBlendPreview

        stage("cutting the bones and moving the segments")
        planned = apply_plan(self.plan, bones)
        pieces, fixed = tissue_segments(bones, planned)
        stage("predicting the skin with the preview")
        skin_preview = RigidBlendPreview(pieces, skin, fixed=fixed).update(planned)
        skin_fem, fem_info = None, None
        if self.tissue == "fem":
            stage(f"meshing and solving the soft tissue (finite elements, h = {self.h:g} mm)")
            model = SoftTissueModel(h=self.h, nu=self.nu, roi=self.roi, grade_mm=self.grade_mm,
                                    resolve_gaps=saw_gaps(planned, pieces) if self.gaps else False).setup(pieces, skin,
                                                                                                          fixed)
            skin_fem, fem_info = model.update(planned), model.info()
        stage("measuring before and after")
        result = self._measured(planned, pieces, fixed, skin, skin_preview, skin_fem, fem_info)
        if self.tissue == "fem":
            result.fem_warnings = model.warnings()
        return result

    def _measured(self, planned: PlanResult, pieces: dict, fixed: list[str], skin: SurfaceMesh,
                  skin_preview: np.ndarray, skin_fem: np.ndarray | None, fem_info: dict | None) -> SimulationResult:
        from medface.anatomy.cephalometry import before_after_table, soft_tissue_change

        from .tissue_validation import compare

        predicted = skin_preview if skin_fem is None else skin_fem
        displacement = np.linalg.norm(predicted - skin.vertices, axis=1)
        skin_after = SurfaceMesh(predicted, skin.faces, name="skin (predicted)",
                                 point_data={"displacement_mm": displacement.astype(np.float32)})
        landmarks = {k: np.asarray(v, float) for k, v in self.plan.content.get("landmarks", {}).items()}
        measures = (before_after_table(landmarks, planned.landmarks or landmarks, sex=self.sex, norms=True)
                    if landmarks else [])
        regions = self._regions(skin, landmarks)
        return SimulationResult(
            tissue=self.tissue, planned=planned, pieces=pieces, fixed=fixed, skin=skin, skin_preview=skin_preview,
            skin_after=skin_after, displacement=displacement, measures=measures,
            skin_change=soft_tissue_change(skin.vertices, predicted, regions), skin_fem=skin_fem, fem_info=fem_info,
            preview_vs_fem=None if skin_fem is None else compare(skin_preview, skin_fem, skin, regions))

    @staticmethod
    def _regions(skin: SurfaceMesh, landmarks: dict) -> dict | None:
        """The face and its thirds; None (the whole skin) without soft-tissue landmarks."""
        from .tissue_validation import face_regions

        try:
            return face_regions(skin, landmarks)
        except InputError:
            return None


def simulate_surfaces(plan, bones: dict[str, SurfaceMesh], skin: SurfaceMesh, *, tissue: str = "fem",
                      h: float = 3.0, nu: float = 0.45, roi: float | None = ROI_MM,
                      stage: Stage = _quiet, sex: str | None = None) -> SimulationResult:
    """The plan on these surfaces: ``Simulation(plan, ...).run(bones, skin)``."""
    return Simulation(plan, tissue=tissue, h=h, nu=nu, roi=roi, sex=sex).run(bones, skin, stage=stage)
