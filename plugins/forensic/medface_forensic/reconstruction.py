"""Reconstruction logic: a skull in, the most likely face, its uncertainty and variants out.

Skull (mesh, any pose and units via ``scale``; or a :class:`~.ct_input.CTSkull`, the bone of a
head CT) -> size and shape checks (:mod:`.skull_input`) -> template registration with landmark
transfer (:class:`~.register.SkullRegistration`) -> the joint skull-face statistical model
conditioned on the registered skull and on sex, age and BMI (:mod:`.shape_model`) -> a
:class:`ReconstructionResult`: posterior mean face, per-vertex SD, sampled variants, soft-tissue
landmarks, a tissue-thickness map and the classic tissue-depth face, all in the input skull's
own frame and units. Nothing here reads or writes files (a skull given as a path is read)::

    from medface_forensic import Reconstruction

    rec = Reconstruction(variants=4).run(skull_mesh, sex="F", age=40)
    rec.face.vertices, rec.sd_mm, rec.variants.shape, rec.soft_tissue_landmarks["prn"]

The default model (:func:`.model_cache.default_model`) is trained on the synthetic phantom
population the first time it is needed and cached; a lab's own model is given as ``model``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from medface.data import Landmarks, SurfaceMesh
from medface.errors import ParameterError
from medface.threads import query_workers

from .conditioning import UNOBSERVED_SIGMA_MM  # noqa: F401  (the command imports it here)
from .covariates import case_covariates

# Added in quadrature to the SD of a model trained on synthetic heads only: what the phantom
# population cannot know about real people. An assumption, of the size of the errors that the
# literature reports for real reconstructions (manual ones put 54-77 % of the face within 2.5 mm;
# Hu et al. 2021 reach under 2 mm on CT), not a measured value; a model trained on a lab's own
# pairs (`forensic train`) gets none, its calibration covers it.
SYNTHETIC_SD_FLOOR_MM = 2.5
SEXES = {"F": "F", "M": "M", "unknown": None, "f": "F", "m": "M", None: None}


def sex_code(sex) -> str | None:
    """"F", "M" or None (unknown) from the spellings the command and scripts use."""
    if sex not in SEXES:
        raise ParameterError(f"sex must be F, M or unknown, got {sex!r}", parameter="sex")
    return SEXES[sex]


def thickness(face: np.ndarray, bone_vertices: np.ndarray) -> np.ndarray:
    """Distance (mm) from each face vertex to the nearest bone vertex: the tissue-thickness map."""
    from scipy.spatial import cKDTree

    # one tree, one query: the unbalanced build is faster, the answers the same
    return cKDTree(bone_vertices, balanced_tree=False, compact_nodes=False).query(face, workers=query_workers())[0]


def soft_tissue_landmarks(face: np.ndarray) -> dict:
    """Soft-tissue landmarks read off a face in the template's topology at the template's vertices."""
    from medface.anatomy.landmarks import soft_tissue_ids

    from .template import template_head

    tmpl = template_head()
    known = set(soft_tissue_ids())
    out = {}
    for lid, p in tmpl.landmarks.items():
        if lid in known:
            out[lid] = face[int(np.argmin(np.linalg.norm(tmpl.skin.vertices - np.asarray(p), axis=1)))]
    return out


def has_template_skin(shape) -> bool:
    """Whether the model's skin is the template's, on which the tissue-depth pegs are defined."""
    from .template import template_head

    return shape.n_skin == len(template_head().skin.vertices)


def tissue_depth_baseline(shape, cranium, mandible, sex, age, bmi) -> np.ndarray | None:
    """The classic tissue-depth face (:mod:`.baseline`) for comparison, in mm; None when the
    model's skin is not the template's (:func:`has_template_skin`)."""
    from .baseline import tissue_depth_face

    if not has_template_skin(shape):
        return None
    return tissue_depth_face(shape, cranium, mandible, sex=sex, age=age, bmi=bmi)


@dataclass
class ReconstructionResult:
    """Everything a reconstruction found, in the input skull's frame and units.

    ``face`` carries the point data ``sd_mm`` (the model's SD and, for a synthetic-trained
    model, the assumed floor in quadrature), ``tissue_thickness_mm`` and ``model_sd_mm``;
    ``variants`` (k, n_skin, 3) share its vertices; ``baseline`` is the tissue-depth face
    (None for a model of another topology); ``skull`` the prepared input (mm) and ``ct_skull``
    the CT's bone when the input was a CT. ``scale`` converts the input's units to mm."""

    face: SurfaceMesh
    sd_mm: np.ndarray
    model_sd_mm: np.ndarray
    synthetic_floor_mm: float
    variants: np.ndarray
    soft_tissue_landmarks: Landmarks
    thickness_mm: np.ndarray
    baseline: SurfaceMesh | None
    baseline_gap_mm: np.ndarray | None  # per vertex: the tissue-depth face's distance from the model's, mm
    registration: object  # .register.Registration
    skull: object  # .skull_input.SkullInput
    model: object  # .shape_model.ShapeModel
    posterior: object  # .shape_model.FacePosterior
    scale: float = 1.0
    ct_skull: object | None = None  # .ct_input.CTSkull
    warnings: list[str] = field(default_factory=list)
    fit_check: object | None = None  # .conditioning.FitCheck: latent distance, residuals by region, problems
    demography: object | None = None  # .demography.DemographyEstimate of the skull (None: not estimated)
    covariate_sources: dict = field(default_factory=dict)  # sex/age/bmi -> given | estimated ... | unknown

    @property
    def synthetic(self) -> bool:
        """Whether the model learned synthetic phantom heads only."""
        return is_synthetic(self.model.metadata)

    @property
    def face_region(self) -> np.ndarray:
        """Vertices whose SD is under its 95th percentile (the face, not the scalp's edge)."""
        return self.sd_mm < np.percentile(self.sd_mm, 95)

    def variant_meshes(self) -> list[SurfaceMesh]:
        """The variants as meshes, each with the SD as point data like the face."""
        sd = {"sd_mm": self.sd_mm.astype(np.float32)}
        return [SurfaceMesh(v, self.face.faces, point_data=dict(sd)) for v in self.variants]

    def display(self, points: np.ndarray) -> np.ndarray:
        """Points in the upright frame of pictures (a CT without stored orientation is turned)."""
        return self.ct_skull.to_display(points) if self.ct_skull is not None else np.asarray(points)


def is_synthetic(metadata: dict) -> bool:
    return "synthetic" in str(metadata.get("training_data", ""))


def synthetic_floor(metadata: dict) -> float:
    """The SD (mm) added in quadrature to a model's own: none for a model trained on real pairs or
    on phantom faces that follow the literature tissue prior (:mod:`.tissue_prior`: its
    between-person variation, the T-Tables' 3.7 mm standard error of estimate spread over the face,
    is in the model's SD already); :data:`SYNTHETIC_SD_FLOOR_MM` for other synthetic-trained models."""
    if not is_synthetic(metadata) or metadata.get("tissue_prior"):
        return 0.0
    return SYNTHETIC_SD_FLOOR_MM


def synthetic_warning(floor: float) -> str:
    if not floor:
        return ("The face model was trained on synthetic phantom heads only, whose faces follow a literature tissue-depth "
                "prior (sex, age and BMI differences and between-person variation, docs/forensic_tissue_prior.md): the "
                "reconstruction shows what that population predicts, not a validated likeness. Its SD map (sd_mm, equal "
                "to model_sd_mm) is the model's own, calibrated on phantom heads.")
    return ("The face model was trained on synthetic phantom heads only: the reconstruction shows what the phantom "
            "population predicts, not a validated likeness. Its SD map (sd_mm) adds an assumed "
            f"{floor:g} mm for what the phantom cannot know about real people to the model's own SD (model_sd_mm); "
            "the variants show the model's spread only.")


@dataclass
class Reconstruction:
    """Skull -> face with one shape model (see the module docstring).

    ``model`` is a :class:`~.shape_model.ShapeModel`, a model folder, or None for the default
    phantom-trained model (loaded when first needed); ``variants`` faces are sampled with
    ``seed``. With ``demography`` the skull's sex and age range are estimated
    (:mod:`.demography`, phantom-trained) and stand in for what the caller leaves unknown
    (:mod:`.covariates`)."""

    model: object | None = None
    variants: int = 8
    seed: int = 0
    demography: bool = True

    def shape_model(self):
        """The model, loaded (or trained and cached, for the default) on first use."""
        from .model_cache import default_model
        from .shape_model import load_model

        if self.model is None:
            self.model = default_model()
        elif isinstance(self.model, (str, os.PathLike)):
            self.model = load_model(self.model)
        return self.model

    def run(self, skull, *, scale: float = 1.0, sex=None, age: float | None = None, bmi: float | None = None,
            landmarks=None, progress: Callable[[str], None] | None = None) -> ReconstructionResult:
        """Reconstruct the face over ``skull`` (a path, SurfaceMesh, SkullInput or CTSkull);
        ``scale`` converts its units to mm; ``landmarks`` (in the skull's units) override and
        pin the automatic ones; ``progress`` gets one line per stage."""
        from .ct_input import CTSkull
        from .register import SkullRegistration
        from .skull_input import SkullInput, load_skull

        say = progress or (lambda text: None)
        sex = sex_code(sex)
        ct_skull = skull if isinstance(skull, CTSkull) else None
        say("reading the skull")
        if ct_skull is not None:
            skull_in = ct_skull.skull_input()
        else:
            skull_in = skull if isinstance(skull, SkullInput) else load_skull(skull, scale=scale)
        reg = SkullRegistration(skull_in, landmarks=landmarks,
                                field_of_view=ct_skull.field_of_view if ct_skull else None).run(say)
        estimate, estimate_warnings = self._estimate_demography(reg, say)
        case = case_covariates(sex, age, bmi, estimate)
        say("conditioning the face model on the skull")
        shape = self.shape_model()
        post, check = _condition(shape, reg, skull_in, case.condition)
        say(f"sampling {int(self.variants)} variants and measuring the face")
        result = self._result(shape, post, reg, skull_in, ct_skull, (case.baseline_sex, case.condition["age"], bmi))
        check.problems += _size_problems(reg, skull_in)
        result.fit_check = check
        result.demography, result.covariate_sources = estimate, case.sources
        result.warnings += estimate_warnings + case.warnings
        result.warnings += [p for p in check.problems if p not in result.warnings]
        return result

    def _estimate_demography(self, reg, say) -> tuple[object | None, list[str]]:
        """(estimate or None, warnings): the skull's sex and age range, when asked for and measurable."""
        from medface.errors import InputError

        from .demography import estimate_demography

        if not self.demography:
            return None, []
        say("estimating sex and age range from the skull")
        try:
            estimate = estimate_demography(reg)
        except InputError as exc:
            return None, [f"sex and age could not be estimated from this skull: {exc.message}"]
        return estimate, [f"skull-based estimate: {w}" for w in estimate.warnings]

    def run_ct(self, volume, *, bone_hu: float | None = None, face_direction: str = "auto", **kwargs) -> ReconstructionResult:
        """:meth:`run` on the bone of a head CT (:func:`.ct_input.skull_from_ct`); the outputs
        stay in the CT's frame, in mm."""
        from .ct_input import skull_from_ct

        say = kwargs.get("progress") or (lambda text: None)
        say("segmenting the bone of the CT")
        return self.run(skull_from_ct(volume, bone_hu=bone_hu, face_direction=face_direction), **kwargs)

    def _result(self, shape, post, reg, skull_in, ct_skull, covariates) -> ReconstructionResult:
        face_mm, model_sd = post.mean, post.sd()
        floor = synthetic_floor(shape.metadata)
        sd = np.sqrt(model_sd ** 2 + floor ** 2)
        samples = post.sample(int(self.variants), self.seed) if self.variants else \
            np.zeros((0,) + face_mm.shape, np.float32)
        unit = 1.0 / float(skull_in.scale)  # back to the input's own units
        thick = thickness(face_mm, skull_in.mesh.vertices)
        point_data = {"sd_mm": sd.astype(np.float32), "tissue_thickness_mm": thick.astype(np.float32),
                      "model_sd_mm": np.asarray(model_sd, np.float32)}
        face = SurfaceMesh(face_mm * unit, shape.skin_faces, point_data=point_data, name="reconstructed face")
        soft = Landmarks.from_dict({k: v * unit for k, v in soft_tissue_landmarks(face_mm).items()})
        base = tissue_depth_baseline(shape, reg.cranium, reg.mandible, *covariates)
        baseline = gap = None
        if base is not None:
            baseline = SurfaceMesh(base * unit, shape.skin_faces, name="tissue-depth baseline face")
            gap = np.linalg.norm(base - face_mm, axis=1)
        warnings = (list(ct_skull.warnings) if ct_skull else []) + list(reg.warnings)
        if is_synthetic(shape.metadata):
            warnings.append(synthetic_warning(floor))
        return ReconstructionResult(face, sd, model_sd, floor, samples * unit, soft, thick, baseline, gap, reg,
                                    skull_in, shape, post, float(skull_in.scale), ct_skull, warnings)


def _condition(shape, reg, skull_in, covariates: dict):
    """(posterior, FitCheck): the model conditioned on the registered skull with the noise
    estimated from the fit (:func:`.conditioning.robust_condition`); template vertices that meet
    no input bone or lie outside a CT's scan are left unobserved."""
    from .conditioning import bone_distance, robust_condition

    mesh = skull_in.mesh
    distance = bone_distance(reg.vertices, mesh.vertices, mesh.faces)
    return robust_condition(shape, reg.cranium, reg.mandible, distance=distance, regions=_skull_regions(len(reg.vertices)),
                            observed=reg.observed, **covariates)


def _size_problems(reg, skull_in) -> list[str]:
    """The registration's scale as a problem of the fit: far from 1, the skull is not an adult's
    in mm (a wrong --scale), and the model, which learned adult skulls, does not apply."""
    from .register import TEMPLATE_SCALE_LIMIT, scale_warning

    if abs(np.log(reg.scale)) > np.log(TEMPLATE_SCALE_LIMIT):
        return [scale_warning(reg.scale, float(skull_in.scale))]
    return []


def _skull_regions(n_vertices: int) -> np.ndarray:
    """Region names of the template skull's vertices (one region when the registration used
    another template)."""
    names = _template_skull_regions()
    return names if len(names) == n_vertices else np.full(n_vertices, "skull", dtype=object)


@functools.lru_cache(maxsize=1)
def _template_skull_regions() -> np.ndarray:
    from .conditioning import skull_regions
    from .template import template_head

    return skull_regions(template_head())


def reconstruct_face(skull, *, model=None, variants: int = 8, seed: int = 0, **kwargs) -> ReconstructionResult:
    """One reconstruction in one call: ``Reconstruction(model, variants, seed).run(skull, **kwargs)``."""
    return Reconstruction(model, variants, seed).run(skull, **kwargs)
