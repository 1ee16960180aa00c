"""`phenotype phantom-data`: a phantom cohort rendered as a GMDB-layout data set.

:class:`PhantomCohort` describes the cohort (checked names, subjects per label) and knows its
photo counts without rendering; its ``save(path)`` renders it (the command declares it as a
saveable output, so the runner renders it into the output folder).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medface.data import Result
from medface.errors import ParameterError

from .dataset import CONTROL_LABEL, CSV_NAME, PHANTOM_AGES, write_phantom_dataset

LIMIT = ("Synthetic faces from the medface phantom: condition presets are single-measurement shifts; "
         "syndromes draw their annotated facial terms (HPO) as landmark shifts, not a real gestalt; the renders "
         "are not photographs of people.")


def _names(text: str, parameter: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if len(set(names)) != len(names):
        raise ParameterError(f"names repeat in {text!r}", parameter=parameter)
    return names


@dataclass(frozen=True)
class PhantomCohort:
    """Subjects per condition preset, controls, severities drawn in turn, photos per subject and
    the seed of a phantom data set."""

    subjects_per_condition: dict
    controls: int
    severities: tuple[str, ...]
    photos_per_subject: int
    seed: int
    surfaces_per_subject: int = 0
    ages: tuple[float, float] = PHANTOM_AGES

    @classmethod
    def from_syndromes(cls, *, syndromes: int, rare_syndromes: int, subjects: int, rare_subjects: int,
                       controls: int, photos: int, seed: int, surfaces: int = 0,
                       ages: tuple[float, float] = PHANTOM_AGES) -> "PhantomCohort":
        """A cohort of catalogue syndromes: the ``syndromes`` frequent ones with the most
        expressible terms (``subjects`` each) and ``rare_syndromes`` rare ones with
        ``min(rare_subjects, 6)`` each (:data:`.syndromes.RARE_SUBJECTS_MAX`: GMDB's rare set)."""
        from . import syndromes as S

        rare_subjects = min(int(rare_subjects), S.RARE_SUBJECTS_MAX)
        spc = {s.id: subjects for s in S.choose(syndromes)}
        if rare_subjects and rare_syndromes:
            spc.update({s.id: rare_subjects for s in S.choose(rare_syndromes, rare=True)})
        return cls(spc, controls, ("moderate",), photos, seed, surfaces, ages)

    @classmethod
    def from_names(cls, *, subjects: int, rare_subjects: int, controls: int, rare: str, severities: str,
                   photos: int, seed: int, surfaces: int = 0,
                   ages: tuple[float, float] = PHANTOM_AGES) -> "PhantomCohort":
        """A cohort from the command's comma-separated names (checked against the phantom's)."""
        from medface.phantom import tables as TB

        known = [c.id for c in TB.CONDITIONS]
        rare_list = _names(rare, "rare")
        unknown = [r for r in rare_list if r not in known]
        if unknown:
            raise ParameterError(f"unknown condition(s) {', '.join(unknown)}; known: {', '.join(known)}",
                                 parameter="rare")
        sev = _names(severities, "severities")
        if not sev or any(s not in TB.SEVERITIES for s in sev):
            raise ParameterError(f"severities must be among {', '.join(TB.SEVERITIES)}, got {severities!r}",
                                 parameter="severities")
        spc = {c: (rare_subjects if c in rare_list else subjects) for c in known}
        return cls({c: n for c, n in spc.items() if n > 0}, controls, tuple(sev), photos, seed, surfaces, ages)

    def photos_per_label(self) -> dict[str, int]:
        """How many images (photos and surface renders) each label gets, by label name."""
        groups = {CONTROL_LABEL: int(self.controls), **self.subjects_per_condition}
        per_subject = self.photos_per_subject + self.surfaces_per_subject
        return {label: n * per_subject for label, n in sorted(groups.items()) if n > 0}

    def save(self, path) -> Path:
        """Render the cohort into the folder of ``path`` (its metadata.csv); returns the folder."""
        return write_phantom_dataset(Path(path).parent, subjects_per_condition=self.subjects_per_condition,
                                     controls=self.controls, severities=self.severities,
                                     photos_per_subject=self.photos_per_subject, seed=self.seed,
                                     surfaces_per_subject=self.surfaces_per_subject, ages=self.ages)


def parse_ages(text: str) -> tuple[float, float]:
    """"LO-HI" (years) -> (lo, hi), checked against the phantom's supported ages."""
    from medface.phantom.head import checked_ages

    parts = str(text).replace(" ", "").split("-")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ParameterError(f"ages must be LO-HI in years (e.g. 1-18), got {text!r}", parameter="ages") from None
    return checked_ages((lo, hi))


def phantom_data(out, subjects: int = 100, rare_subjects: int = 16, controls: int = 150,
                 rare: str = "hypotelorism,thin_upper_lip_vermilion,hemifacial_microsomia",
                 severities: str = "moderate,severe", photos: int = 2, *, seed: int = 1, surfaces: int = 0,
                 syndromes: int = 0, rare_syndromes: int = 0, ages: str = "20-75", context=None) -> Result:
    """CLI entry of `phenotype phantom-data`: the cohort is rendered when the runner saves it.
    With ``syndromes`` > 0 its labels are catalogue syndromes instead of condition presets; ages
    are drawn uniformly from ``ages`` ("LO-HI" years, children through the growth model)."""
    span = parse_ages(ages)
    if syndromes:
        cohort = PhantomCohort.from_syndromes(syndromes=syndromes, rare_syndromes=rare_syndromes, subjects=subjects,
                                              rare_subjects=rare_subjects, controls=controls, photos=photos,
                                              seed=seed, surfaces=surfaces, ages=span)
    else:
        cohort = PhantomCohort.from_names(subjects=subjects, rare_subjects=rare_subjects, controls=controls,
                                          rare=rare, severities=severities, photos=photos, seed=seed,
                                          surfaces=surfaces, ages=span)
    counts = cohort.photos_per_label()
    if context is not None:
        context.stage(f"rendering {sum(counts.values())} phantom images")
    result = Result(command="phenotype.phantom-data",
                    summary={"photos": sum(counts.values()), "conditions": len(set(counts) - {CONTROL_LABEL}),
                             "folder": str(Path(out))},
                    tables={"photos per label": [{"label": k, "photos": v} for k, v in counts.items()]},
                    limits=[LIMIT])
    return result.declare("metadata", CSV_NAME, cohort, kind="saveable")
