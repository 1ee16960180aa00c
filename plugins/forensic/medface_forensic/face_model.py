"""`FaceModel`: the joint skull-face model as an estimator (scikit-learn's shape).

A thin, stateful front to :mod:`.shape_model` (the PPCA, conditioning, posterior) and
:mod:`.train` (vertex subsets, SD calibration): hyper-parameters in the constructor,
:meth:`~FaceModel.get_params` / :meth:`~FaceModel.set_params`, :meth:`~FaceModel.fit` on training
arrays in correspondence with the template, then :meth:`~FaceModel.condition` (the posterior of
the face given a skull), :meth:`~FaceModel.sample` and :meth:`~FaceModel.score` (higher is
better: minus the mean face error in mm). The fitted :class:`~.shape_model.ShapeModel` is
``model_``; :meth:`~FaceModel.save` writes it as a model folder. No file is read or written
except by ``load`` / ``save``::

    est = FaceModel(n_components=20).fit(craniums, mandibles, skins, covariates)
    post = est.condition(cranium, mandible, sex="F", age=40)
    post.mean, post.sd(), est.sample(8, cranium, mandible)
    est.score(test_craniums, test_mandibles, test_skins, test_covariates)
"""

from __future__ import annotations

import inspect

import numpy as np

from medface.errors import ModelError, ParameterError


class FaceModel:
    """Skull-face estimator; parameters as in :func:`.train.fit_from_arrays` and
    :func:`.shape_model.fit_shape_model` (``sizes``: vertex subset sizes; ``calibration_folds``:
    cross-validation folds of the SD calibration, 0 skips it)."""

    def __init__(self, n_components: int | None = None, variance: float = 0.999, *, sizes: dict | None = None,
                 seed: int = 0, calibration_folds: int = 5, calibration_sigma: float = 1.0, cov_scale: float = 5.0,
                 residual_inflation: bool = True):
        self.n_components = n_components
        self.variance = variance
        self.sizes = sizes
        self.seed = seed
        self.calibration_folds = calibration_folds
        self.calibration_sigma = calibration_sigma
        self.cov_scale = cov_scale
        self.residual_inflation = residual_inflation

    # ---- estimator protocol
    @classmethod
    def _param_names(cls) -> list[str]:
        return [p for p in inspect.signature(cls.__init__).parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict:
        """The constructor's parameters (scikit-learn's convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> FaceModel:
        unknown = sorted(set(params) - set(self._param_names()))
        if unknown:
            raise ParameterError(f"FaceModel has no parameter {unknown[0]!r}",
                                 hint=f"use one of {', '.join(self._param_names())}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"FaceModel({args})"

    # ---- fitting
    def fit(self, craniums, mandibles, skins, covariates, *, template=None, landmarks=None,
            calibration_set=None, metadata: dict | None = None) -> FaceModel:
        """Fit on full-resolution arrays (n, N, 3) in correspondence with ``template`` (a
        (cranium, mandible, skin) SurfaceMesh triple; default: the medface template, whose
        ``landmarks`` then place the vertex subsets) and ``covariates`` (n, 3: sex 0=F/1=M, age,
        BMI). ``calibration_set`` (craniums, mandibles, skins, covariates of other subjects)
        calibrates the SD instead of cross-validation."""
        from .template import template_head
        from .train import fit_from_arrays

        if template is None:
            head = template_head()
            template, landmarks = (head.cranium, head.mandible, head.skin), landmarks or head.landmarks
        self.model_ = fit_from_arrays(
            craniums, mandibles, skins, covariates, template=template, landmarks=landmarks, sizes=self.sizes,
            seed=self.seed, calibration_folds=self.calibration_folds, calibration_set=calibration_set,
            calibration_sigma=self.calibration_sigma, n_components=self.n_components, variance=self.variance,
            cov_scale=self.cov_scale, residual_inflation=self.residual_inflation, metadata=dict(metadata or {}))
        return self

    def fit_pairs(self, pairs) -> FaceModel:
        """Fit on a pairs folder read by :func:`.train.read_pairs` (or its path)."""
        from .train import train_from_pairs

        pairs = _as_pairs(pairs)
        folds = self.calibration_folds if len(pairs) >= 4 else 0  # each fold must train on 3 or more
        self.model_ = train_from_pairs(pairs, sizes=self.sizes, seed=self.seed, n_components=self.n_components,
                                       variance=self.variance, calibration_folds=folds,
                                       calibration_sigma=self.calibration_sigma, cov_scale=self.cov_scale,
                                       residual_inflation=self.residual_inflation)
        return self

    @classmethod
    def from_model(cls, model) -> FaceModel:
        """An estimator around an already fitted :class:`~.shape_model.ShapeModel`."""
        est = cls(n_components=model.n_components, cov_scale=model.cov_scale)
        est.model_ = model
        return est

    @classmethod
    def load(cls, folder) -> FaceModel:
        from .shape_model import load_model

        return cls.from_model(load_model(folder))

    def save(self, folder):
        """Write ``model.json`` + ``model.safetensors`` into ``folder`` (:func:`.shape_model.save_model`)."""
        from .shape_model import save_model

        return save_model(self._fitted(), folder)

    def _fitted(self):
        model = getattr(self, "model_", None)
        if model is None:
            raise ModelError("this FaceModel is not fitted yet", hint="call fit(...), fit_pairs(...) or load(folder)")
        return model

    # ---- use
    def condition(self, cranium, mandible=None, **kwargs):
        """The posterior of the face given a skull in correspondence
        (:meth:`.shape_model.ShapeModel.condition`; covariates ``sex``, ``age``, ``bmi``)."""
        return self._fitted().condition(cranium, mandible, **kwargs)

    def sample(self, k: int, cranium=None, mandible=None, *, seed: int = 0, **kwargs) -> np.ndarray:
        """``k`` faces (k, n_skin, 3): from the posterior given a skull, or from the model's
        prior (in the model frame) without one."""
        post = self._fitted().prior() if cranium is None else self.condition(cranium, mandible, **kwargs)
        return post.sample(k, seed)

    def score(self, craniums, mandibles, skins, covariates, *, sigma: float = 1.0) -> float:
        """Minus the mean correspondence distance (mm) between the predicted and the true face
        over the model's face vertices, for subjects given like :meth:`fit`'s (higher is better)."""
        model = self._fitted()
        errors = []
        for cr, md, sk, (sex, age, bmi) in zip(craniums, mandibles, skins, np.asarray(covariates, float)):
            post = model.condition(cr, md, sigma=sigma, sex="M" if sex > 0.5 else "F", age=age, bmi=bmi)
            errors.append(np.linalg.norm(post.mean - np.asarray(sk, float), axis=1)[model.face_idx].mean())
        return -float(np.mean(errors))


def _as_pairs(pairs):
    from .train import Pairs, read_pairs

    return pairs if isinstance(pairs, Pairs) else read_pairs(pairs)
