"""`phenotype measure`: objective dysmorphology from named 3D landmarks.

A landmark file (3D Slicer markups or CSV, ids from the landmark vocabulary, millimetres) of a
face scan or a head is put into its head frame (:func:`medface.phantom.features.frankfurt_aligned`),
every facial measurement of the feature vocabulary its landmarks allow is taken, each is scored
against the phantom population's norm for the sex and age (:mod:`medface.phantom.norms`:
synthetic adults aged 20-75, and children by age band through the phantom's growth model; not a
clinical norm) and the HPO terms beyond their 2 SD threshold are
listed ("intercanthal width +2.8 SD: HP:0000506 Telecanthus"). Without porion and orbitale,
or tragion and soft-tissue orbitale, no horizontal can be fixed: only the measurements that do
not depend on orientation are reported, and the others are named as not measured.
"""

from __future__ import annotations

import numpy as np

from medface.data import Result
from medface.errors import InputError, ParameterError
from medface.phantom import features as FT
from medface.phantom import norms as N

LIMIT = ("z-scores are against the medface phantom's population (synthetic adults aged 20-75, and synthetic "
         "children by age band from a growth model partly made of assumptions, docs/phantom.md), not clinical "
         "norms: a research aid for orienting a clinician, not a diagnosis.")
#: plausible spans (mm) of the inner-canthal distance: outside them the file is not in millimetres
INTERCANTHAL_MM = (12.0, 60.0)


def measure_landmarks(landmarks, sex: str, age: float | None = None) -> dict:
    """Measurements, z-scores and suggested terms of a landmark set (a ``Landmarks`` or id -> point)
    against the norms of ``sex`` and ``age`` (None: an adult)."""
    points = landmarks.to_dict() if hasattr(landmarks, "to_dict") else dict(landmarks)
    if sex not in ("F", "M"):
        raise ParameterError(f"sex must be F or M for the phantom norms, got {sex!r}", parameter="sex")
    _check_units(points)
    aligned, horizontal = FT.frankfurt_aligned(points)
    usable = aligned if aligned is not None else points
    wanted = FT.measure_ids() if aligned is not None else sorted(FT.ORIENTATION_FREE)
    values = FT.measure_all(usable, list(wanted))
    rows, z = [], {}
    for mid, value in values.items():
        mean, sd = N.norm(mid, sex, age)
        z[mid] = (value - mean) / sd if sd > 0 else 0.0
        rows.append({"measurement": mid, "description": FT.measure_description(mid), "value": round(value, 2),
                     "norm_mean": round(mean, 2), "norm_sd": round(sd, 2), "z": round(z[mid], 2)})
    missing = [m for m in FT.measure_ids() if m not in values]
    suggested = N.terms_beyond(z)  # only what was measured: without a frame, orientation-free terms
    return {"measurements": rows, "suggested": suggested, "not_measured": missing,
            "horizontal": horizontal if aligned is not None else None,
            "frame_problem": None if aligned is not None else horizontal}


def _check_units(points: dict) -> None:
    if "en_l" in points and "en_r" in points:
        d = float(np.linalg.norm(np.asarray(points["en_l"], float) - np.asarray(points["en_r"], float)))
        lo, hi = INTERCANTHAL_MM
        if not lo <= d <= hi:
            raise InputError(f"the inner canthi lie {d:.3g} apart: not a face in millimetres (expected "
                             f"{lo:g}-{hi:g} mm)", hint="save the landmarks in mm (markups 'units')")


INFANT_REFUSAL = ("the phantom's growth model starts at {min_age:g} year: an infant's face (age {age:g}) has no "
                  "norm here, and an older child's would mislead")
NO_AGE_WARNING = ("no age given: the z-scores assume an adult (a child's proportions differ: give --age for "
                  "the norms of the child's age band)")


def measure(landmarks, sex: str = "F", age: float | None = None, context=None) -> Result:
    """CLI entry of `phenotype measure`: z-scores against the norms of the sex and, for a child,
    of its age band; an infant under the growth model's first year is refused."""
    from medface.phantom import growth as GR

    if age is not None and age < GR.MIN_AGE:
        result = Result(command="phenotype.measure", limits=[LIMIT])
        return result.refuse(INFANT_REFUSAL.format(age=age, min_age=GR.MIN_AGE))
    found = measure_landmarks(landmarks, sex, age)
    result = Result(command="phenotype.measure",
                    summary={"measurements": len(found["measurements"]),
                             "suggested terms": "; ".join(f"{t['hpo']} {t['label']} ({t['measure']} {t['z']:+.1f} SD)"
                                                          for t in found["suggested"]) or "none",
                             "horizontal": found["horizontal"] or "none (orientation-free measurements only)"},
                    tables={"suggested terms": [{"hpo": t["hpo"], "term": t["label"], "measurement": t["measure"],
                                                 "z": t["z"]} for t in found["suggested"]],
                            "measurements": found["measurements"]},
                    limits=[LIMIT])
    if age is not None:
        band = N.child_band(age)
        result.summary["norms"] = f"children aged {N.band_label(band)} y" if band else "adults"
    result.metrics.update({f"z_{r['measurement']}": r["z"] for r in found["measurements"]})
    if found["frame_problem"]:
        result.warnings.append(f"no head frame ({found['frame_problem']}): angles, heights and offsets were not "
                               f"measured ({', '.join(found['not_measured'])})")
    elif found["not_measured"]:
        result.warnings.append(f"not measured (landmarks missing): {', '.join(found['not_measured'])}")
    if age is None:
        result.warnings.append(NO_AGE_WARNING)
    if found["horizontal"] == "frankfurt-soft-tissue":
        result.warnings.append("the horizontal is the soft-tissue Frankfurt line (tragion-orbitale'), about 2 "
                               "degrees off the bony one: angles carry that error")
    return result
