"""What a reconstruction conditions on: the user's sex, age and BMI, else the skull's own estimate.

A covariate the user gives is used as given. One the user leaves unknown is taken from the
sex and age estimate of the registered skull (:mod:`.demography`) when that estimate beat its
prior in cross-validation: sex as the probability of male (the face model moves the face by
the expected effect and widens the SD by the rest, :meth:`.shape_model.ShapeModel.condition`),
age as the middle of the estimated range with the range's spread as its SD. Otherwise it stays
unknown and the model uses the training cohort's spread. The user's sex is compared with the
skull's: a confident disagreement is a warning (a mislabelled case or a model that does not
apply), never a silent override. Logic only; no files.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: the skull's estimate contradicts the user's sex when it gives the other sex this probability
CONFLICT_PROBABILITY = 0.9


@dataclass
class CaseCovariates:
    """Keyword arguments for the face model (:meth:`condition`), where each came from
    (``sources``: covariate -> "given" | "estimated from the skull (...)" | "unknown"), and
    the sex for the tissue-depth baseline (a hard "F"/"M" or None)."""

    condition: dict
    sources: dict
    baseline_sex: str | None
    warnings: list = field(default_factory=list)


def case_covariates(sex: str | None, age: float | None, bmi: float | None, estimate=None) -> CaseCovariates:
    """The covariates for one case; ``estimate`` is a :class:`.demography.DemographyEstimate` or None."""
    kw = {"sex": sex, "age": age, "bmi": bmi}
    sources = {k: "given" if v is not None else "unknown" for k, v in kw.items()}
    baseline_sex, warnings = sex, []
    if estimate is not None:
        if sex is None and estimate.sex_informative:
            kw["p_male"] = float(estimate.p_male)
            sources["sex"] = f"estimated from the skull (P(male) = {estimate.p_male:.2f}, phantom-trained)"
            baseline_sex = estimate.covariates()["sex"]
        elif sex is not None and estimate.sex_informative:
            p_other = estimate.p_male if sex == "F" else 1.0 - estimate.p_male
            if p_other >= CONFLICT_PROBABILITY:
                warnings.append(f"the given sex ({sex}) disagrees with the skull's estimate (P({'M' if sex == 'F' else 'F'}) "
                                f"= {p_other:.2f}, phantom-trained): check the case's records; the given sex was used")
        lo, hi = estimate.age_range
        if age is None and estimate.age_informative and hi is not None:
            kw["age"] = 0.5 * (lo + hi)
            kw["covariate_sd"] = {"age": (hi - lo) / np.sqrt(12.0)}
            sources["age"] = f"estimated from the skull ({estimate.age_label}, phantom-trained)"
    return CaseCovariates(kw, sources, baseline_sex, warnings)
