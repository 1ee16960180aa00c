"""`phenotype phantom-data`: a phantom cohort rendered as a GMDB-layout data set."""

from __future__ import annotations

from pathlib import Path

from medface.data import Result
from medface.errors import ParameterError

from .dataset import CSV_NAME, read_dataset, write_phantom_dataset


def _names(text: str, parameter: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if len(set(names)) != len(names):
        raise ParameterError(f"names repeat in {text!r}", parameter=parameter)
    return names


def phantom_data(out, subjects: int = 100, rare_subjects: int = 16, controls: int = 150,
                 rare: str = "hypotelorism,thin_upper_lip_vermilion,hemifacial_microsomia",
                 severities: str = "moderate,severe", photos: int = 2, seed: int = 1) -> Result:
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
    spc = {c: n for c, n in spc.items() if n > 0}
    root = write_phantom_dataset(out, subjects_per_condition=spc, controls=controls, severities=tuple(sev),
                                 photos_per_subject=photos, seed=seed)
    ds = read_dataset(root)
    counts: dict[str, int] = {}
    for r in ds.records:
        counts[r.label] = counts.get(r.label, 0) + 1
    return Result(command="phenotype.phantom-data",
                  summary={"photos": len(ds), "conditions": len(ds.conditions()), "folder": str(root)},
                  outputs={"metadata": str(Path(root) / CSV_NAME)},
                  tables={"photos per label": [{"label": k, "photos": v} for k, v in sorted(counts.items())]},
                  limits=["Synthetic faces from the medface phantom: condition presets are single-measurement "
                          "shifts, not syndromes, and the renders are not photographs of people."])
