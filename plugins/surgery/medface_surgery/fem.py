"""Soft-tissue prediction by linear elasticity: P1 tetrahedra, bone segments as Dirichlet data.

Model. The soft tissue is a homogeneous isotropic linear-elastic solid (Young's modulus ``E``,
Poisson ratio ``nu``) meshed by :mod:`.tissue_mesh` (tetrahedra fitted to the skin and bone
surfaces, :mod:`.fitted_mesh`). Nodes attached to a bone segment take its
rigid motion, ``u(x) = (R - I) x + t``; anchored and fixed-segment nodes do not move; the rest
of the boundary (the skin) is traction-free; no gravity, no contact. The stiffness matrix of
linear (P1) tetrahedra is assembled element by element in one vectorised pass (Zienkiewicz &
Taylor, *The Finite Element Method*, vol. 1, ch. 6): with shape-function gradients ``g_a`` and
volume ``V``, the 3x3 block coupling nodes a and b is
``V (lambda g_a g_b^T + mu g_b g_a^T + mu (g_a . g_b) I)``. The free-free block is factorised
once (``solver="direct"``: Intel MKL's PARDISO, :class:`PardisoLU`, where it
is installed, else SuperLU on a METIS nested-dissection ordering; ``"direct-superlu"``: always
SuperLU, :func:`factorize`; ``"direct-mmd"``: SuperLU's minimum-degree ordering, the previous
default; ``"amg"``: pyamg's AMG-preconditioned CG, :class:`AMGSolver`, for meshes too large to
factorise) and the system ``K_ff u_f = -K_fd u_d`` re-solved
for new bone displacements. This is the "mass-tensor"/linear FEM tier of surgical soft-tissue
prediction (Cotin, Delingette & Ayache 1999; Mollemans et al., Med. Image Anal. 2007), which
Mollemans et al. found about as accurate as their non-linear alternatives for orthognathic
surgery (mean errors near 1 mm on post-operative CT).

Fast plan updates. ``u_d`` depends linearly on the 12 numbers ``(A, t)``, ``A = R - I``, of
each moving segment, so the skin displacement is ``S c`` with ``c`` the stacked 12-vectors of
the moving segments and ``S`` (3N x 12 s) the skin's response to the 12 affine basis fields of
each segment, solved once at set-up. A plan update is then one small dense product.

Rigid invariance. Linear elasticity is invariant under infinitesimal rotations only: the field
``u = (R - I) x + t`` of a finite rotation has the linear strain ``sym(R) - I``, of order
``angle^2 / 2`` (1 % at 8 degrees), which a traction-free skin cannot carry, so moving *all*
bone by one rigid move would deform the skin slightly (0.2 mm on a 25 mm sphere at 8 degrees).
The model therefore works relative to a reference segment: moves are taken as
``M_ref^-1 M_s``, the linear model predicts the skin for these relative moves, and the result is
carried by ``M_ref``. The reference is the first fixed segment (then ``M_ref = I`` and nothing
changes) or, without fixed segments, the moving segment with the most bone nodes. A common
rigid move of all bone then moves the skin by exactly that move; anchored tissue (see ``roi``)
moves with the reference. Moves are limited to 50 mm and 60 degrees, far beyond orthognathic
practice (typically under 15 mm and 15 degrees).

Poisson ratio and locking. Soft tissue is nearly incompressible (nu about 0.45-0.49). Plain
linear tetrahedra lock as nu -> 0.5: with one volumetric constraint per element, the
incompressibility constraints outnumber the degrees of freedom (Nagtegaal, Parks & Rice,
Comput. Methods Appl. Mech. Eng. 4, 1974). The default element (``element="bbar"``) keeps the
deviatoric energy ``mu e_dev : e_dev`` of each P1 tetrahedron and replaces its dilatation by the
mean dilatation of its grid cube (``TissueMesh.cells``): ``K = K_P1(lambda = -2 mu / 3, mu) +
sum_c kappa / V_c b_c b_c^T`` with ``b_c = sum_{e in c} V_e grad N`` and ``kappa = lambda + 2 mu /
3`` (the mean-dilatation / B-bar method, Nagtegaal et al. 1974; Hughes, Int. J. Numer. Methods
Eng. 15, 1980). One constraint per cube against three unknowns per node does not lock: on the
thick-walled sphere the error stays under 4 % at h = 3 mm up to nu = 0.49, where P1 has 35 %
(docs/validation/surgery.md). nu up to 0.499 is accepted with B-bar, up to 0.49 with
``element="p1"``; 0.5 needs a pressure unknown and is refused. ``E`` only scales the stiffness:
with displacement-only boundary data the displacements do not depend on ``E`` at all.
"""

from __future__ import annotations

import time

import numpy as np

from medface.data import SurfaceMesh
from medface.errors import InputError, ModelError, ParameterError

from .tissue_mesh import FREE, HANGING, TissueMesh, build_tissue_mesh

