"""Norms of the facial measurements in the phantom population, and z-scores against them.

The norms are the centre and spread (median and scaled median absolute deviation, which equal
the mean and SD of a normal population) of every measurement of :mod:`medface.phantom.features`
over unaffected phantom subjects of one sex, drawn with a fixed seed and built into heads: adults
aged 20-75, and children by age band (:data:`CHILD_BANDS`, through the phantom's growth model,
:mod:`medface.phantom.growth`). They are *phantom* norms (synthetic, labelled so), computed by
``python -m medface.phantom.norms`` into ``feature_norms.json`` next to this file, and checked
against a fresh sample by the tests. Published age- and sex-specific norms replace them where
they can be read.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ParameterError
from . import features as FT

NORMS_FILE = Path(__file__).with_name("feature_norms.json")
DEFAULT_SUBJECTS = 200
CHILD_SUBJECTS = 100  # per sex and age band
DEFAULT_SEED = 20261206
#: children's age bands (years, low inclusive, high exclusive); 18 and over use the adult norms
CHILD_BANDS = ((1.0, 3.0), (3.0, 6.0), (6.0, 10.0), (10.0, 14.0), (14.0, 18.0))


def band_label(band: tuple[float, float]) -> str:
    return f"{band[0]:g}-{band[1]:g}"


def sample_measurements(sex: str, n: int, seed: int, ages: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """Every facial measurement of ``n`` unaffected phantom heads of one sex (ages uniform over
    ``ages``; the phantom's adult range by default)."""
    from .head import DEFAULT_AGES, make_head, sample_subject

    stream = [seed, 0 if sex == "F" else 1] + ([] if ages is None else [int(ages[0] * 10), int(ages[1] * 10)])
    rng = np.random.default_rng(stream)
    span = DEFAULT_AGES if ages is None else (ages[0], np.nextafter(ages[1], ages[0]))
    rows = [FT.measure_all(make_head(sample_subject(rng, sex=sex, subject_id=f"norm-{i}", ages=span)).landmarks)
            for i in range(n)]
    return {mid: np.array([r[mid] for r in rows]) for mid in rows[0]}


def _table(values: dict[str, np.ndarray]) -> dict:
    return {mid: dict(zip(("mean", "sd"), (round(x, 4) for x in robust_centre_spread(v)))) for mid, v in values.items()}


def compute_norms(n: int = DEFAULT_SUBJECTS, seed: int = DEFAULT_SEED, n_child: int = CHILD_SUBJECTS) -> dict:
    out = {"population": "medface phantom, unaffected adults (synthetic)", "subjects_per_sex": n,
           "seed": seed, "statistics": "mean = median, sd = 1.4826 x MAD", "sexes": {},
           "children": {"population": "medface phantom, unaffected children by age band (synthetic, growth model)",
                        "subjects_per_sex_and_band": n_child, "bands": {}}}
    for sex in ("F", "M"):
        out["sexes"][sex] = _table(sample_measurements(sex, n, seed))
    for band in CHILD_BANDS:
        out["children"]["bands"][band_label(band)] = {
            sex: _table(sample_measurements(sex, n_child, seed, ages=band)) for sex in ("F", "M")}
    return out


def robust_centre_spread(values: np.ndarray) -> tuple[float, float]:
    """Median and 1.4826 x median absolute deviation: the mean and SD of a normal population,
    undisturbed by the few phantom heads whose skin pinning moves a landmark far (docs/phantom.md)."""
    median = float(np.median(values))
    return median, 1.4826 * float(np.median(np.abs(values - median)))


@lru_cache(maxsize=1)
def norms() -> dict:
    with open(NORMS_FILE, encoding="utf-8") as fh:
        return json.load(fh)


def child_band(age: float) -> tuple[float, float] | None:
    """The age band of ``age`` (years), None for an adult; an age below the first band is refused."""
    from .growth import check_age

    age = check_age(age)
    return next((b for b in CHILD_BANDS if b[0] <= age < b[1]), None)


def norm(measure_id: str, sex: str, age: float | None = None) -> tuple[float, float]:
    """(mean, SD) of a facial measurement in the phantom population of ``sex`` ("F" or "M"): of
    the adults, or of the children of ``age``'s band."""
    band = None if age is None else child_band(age)
    table = norms()["sexes"] if band is None else norms()["children"]["bands"][band_label(band)]
    if sex not in table:
        raise ParameterError(f"sex must be 'F' or 'M' for a phantom norm, got {sex!r}", parameter="sex")
    if measure_id not in table[sex]:
        raise ParameterError(f"no phantom norm for {measure_id!r}", parameter="measure")
    entry = table[sex][measure_id]
    return entry["mean"], entry["sd"]


def z_scores(landmarks: dict, sex: str, age: float | None = None) -> dict[str, float]:
    """z-score of every measurement the landmarks allow, against the phantom norms of ``sex``
    (and of ``age``'s band for a child)."""
    out = {}
    for mid, value in FT.measure_all(landmarks).items():
        mean, sd = norm(mid, sex, age)
        out[mid] = (value - mean) / sd if sd > 0 else 0.0
    return out


def suggested_terms(landmarks: dict, sex: str, age: float | None = None) -> list[dict]:
    """The facial HPO terms whose measurement lies beyond its threshold in the feature's direction
    (z against the phantom norms), strongest first: objective dysmorphology."""
    return terms_beyond(z_scores(landmarks, sex, age))


def terms_beyond(z: dict) -> list[dict]:
    """The vocabulary's terms whose measurement's z-score (measure id -> z) lies beyond the
    feature's threshold in its direction, strongest first."""
    out = []
    for f in FT.FEATURES:
        if f.measure in z and f.direction * z[f.measure] >= f.threshold_sd:
            out.append({"hpo": f.hpo, "label": f.label, "feature": f.id, "measure": f.measure,
                        "z": round(z[f.measure], 2), "threshold_sd": f.threshold_sd})
    return sorted(out, key=lambda t: -abs(t["z"]))


def _main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else DEFAULT_SUBJECTS
    n_child = int(argv[1]) if len(argv) > 1 else CHILD_SUBJECTS
    table = compute_norms(n, n_child=n_child)
    NORMS_FILE.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"wrote {NORMS_FILE.name}: {n} adults per sex, {n_child} children per sex and age band")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
