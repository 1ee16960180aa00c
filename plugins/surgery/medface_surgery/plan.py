"""Surgical plans: :class:`SurgeryPlan`, the typed plan object, over the plan modules.

The work is split by job (each concept in one module):

* :mod:`.plan_schema`: kind, version, JSON Schema, limits, :class:`PlanError`, :func:`new_plan`;
* :mod:`.plan_validation`: :func:`validate_plan` (every problem), :func:`check_plan`, load and save;
* :mod:`.transforms`: rotations and move matrices (:func:`move_matrix` gives the axis convention);
* :mod:`.slicer_planes`: osteotomies as cutting planes and as 3D Slicer markups planes;
* :mod:`.apply`: :func:`apply_plan`, cutting and moving bone meshes into a :class:`PlanResult`;
* :mod:`.mirror`: the healthy side mirrored across the mid-sagittal plane.

The names below are re-exported so ``from medface_surgery.plan import X`` keeps working. The
format is described with an example in ``docs/surgery-plans.md``.
"""

from __future__ import annotations

from medface.anatomy.cephalometry import SymmetryPlane, midsagittal_plane, reflection_matrix
from medface.data import Plan, SurfaceMesh

from .apply import PlanResult, apply_plan, merge_meshes
from .mirror import mirror_healthy_side, mirror_plane, symmetry_plane_from_surface
from .plan_schema import (
    KIND,
    MAX_ROTATION_DEG,
    MAX_TRANSLATION_MM,
    SCHEMA,
    VERSION,
    PlanError,
    as_plan,
    new_plan,
    plan_document,
)
from .plan_validation import check_plan, load_plan, save_plan, validate_plan
from .slicer_planes import cut_plane, plane_from_slicer, plane_to_slicer
from .transforms import move_matrix, rotation_matrix, segment_moves, segment_transforms, transform_points

__all__ = [
    "KIND", "VERSION", "SCHEMA", "MAX_TRANSLATION_MM", "MAX_ROTATION_DEG", "PlanError", "SurgeryPlan", "PlanResult",
    "new_plan", "validate_plan", "check_plan", "load_plan", "save_plan", "rotation_matrix", "move_matrix",
    "transform_points", "segment_transforms", "segment_moves", "cut_plane", "plane_to_slicer", "plane_from_slicer",
    "apply_plan", "merge_meshes", "symmetry_plane_from_surface", "mirror_healthy_side", "mirror_plane",
    "midsagittal_plane", "reflection_matrix", "SymmetryPlane", "plan_document", "as_plan",
]


class SurgeryPlan:
    """A surgical plan as an object: its document, checks, moves, Slicer planes and application.

    ``SurgeryPlan(plan)`` wraps a :class:`medface.data.Plan` or its JSON dict (not checked until
    :meth:`validate`, :meth:`check` or :meth:`apply`). Build one from landmarks with
    :meth:`from_preset`; read and write files with :meth:`load` and :meth:`save`. Nothing here
    needs a file system except those two.
    """

    def __init__(self, plan):
        self.document: Plan = as_plan(plan)

    # construction ----------------------------------------------------------------------------
    @classmethod
    def from_preset(cls, procedure: str, landmarks, **kwargs) -> "SurgeryPlan":
        """A checked plan of a preset (``le_fort_i``, ``bsso``, ``genioplasty``, ``bimaxillary`` or
        an alias such as ``lefort1``) placed from landmarks; ``kwargs`` as
        :func:`.presets.make_plan` (``advance``, ``impaction``, ``chin_advance``, ``kerf_mm`` ...)."""
        from .presets import make_plan, procedure_id

        return cls(make_plan(procedure_id(procedure), landmarks, **kwargs))

    @classmethod
    def load(cls, path) -> "SurgeryPlan":
        """Read and check a plan file (JSON)."""
        return cls(load_plan(path))

    def save(self, path):
        """Check and write the plan as JSON (UTF-8); returns the path."""
        return save_plan(self.document, path)

    # the document ----------------------------------------------------------------------------
    @property
    def content(self) -> dict:
        return self.document.content

    @property
    def procedure(self) -> str:
        return str(self.content.get("procedure", ""))

    @property
    def osteotomies(self) -> list[dict]:
        return list(self.content.get("osteotomies", []))

    @property
    def segments(self) -> list[dict]:
        return list(self.content.get("segments", []))

    @property
    def moves(self) -> list[dict]:
        return list(self.content.get("moves", []))

    @property
    def landmarks(self) -> dict:
        """The plan's landmarks, ``{id: array (3,)}`` in LPS mm."""
        import numpy as np

        return {k: np.asarray(v, float) for k, v in self.content.get("landmarks", {}).items()}

    def to_json_dict(self) -> dict:
        return self.document.to_json_dict()

    # checks, moves, application --------------------------------------------------------------
    def validate(self) -> list[str]:
        """Every problem of the plan as readable strings; [] when it is valid."""
        return validate_plan(self.document)

    def check(self) -> "SurgeryPlan":
        """The plan itself, or :class:`PlanError` listing every problem."""
        check_plan(self.document)
        return self

    def transforms(self) -> dict:
        """The composed 4x4 move of every segment (LPS mm), moves applied in order."""
        return segment_transforms(self.document)

    def apply(self, bones: dict[str, SurfaceMesh], landmarks=None) -> PlanResult:
        """Cut ``bones`` (plan bone name -> closed mesh), move the segments, move the landmarks
        (default: the plan's) and mirror: see :func:`apply_plan`. Pure."""
        return apply_plan(self.document, bones, landmarks)

    # 3D Slicer planes ------------------------------------------------------------------------
    def slicer_planes(self) -> dict[str, dict]:
        """Osteotomy name -> 3D Slicer markups document holding its plane (LPS)."""
        return {o["name"]: plane_to_slicer(o) for o in self.osteotomies}

    def with_slicer_plane(self, markups: dict, *, bone: str | None = None, name: str | None = None) -> "SurgeryPlan":
        """A new, checked plan with the markups document's plane as its osteotomy of that name:
        an osteotomy of the same name is replaced (keeping its bone unless ``bone`` is given, and
        its description), otherwise the plane is added."""
        import copy

        plane = plane_from_slicer(markups, bone=bone, name=name)
        doc = copy.deepcopy(self.to_json_dict())
        osteotomies = doc.get("osteotomies", [])
        old = next((o for o in osteotomies if o["name"] == plane["name"]), None)
        if old is None:
            doc["osteotomies"] = [*osteotomies, plane]
        else:
            plane["bone"] = bone or old["bone"]
            if "description" in old:
                plane["description"] = old["description"]
            doc["osteotomies"] = [plane if o is old else o for o in osteotomies]
        return SurgeryPlan(doc).check()

    def __repr__(self) -> str:
        return (f"SurgeryPlan({self.procedure or self.content.get('name', '')!r}, "
                f"{len(self.osteotomies)} osteotomies, {len(self.segments)} segments, {len(self.moves)} moves)")