MAX_TRANSLATION_MM = 50.0
DEFAULT_H = 3.0  # mm; the thick-sphere check and the landmark convergence study in docs/validation/surgery.md
#: mm from the moving bone beyond which the default mesh has 2 h cubes (docs/validation/surgery.md,
#: "Graded mesh": within 2.1 % of the uniform mesh at every landmark, 25-32 % fewer unknowns)
DEFAULT_GRADE_MM = 15.0
MAX_ROTATION_DEG = 60.0
MAX_NU = 0.499  # B-bar (mean-dilatation) element
MAX_NU_P1 = 0.49  # plain P1 tetrahedra lock beyond this
ELEMENTS = ("bbar", "p1")
SOLVERS = ("direct", "direct-superlu", "direct-mmd", "amg")


# assembly -----------------------------------------------------------------------------------
def gap_spacing(stats: dict, h: float) -> float | None:
    """The spacing (mm) of a mesh's cubes refined in the gaps between bones, None without any."""
    finer = [s for s in stats.get("level_spacings_mm", []) if s < h]
    return min(finer) if finer else None


def lame(E: float, nu: float) -> tuple[float, float]:
    """Lamé parameters (lambda, mu) from Young's modulus and Poisson ratio."""
    return E * nu / ((1 + nu) * (1 - 2 * nu)), E / (2 * (1 + nu))


