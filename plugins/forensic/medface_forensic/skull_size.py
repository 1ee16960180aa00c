"""Is a mesh the size of a human skull in millimetres? If not, which unit factor fixes it?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# The largest extent of a human skull (usually glabella-opisthocranion, about 165-200 mm in
# adults; Martin & Saller 1957) lies well inside 100..300 mm even for children and with a
# mandible; anything outside is a unit or export error.
PLAUSIBLE_MM = (100.0, 300.0)
TYPICAL_MM = 190.0
UNIT_FACTORS = {"m": 1000.0, "dm": 100.0, "inch": 25.4, "cm": 10.0, "mm": 1.0, "um": 0.001}


@dataclass
class SizeVerdict:
    largest_extent: float
    plausible: bool
    suggested_scale: float | None
    suggested_unit: str | None


def judge_size(extent: np.ndarray) -> SizeVerdict:
    largest = float(np.max(extent))
    lo, hi = PLAUSIBLE_MM
    if lo <= largest <= hi:
        return SizeVerdict(largest, True, None, None)
    best = min(UNIT_FACTORS.items(), key=lambda kv: abs(np.log(largest * kv[1] / TYPICAL_MM)))
    if lo <= largest * best[1] <= hi:
        return SizeVerdict(largest, False, best[1], best[0])
    return SizeVerdict(largest, False, round(TYPICAL_MM / largest, 6) if largest > 0 else None, None)


def count_holes(boundary: np.ndarray) -> int:
    """Number of boundary loops (holes and open rims), from a mesh's boundary edges
    (:meth:`medface.data.SurfaceMesh.boundary_edges`)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if len(boundary) == 0:
        return 0
    nodes, inverse = np.unique(boundary.ravel(), return_inverse=True)
    inverse = inverse.reshape(-1, 2)
    n = len(nodes)
    graph = coo_matrix((np.ones(len(inverse)), (inverse[:, 0], inverse[:, 1])), shape=(n, n))
    return int(connected_components(graph, directed=False)[0])
