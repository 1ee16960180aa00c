"""Bone collisions: where moved segments run into each other or into the bone that stays.

After a setback the distal segment of a sagittal split is pushed into the proximal segments; a
maxilla impacted too far runs into the cranium. :func:`new_overlaps` measures, for every pair of
bone pieces of which at least one moves, the volume the two share after the moves (manifold3d
intersection, exact predicates) less what they shared before (bones that touch in the data, such
as condyles in their fossae, are not a collision the plan made).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medface.data import SurfaceMesh

WARN_OVERLAP_MM3 = 1.0
"""Overlaps at or above this volume are warned about. 1 mm^3 is an assumption: far above the
booleans' numerical noise (below 1e-6 mm^3 on meshes that only touch), far below a collision a
surgeon would accept (a 5 mm setback of a sagittal split shares hundreds of mm^3)."""


@dataclass(frozen=True)
class Overlap:
    """Bone shared by pieces ``a`` and ``b`` after the moves (``volume_mm3``, the part the plan
    created) and before them (``before_mm3``)."""

    a: str
    b: str
    volume_mm3: float
    before_mm3: float

    def to_dict(self) -> dict:
        return {"a": self.a, "b": self.b, "overlap_mm3": round(self.volume_mm3, 1),
                "overlap_before_mm3": round(self.before_mm3, 1)}

    def warning(self) -> str:
        return (f"bone collision: '{self.a}' and '{self.b}' overlap by {self.volume_mm3:.0f} mm^3 after the moves; "
                "check the moves (a setback pushes the distal segment into the proximal ones: plan the bone to "
                "be removed, or a smaller move)")


def _boxes_meet(a: SurfaceMesh, b: SurfaceMesh) -> bool:
    (a0, a1), (b0, b1) = a.bounds(), b.bounds()
    return bool(np.all(a0 <= b1) and np.all(b0 <= a1))


class _Solids:
    """Named closed meshes, each turned into a manifold3d solid once, when a pair first needs it."""

    def __init__(self, meshes: dict[str, SurfaceMesh]):
        self.meshes, self._solids = meshes, {}

    def _solid(self, name: str):
        if name not in self._solids:
            from .cutting import to_manifold

            self._solids[name] = to_manifold(self.meshes[name])
        return self._solids[name]

    def shared_volume(self, a: str, b: str) -> float:
        if not _boxes_meet(self.meshes[a], self.meshes[b]):
            return 0.0
        return float((self._solid(a) ^ self._solid(b)).volume())


def new_overlaps(before: dict[str, SurfaceMesh], after: dict[str, SurfaceMesh], moved: set[str]) -> list[Overlap]:
    """Overlaps of at least :data:`WARN_OVERLAP_MM3` that the moves created, largest first.
    ``before`` and ``after`` map the same piece names to closed meshes; only pairs with a piece
    in ``moved`` are measured (the rest did not change)."""
    names = sorted(after)
    solids_before, solids_after = _Solids(before), _Solids(after)
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a not in moved and b not in moved:
                continue
            shared = solids_after.shared_volume(a, b)
            if shared < WARN_OVERLAP_MM3:
                continue
            earlier = solids_before.shared_volume(a, b)
            if shared - earlier >= WARN_OVERLAP_MM3:
                out.append(Overlap(a, b, shared - earlier, earlier))
    return sorted(out, key=lambda o: -o.volume_mm3)
