"""Accuracy, calibration and identification metrics of reconstructed faces (in correspondence).

Face region (a template vertex mask, defined from the soft-tissue landmarks of a reference head
of the same topology, :func:`face_regions`): skin vertices

- in front of the coronal plane 15 mm anterior to the mean tragion (excludes the ears),
- below the plane 35 mm above the soft-tissue glabella ``g_s`` (excludes the scalp),
- above the soft-tissue menton ``me_s``, and not facing downwards (outward normal's superior
  component > -0.6; excludes the submental skin and the neck),
- on the outer surface (:func:`occluded`: rays along and around the outward normal meet no
  other skin within ``OCCLUSION_REACH_MM``; excludes the inside of the mouth slot and the
  nostrils, and the walls of a chin-neck cleft: skin that no surface scan or CT skin shows),
- and, below the lower lip within 35 mm of the midline, at most 25 mm behind the soft-tissue
  pogonion (the chin's front, not the skin under the jaw).

Sub-regions, assigned in this order: forehead (above ``g_s`` - 5 mm); nose (within 22 mm of the
midline, between ``sn`` - 2 mm and ``n_s`` - 5 mm, at least 3 mm in front of the endocanthion);
orbits (8..(``ex`` + 10) mm from the midline, between ``or_s`` - 8 mm and ``g_s`` - 5 mm); lips
(within ``ch`` + 8 mm of the midline, between ``sl`` + 8 mm and ``sn`` - 2 mm); chin (below
``sl`` + 8 mm, within 35 mm of the midline); cheeks (the rest of the face region).

Errors are measured per vertex two ways: the correspondence distance (|reconstructed - true|,
an upper bound of the surface distance) and the point-to-plane distance along the true surface
normal (the usual approximation of the surface distance for small errors).
"""

from __future__ import annotations

import numpy as np

from medface.data.mesh import vertex_normals

REGIONS = ("forehead", "orbits", "nose", "lips", "cheeks", "chin")
OCCLUSION_REACH_MM = 60.0


def occluded(skin: np.ndarray, faces: np.ndarray, candidates: np.ndarray, normals: np.ndarray | None = None,
             reach_mm: float = OCCLUSION_REACH_MM) -> np.ndarray:
    """For the vertex indices ``candidates``: True where the vertex is not on the outer surface:
    a ray from it (0.3 mm out) along its outward normal hits the skin again within
    ``reach_mm``, or four of six rays tilted 50° from the normal do (the floor of a slot, such as
    the back of the mouth, faces outwards but sees only the slot's walls). VTK OBB tree."""
    import pyvista as pv
    import vtk

    normals = vertex_normals(skin, faces) if normals is None else normals
    cand = np.asarray(candidates, np.int64)
    if len(cand) == 0:
        return np.zeros(0, bool)
    # only triangles that can be hit from the candidates: in front of the candidates' rear bound
    near = skin[faces][:, :, 1].min(1) < skin[cand, 1].max() + reach_mm
    tree = vtk.vtkOBBTree()
    tree.SetDataSet(pv.PolyData.from_regular_faces(np.ascontiguousarray(skin, float), faces[near]))
    tree.BuildLocator()
    n = normals[cand]
    start = skin[cand] + 0.3 * n

    def hits(direction):
        end = start + reach_mm * direction
        return np.array([tree.IntersectWithLine(a, b, None, None) != 0 for a, b in zip(start, end)], bool)

    helper = np.where(np.abs(n[:, :1]) < 0.9, [[1.0, 0.0, 0.0]], [[0.0, 1.0, 0.0]])
    u = np.cross(n, helper)
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    w = np.cross(n, u)
    tilt = np.deg2rad(50.0)
    oblique = sum(hits(np.cos(tilt) * n + np.sin(tilt) * (np.cos(phi) * u + np.sin(phi) * w)).astype(int)
                  for phi in np.arange(6) * np.pi / 3)
    return hits(n) | (oblique >= 4)


def face_regions(skin: np.ndarray, faces: np.ndarray, landmarks: dict) -> dict[str, np.ndarray]:
    """Boolean vertex masks ``face`` and one per name in :data:`REGIONS` (see module docstring)."""
    lm = {k: np.asarray(v, float) for k, v in landmarks.items()}
    x, y, z = np.abs(skin[:, 0]), skin[:, 1], skin[:, 2]
    normals = vertex_normals(skin, faces)
    y_t = 0.5 * (lm["t_l"][1] + lm["t_r"][1])
    face = (y < y_t - 15.0) & (z < lm["g_s"][2] + 35.0) & (z > lm["me_s"][2]) & (normals[:, 2] > -0.6)
    # below the lower lip near the midline only the chin's front belongs to the face: skin more
    # than 25 mm behind the soft-tissue pogonion is under the jaw (a phantom's chin-neck cleft)
    face &= ~((x < 35.0) & (z <= lm["sl"][2] + 8.0) & (y > lm["pog_s"][1] + 25.0))
    idx = np.flatnonzero(face)
    face[idx[occluded(skin, faces, idx, normals)]] = False
    ex = 0.5 * (abs(lm["ex_l"][0]) + abs(lm["ex_r"][0]))
    ch = 0.5 * (abs(lm["ch_l"][0]) + abs(lm["ch_r"][0]))
    en_y = 0.5 * (lm["en_l"][1] + lm["en_r"][1])
    or_z = 0.5 * (lm["or_s_l"][2] + lm["or_s_r"][2])
    free = face.copy()
    out = {"face": face}

    def take(mask):
        sel = mask & free
        free[sel] = False
        return sel

    out["forehead"] = take(z >= lm["g_s"][2] - 5.0)
    out["nose"] = take((x < 22.0) & (z > lm["sn"][2] - 2.0) & (z < lm["n_s"][2] - 5.0) & (y < en_y - 3.0))
    out["orbits"] = take((x > 8.0) & (x < ex + 10.0) & (z > or_z - 8.0) & (z < lm["g_s"][2] - 5.0))
    out["lips"] = take((x < ch + 8.0) & (z > lm["sl"][2] + 8.0) & (z <= lm["sn"][2] - 2.0))
    out["chin"] = take((z <= lm["sl"][2] + 8.0) & (x < 35.0))
    out["cheeks"] = take(np.ones(len(skin), bool))
    return out


