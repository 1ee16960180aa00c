"""Cephalometric norms per sex, normal ranges and z-scores for :mod:`.cephalometry`'s measures.

The norms are a data file, ``cephalometric_norms.csv`` beside this module; its header cites each
source. Lengths come from Riolo et al. 1974 (University of Michigan growth study, age 16, men
n = 23, women n = 9), split by sex and with no sex-pooled row (the atlas gives none). Angles come
from the classical analyses (Steiner 1953, Downs 1948, Tweed 1954), which have no sex split:
they are "pooled" rows and serve both sexes. SDs that no source we could read gives are marked
as assumptions in the file (column ``assumption``) and carried into every result.

The **normal range** is mean +- 1 SD (about 68 % of a normal population), and the **z-score**
``(value - mean) / SD``. 2D lateral-cephalogram norms are applied to 3D landmark measures: the
angles are measured in the head's own mid-sagittal projection, the lengths as 3D distances;
the films' radiographic enlargement is not corrected (``docs/surgery.md``).

``sex``: ``"M"``, ``"F"``, or None / ``"unknown"`` for pooled norms only; a measure whose norms
are sex-specific then gets no z-score, and the row says why. Sex is never guessed.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import InputError

NORMS_FILE = Path(__file__).with_name("cephalometric_norms.csv")
SEXES = ("M", "F")
POOLED = "pooled"
#: the age the Riolo rows describe (years)
RIOLO_AGE = 16.0
_SEX_WORDS = {"m": "M", "male": "M", "man": "M", "f": "F", "female": "F", "woman": "F",
              "": None, "unknown": None, "u": None, "pooled": None, "none": None}


@dataclass(frozen=True)
class Norm:
    """One row of the norms table: a measure's mean and SD for one sex (or pooled)."""

    measure: str
    sex: str  # "M", "F" or "pooled"
    mean: float
    sd: float | None
    n: int | None
    age_group: str
    source: str
    riolo_short_name: str = ""
    assumption: str = ""

    @property
    def normal_range(self) -> tuple[float, float] | None:
        """(mean - SD, mean + SD), or None without an SD."""
        return None if self.sd is None else (self.mean - self.sd, self.mean + self.sd)


def _number(text: str, kind=float):
    text = text.strip()
    return kind(text) if text else None


@lru_cache(maxsize=4)
def _load(path: str) -> tuple[Norm, ...]:
    with open(path, newline="", encoding="utf-8") as f:
        rows = [line for line in f if not line.startswith("#")]
    out = []
    for row in csv.DictReader(rows):
        sd = _number(row["sd"])
        if row["sex"] not in (*SEXES, POOLED):
            raise InputError(f"{path}: sex must be M, F or pooled, got {row['sex']!r} for {row['measure']}")
        if sd is not None and sd <= 0:
            raise InputError(f"{path}: SD of {row['measure']} ({row['sex']}) must be positive")
        out.append(Norm(row["measure"], row["sex"], float(row["mean"]), sd, _number(row["n"], int),
                        row["age_group"], row["source"], row["riolo_short_name"], row["assumption"]))
    return tuple(out)


def load_norms(path: str | Path | None = None) -> tuple[Norm, ...]:
    """Every row of the norms table (default: the shipped ``cephalometric_norms.csv``)."""
    return _load(str(path or NORMS_FILE))


def norm_sex(sex) -> str | None:
    """``"M"``, ``"F"`` or None (pooled / unknown) from a user's sex value; anything else is refused."""
    if sex is None:
        return None
    key = str(sex).strip().lower()
    if key not in _SEX_WORDS:
        raise InputError(f"unknown sex {sex!r} for the cephalometric norms",
                         hint="use M, F, or unknown (pooled norms only); medface never guesses sex")
    return _SEX_WORDS[key]


def norm_for(measure_id: str, sex=None, *, norms=None) -> Norm | None:
    """The norm a measure is compared with: the row of that sex, else the pooled row, else None."""
    sex = norm_sex(sex)
    rows = [n for n in (norms or load_norms()) if n.measure == measure_id]
    for wanted in ((sex, POOLED) if sex else (POOLED,)):
        for n in rows:
            if n.sex == wanted:
                return n
    return None


def z_score(value: float, mean: float, sd: float | None) -> float | None:
    """``(value - mean) / sd``; None without an SD."""
    return None if sd is None else (float(value) - mean) / sd


def _age_note(norm: Norm, age) -> str:
    if age is None or norm.riolo_short_name == "":
        return ""
    if age < RIOLO_AGE - 0.5:
        return f"norm is for age 16; at age {age:g} the face is still growing, so the z-score is biased"
    if age > RIOLO_AGE + 0.5:
        return "norm is for age 16, not adult: male faces still grow after 16"
    return ""


def compare(measures: dict[str, float], sex=None, age: float | None = None, *, norms=None) -> dict[str, dict]:
    """Each measure against its norm: ``{id: {norm_mean, norm_sd, normal_low, normal_high, z, norm_sex,
    norm_n, age_group, norm_source, norm_note}}``.

    ``normal_low``/``normal_high`` are mean -+ 1 SD. A measure with no usable norm gets None in every
    number and a ``norm_note`` saying why (no norm in the table; sex-specific norms and no sex
    given; no SD in a verifiable source). ``age`` (years) only adds a note where it differs from
    the norms' age group; it never changes the numbers.
    """
    sex = norm_sex(sex)
    if age is not None and not (0 <= float(age) < 130):
        raise InputError(f"age must be in years (0-130), got {age!r}")
    table = norms or load_norms()
    out = {}
    for mid, value in measures.items():
        norm = norm_for(mid, sex, norms=table)
        if norm is None:
            has_sexed = any(n.measure == mid for n in table)
            note = ("norms for this measure are per sex (no pooled row): give sex M or F for a z-score"
                    if has_sexed and sex is None else "no norm in the table for this measure")
            out[mid] = {"norm_mean": None, "norm_sd": None, "normal_low": None, "normal_high": None, "z": None,
                        "norm_sex": None, "norm_n": None, "age_group": None, "norm_source": None, "norm_note": note}
            continue
        low_high = norm.normal_range
        notes = [norm.assumption, _age_note(norm, age)]
        if norm.sd is None and not norm.assumption:
            notes.append("no SD: no normal range or z-score")
        out[mid] = {"norm_mean": norm.mean, "norm_sd": norm.sd,
                    "normal_low": None if low_high is None else low_high[0],
                    "normal_high": None if low_high is None else low_high[1],
                    "z": z_score(value, norm.mean, norm.sd), "norm_sex": norm.sex, "norm_n": norm.n,
                    "age_group": norm.age_group, "norm_source": norm.source,
                    "norm_note": "; ".join(n for n in notes if n)}
    return out