def shape_gradients(nodes: np.ndarray, tets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gradients (m, 4, 3) of the four P1 shape functions and volumes (m,) of the tetrahedra."""
    x = nodes[tets]
    d = x[:, 1:] - x[:, :1]  # rows are edges 0->1, 0->2, 0->3
    det = np.linalg.det(d)
    if np.any(np.abs(det) < 1e-12 * np.abs(d).max() ** 3):
        raise InputError("the tetrahedral mesh has degenerate (flat) elements")
    inv = np.linalg.inv(d)  # columns of inv(d) are the gradients of the local coordinates
    g123 = np.transpose(inv, (0, 2, 1))
    g = np.concatenate([-g123.sum(axis=1, keepdims=True), g123], axis=1)
    return g, np.abs(det) / 6.0


def assemble_stiffness(nodes: np.ndarray, tets: np.ndarray, E: float, nu: float, *, cells: np.ndarray | None = None,
                       chunk: int = 100_000, tie=None):
    """Global stiffness (3n x 3n CSR, dof ``3*node + axis``) of linear elasticity on P1 tets.

    With ``cells`` (one group number per tetrahedron) the volumetric part uses the mean
    dilatation of each group (B-bar; see the module notes): the deviatoric energy
    ``mu e_dev : e_dev`` per tetrahedron plus ``kappa/2 V_c theta_c^2`` per group; without it,
    the plain P1 element. The 3x3 blocks are summed per node pair (16 a tetrahedron, not 144
    scalar entries), then laid out as one block-sparse matrix. With ``tie`` (3n x 3n, ``u = P
    u``: a graded mesh's hanging nodes) the result is ``P^T K P``, applied to each part before
    the mean-dilatation product (which is the larger matrix)."""
    lam, mu = lame(E, nu)
    kappa = lam + 2.0 * mu / 3.0
    lam_elem = lam if cells is None else -2.0 * mu / 3.0  # deviatoric part only, with B-bar
    n = len(nodes)
    pair, rows, cols = _node_pairs(tets, n)
    blocks = np.zeros((len(rows), 3, 3))
    factors = []
    for start in range(0, len(tets), chunk):
        t = tets[start:start + chunk]
        g, vol = shape_gradients(nodes, t)
        gv = g * vol[:, None, None]
        _add_pair_blocks(blocks, pair[start:start + chunk].ravel(), g, gv, lam_elem, mu)
        if cells is not None:
            factors.append((t, cells[start:start + chunk], gv, vol))
    from scipy.sparse import bsr_matrix

    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n))])
    total = bsr_matrix((blocks, cols, indptr), shape=(3 * n, 3 * n)).tocsr()
    total.eliminate_zeros()  # exact zeros of axis-aligned pieces inside the 3x3 blocks
    tie_t = None if tie is None else tie.T.tocsr()
    if tie is not None:
        total = tie_t @ total @ tie
    if cells is not None:
        bt, dbv = _dilatation_factors(factors, cells, kappa, n)
        if tie is not None:
            bt, dbv = tie_t @ bt, dbv @ tie
        total = total + bt @ dbv
    total = total.tocsr()
    total.sort_indices()
    return total


def _add_pair_blocks(blocks: np.ndarray, where: np.ndarray, g: np.ndarray, gv: np.ndarray, lam: float,
                     mu: float) -> None:
    """Add the 3x3 blocks ``V (lam g_a g_b^T + mu g_b g_a^T + mu (g_a . g_b) I)`` of tetrahedra
    (shape gradients ``g``, ``gv = V g``) to ``blocks`` at their node pairs ``where`` (m * 16)."""
    mu_gg = mu * np.einsum("eai,ebi->eab", gv, g)
    for i in range(3):
        for j in range(3):
            k = lam * gv[:, :, None, i] * g[:, None, :, j] + mu * gv[:, :, None, j] * g[:, None, :, i]
            if i == j:
                k += mu_gg
            blocks[:, i, j] += np.bincount(where, weights=k.ravel(), minlength=len(blocks))


def _dilatation_factors(parts: list, cells: np.ndarray, kappa: float, n: int):
    """``(B^T, D B)``, both CSR, of the mean-dilatation term ``sum_c kappa / V_c b_c b_c^T`` with
    ``b_c = sum_{e in c} V_e grad N``, from the chunks' (tets, cells, V grad N, V)."""
    from scipy.sparse import csr_matrix

    n_cells = int(cells.max()) + 1
    c_rows = np.concatenate([np.repeat(c, 12) for _, c, _, _ in parts])
    c_cols = np.concatenate([(3 * t[:, :, None] + np.arange(3)).reshape(-1).astype(np.int64) for t, _, _, _ in parts])
    vals = np.concatenate([gv.reshape(-1) for _, _, gv, _ in parts])
    vc = np.bincount(cells, weights=np.concatenate([v for _, _, _, v in parts]), minlength=n_cells)
    bt = csr_matrix((vals, (c_cols, c_rows)), shape=(3 * n, n_cells))
    dbv = csr_matrix((vals * (kappa / vc)[c_rows], (c_rows, c_cols)), shape=(n_cells, 3 * n))
    return bt, dbv


def _node_pairs(tets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The node pairs that tetrahedra couple: for every tetrahedron the index (m, 16) of its
    pairs (a, b), a-major, among the sorted unique pairs, whose rows and columns follow. The
    unique pairs are the pattern of a sparse matrix (scipy sorts each row on its own: about half
    the time of one global sort of all the pairs), and each pair is found in it by bisection."""
    from scipy.sparse import csr_matrix

    a = np.repeat(tets, 4, axis=1).ravel().astype(np.int64)
    b = np.tile(tets, (1, 4)).ravel().astype(np.int64)
    pattern = csr_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    pattern.sum_duplicates()  # canonical: every row's columns sorted and unique
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(pattern.indptr))
    cols = pattern.indices.astype(np.int64)
    index = np.searchsorted(rows * n + cols, a * n + b)
    return index.reshape(len(tets), 16), rows, cols


def nested_dissection(matrix) -> np.ndarray | None:
    """A fill-reducing dof permutation of a 3-dof-per-node stiffness matrix: METIS nested
    dissection (pymetis; George, SIAM J. Numer. Anal. 10, 1973; Karypis & Kumar, SIAM J. Sci.
    Comput. 20, 1998) of the node graph, each node's three dofs kept together. None when pymetis
    is missing (then SuperLU's own minimum-degree ordering is used)."""
    try:
        import pymetis
    except ImportError:
        return None
    graph = matrix.tocsr()[0::3][:, 0::3].tocsr()
    graph.setdiag(0)
    graph.eliminate_zeros()
    if graph.shape[0] < 2 or graph.nnz == 0:
        return None
    adjacency = pymetis.CSRAdjacency(graph.indptr.astype(np.int32), graph.indices.astype(np.int32))
    perm = np.asarray(pymetis.nested_dissection(adjacency)[0], np.int64)
    return (3 * perm[:, None] + np.arange(3)).ravel()


class OrderedLU:
    """SuperLU factors of ``P K P^T`` for a given dof permutation ``P`` (nested dissection), with
    ``solve(b)`` for the original ordering."""

    def __init__(self, matrix, perm: np.ndarray):
        from scipy.sparse.linalg import splu

        self.perm = perm
        self.inverse = np.empty_like(perm)
        self.inverse[perm] = np.arange(len(perm))
        permuted = matrix.tocsr()[perm][:, perm].tocsc()
        self.lu = splu(permuted, permc_spec="NATURAL", diag_pivot_thresh=0.0, options={"SymmetricMode": True})

    def solve(self, b: np.ndarray) -> np.ndarray:
        return self.lu.solve(np.ascontiguousarray(b[self.perm]))[self.inverse]


class PardisoLU:
    """Cholesky factors of a symmetric positive definite matrix by PARDISO (Intel MKL; Schenk &
    Gaertner, Future Gener. Comput. Syst. 20, 2004): supernodal, multithreaded, on a parallel
    nested-dissection ordering, called through MKL's documented C interface (``ctypes``).

    The factors are computed in single precision (iparm 28), about 35 % faster than double on
    the sample head, and every solve takes one step of iterative refinement in double
    precision (the residual from the double-precision matrix): the answers agree with a
    double-precision factorisation to about 1e-12 relative. ``solve(b)`` for one right-hand
    side, ``solve_block(B)`` for many."""

    _ERRORS = {-1: "input inconsistent", -2: "not enough memory", -3: "reordering problem",
               -4: "zero pivot: the matrix is not positive definite", -7: "diagonal matrix is singular"}

    def __init__(self, matrix):
        import ctypes

        self._c = ctypes
        self.lib = _mkl_runtime()
        if self.lib is None:
            raise ModelError("PARDISO needs Intel MKL's runtime library (pip install mkl)")
        self.matrix = matrix.tocsr()
        upper = _upper_csr(self.matrix)  # PARDISO reads the upper triangle of a symmetric matrix
        self.n = upper.shape[0]
        self.ia = (upper.indptr + 1).astype(np.int32)  # one-based
        self.ja = (upper.indices + 1).astype(np.int32)
        self.a = upper.data.astype(np.float32)
        self.pt = np.zeros(64, np.int64)  # PARDISO's internal handle
        self.iparm = np.zeros(64, np.int32)
        self.iparm[[0, 1, 7, 27]] = [1, 3, 0, 1]  # own settings, parallel METIS, no refinement, single
        self.perm = np.zeros(self.n, np.int32)
        self._call(12, np.zeros(1, np.float32), np.zeros(1, np.float32), 1)  # analysis and factorisation

    def _call(self, phase: int, b: np.ndarray, x: np.ndarray, nrhs: int) -> None:
        c = self._c
        i32 = c.c_int32
        err = i32(0)
        self.lib.pardiso(self.pt.ctypes.data_as(c.c_void_p), c.byref(i32(1)), c.byref(i32(1)), c.byref(i32(2)),
                         c.byref(i32(phase)), c.byref(i32(self.n)), self.a.ctypes.data_as(c.c_void_p),
                         self.ia.ctypes.data_as(c.c_void_p), self.ja.ctypes.data_as(c.c_void_p),
                         self.perm.ctypes.data_as(c.c_void_p), c.byref(i32(nrhs)),
                         self.iparm.ctypes.data_as(c.c_void_p), c.byref(i32(0)), b.ctypes.data_as(c.c_void_p),
                         x.ctypes.data_as(c.c_void_p), c.byref(err))
        if err.value != 0:
            raise ModelError(f"PARDISO failed (phase {phase}): {self._ERRORS.get(err.value, f'error {err.value}')}")

    def _solve32(self, b: np.ndarray) -> np.ndarray:
        rhs = np.asfortranarray(b, dtype=np.float32)  # columns: PARDISO reads column-major blocks
        x = np.zeros_like(rhs)
        self._call(33, rhs, x, rhs.shape[1])
        return np.asarray(x, np.float64)

    def solve(self, b: np.ndarray) -> np.ndarray:
        return self.solve_block(np.asarray(b, float).reshape(-1, 1))[:, 0]

    def solve_block(self, b: np.ndarray) -> np.ndarray:
        b = np.asarray(b, np.float64).reshape(self.n, -1)
        x = self._solve32(b)
        x += self._solve32(b - self.matrix @ x)  # one refinement step in double precision
        return np.ascontiguousarray(x)

    def __del__(self):
        if getattr(self, "lib", None) is not None and self.pt.any():
            try:
                self._call(-1, np.zeros(1, np.float32), np.zeros(1, np.float32), 1)  # release the factors
            except Exception:  # noqa: BLE001 - at interpreter exit ctypes may be gone
                pass


def _upper_csr(matrix):
    from scipy.sparse import triu

    upper = triu(matrix, format="csr")
    upper.sort_indices()
    return upper


_MKL = []


def _mkl_runtime():
    """MKL's runtime library (``mkl_rt``) from the ``mkl`` wheel, loaded once; None without it."""
    if _MKL:
        return _MKL[0]
    import ctypes
    from importlib import metadata

    lib = None
    try:
        files = metadata.files("mkl") or []
    except metadata.PackageNotFoundError:
        files = []
    for f in files:
        name = f.name.lower()
        if name.startswith(("libmkl_rt.so", "libmkl_rt.", "mkl_rt")) and not name.endswith((".py", ".pyc")):
            try:
                lib = ctypes.CDLL(str(f.locate().resolve()))
                break
            except OSError:
                continue
    _MKL.append(lib)
    return lib


def has_pardiso() -> bool:
    """Whether Intel MKL's PARDISO can be loaded on this machine."""
    return _mkl_runtime() is not None


def factorize(matrix, ordering: str = "nd"):
    """SuperLU factorisation of a symmetric positive definite sparse matrix, without pivoting
    (symmetric mode). ``ordering="nd"``: METIS nested dissection of the node graph
    (:func:`nested_dissection`); ``"mmd"`` (or no pymetis): minimum degree on A^T + A (the two
    took the same 57 s on the sample head's 153k-dof system: docs/performance.md)."""
    from scipy.sparse.linalg import splu

    perm = nested_dissection(matrix) if ordering == "nd" else None
    if perm is not None:
        return OrderedLU(matrix, perm)
    return splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0,
                options={"SymmetricMode": True})


class AMGSolver:
    """Conjugate gradients preconditioned by smoothed-aggregation algebraic multigrid (pyamg;
    Vanek, Mandel & Brezina, Computing 56, 1996), with the six rigid-body modes of the free
    nodes as near-null space: for meshes too large to factorise. ``solve(b)`` like SuperLU's."""

    def __init__(self, matrix, points: np.ndarray, *, rtol: float = 1e-10):
        import pyamg

        p = np.asarray(points, float) - np.mean(points, axis=0)
        n = len(p)
        modes = np.zeros((3 * n, 6))
        for i in range(3):
            modes[i::3, i] = 1.0
        modes[0::3, 3], modes[1::3, 3] = -p[:, 1], p[:, 0]
        modes[1::3, 4], modes[2::3, 4] = -p[:, 2], p[:, 1]
        modes[0::3, 5], modes[2::3, 5] = p[:, 2], -p[:, 0]
        self.matrix = matrix.tocsr()
        self.ml = pyamg.smoothed_aggregation_solver(self.matrix, B=modes, symmetry="symmetric",
                                                    strength=("symmetric", {"theta": 0.0}), max_coarse=500)
        self.rtol = rtol
        self.iterations: list[int] = []

    def solve(self, b: np.ndarray) -> np.ndarray:
        residuals: list[float] = []
        x = self.ml.solve(b, tol=self.rtol, accel="cg", maxiter=500, residuals=residuals)
        self.iterations.append(len(residuals))
        return x


# moves --------------------------------------------------------------------------------------
def check_move(name: str, matrix, at=None) -> np.ndarray:
    """The 4x4 rigid move of segment ``name`` as floats; ParameterError if it is not a proper
    rigid transform or is absurdly large (> 50 mm translation or > 60 degrees rotation). The
    translation is the displacement of ``at`` (the segment's centre, LPS mm; the origin when
    not given): a CT's origin may lie a metre from the head, where a 3 degree turn about the
    chin already moves the origin 80 mm."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise ParameterError(f"the move of '{name}' must be a finite 4x4 matrix, got shape {m.shape}",
                             parameter="moves")
    r, t = m[:3, :3], m[:3, 3]
    if not np.allclose(m[3], [0, 0, 0, 1], atol=1e-9) or not np.allclose(r.T @ r, np.eye(3), atol=1e-6) \
            or np.linalg.det(r) < 0:
        raise ParameterError(f"the move of '{name}' is not a rigid transform (rotation + translation)",
                             parameter="moves", hint="bone segments move rigidly; mirroring and scaling are not moves")
    angle = np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))
    centre = np.zeros(3) if at is None else np.asarray(at, float)
    shift = float(np.linalg.norm(r @ centre + t - centre))
    if shift > MAX_TRANSLATION_MM or angle > MAX_ROTATION_DEG:
        raise ParameterError(
            f"the move of '{name}' is implausible for surgery: its centre moves {shift:.1f} mm, rotation {angle:.1f} deg",
            parameter="moves", hint=f"limits are {MAX_TRANSLATION_MM:g} mm and {MAX_ROTATION_DEG:g} deg; check the "
                                    "units (mm) and that the matrix maps old to new positions in LPS")
    return m


def affine_coefficients(matrix: np.ndarray) -> np.ndarray:
    """The 12 numbers (A row-major, t) of the displacement ``u = A x + t``, A = R - I."""
    return np.concatenate([(matrix[:3, :3] - np.eye(3)).ravel(), matrix[:3, 3]])


def affine_basis(points: np.ndarray) -> np.ndarray:
    """(P, 3, 12): displacement of each point under each of the 12 affine basis fields."""
    p = len(points)
    out = np.zeros((p, 3, 12))
    for i in range(3):
        for j in range(3):
            out[:, i, 3 * i + j] = points[:, j]
        out[:, i, 9 + i] = 1.0
    return out


# the model ----------------------------------------------------------------------------------
class SoftTissueModel:
    """Linear-elastic soft-tissue model of one patient: mesh, factorisation, skin response.

    ``SoftTissueModel(h=3.0, E=3000.0, nu=0.45, roi=None).setup(bone_segments, skin, fixed=[...])``
    meshes and factorises once; ``update(plan_or_moves)`` then predicts the skin for a plan (a
    plan, an applied :class:`~.apply.PlanResult` or a dict segment name -> 4x4 move) in
    milliseconds. ``SoftTissueModel(bone_segments, skin, h=..., fixed=[...])`` does both steps
    of set-up at once. Segments in ``fixed`` never move (the cranium, say); every other segment
    may move. ``E`` in Pa (3 kPa is typical of facial soft tissue; it does not change predicted
    displacements). ``roi`` (mm) restricts the tissue to within that distance of the moving
    segments (see :mod:`.tissue_mesh`); ``None`` meshes all the tissue. ``grade_mm`` (mm, fitted
    mesher; default 15) meshes the tissue farther than that from the moving bone at ``2 h``
    (:mod:`.graded_mesh`; None: a uniform mesh). ``resolve_gaps`` (fitted mesher) meshes the
    gaps narrower than ``h`` between segments finer (:mod:`.gap_refinement`): pairs of segment
    names (``surgery simulate`` passes the saw's cuts, :func:`.simulation.saw_gaps`), True for
    every pair of which one moves, False (default) for none.

    ``predict(moves)`` returns the skin vertices (N, 3) after the moves, from the precomputed
    response (a small matrix product); ``solve_direct(moves)`` solves the FEM system for the
    moves (``refactorize=True`` also re-assembles and re-factorises: the from-scratch baseline).
    Segments missing from ``moves`` stay where they are.
    """

    def __init__(self, bone_segments: dict[str, SurfaceMesh] | None = None, skin: SurfaceMesh | None = None,
                 h: float = DEFAULT_H, E: float = 3000.0, nu: float = 0.45, fixed: list[str] | tuple = (), *,
                 roi: float | None = None, bone_margin: float | None = None, element: str = "bbar",
                 mesher: str = "fitted", solver: str = "direct", precompute: bool = True,
                 grade_mm: float | None = DEFAULT_GRADE_MM, resolve_gaps=False):
        if solver not in SOLVERS:
            raise ParameterError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}", parameter="solver")
        if element not in ELEMENTS:
            raise ParameterError(f"unknown element {element!r}; use one of {', '.join(ELEMENTS)}", parameter="element")
        if not (np.isfinite(E) and E > 0):
            raise ParameterError(f"Young's modulus must be positive, got {E}", parameter="E")
        limit = MAX_NU if element == "bbar" else MAX_NU_P1
        if not (np.isfinite(nu) and 0.0 <= nu <= limit):
            raise ParameterError(
                f"Poisson ratio must be in [0, {limit}] for the {element} element, got {nu}", parameter="nu",
                hint="soft tissue is nearly incompressible (0.45-0.49); 0.5 (incompressible) needs a mixed "
                     "formulation with a pressure unknown; plain P1 tetrahedra lock beyond 0.49")
        self.h, self.E, self.nu = h, float(E), float(nu)
        self.roi, self.bone_margin, self.grade_mm = roi, bone_margin, grade_mm
        self.resolve_gaps = resolve_gaps if isinstance(resolve_gaps, bool) else [tuple(p) for p in resolve_gaps]
        self.element, self.mesher, self.solver, self.precompute = element, mesher, solver, bool(precompute)
        self.timings: dict[str, float] = {}
        if (bone_segments is None) != (skin is None):
            raise ParameterError("give both the bone segments and the skin, or neither (then call setup)",
                                 parameter="skin" if skin is None else "bone_segments")
        if bone_segments is not None:
            self.setup(bone_segments, skin, fixed)

    def setup(self, bone_segments: dict[str, SurfaceMesh], skin: SurfaceMesh,
              fixed: list[str] | tuple = ()) -> "SoftTissueModel":
        """Mesh the tissue between ``bone_segments`` (name -> closed mesh, before any move) and
        ``skin``, assemble, factorise and precompute the skin's response; returns the model."""
        unknown = [f for f in fixed if f not in bone_segments]
        if unknown:
            raise ParameterError(f"fixed segments {unknown} are not among the bone segments {list(bone_segments)}",
                                 parameter="fixed")
        self.skin = skin
        self.fixed = list(fixed)
        self.moving = [s for s in bone_segments if s not in self.fixed]
        self.timings = {}
        t0 = time.perf_counter()
        self.mesh: TissueMesh = build_tissue_mesh(bone_segments, skin, self.h, bone_margin=self.bone_margin,
                                                  roi=self.roi, moving=self.moving, mesher=self.mesher,
                                                  grade_mm=self.grade_mm if self.mesher == "fitted" else None,
                                                  resolve_gaps=self.resolve_gaps if self.mesher == "fitted" else False)
        self.timings["mesh_s"] = time.perf_counter() - t0
        self._index_dofs()
        t0 = time.perf_counter()
        self._assemble()
        self.timings["assemble_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._lu = self._factorize(self._kff) if len(self._free) else None
        self.timings["factorize_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        self._response = self._skin_response() if self.precompute else None
        self.timings["basis_s"] = time.perf_counter() - t0
        return self

    def update(self, plan_or_moves) -> np.ndarray:
        """Skin vertices (N, 3) after a plan: a plan (its segment moves), an applied plan
        (:class:`~.apply.PlanResult`) or a dict segment name -> 4x4 rigid move (LPS mm)."""
        from .transforms import segment_moves

        self._require_setup()
        return self.predict(segment_moves(plan_or_moves))

    def _require_setup(self) -> None:
        if not hasattr(self, "mesh"):
            raise ParameterError("the soft-tissue model has no geometry yet", parameter="bone_segments",
                                 hint="call setup(bone_segments, skin, fixed=...) first")

    def _factorize(self, kff):
        if self.solver == "amg":
            return AMGSolver(kff, self.mesh.nodes[self._free_nodes])
        if self.solver == "direct" and has_pardiso():
            return PardisoLU(kff)
        return factorize(kff, ordering="mmd" if self.solver == "direct-mmd" else "nd")

    def _index_dofs(self) -> None:
        """Free and Dirichlet degrees of freedom, and the skin interpolation matrix."""
        mesh = self.mesh
        n = len(mesh.nodes)
        self._free_nodes = np.flatnonzero(mesh.labels == FREE)
        self._free = (3 * self._free_nodes[:, None] + np.arange(3)).ravel()
        kind = np.repeat(mesh.labels, 3)
        self._dir = np.flatnonzero((kind != FREE) & (kind != HANGING))
        self._tie = mesh.constraint_matrix()  # u = tie @ u, per dof (None without hanging nodes)
        self._interp = mesh.interpolation_matrix()  # (N, n)
        self._centres = {name: self._segment_centre(k) for k, name in enumerate(mesh.segment_names)}

    # set-up ---------------------------------------------------------------------------------
    @property
    def _cells(self):
        return self.mesh.cells if self.element == "bbar" else None

    def _blocks(self):
        """The free-free and free-Dirichlet blocks of the stiffness matrix (with hanging nodes
        eliminated: ``P^T K P``)."""
        k = assemble_stiffness(self.mesh.nodes, self.mesh.tets, self.E, self.nu, cells=self._cells, tie=self._tie)
        k_free = k[self._free]
        return k_free[:, self._free], k_free[:, self._dir]

    def _assemble(self):
        self._kff, self._kfd = self._blocks()

    def _dirichlet_field(self, coefficients: dict[str, np.ndarray]) -> np.ndarray:
        """Nodal displacement (n, 3) on bone-attached nodes for the moving segments' (A, t)."""
        mesh = self.mesh
        u = np.zeros((len(mesh.nodes), 3))
        for name, c in coefficients.items():
            k = mesh.segment_names.index(name)
            idx = np.flatnonzero(mesh.labels == k)
            a = c[:9].reshape(3, 3)
            u[idx] = mesh.nodes[idx] @ a.T + c[9:]
        return u

    def _solve_free(self, u: np.ndarray, lu=None, kfd=None) -> np.ndarray:
        """Fill the free nodes of nodal field(s) u (n, 3[, k]) from the Dirichlet values."""
        lu = self._lu if lu is None else lu
        kfd = self._kfd if kfd is None else kfd
        flat = u.reshape(3 * len(self.mesh.nodes), -1)
        if lu is not None:
            rhs = -(kfd @ flat[self._dir])
            if hasattr(lu, "solve_block"):
                flat[self._free] = lu.solve_block(rhs)
            else:  # one column at a time: SuperLU's multi-column solve is 2-3x slower here
                flat[self._free] = np.column_stack([lu.solve(np.ascontiguousarray(rhs[:, j]))
                                                    for j in range(rhs.shape[1])])
        if self._tie is not None:  # the hanging nodes from their masters
            flat = self._tie @ flat
        return flat.reshape(u.shape)

    def _skin_response(self) -> np.ndarray:
        """(N, 3, 12 s): skin displacement for each affine basis field of each moving segment."""
        mesh = self.mesh
        n = len(mesh.nodes)
        s = len(self.moving)
        u = np.zeros((n, 3, 12 * s))
        for j, name in enumerate(self.moving):
            k = mesh.segment_names.index(name)
            idx = np.flatnonzero(mesh.labels == k)
            u[idx, :, 12 * j:12 * (j + 1)] = affine_basis(mesh.nodes[idx])
        u = self._solve_free(u)
        return (self._interp @ u.reshape(n, -1)).reshape(-1, 3, 12 * s)

    # plans ----------------------------------------------------------------------------------
    @property
    def reference(self) -> str:
        """The segment whose move carries the whole prediction (see "Rigid invariance")."""
        if self.fixed:
            return self.fixed[0]
        counts = [(int((self.mesh.labels == self.mesh.segment_names.index(s)).sum()), -i, s)
                  for i, s in enumerate(self.moving)]
        return max(counts)[2]

    def _segment_centre(self, k: int) -> np.ndarray:
        """The mean of segment ``k``'s bone nodes (where :func:`check_move` measures its move;
        computed once at set-up, :meth:`_index_dofs`)."""
        nodes = self.mesh.nodes[self.mesh.labels == k]
        return nodes.mean(axis=0) if len(nodes) else np.zeros(3)

    def _relative(self, moves: dict) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(M_ref, {moving segment: 12 coefficients of M_ref^-1 M_s}) after checking ``moves``."""
        if not isinstance(moves, dict):
            raise ParameterError("moves must be a dict of segment name -> 4x4 matrix", parameter="moves")
        checked = {}
        for name, matrix in moves.items():
            if name not in self.mesh.segment_names:
                raise ParameterError(f"unknown segment '{name}'; segments are {self.mesh.segment_names}",
                                     parameter="moves")
            m = check_move(name, matrix, at=self._centres[name])
            if name in self.fixed and not np.allclose(m, np.eye(4), atol=1e-12):
                raise ParameterError(f"segment '{name}' was declared fixed and cannot move", parameter="moves",
                                     hint="build the model without it in 'fixed'")
            checked[name] = m
        ref = checked.get(self.reference, np.eye(4))
        inv = np.linalg.inv(ref)
        out = {}
        for name in self.moving:
            rel = inv @ checked.get(name, np.eye(4))
            if not np.array_equal(rel, np.eye(4)):
                out[name] = affine_coefficients(rel)
        return ref, out

    @staticmethod
    def _carry(ref: np.ndarray, points: np.ndarray) -> np.ndarray:
        if np.array_equal(ref, np.eye(4)):
            return points
        return points @ ref[:3, :3].T + ref[:3, 3]

    def predict(self, moves: dict) -> np.ndarray:
        """Skin vertices (N, 3) after ``moves`` (segment name -> 4x4 rigid matrix, LPS mm),
        from the precomputed response: one (3N x 12 s) matrix-vector product."""
        self._require_setup()
        if self._response is None:  # set up without the precomputed response: a direct solve
            return self.solve_direct(moves)
        ref, coeff = self._relative(moves)
        c = np.zeros(12 * len(self.moving))
        for j, name in enumerate(self.moving):
            if name in coeff:
                c[12 * j:12 * (j + 1)] = coeff[name]
        return self._carry(ref, self.skin.vertices + self._response @ c)

    def predict_displacement(self, moves: dict) -> np.ndarray:
        """Skin displacement (N, 3) in mm for ``moves``."""
        return self.predict(moves) - self.skin.vertices

    def solve_direct(self, moves: dict, *, refactorize: bool = False) -> np.ndarray:
        """Skin vertices after ``moves`` from a direct FEM solve (no basis). With
        ``refactorize`` the stiffness is re-assembled and re-factorised first (from scratch)."""
        ref, coeff = self._relative(moves)
        u = self._solve_nodes(coeff, refactorize=refactorize)
        return self._carry(ref, self.skin.vertices + self._interp @ u)

    def solve_nodes(self, moves: dict, *, refactorize: bool = False) -> np.ndarray:
        """Nodal displacements (n, 3) of the tissue mesh for ``moves`` relative to the
        reference segment (direct solve)."""
        return self._solve_nodes(self._relative(moves)[1], refactorize=refactorize)

    def _solve_nodes(self, coeff: dict, *, refactorize: bool = False) -> np.ndarray:
        u = self._dirichlet_field(coeff)
        if refactorize:
            kff, kfd = self._blocks()
            return self._solve_free(u, lu=self._factorize(kff) if len(self._free) else None, kfd=kfd)
        return self._solve_free(u)

    def warnings(self) -> list[str]:
        """What a user must know about this model's mesh: skin vertices the tissue mesh does not
        reach (thin features finer than the grid, such as ear rims or nostril edges), whose
        predicted movement is extrapolated from the nearest tetrahedron."""
        self._require_setup()
        stats = self.mesh.stats
        outside = int(stats.get("skin_outside", 0))
        if not outside:
            return []
        share = 100.0 * outside / max(len(self.mesh.skin_tet), 1)
        return [f"{outside} skin vertices ({share:.1f} %) lie more than h/2 = {0.5 * self.h:g} mm outside the "
                f"soft-tissue mesh (up to {stats.get('skin_gap_max_mm', 0.0):.1f} mm: features finer than the "
                f"{self.h:g} mm grid): their predicted movement is extrapolated from the nearest element; a "
                "smaller h (--h) resolves more of them"]

    def info(self) -> dict:
        """Mesh counts, material, set-up timings (s)."""
        return {**self.mesh.counts(), "E_Pa": self.E, "nu": self.nu, "element": self.element, "solver": self.solver,
                "factorisation": type(self._lu).__name__ if self._lu is not None else "none",
                "mesher": self.mesh.stats.get("mesher", self.mesher), "roi_mm": self.roi,
                "grade_mm": self.grade_mm if self.mesher == "fitted" else None,
                "gap_spacing_mm": gap_spacing(self.mesh.stats, self.h),
                "moving": list(self.moving),
                "fixed": list(self.fixed), "reference": self.reference, "free_dofs": len(self._free),
                "timings_s": {k: round(v, 4) for k, v in self.timings.items()}}