def vertex_errors(pred: np.ndarray, true: np.ndarray, true_normals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(correspondence distance, signed point-to-plane distance along the true normal), mm."""
    d = np.asarray(pred, np.float64) - np.asarray(true, np.float64)
    return np.linalg.norm(d, axis=1), np.einsum("ij,ij->i", d, true_normals)


def summarise(abs_err: np.ndarray) -> dict[str, float]:
    """Mean, RMS, P95 and % within 2.0 / 2.5 mm of absolute errors (any shape, pooled)."""
    e = np.abs(np.asarray(abs_err, np.float64)).ravel()
    return {"mean": float(e.mean()), "rms": float(np.sqrt((e ** 2).mean())), "p95": float(np.percentile(e, 95)),
            "within_2.0": float(100 * (e <= 2.0).mean()), "within_2.5": float(100 * (e <= 2.5).mean())}


def coverage(signed_err: np.ndarray, sd: np.ndarray) -> dict[str, float]:
    """Share (%) of vertices whose signed normal error lies within ±1 and ±2 posterior SDs."""
    r = np.abs(signed_err) / np.maximum(sd, 1e-9)
    return {"within_1sd": float(100 * (r <= 1).mean()), "within_2sd": float(100 * (r <= 2).mean())}


def sd_error_correlation(abs_err: np.ndarray, sd: np.ndarray) -> float:
    """Spearman rank correlation between the reported SD and the absolute error over the given
    vertices (pooled): does the uncertainty map point at where the face is wrong (1: perfectly,
    0: not at all)?"""
    from scipy.stats import spearmanr

    a, s = np.ravel(abs_err), np.ravel(sd)
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(s) == 0:
        return float("nan")
    return float(spearmanr(a, s).statistic)


def aligned_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean vertex distance between corresponding point sets after rigid alignment of a to b."""
    from .shape_model import kabsch

    r, t = kabsch(a, b)
    return float(np.linalg.norm(a @ r.T + t - b, axis=1).mean())


#: the ranks whose identification rates are reported (CMC points, as CR-GAN and Claes et al. report)
IDENTIFICATION_RANKS = (1, 5, 10)
FACE_DISTANCE = ("mean distance between corresponding face-region vertices after a rigid (Kabsch) alignment "
                 "of the reconstruction onto the pool face, mm")


def distance_matrix(probes: list[np.ndarray], pool: list[np.ndarray]) -> np.ndarray:
    """(n_probes, n_pool) face-to-face distances, :func:`aligned_distance` (same vertex subset)."""
    return np.array([[aligned_distance(p, g) for g in pool] for p in probes], np.float64)


def true_match_ranks(distances: np.ndarray, truth) -> np.ndarray:
    """Rank of each probe's true face in its row of ``distances`` (1 = closest); a pool face at
    exactly the true face's distance counts as closer (ties are not resolved in the probe's favour)."""
    d = np.asarray(distances, np.float64)
    true_d = d[np.arange(len(d)), np.asarray(truth, int)]
    return (d <= true_d[:, None]).sum(1).astype(int)


def cmc(ranks: np.ndarray, pool_size: int) -> np.ndarray:
    """Cumulative match characteristic: % of probes whose true face is within rank k, k = 1..pool_size."""
    ranks = np.asarray(ranks, int)
    return np.array([100.0 * (ranks <= k).mean() for k in range(1, int(pool_size) + 1)])


def identification(recons: list[np.ndarray], pool: list[np.ndarray], truth: list[int],
                   ranks=IDENTIFICATION_RANKS) -> dict:
    """Identification of each reconstruction among the ``pool`` faces (its true face at index
    ``truth[i]``, the others distractors), distance :data:`FACE_DISTANCE`: rank-k rates (%) and
    counts, the whole CMC curve (%), the median rank and rank-1 by chance."""
    r = true_match_ranks(distance_matrix(recons, pool), truth)
    curve = cmc(r, len(pool))
    out = {f"rank{k}": float(curve[min(k, len(pool)) - 1]) for k in ranks}
    out.update({"counts": {f"rank{k}": int((r <= k).sum()) for k in ranks}, "n_probes": int(len(r)),
                "pool_size": int(len(pool)), "median_rank": float(np.median(r)),
                "chance_rank1_pct": 100.0 / len(pool), "cmc_pct": [round(float(v), 3) for v in curve],
                "ranks": [int(v) for v in r]})
    return out
