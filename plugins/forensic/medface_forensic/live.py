"""The `condition-face` panel: the face reconstructed from a skull, re-conditioned live on sex, age and BMI.

:class:`ConditionedFace` is the logic of the workstation panel ``forensic.condition-face``
(manifest ``[[panels]]``; the contract is ``docs/plugin-guide.md``, "Interactive panels").

**Once, when the panel opens** (seconds): the full reconstruction of :class:`.reconstruction.Reconstruction`
with the covariates unknown: the template skull registered onto the skull, the skull's own sex
and age estimate (:mod:`.demography`), the face model conditioned robustly on the registered
skull (:mod:`.conditioning`), each skin vertex's latent covariance
(:attr:`.shape_model.FacePosterior.vertex_covariance`) and the tissue-depth face's warp
(:class:`.baseline.TissueDepthFaces`).

**On every move of a control** (milliseconds): the model's covariates enter through its explicit
covariate effect (the literature tissue prior's sex, age and BMI fields, :mod:`.tissue_prior`),
never through the latent fit, so changing them leaves the skull fit as it is and only moves the
face along its normals (:meth:`.shape_model.FacePosterior.with_covariates`): the face, its SD
and the classic tissue-depth face (:mod:`.baseline`) are exactly what a reconstruction with
those covariates gives. The covariates are combined with the skull's estimate as the
``reconstruct`` command combines them (:func:`.covariates.case_covariates`): a sex left
``unknown`` takes the skull's estimate when it is informative. A model whose covariates are
dimensions of its latent fit (none that this plugin trains) is conditioned again on each
change, which takes about a second.

The panel shows the face of a model learned from synthetic phantom heads: what that population
predicts for this skull, an investigative aid and never an identification (the reconstruction's
warnings say so in every frame).
"""

from __future__ import annotations

import numpy as np

from medface.data import PanelUpdate, SurfaceMesh

from .baseline import TissueDepthFaces
from .covariates import case_covariates
from .reconstruction import Reconstruction, _condition, has_template_skin, sex_code, synthetic_floor

#: where the sliders start: the tissue tables' reference point (age 40, BMI 25; docs/forensic_tissue_prior.md)
REFERENCE_AGE, REFERENCE_BMI = 40.0, 25.0


class ConditionedFace:
    """The most likely face over ``skull`` (a SurfaceMesh in mm), re-conditioned by :meth:`update`.

    ``model``: a :class:`~.shape_model.ShapeModel` or model folder; None for the default
    phantom-trained model. The full reconstruction made when the panel opened is
    ``reconstruction`` (a :class:`~.reconstruction.ReconstructionResult`)."""

    def __init__(self, skull: SurfaceMesh, *, model=None):
        self.reconstruction = Reconstruction(model=model, variants=0).run(skull)
        self.posterior = self.reconstruction.posterior
        self.floor_mm = synthetic_floor(self.reconstruction.model.metadata)
        if self.posterior.covariates is not None:
            self.posterior.vertex_covariance  # noqa: B018 - computed once here, shared by every frame
        reg, model = self.reconstruction.registration, self.reconstruction.model
        self.baselines = TissueDepthFaces(model, reg.cranium, reg.mandible) if has_template_skin(model) else None

    def update(self, sex: str = "unknown", age: float = REFERENCE_AGE, bmi: float = REFERENCE_BMI) -> PanelUpdate:
        """The frame for these covariates: the face (point data ``sd_mm``), the tissue-depth face,
        the summary and the reconstruction's warnings."""
        rec = self.reconstruction
        case = case_covariates(sex_code(sex), float(age), float(bmi), rec.demography)
        posterior = self.conditioned(case.condition)
        face_mm = posterior.mean
        sd = np.sqrt(posterior.sd() ** 2 + self.floor_mm ** 2)
        meshes = {"face": SurfaceMesh(face_mm, rec.model.skin_faces, point_data={"sd_mm": sd.astype(np.float32)},
                                      name="reconstructed face")}
        baseline = None if self.baselines is None else \
            self.baselines.face(sex=case.baseline_sex, age=float(age), bmi=float(bmi))
        if baseline is not None:
            meshes["tissue_depth_face"] = SurfaceMesh(baseline, rec.model.skin_faces, name="tissue-depth baseline face")
        summary = {"registration_residual_mm": round(float(rec.registration.residual_mm["final_median"]), 3),
                   "sex": sex, "sex_used": case.sources["sex"], "age_years": float(age), "bmi_kg_m2": float(bmi),
                   "face_sd_median_mm": round(float(np.median(sd[sd < np.percentile(sd, 95)])), 3)}
        if baseline is not None:
            summary["tissue_depth_face_gap_median_mm"] = round(float(np.median(np.linalg.norm(baseline - face_mm,
                                                                                               axis=1))), 3)
        warnings = rec.warnings + [w for w in case.warnings if w not in rec.warnings]
        return PanelUpdate(meshes=meshes, summary=summary, warnings=warnings)

    def conditioned(self, covariates: dict):
        """The posterior for ``covariates`` (keyword arguments of the model's conditioning)."""
        if self.posterior.covariates is not None:
            return self.posterior.with_covariates(**covariates)
        rec = self.reconstruction
        return _condition(rec.model, rec.registration, rec.skull, covariates)[0]
