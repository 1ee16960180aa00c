"""A joint skull-face statistical shape model: probabilistic PCA and Gaussian conditioning.

The model follows the statistical approach to craniofacial reconstruction of Claes et al. 2010
(Forensic Sci Int 201: 138-145): skull and face surfaces in dense correspondence are modelled
jointly, and a face is predicted from a skull by conditioning the joint distribution on the
observed skull. The joint distribution is a probabilistic PCA (Tipping & Bishop 1999, J R Stat
Soc B 61: 611-622)::

    x = mu + W z + eps,   z ~ N(0, I_q),   eps ~ N(0, sigma2 I)

over the concatenation of a fixed subset of cranium vertices, a subset of mandible vertices, a
subset of face-region skin vertices (all in mm) and the covariates sex (0 = F, 1 = M), age
(years) and BMI (kg/m^2), each standardised and scaled to ``cov_scale`` mm-equivalents.

Training shapes are aligned by rigid generalised Procrustes analysis on the cranium subset
(no scaling: absolute size in mm carries information about the face); the mandible and the
skin follow the cranium's transform. The full-resolution skin (every template vertex) is
predicted from the latent variable by a linear map fitted by least squares on the training
set, with a per-vertex residual variance.

Covariates can instead enter through an explicit **covariate effect** (``covariate_effect``,
three dense fields over the skin: mm of outward displacement per unit of sex (M minus F), age
(per year) and BMI (per kg/m^2)). A model trained with it learns its PPCA from training faces
with that effect removed (each moved back along its normals to the cohort's mean covariates),
never observes the covariate dimensions, and adds the effect of the given (or, when unknown,
the cohort's expected) covariates to the conditioned face, with the variance of unknown or
uncertain covariates added to the SD. The default phantom model carries the literature tissue
prior's sex, age and BMI fields there (:func:`.tissue_prior.covariate_effect`), so ``--sex``
and ``--age`` change the face by the published amounts at the depth sites instead of by what
a few hundred training faces happen to correlate with.

Conditioning (:meth:`ShapeModel.condition`) aligns the observed cranium to the model's mean
cranium, treats the observed dimensions (cranium, optionally mandible, optionally covariates)
with noise ``sigma2 + sigma_obs^2`` and returns a :class:`FacePosterior`: the Gaussian posterior
of the face, with its mean, a per-vertex standard deviation and samples.

This module holds logic only; files are read and written by :func:`save_model` /
:func:`load_model` (``model.safetensors`` + ``model.json``, no pickle).
"""

from __future__ import annotations

import dataclasses
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from medface.errors import InputError, ModelError, ParameterError

from medface.anatomy.registration import umeyama

