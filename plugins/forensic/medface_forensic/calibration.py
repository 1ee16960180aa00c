"""Calibration of the posterior SD by cross-validation on the training subjects.

The PPCA posterior is exact only if the data were Gaussian with isotropic noise; they are not
(the phantom's faces, like real ones, vary more at some places than a low-rank model with one
noise level says), and its raw SD is off by a factor that varies over the face: on the phantom,
from about 0.1 (nose bridge, forehead: the model is too unsure) to 5 (regions the skull does not
pin down). The fix is empirical, like conformal recalibration of a regressor:

1. split the training subjects into ``folds``; fit the model on all folds but one and
   reconstruct the held-out subjects from their skulls (cranium, mandible, sex, age, BMI, with
   the same observation noise ``sigma`` as at use)
   (or, when a separate calibration cohort exists, as for the phantom, reconstruct that cohort
   with the final model: split-conformal style, no refits);
2. at every skin vertex take the 68.3 % quantile of |signed error along the true normal| /
   raw posterior SD along the normal;
3. smooth its logarithm over the mesh (neighbour averaging) so that the factor is a property of
   the region, not of the vertex, and store it as ``sd_scale`` with the model.

Calibrated this way the share of true points within one posterior SD of the reconstruction
comes close to the Gaussian 68 % on held-out subjects (see ``docs/validation/forensic.md``).
The factor is learned under the training population and with exact correspondence (no
registration error); on a real skull the registration error adds to it (``sigma``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from medface.data.mesh import vertex_normals

CLIP = (0.01, 100.0)  # bounds of the variance ratio a_v


def neighbour_average(values: np.ndarray, faces: np.ndarray, iterations: int = 10) -> np.ndarray:
    """Repeated averaging of a per-vertex value with its mesh neighbours (umbrella smoothing)."""
    n = len(values)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    from scipy.sparse import coo_matrix

    adj = coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(n, n)).tocsr()
    adj.data[:] = 1.0
    deg = np.asarray(adj.sum(1)).ravel() + 1.0
    v = np.asarray(values, np.float64)
    for _ in range(iterations):
        v = (adj @ v + v) / deg
    return v


CASES = (True, False)  # calibrated with and without the mandible


def errors_of(model, craniums, mandibles, skins, covariates, skin_faces, rows=None, *, sigma: float = 1.0):
    """For each case of :data:`CASES` (mandible given or not): signed errors along the true
    normal and raw (uncalibrated) normal SDs, (rows, n_skin) each, of the subjects ``rows``
    (default all) reconstructed by ``model`` from the skull, sex, age and BMI."""
    rows = np.arange(len(craniums)) if rows is None else np.asarray(rows)
    out = {case: (np.empty((len(rows), skins.shape[1])), np.empty((len(rows), skins.shape[1]))) for case in CASES}
    for j, i in enumerate(rows):
        sex, age, bmi = covariates[i]
        true = np.asarray(skins[i], np.float64)
        normals = vertex_normals(true, skin_faces)
        for case in CASES:
            post = model.condition(craniums[i], mandibles[i] if case else None, sigma=sigma,
                                   sex="M" if sex > 0.5 else "F", age=float(age), bmi=float(bmi))
            out[case][0][j] = np.einsum("ij,ij->i", post.mean - true, normals)
            out[case][1][j] = post.sd(calibrated=False)
    return out


def held_out_errors(fit: Callable[[np.ndarray], object], craniums, mandibles, skins, covariates, skin_faces, *,
                    folds: int = 5, sigma: float = 1.0, seed: int = 0):
    """:func:`errors_of` for every training subject, each reconstructed by a model fitted
    without its fold (``fit(train_indices)`` returns a model). Rows in subject order."""
    n = len(craniums)
    folds = int(min(max(folds, 2), n))
    order = np.random.default_rng(seed).permutation(n)
    out = {case: (np.empty((n, skins.shape[1])), np.empty((n, skins.shape[1]))) for case in CASES}
    for k in range(folds):
        test = order[k::folds]
        part = errors_of(fit(np.setdiff1d(order, test)), craniums, mandibles, skins, covariates, skin_faces, test,
                         sigma=sigma)
        for case in CASES:
            out[case][0][test], out[case][1][test] = part[case]
    return out


def sd_scale(errors: np.ndarray, sds: np.ndarray, skin_faces: np.ndarray, *, coverage: float = 0.6827,
             smooth: int = 10) -> np.ndarray:
    """Per-vertex SD factor from held-out errors, float32: the ``coverage`` quantile of
    |error| / raw SD at each vertex (so that this share of held-out points falls within one
    calibrated SD), smoothed in the log domain over the mesh. A quantile rather than a variance
    ratio because the errors have heavier tails than a Gaussian: the calibrated SD is the
    half-width of the central 68 % interval (a robust SD)."""
    q = np.quantile(np.abs(errors) / np.maximum(sds, 1e-12), coverage, axis=0)
    log_a = neighbour_average(np.log(np.clip(q ** 2, *CLIP)), skin_faces, smooth)
    return np.sqrt(np.exp(log_a)).astype(np.float32)


def coverage_report(errors: np.ndarray, sds: np.ndarray, scale: np.ndarray, mask: np.ndarray | None = None) -> dict:
    """Share (%) of held-out points within 1 and 2 SDs, before and after calibration."""
    from .metrics import coverage

    sel = slice(None) if mask is None else np.asarray(mask, bool)
    raw = coverage(errors[:, sel], sds[:, sel])
    return {"raw_within_1sd": raw["within_1sd"], "raw_within_2sd": raw["within_2sd"],
            **coverage(errors[:, sel], sds[:, sel] * scale[sel])}
