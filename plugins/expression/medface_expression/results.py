"""From a :class:`~.grading.Grading` to a :class:`medface.data.Result`: summary, metrics, tables,
warnings, limits and the declared pictures and CSV (the runner writes them)."""

from __future__ import annotations

from pathlib import Path

from medface.data import FaceImage, Result
from medface.errors import InputError

from .grading import Grading
from .photoset import EXPRESSIONS, photos_in_folder

LIMITS = [
    "Research software, not a medical device: the measurements and scores have been validated only on "
    "synthetic phantom faces with known palsy, plus a visual check of the landmarks on two real portraits.",
    "Distances are in mm only as far as the iris diameter is the assumed one (11.7 mm in adults; children and "
    "some eyes differ); with --units iris they are in iris diameters.",
    "The eFACE-style scores cover only the items the face landmarks can measure (no nasolabial fold, no mentalis "
    "or platysmal synkinesis); their limits are our assumptions, not Banks et al.'s (docs/expression.md).",
    "Dental show is the area of the mouth opening between the inner lip margins: the landmarks do not see teeth.",
    "Landmarks are a statistical model's estimate; closed eyes, a beard, glasses or strong light move them.",
    "The photos of a session are taken to show one person on one day: nothing checks it (the landmark shapes of "
    "two different people differed no more than one phantom's across its expressions), so a photo of someone "
    "else gives a wrong grade without a warning.",
]


def collect_photos(photos: Path | None, given: dict[str, FaceImage | None]) -> tuple[dict[str, FaceImage], list]:
    """The session's photos: a folder's (by the naming convention) and those given one by one
    (which win), with a warning for ignored files."""
    from medface.io import read_image

    images, warnings = {}, []
    if photos is not None:
        found, ignored = photos_in_folder(photos)
        images = {expr: read_image(path) for expr, path in found.items()}
        if ignored:
            warnings.append(f"ignored files not named by an expression: {', '.join(ignored)}")
    images.update({expr: img for expr, img in given.items() if img is not None})
    if photos is None and not images:
        raise InputError("no photos were given", hint="give --photos DIR (rest.jpg, smile.jpg, ...) or --rest PHOTO "
                         "and the other expressions' photos")
    return images, warnings


def _summary(g: Grading) -> dict:
    s = g.scores
    unit = "mm" if g.units == "mm" else "iris diameters"
    summary = {"photos": ", ".join(e for e in EXPRESSIONS if e in g.quality), "affected_side": s.affected_side,
               "efacestyle_static": s.static, "efacestyle_dynamic": s.dynamic,
               "efacestyle_synkinesis": s.synkinesis, "efacestyle_total": s.total, "units": unit}
    rest = g.measurements["rest"]
    for name in ("brow_height", "mrd1", "fissure_height", "commissure_excursion"):
        summary[f"rest_{name}_right_left"] = f"{rest['right'][name]:.1f} / {rest['left'][name]:.1f}"
    return summary


def _metrics(g: Grading) -> dict:
    m = {"eye_distance_mm": round(g.eye_distance_mm, 3), "movement_asymmetry": g.scores.asymmetry,
         "affected_side_by": g.scores.side_by, "region_weakness": dict(g.scores.regions)}
    for key in ("static", "dynamic", "synkinesis", "total"):
        m[f"score_{key}"] = getattr(g.scores, key)
    for expr, sides in g.measurements.items():
        for side, values in sides.items():
            m.update({f"{expr}.{side}.{k}": round(v, 4) for k, v in values.items()})
    for expr, sides in g.movement.items():
        m.update({f"movement.{expr}.{side}": round(v, 4) for side, v in sides.items()})
    return m


def declare_pictures(result: Result, g: Grading, images: dict[str, FaceImage]) -> None:
    from .figures import annotated_photo, movement_bars, side_bars, side_by_side

    unit = "mm" if g.units == "mm" else "iris d."
    drawn = {e: annotated_photo(images[e], g.landmarks[e], g.frames[e], g.measurements[e], g.mm_per_unit, unit, e)
             for e in g.measurements}
    for expr, picture in drawn.items():
        result.declare(f"{expr} measured", f"{expr}_measured.png", picture, figure=f"{expr} measured", face=True)
    result.declare("per-side measurements (rest)", "rest_sides.png", side_bars(g.measurements["rest"], "rest", unit),
                   figure="per-side measurements (rest)")
    if g.movement:
        result.declare("movement from rest", "movement.png", movement_bars(g.movement, unit), figure="movement from rest")
    if "smile" in drawn:
        result.declare("rest and smile", "rest_smile.png", side_by_side(drawn["rest"], drawn["smile"]),
                       figure="rest and smile", face=True)


def grading_result(g: Grading, images: dict[str, FaceImage], warnings: list, figures: bool = True) -> Result:
    result = Result(command="expression.grade", warnings=list(warnings), limits=list(LIMITS),
                    data={"grading": g})
    quality = [{"photo": e, "check": c.name, "status": c.status, "finding": c.message}
               for e, q in g.quality.items() for c in q.checks]
    result.tables["quality checks"] = quality
    for expr, why in g.skipped.items():
        result.warnings.append(f"the {expr} photo was left out: {why}")
    result.warnings.extend(g.warnings)
    if not g.measurements:
        result.summary = {"verdict": f"refused: the rest photo failed the quality gate: {g.skipped['rest']}"}
        return result.refuse(f"rest photo: {g.skipped['rest']}")
    result.summary, result.metrics = _summary(g), _metrics(g)
    rows = g.rows()
    result.tables.update({"measurements": rows, "scores": g.scores.items,
                          "movement": [{"expression": e, **m} for e, m in g.movement.items()]})
    result.declare("measurements", "measurements.csv", rows, kind="table")
    result.declare("scores", "scores.csv", g.scores.items, kind="table")
    if figures:
        declare_pictures(result, g, images)
    return result