COVARIATES = ("sex", "age", "bmi")
SEX_CODES = {"F": 0.0, "M": 1.0}
# Observation SD of each covariate in its own unit when it is given (sex is nearly certain;
# age and BMI are estimates, e.g. from the skull and the clothing/body).
DEFAULT_COVARIATE_SD = {"sex": 0.05, "age": 5.0, "bmi": 2.0}
FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------- geometry
def kabsch(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rigid (R, t) minimising ``|| source @ R.T + t - target ||`` (:func:`medface.anatomy.registration.umeyama`)."""
    _, r, t = umeyama(source, target, scale=False)
    return r, t


def generalised_procrustes(shapes: np.ndarray, iterations: int = 10, tol: float = 1e-6):
    """Rigid GPA of ``shapes`` (n, k, 3). Returns (rotations (n,3,3), translations (n,3), mean).

    The mean is kept in the frame of the first shape's centroid-free pose so that the model
    frame stays close to the data's own (LPS) frame."""
    n = len(shapes)
    mean = shapes.mean(0)
    rs, ts = np.tile(np.eye(3), (n, 1, 1)), np.zeros((n, 3))
    for _ in range(iterations):
        for i in range(n):
            rs[i], ts[i] = kabsch(shapes[i], mean)
        aligned = np.einsum("nkj,nij->nki", shapes, rs) + ts[:, None, :]
        new = aligned.mean(0)
        # re-anchor the mean on the original mean's pose, so the frame does not drift
        r0, t0 = kabsch(new, shapes.mean(0))
        new = new @ r0.T + t0
        change = float(np.sqrt(((new - mean) ** 2).sum(1).mean()))
        mean = new
        if change < tol:
            break
    for i in range(n):
        rs[i], ts[i] = kabsch(shapes[i], mean)
    return rs, ts, mean


# -------------------------------------------------------------------------------------- model
@dataclass
class ShapeModel:
    """Joint PPCA of skull and face; see the module docstring. Arrays are float64 unless noted.

    ``mean``/``W`` cover the subset vector ``[cranium (3*nc), mandible (3*nm), face (3*nf),
    covariates (3)]``; ``skin_mean``/``skin_W`` (float32) the full skin (``3 * n_skin``).
    """

    mean: np.ndarray
    W: np.ndarray
    sigma2: float
    cranium_idx: np.ndarray
    mandible_idx: np.ndarray
    face_idx: np.ndarray
    cov_center: np.ndarray
    cov_std: np.ndarray
    cov_scale: float
    skin_mean: np.ndarray
    skin_W: np.ndarray
    skin_resid_var: np.ndarray
    skin_faces: np.ndarray
    n_cranium: int
    n_mandible: int
    eigenvalues: np.ndarray = field(default_factory=lambda: np.zeros(0))
    metadata: dict = field(default_factory=dict)
    sd_scale: np.ndarray | None = None  # (n_skin,) calibration of the SD, see :mod:`.calibration`
    sd_scale_no_mandible: np.ndarray | None = None  # the same for skulls without their mandible
    covariate_effect: np.ndarray | None = None  # (3, n_skin) float32 mm outward per unit covariate, see above

    # ---- layout
    @property
    def n_components(self) -> int:
        return int(self.W.shape[1])

    @property
    def n_skin(self) -> int:
        return len(self.skin_resid_var)

    def _slices(self):
        nc, nm, nf = len(self.cranium_idx), len(self.mandible_idx), len(self.face_idx)
        a, b, c = 3 * nc, 3 * (nc + nm), 3 * (nc + nm + nf)
        return slice(0, a), slice(a, b), slice(b, c), slice(c, c + 3)

    @property
    def mean_cranium(self) -> np.ndarray:
        return self.mean[self._slices()[0]].reshape(-1, 3)

    def sd_factor(self, mandible: bool = True) -> np.ndarray:
        """Per-vertex factor applied to the posterior SD and to the samples' spread, for a skull
        with or without its mandible (ones when the model was not calibrated)."""
        scale = self.sd_scale if mandible or self.sd_scale_no_mandible is None else self.sd_scale_no_mandible
        if scale is None:
            return np.ones(self.n_skin, np.float32)
        return np.asarray(scale, np.float32)

    def mean_skin(self) -> np.ndarray:
        """The training mean face (full skin, model frame), (n_skin, 3)."""
        return self.skin_mean.reshape(-1, 3).astype(np.float64)

    # ---- input checks
    def _check_points(self, points, expected: int, what: str) -> np.ndarray:
        arr = np.asarray(getattr(points, "vertices", points), dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 3:
            raise InputError(f"{what} must be an (N, 3) array of vertices in mm, got shape {arr.shape}")
        if len(arr) != expected:
            raise InputError(f"{what} has {len(arr)} vertices but the model's template has {expected}",
                             hint="the skull must be in dense correspondence with the model template "
                                  "(same topology); register it to the template first")
        if not np.all(np.isfinite(arr)):
            raise InputError(f"{what} has {int((~np.isfinite(arr)).any(1).sum())} vertices with NaN or inf "
                             "coordinates", hint="remove or fill missing vertices before conditioning")
        return arr

    def _sigma_for(self, sigma, n_full: int, idx: np.ndarray, what: str) -> np.ndarray:
        s = np.asarray(sigma, dtype=np.float64)
        if s.ndim == 0:
            s = np.full(len(idx), float(s))
        elif s.shape == (n_full,):
            s = s[idx]
        else:
            raise ParameterError(f"sigma for the {what} must be a number or one value per vertex ({n_full}), "
                                 f"got shape {s.shape}", parameter="sigma")
        if not np.all(np.isfinite(s)) or np.any(s < 0):
            raise ParameterError(f"sigma for the {what} must be finite and >= 0", parameter="sigma")
        return s

    def encode_covariates(self, sex=None, age=None, bmi=None) -> tuple[np.ndarray, np.ndarray]:
        """(values in model units, mask of given covariates)."""
        values, mask = np.zeros(3), np.zeros(3, bool)
        for k, (name, v) in enumerate(zip(COVARIATES, (sex, age, bmi))):
            if v is None:
                continue
            if name == "sex":
                if str(v).upper() not in SEX_CODES:
                    raise ParameterError(f"sex must be 'F' or 'M' (or None if unknown), got {v!r}", parameter="sex")
                v = SEX_CODES[str(v).upper()]
            v = float(v)
            if not np.isfinite(v):
                raise ParameterError(f"{name} must be a finite number, got {v}", parameter=name)
            values[k] = (v - self.cov_center[k]) / self.cov_std[k] * self.cov_scale
            mask[k] = True
        return values, mask

    def covariate_distribution(self, sex=None, age=None, bmi=None, *, p_male: float | None = None,
                               covariate_sd: dict | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mean, variance, known) of sex (0 = F, 1 = M), age and BMI in their own units for a case: a
        given covariate is its value with the variance of ``covariate_sd`` (default
        :data:`DEFAULT_COVARIATE_SD`); ``p_male`` (a probability, e.g. estimated from the skull)
        stands for an unknown sex as a Bernoulli mean and variance; anything unknown is the
        training cohort's mean and variance (``known`` False)."""
        values, mask = self.encode_covariates(sex, age, bmi)
        sds = dict(DEFAULT_COVARIATE_SD, **(covariate_sd or {}))
        mean = self.cov_center + values / self.cov_scale * self.cov_std
        var = np.array([sds[name] ** 2 for name in COVARIATES], float)
        cohort = (self.cov_center, self.cov_std ** 2)
        mean, var = np.where(mask, mean, cohort[0]), np.where(mask, var, cohort[1])
        if p_male is not None and not mask[0]:
            p = float(p_male)
            if not (np.isfinite(p) and 0.0 <= p <= 1.0):
                raise ParameterError(f"p_male must be a probability in 0-1, got {p_male!r}", parameter="p_male")
            mean[0], var[0] = p, p * (1.0 - p)
            mask[0] = True
        return mean, var, mask

    # ---- conditioning
    def condition(self, cranium, mandible=None, *, sigma: float | np.ndarray = 1.0,
                  mandible_sigma: float | np.ndarray | None = None, sex=None, age=None, bmi=None,
                  p_male: float | None = None, covariate_sd: dict | None = None) -> FacePosterior:
        """Gaussian posterior of the face given an observed skull in correspondence.

        ``cranium`` (n_cranium, 3) and ``mandible`` (n_mandible, 3, or None when missing) are
        vertex arrays or SurfaceMeshes in mm, in any rigid pose. ``sigma`` is the observation
        noise SD (mm) of the cranium, a number or one value per cranium vertex;
        ``mandible_sigma`` likewise (default: ``sigma`` if it is a number, else 1 mm).
        Covariates left as None are unobserved (``p_male``: a probability standing for an
        unknown sex); with an explicit :attr:`covariate_effect` they shift the face by that
        effect instead of entering the latent fit. The face comes back in the skull's pose.
        """
        cranium = self._check_points(cranium, self.n_cranium, "cranium")
        sc = self._sigma_for(sigma, self.n_cranium, self.cranium_idx, "cranium")
        sl_c, sl_m, _, sl_v = self._slices()
        obs_c = cranium[self.cranium_idx]
        r, t = kabsch(obs_c, self.mean_cranium)
        dims = [np.arange(sl_c.start, sl_c.stop)]
        vals = [(obs_c @ r.T + t).ravel()]
        noise = [np.repeat(sc ** 2, 3)]
        if mandible is not None:
            mandible = self._check_points(mandible, self.n_mandible, "mandible")
            ms = mandible_sigma if mandible_sigma is not None else (sigma if np.ndim(sigma) == 0 else 1.0)
            sm = self._sigma_for(ms, self.n_mandible, self.mandible_idx, "mandible")
            dims.append(np.arange(sl_m.start, sl_m.stop))
            vals.append((mandible[self.mandible_idx] @ r.T + t).ravel())
            noise.append(np.repeat(sm ** 2, 3))
        cov_mean, cov_var, known = self.covariate_distribution(sex, age, bmi, p_male=p_male,
                                                               covariate_sd=covariate_sd)
        if self.covariate_effect is None:  # the covariates are dimensions of the PPCA
            for k in np.flatnonzero(known):
                dims.append(np.array([sl_v.start + k]))
                vals.append(np.array([(cov_mean[k] - self.cov_center[k]) / self.cov_std[k] * self.cov_scale]))
                noise.append(np.array([cov_var[k] / self.cov_std[k] ** 2 * self.cov_scale ** 2]))
        dims, vals, noise = np.concatenate(dims), np.concatenate(vals), np.concatenate(noise)
        psi_inv = 1.0 / (self.sigma2 + noise)
        wo = self.W[dims]
        a = np.eye(self.n_components) + (wo * psi_inv[:, None]).T @ wo
        cov_z = np.linalg.inv(a)
        cov_z = 0.5 * (cov_z + cov_z.T)
        mean_z = cov_z @ (wo.T @ (psi_inv * (vals - self.mean[dims])))
        effect = None if self.covariate_effect is None else (cov_mean - self.cov_center, cov_var)
        return FacePosterior(self, mean_z, cov_z, r, t, observed=dims, mandible_observed=mandible is not None,
                             covariates=effect)

    def prior(self) -> FacePosterior:
        """The unconditioned model (latent N(0, I), covariates of the cohort's spread) in the model frame."""
        q = self.n_components
        effect = None if self.covariate_effect is None else (np.zeros(len(COVARIATES)), self.cov_std ** 2)
        return FacePosterior(self, np.zeros(q), np.eye(q), np.eye(3), np.zeros(3), observed=np.zeros(0, int),
                             mandible_observed=False, covariates=effect)

    def baseline_face(self, cranium) -> np.ndarray:
        """The tissue-depth baseline: the training mean face placed on the skull by the rigid
        Procrustes transform of the cranium (no shape adaptation). (n_skin, 3) in mm."""
        cranium = self._check_points(cranium, self.n_cranium, "cranium")
        r, t = kabsch(cranium[self.cranium_idx], self.mean_cranium)
        return (self.mean_skin() - t) @ r


#: vertices per block of :func:`_normal_variance` (blocks of a few MB: a 50 MB temporary array
#: took over a second to fault in on this project's virtual machines)
VARIANCE_BLOCK = 8192


def _normal_variance(basis: np.ndarray, normals: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """(n,) float64: the variance along each vertex's normal of the latent basis ``basis``
    (n, 3, q) with latent covariance ``chol chol^T``: the basis along the normal first (n, q),
    then through the Cholesky factor (a third of the work of turning the whole basis through
    it), block by block."""
    var = np.empty(len(basis))
    for a in range(0, len(basis), VARIANCE_BLOCK):
        b, nr = basis[a:a + VARIANCE_BLOCK], normals[a:a + VARIANCE_BLOCK]
        along = b[:, 0] * nr[:, :1]
        along += b[:, 1] * nr[:, 1:2]
        along += b[:, 2] * nr[:, 2:]
        bn = along @ chol
        var[a:a + VARIANCE_BLOCK] = (bn * bn).sum(1, dtype=np.float64)
    return var


def _vertex_covariance(basis: np.ndarray, chol: np.ndarray) -> np.ndarray:
    """(n, 3, 3) float64: each vertex's covariance of the latent basis ``basis`` (n, 3, q) with
    latent covariance ``chol chol^T``, block by block. Its quadratic form with a unit normal is
    :func:`_normal_variance` along that normal, for any normal."""
    cov = np.empty((len(basis), 3, 3))
    for a in range(0, len(basis), VARIANCE_BLOCK):
        bc = basis[a:a + VARIANCE_BLOCK] @ chol
        cov[a:a + VARIANCE_BLOCK] = np.einsum("nik,njk->nij", bc, bc, dtype=np.float64)
    return cov


#: what a posterior computes once from its latent fit alone: shared by :meth:`FacePosterior.with_covariates`
_LATENT_CACHES = ("_latent_mean_model_frame", "_covariate_normals", "_chol", "vertex_covariance")


@dataclass
class FacePosterior:
    """The Gaussian posterior of the full skin given a skull.

    ``mean_z``/``cov_z`` is the latent posterior; the skin is ``skin_mean + skin_W z`` plus an
    independent per-vertex residual. With a model's explicit covariate effect, ``covariates``
    is (deviation from the cohort mean, variance) of sex, age and BMI: the face moves along its
    normals by the effect of the deviation, and the effect of the variance adds to the SD and
    to the samples' spread. ``r``, ``t`` map the observation frame to the model frame
    (``y = x R^T + t``); every output is in the observation frame.
    """

    model: ShapeModel
    mean_z: np.ndarray
    cov_z: np.ndarray
    r: np.ndarray
    t: np.ndarray
    observed: np.ndarray
    mandible_observed: bool = True
    covariates: tuple | None = None

    @property
    def factor(self) -> np.ndarray:
        """The model's SD calibration for this case (with or without the mandible)."""
        return self.model.sd_factor(self.mandible_observed)

    def _to_obs(self, pts: np.ndarray) -> np.ndarray:
        return (pts - self.t) @ self.r

    @functools.cached_property
    def _latent_mean_model_frame(self) -> np.ndarray:
        """``skin_mean + skin_W mean_z`` in the model frame, (n_skin, 3) mm."""
        m = self.model
        # the product in the basis's float32 (a float64 copy of the basis, 330 MB for a 100k-vertex
        # face, took 4 s); its rounding, about 1e-5 mm, is far below the face's precision
        shift = m.skin_W @ np.asarray(self.mean_z, np.float32)
        return (m.skin_mean.astype(np.float64) + shift.astype(np.float64)).reshape(-1, 3)

    @functools.cached_property
    def _covariate_normals(self) -> np.ndarray:
        """Normals (model frame) along which the covariate effect moves the skin."""
        from medface.data.mesh import vertex_normals

        return vertex_normals(self._latent_mean_model_frame, self.model.skin_faces)

    def with_covariates(self, sex=None, age=None, bmi=None, *, p_male: float | None = None,
                        covariate_sd: dict | None = None) -> FacePosterior:
        """The same skull fit under other covariates (as :meth:`ShapeModel.condition` takes them),
        in milliseconds. With an explicit covariate effect the latent fit never sees the
        covariates, so only their effect changes: the new posterior equals conditioning again,
        and shares what this one computed from the latent fit (mean face, normals, Cholesky
        factor, :attr:`vertex_covariance`). A model whose covariates are dimensions of its PPCA
        has to be conditioned again (ModelError)."""
        if self.covariates is None:
            raise ModelError("this model's covariates are dimensions of its latent fit; condition it again to change "
                             "them", hint="ShapeModel.condition(cranium, mandible, sex=..., age=..., bmi=...)")
        mean, var, _ = self.model.covariate_distribution(sex, age, bmi, p_male=p_male, covariate_sd=covariate_sd)
        other = dataclasses.replace(self, covariates=(mean - self.model.cov_center, var))
        other.__dict__.update({name: self.__dict__[name] for name in _LATENT_CACHES if name in self.__dict__})
        return other

    def covariate_shift(self) -> np.ndarray:
        """(n_skin,) mm: the outward move of the face by the case's covariates (zeros without
        an explicit covariate effect)."""
        if self.covariates is None:
            return np.zeros(self.model.n_skin)
        return np.asarray(self.covariates[0], float) @ self.model.covariate_effect.astype(np.float64)

    def covariate_variance(self) -> np.ndarray:
        """(n_skin,) mm^2: variance of the face along its normal from unknown or uncertain covariates."""
        if self.covariates is None:
            return np.zeros(self.model.n_skin)
        return np.asarray(self.covariates[1], float) @ self.model.covariate_effect.astype(np.float64) ** 2

    def _mean_model_frame(self) -> np.ndarray:
        """Posterior mean face in the model frame, (n_skin, 3) mm."""
        mean = self._latent_mean_model_frame
        if self.covariates is None:
            return mean
        return mean + self.covariate_shift()[:, None] * self._covariate_normals

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean face, (n_skin, 3) mm."""
        return self._to_obs(self._mean_model_frame())

    @functools.cached_property
    def _chol(self) -> np.ndarray:
        """Cholesky factor of the latent posterior covariance."""
        return np.linalg.cholesky(self.cov_z + 1e-12 * np.eye(len(self.cov_z)))

    def _factors(self) -> np.ndarray:
        """Latent factors of the skin in the model frame: (n_skin, 3, q) float32."""
        m = self.model
        return (m.skin_W @ self._chol.astype(np.float32)).reshape(m.n_skin, 3, -1)

    def sd_per_coordinate(self, include_residual: bool = True) -> np.ndarray:
        """Posterior SD per coordinate of the model frame (n_skin, 3), uncalibrated."""
        b = self._factors()
        var = np.einsum("ijk,ijk->ij", b, b).astype(np.float64)
        if include_residual:
            var = var + (self.model.skin_resid_var / 3.0)[:, None]
        if self.covariates is not None:
            var = var + self.covariate_variance()[:, None] * self._covariate_normals ** 2
        return np.sqrt(var)

    @functools.cached_property
    def vertex_covariance(self) -> np.ndarray:
        """(n_skin, 3, 3) mm^2: each skin vertex's latent posterior covariance (model frame, no
        residual, uncalibrated). It costs about three :meth:`sd` calls once; after that :meth:`sd`
        of this posterior and of its :meth:`with_covariates` copies takes milliseconds (a live
        panel's frame)."""
        m = self.model
        return _vertex_covariance(m.skin_W.reshape(m.n_skin, 3, -1), self._chol.astype(np.float32))

    def sd(self, include_residual: bool = True, calibrated: bool = True) -> np.ndarray:
        """Per-vertex SD in mm of the surface's position along its normal (the normal of the
        posterior mean face): the uncertainty that matters for a surface, and the one that the
        signed surface error is compared with. ``calibrated`` applies the model's per-vertex
        calibration (:mod:`.calibration`; ones for an uncalibrated model)."""
        from medface.data.mesh import vertex_normals

        m = self.model
        normals = vertex_normals(self._mean_model_frame(), m.skin_faces).astype(np.float32)
        if "vertex_covariance" in self.__dict__:  # computed already: the same variance, from n^T C n
            n64 = normals.astype(np.float64)
            var = np.einsum("nj,nj->n", np.einsum("nij,ni->nj", self.vertex_covariance, n64), n64)
        else:
            var = _normal_variance(m.skin_W.reshape(m.n_skin, 3, -1), normals, self._chol.astype(np.float32))
        if include_residual:
            var = var + m.skin_resid_var / 3.0
        if calibrated:
            var = var * self.factor.astype(np.float64) ** 2
        return np.sqrt(var + self.covariate_variance())

    def sample(self, k: int, rng: np.random.Generator | int | None = 0, *, residual: bool = False,
               calibrated: bool = True) -> np.ndarray:
        """``k`` faces drawn from the posterior, (k, n_skin, 3) float32 mm. ``residual=True`` adds
        the independent per-vertex residual noise (rough surfaces; the spread then matches
        :meth:`sd`); without it, samples are smooth and match ``sd(include_residual=False)``.
        ``calibrated`` scales each vertex's deviation from the mean by the model's calibration;
        unknown or uncertain covariates (explicit covariate effect) are drawn per sample from
        their Gaussian and move the face along its normals."""
        if not isinstance(k, (int, np.integer)) or k < 1:
            raise ParameterError(f"k must be a positive integer, got {k!r}", parameter="k")
        rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        dz = (rng.standard_normal((k, len(self.mean_z))) @ self._chol.T).astype(np.float32)
        factor = self.factor if calibrated else np.ones(self.model.n_skin, np.float32)
        # the latent deviations through the skin map (model frame), turned into the observation
        # frame and scaled by the calibration
        y = (dz @ self.model.skin_W.T).reshape(k, -1, 3) @ self.r.astype(np.float32)
        if calibrated:
            y *= factor[None, :, None]
        if residual:
            sd = (np.sqrt(self.model.skin_resid_var / 3.0) * factor).astype(np.float32)
            y += rng.standard_normal(y.shape, dtype=np.float32) * sd[None, :, None]
        if self.covariates is not None:
            dev = rng.standard_normal((k, len(COVARIATES))) * np.sqrt(np.asarray(self.covariates[1], float))
            move = (dev @ self.model.covariate_effect.astype(np.float64)).astype(np.float32)
            normals = (self._covariate_normals @ self.r).astype(np.float32)  # into the observation frame
            y += move[:, :, None] * normals[None]
        y += self.mean.astype(np.float32)[None]
        return y

    def mesh(self, values: np.ndarray | None = None, name: str = "reconstructed face"):
        """The posterior mean (or ``values``) as a SurfaceMesh with an ``sd_mm`` point array."""
        from medface.data import SurfaceMesh

        verts = self.mean if values is None else values
        return SurfaceMesh(verts, self.model.skin_faces, point_data={"sd_mm": self.sd()}, name=name)


# ------------------------------------------------------------------------------------ fitting
def fit_ppca(x: np.ndarray, *, n_components: int | None = None, variance: float = 0.999):
    """Maximum-likelihood PPCA (Tipping & Bishop 1999, eqs 7-8) of rows ``x`` (n, D).

    Returns (mean, W, sigma2, eigenvalues). ``q`` is ``n_components`` or the smallest number of
    components explaining ``variance`` of the total, at most ``n - 2``."""
    n, d = x.shape
    if n < 3:
        raise InputError(f"PPCA needs at least 3 training shapes, got {n}")
    mu = x.mean(0)
    xc = x - mu
    gram = xc @ xc.T
    evals, evecs = np.linalg.eigh(gram)
    order = np.argsort(evals)[::-1]
    evals, evecs = np.clip(evals[order], 0, None), evecs[:, order]
    lam = evals / (n - 1)
    qmax = n - 2
    if n_components is None:
        frac = np.cumsum(lam) / lam.sum()
        q = int(min(np.searchsorted(frac, variance) + 1, qmax))
    else:
        q = int(min(n_components, qmax))
    sigma2 = float(lam[q:].sum() / (d - q))
    u = (xc.T @ evecs[:, :q]) / np.sqrt(np.maximum(evals[:q], 1e-300))  # (D, q) orthonormal
    w = u * np.sqrt(np.maximum(lam[:q] - sigma2, 0.0))
    return mu, w, sigma2, lam


def fit_shape_model(cranium: np.ndarray, mandible: np.ndarray, skin: np.ndarray, covariates: np.ndarray, *,
                    cranium_idx: np.ndarray, mandible_idx: np.ndarray, face_idx: np.ndarray,
                    skin_faces: np.ndarray, n_cranium: int, n_mandible: int,
                    n_components: int | None = None, variance: float = 0.999, cov_scale: float = 5.0,
                    residual_inflation: bool = True, metadata: dict | None = None,
                    covariate_effect: np.ndarray | None = None) -> ShapeModel:
    """Fit the joint model from training arrays in correspondence.

    ``cranium`` (n, nc, 3) and ``mandible`` (n, nm, 3) are the vertex SUBSETS
    (``cranium_idx``/``mandible_idx`` of the full meshes), ``skin`` (n, n_skin, 3) the full
    skins, ``covariates`` (n, 3) sex (0/1), age, BMI. ``face_idx`` selects the skin vertices
    that enter the PPCA. The training residual variance of the skin map is inflated by
    ``n / (n - q - 1)`` (a degrees-of-freedom correction) when ``residual_inflation``.
    ``covariate_effect`` (3, n_skin), mm outward per unit covariate: each training face is first
    moved back along its normals by the effect of its covariates' deviation from the cohort mean,
    and the model adds the effect at conditioning time (see the module docstring).
    """
    n = len(cranium)
    if not (len(mandible) == len(skin) == len(covariates) == n):
        raise InputError("cranium, mandible, skin and covariates need one row per training subject")
    for name, arr in (("cranium", cranium), ("mandible", mandible), ("skin", skin), ("covariates", covariates)):
        if not np.all(np.isfinite(arr)):
            raise InputError(f"training {name} contains NaN or inf values")
    rs, ts, _ = generalised_procrustes(np.asarray(cranium, np.float64))

    def align(a):
        return np.einsum("nkj,nij->nki", np.asarray(a, np.float64), rs) + ts[:, None, :]

    cr, md = align(cranium), align(mandible)
    sk = np.empty(skin.shape, np.float64)
    for i in range(n):  # one subject at a time keeps the peak memory low
        sk[i] = np.asarray(skin[i], np.float64) @ rs[i].T + ts[i]
    cov = np.asarray(covariates, np.float64)
    center, std = cov.mean(0), cov.std(0)
    std = np.where(std > 1e-9, std, 1.0)
    if covariate_effect is not None:
        covariate_effect = _checked_effect(covariate_effect, skin.shape[1])
        sk = remove_covariate_effect(sk, skin_faces, (cov - center) @ covariate_effect.astype(np.float64))
    cv = (cov - center) / std * cov_scale
    x = np.concatenate([cr.reshape(n, -1), md.reshape(n, -1), sk[:, face_idx].reshape(n, -1), cv], axis=1)
    mu, w, sigma2, lam = fit_ppca(x, n_components=n_components, variance=variance)
    q = w.shape[1]
    # latent posterior means of the training shapes (T&B eq. 6) and the full-skin linear map
    m_inv = np.linalg.inv(w.T @ w + sigma2 * np.eye(q))
    z = (x - mu) @ w @ m_inv.T
    skin_flat = sk.reshape(n, -1)
    skin_mu = skin_flat.mean(0)
    sc = skin_flat - skin_mu
    del sk, skin_flat
    coef, *_ = np.linalg.lstsq(z, sc, rcond=None)  # (q, 3 n_skin)
    resid = sc - z @ coef
    resid_var = (resid ** 2).reshape(n, -1, 3).sum(2).mean(0)
    if residual_inflation:
        resid_var *= n / max(n - q - 1, 1)
    meta = dict(metadata or {})
    meta.update({"n_subjects": int(n), "n_components": int(q), "sigma2_mm2": sigma2,
                 "variance_target": None if n_components is not None else float(variance),
                 "explained_variance": float(lam[:q].sum() / lam.sum())})
    return ShapeModel(mean=mu, W=w, sigma2=sigma2, cranium_idx=np.asarray(cranium_idx, np.int64),
                      mandible_idx=np.asarray(mandible_idx, np.int64), face_idx=np.asarray(face_idx, np.int64),
                      cov_center=center, cov_std=std, cov_scale=float(cov_scale),
                      skin_mean=skin_mu.astype(np.float32), skin_W=np.ascontiguousarray(coef.T, np.float32),
                      skin_resid_var=resid_var, skin_faces=np.asarray(skin_faces, np.int64),
                      n_cranium=int(n_cranium), n_mandible=int(n_mandible), eigenvalues=lam, metadata=meta,
                      covariate_effect=covariate_effect)


def _checked_effect(effect, n_skin: int) -> np.ndarray:
    e = np.asarray(effect, np.float32)
    if e.shape != (len(COVARIATES), n_skin) or not np.all(np.isfinite(e)):
        raise InputError(f"the covariate effect must be finite, one row per covariate ({len(COVARIATES)}) and "
                         f"one column per skin vertex ({n_skin}); got shape {e.shape}")
    return e


def remove_covariate_effect(skins: np.ndarray, skin_faces: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """``skins`` (n, n_skin, 3) each moved along its own vertex normals by minus ``shifts``
    (n, n_skin) mm, in place."""
    from medface.data.mesh import vertex_normals

    for i in range(len(skins)):
        skins[i] -= shifts[i][:, None] * vertex_normals(skins[i], skin_faces)
    return skins


# ---------------------------------------------------------------------------------------- I/O
_ARRAYS = ("mean", "W", "cranium_idx", "mandible_idx", "face_idx", "cov_center", "cov_std", "skin_mean",
           "skin_W", "skin_resid_var", "skin_faces", "eigenvalues")
_OPTIONAL = ("sd_scale", "sd_scale_no_mandible", "covariate_effect")


def save_model(model: ShapeModel, folder) -> Path:
    """Write ``model.safetensors`` (arrays) and ``model.json`` (metadata) into ``folder``."""
    from safetensors.numpy import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: np.ascontiguousarray(getattr(model, k)) for k in _ARRAYS}
    for k in _OPTIONAL:
        if getattr(model, k) is not None:
            arrays[k] = np.ascontiguousarray(getattr(model, k), np.float32)
    save_file(arrays, str(folder / "model.safetensors"))
    meta = dict(model.metadata)
    meta.update({"format": "medface-forensic-shape-model", "format_version": FORMAT_VERSION,
                 "method": "joint probabilistic PCA (Tipping & Bishop 1999) of skull and face, "
                           "conditioned on the skull (after Claes et al. 2010)",
                 "units": "mm (LPS); covariates sex 0=F/1=M, age years, BMI kg/m^2",
                 "alignment": "rigid generalised Procrustes on the cranium subset; mandible and skin follow",
                 "sigma2": model.sigma2, "cov_scale": model.cov_scale, "covariates": list(COVARIATES),
                 "n_cranium": model.n_cranium, "n_mandible": model.n_mandible, "n_skin": model.n_skin,
                 "n_components": model.n_components,
                 "vertex_subsets": {"cranium": len(model.cranium_idx), "mandible": len(model.mandible_idx),
                                    "face": len(model.face_idx)}})
    (folder / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True), encoding="utf-8")
    return folder


def load_model(folder) -> ShapeModel:
    """Read a model written by :func:`save_model`."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    folder = Path(folder)
    st, js = folder / "model.safetensors", folder / "model.json"
    for p in (st, js):
        if not p.is_file():
            raise ModelError(f"shape model file {p.name} is missing", path=folder,
                             hint="train one with medface_forensic.train.train_phantom_model")
    try:
        meta = json.loads(js.read_text(encoding="utf-8"))
        arrays = load_file(str(st))
    except (OSError, ValueError, SafetensorError) as exc:  # unreadable or corrupt files
        raise ModelError(f"cannot read the shape model: {exc}", path=folder) from None
    if meta.get("format") != "medface-forensic-shape-model" or meta.get("format_version") != FORMAT_VERSION:
        raise ModelError("not a medface forensic shape model of a supported version", path=js)
    missing = [k for k in _ARRAYS if k not in arrays]
    if missing:
        raise ModelError(f"shape model lacks arrays {missing}", path=st)
    keep = dict(meta)
    scales = {k: arrays.get(k) for k in _OPTIONAL}
    n_skin = len(arrays["skin_resid_var"])
    for k, v in scales.items():
        expected = (len(COVARIATES), n_skin) if k == "covariate_effect" else (n_skin,)
        if v is not None and v.shape != expected:
            raise ModelError(f"{k} has shape {v.shape}, expected {expected} (per skin vertex)", path=st)
    return ShapeModel(**{k: arrays[k] for k in _ARRAYS}, sigma2=float(meta["sigma2"]),
                      cov_scale=float(meta["cov_scale"]), n_cranium=int(meta["n_cranium"]),
                      n_mandible=int(meta["n_mandible"]), metadata=keep, **scales)
