"""The patch test of the tissue meshes: an affine displacement prescribed on the bone and skin
nodes, the rest solved; a mesh that ties its levels right reproduces it."""

from __future__ import annotations

import numpy as np

from medface_surgery.fem import assemble_stiffness, factorize
from medface_surgery.tissue_mesh import FREE, HANGING
from medface_surgery.tissue_validation import solve_with_dirichlet

GRADIENT = np.array([[0.01, -0.02, 0.03], [0.04, 0.005, -0.01], [-0.02, 0.01, 0.02]])
SHIFT = np.array([0.5, -1.0, 0.25])


def affine_field_error(mesh, on_skin: np.ndarray, *, tied: bool = True, shift=SHIFT) -> np.ndarray:
    """Per node, the largest error (mm) of the solved field against the affine one, with the
    free nodes off the skin (``on_skin``) solved and, unless ``tied``, the hanging nodes solved
    as free nodes too (their ties dropped)."""
    exact = mesh.nodes @ GRADIENT.T + np.asarray(shift, float)
    hanging = mesh.labels == HANGING
    solved = (mesh.labels == FREE) | hanging if not tied else mesh.labels == FREE
    free = solved & ~np.asarray(on_skin, bool)
    u0 = exact.ravel().copy()
    u0[np.repeat(free | hanging if tied else free, 3)] = 0.0  # unknowns start wrong
    k = assemble_stiffness(mesh.nodes, mesh.tets, 3000.0, 0.45, cells=mesh.cells)
    if tied:
        u = solve_with_dirichlet(k, u0, free, hanging, mesh.constraint_matrix(), factorize)
    else:
        u = solve_with_dirichlet(k, u0, free, np.zeros(len(free), bool), None, factorize)
    return np.abs(u.reshape(-1, 3) - exact).max(axis=1)
