"""eFACE-style scores from the measurements: static, dynamic and synkinesis sub-scores, a total,
and the affected side.

The eFACE (Banks et al. 2015, Plast Reconstr Surg 136:223e-230e) has a clinician score 15
items, 0-100 each (100: normal, balanced); its sub-scores are the means of the static (4),
dynamic (7) and synkinesis (4) items. Here the items that the landmarks can measure are scored
by the rules below; the others (nasolabial fold depth and orientation, mentalis and platysmal
synkinesis) are listed as not automated, and every mean is over the automated items only, so
the numbers are eFACE-*style*, not eFACE scores. Every limit marked "assumption" was chosen by
us, not taken from Banks et al.; docs/expression.md lists them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

#: the movement each expression is for, and the least movement (mm, or fraction of the fissure
#: for eye closure) that counts as a movement at all (assumption): below it on both sides the item
#: is not scored ("the expression was not performed?")
MOVEMENTS = {
    "brow_raise": ("brow elevation", 1.0),
    "eye_closure_gentle": ("gentle eye closure", 0.15),
    "eye_closure_full": ("full eye closure", 0.15),
    "smile": ("oral commissure movement with smile", 1.5),
    "pucker": ("pucker (medial commissure movement)", 1.0),
    "lower_lip_depression": ("lower lip movement", 1.0),
}
#: static items: a side difference of this many mm scores 0 (linear from 100 at none; assumption)
BROW_ZERO_MM, COMMISSURE_ZERO_MM = 8.0, 8.0
#: movement asymmetry (|left - right| / larger, mean over the scored dynamic items) within normal,
#: and the static side difference within normal (mm); both assumptions
NORMAL_DYNAMIC_ASYMMETRY, NORMAL_STATIC_MM = 0.2, 2.0
#: the regions of the second side rule (used when the mean rule above finds no side): the eFACE's brow,
#: eye, mouth and lower lip, the phantom's palsy regions, and the movements that measure each. The pucker
#: is left out: not an eFACE item, and the noisiest movement on the phantom's faces without palsy
SIDE_REGIONS = {"brow": ("brow_raise",), "eye": ("eye_closure_gentle", "eye_closure_full"),
                "smile": ("smile",), "lower_lip": ("lower_lip_depression",)}
#: each region's normal limit of its signed movement asymmetry ((left - right) / larger, the mean over
#: its scored movements): 4 x its root-mean-square over the 40 faces without palsy of the dev phantom
#: sessions (seeds 1000, 2000, 5000 and 6000; RMS brow 0.092, eye 0.043, smile 0.169, lower lip 0.045),
#: rounded to 0.01 (assumption: the phantom's normal spread stands in for real faces' natural asymmetry,
#: which was not measured; docs/expression.md and docs/validation/expression.md)
REGION_LIMITS = {"brow": 0.37, "eye": 0.17, "smile": 0.68, "lower_lip": 0.18}
#: synkinesis: extra eye narrowing (mm of fissure height) during smile or pucker, and extra
#: commissure movement (mm) during full eye closure, on the affected side, that score 0 (assumption)
OCULAR_ZERO_MM, MIDFACIAL_ZERO_MM = 4.0, 4.0
NOT_AUTOMATED = {"static": ["nasolabial fold depth at rest"],
                 "dynamic": ["nasolabial fold depth with smile", "nasolabial fold orientation with smile"],
                 "synkinesis": ["mentalis synkinesis", "platysmal synkinesis"]}


@dataclass
class Scores:
    """Item scores (0-100, 100 normal; None: not scorable from these photos) and their means."""

    items: list[dict] = field(default_factory=list)
    static: float | None = None
    dynamic: float | None = None
    synkinesis: float | None = None
    total: float | None = None
    affected_side: str = "none"
    asymmetry: float = 0.0  # signed: > 0 when the left side moves more (the right is weaker)
    regions: dict = field(default_factory=dict)  # region -> its asymmetry over its limit (> 0: right weaker)
    side_by: str = ""  # which rule found the side (:func:`side_basis`)

    def to_dict(self) -> dict:
        return asdict(self)


def movements(measured: dict, shifts: dict) -> dict[str, dict[str, float]]:
    """The movement of each expression photo from rest, per side (see :data:`MOVEMENTS`)."""
    rest, out = measured["rest"], {}
    for expr, m in measured.items():
        if expr == "rest":
            continue
        row = {}
        for side in ("right", "left"):
            r, e = rest[side], m[side]
            row[side] = {
                "brow_raise": e["brow_height"] - r["brow_height"],
                "eye_closure_gentle": 1.0 - e["fissure_height"] / max(r["fissure_height"], 1e-6),
                "eye_closure_full": 1.0 - e["fissure_height"] / max(r["fissure_height"], 1e-6),
                "smile": shifts.get(expr, {}).get(side, 0.0),
                "pucker": r["commissure_width"] - e["commissure_width"],
                "lower_lip_depression": e["lower_lip_height"] - r["lower_lip_height"],
            }.get(expr, 0.0)
        out[expr] = row
    return out


def _ratio(m: dict, affected: str) -> float:
    """The weaker side's movement over the stronger's (the affected over the other when known)."""
    if affected in ("right", "left"):
        other = "left" if affected == "right" else "right"
        weak, strong = m[affected], m[other]
    else:
        weak, strong = min(m.values()), max(m.values())
    return float(np.clip(weak / strong, 0.0, 1.0)) if strong > 0 else 0.0


def _scored(moved: dict, expr: str) -> bool:
    return expr in moved and max(moved[expr].values()) >= MOVEMENTS[expr][1]


def _signed(m: dict) -> float:
    """``(left - right) / larger`` of one movement: > 0 when the right side moves less."""
    return (m["left"] - m["right"]) / max(abs(m["left"]), abs(m["right"]))


def region_weakness(moved: dict) -> dict[str, float]:
    """Per region of :data:`SIDE_REGIONS` with a scored movement: the mean signed asymmetry of its
    movements over the region's normal limit (:data:`REGION_LIMITS`); beyond +-1 the region moves
    less than normal on one side (> 0: the right)."""
    out = {}
    for region, exprs in SIDE_REGIONS.items():
        values = [_signed(moved[e]) for e in exprs if _scored(moved, e)]
        if values:
            out[region] = round(float(np.mean(values)) / REGION_LIMITS[region], 4)
    return out


def side_of_regions(weakness: dict[str, float]) -> str:
    """The per-region rule's side: that of the region furthest beyond its normal limit; "none" when
    no region is beyond it (or the furthest on each side are equally far)."""
    right = max([0.0] + list(weakness.values()))
    left = max([0.0] + [-w for w in weakness.values()])
    if max(right, left) <= 1.0 or right == left:
        return "none"
    return "right" if right > left else "left"


def _mean_rule(moved: dict) -> tuple[str, float] | None:
    """The mean rule: the mean signed asymmetry over the scored movements, "none" within
    :data:`NORMAL_DYNAMIC_ASYMMETRY`; None when no movement is scored."""
    asym = [_signed(m) for expr, m in moved.items() if _scored(moved, expr)]
    if not asym:
        return None
    a = float(np.mean(asym))
    return ("none" if abs(a) <= NORMAL_DYNAMIC_ASYMMETRY else "right" if a > 0 else "left"), a


def side_conflict(moved: dict) -> str | None:
    """A warning when the mean rule and the per-region rule name opposite sides (the mean rule's wins)."""
    mean, weakness = _mean_rule(moved), region_weakness(moved)
    regions = side_of_regions(weakness)
    if mean is None or "none" in (mean[0], regions) or mean[0] == regions:
        return None
    sign = 1.0 if regions == "right" else -1.0
    weak = sorted(r.replace("_", " ") for r, w in weakness.items() if sign * w > 1.0)
    return (f"the affected side is unclear: the mean movement asymmetry ({mean[1]:+.2f}) names the subject's "
            f"{mean[0]}, but the {regions} moves less than normal in the {', '.join(weak)} (beyond the region's "
            f"normal limit); the mean's side ({mean[0]}) is used")


def side_basis(moved: dict) -> str:
    """Which rule of :func:`affected_side` decides: ``"mean asymmetry"``, ``"regions"`` (the mean
    found none, a region is beyond its limit), ``"none"`` (neither names a side) or ``"rest photo"``
    (no movement scored)."""
    mean = _mean_rule(moved)
    if mean is None:
        return "rest photo"
    if mean[0] != "none":
        return "mean asymmetry"
    return "regions" if side_of_regions(region_weakness(moved)) != "none" else "none"


def affected_side(measured: dict, moved: dict) -> tuple[str, float]:
    """``(side, asymmetry)``: the mean rule's side (:func:`_mean_rule`) when it names one, else the
    per-region rule's (:func:`side_of_regions`), "none" when neither names a side; from the rest
    photo's brow and commissure heights when no movement could be scored."""
    mean = _mean_rule(moved)
    if mean is not None:
        side = mean[0] if mean[0] != "none" else side_of_regions(region_weakness(moved))
        return side, mean[1]
    r = measured["rest"]
    # a flaccid side has the lower brow and the lower commissure (larger v)
    drop = ((r["left"]["brow_height"] - r["right"]["brow_height"])
            + (r["right"]["commissure_height"] - r["left"]["commissure_height"])) / 2.0
    return ("none" if abs(drop) <= NORMAL_STATIC_MM else "right" if drop > 0 else "left"), 0.0


def _linear(diff: float, zero: float) -> float:
    return float(100.0 * (1.0 - np.clip(abs(diff) / zero, 0.0, 1.0)))


def _static_items(rest: dict) -> list[dict]:
    fissures = [rest[s]["fissure_height"] for s in ("right", "left")]
    return [
        _item("resting brow", "static", _linear(rest["left"]["brow_height"] - rest["right"]["brow_height"],
                                                BROW_ZERO_MM), f"brow height difference; 0 at {BROW_ZERO_MM} mm"),
        _item("palpebral fissure at rest", "static", 100.0 * min(fissures) / max(max(fissures), 1e-6),
              "smaller over larger fissure height"),
        _item("oral commissure at rest", "static",
              _linear(rest["left"]["commissure_height"] - rest["right"]["commissure_height"], COMMISSURE_ZERO_MM),
              f"commissure height difference; 0 at {COMMISSURE_ZERO_MM} mm"),
    ]


def _item(name: str, group: str, value, basis: str) -> dict:
    return {"item": name, "group": group, "score": None if value is None else round(float(value), 1),
            "automated": True, "basis": basis}


def _dynamic_items(moved: dict, side: str) -> list[dict]:
    items = []
    for expr, (name, least) in MOVEMENTS.items():
        if expr == "pucker":
            continue  # measured and shown, but not an eFACE item
        m = moved.get(expr)
        if m is None:
            items.append(_item(name, "dynamic", None, f"no {expr} photo"))
        elif max(m.values()) < least:
            items.append(_item(name, "dynamic", None, f"no movement on either side in the {expr} photo"))
        else:
            items.append(_item(name, "dynamic", 100.0 * _ratio(m, side), "affected over healthy side's movement"))
    return items


def _excess(values: dict, side: str) -> float:
    if side in ("right", "left"):
        return values[side] - values["left" if side == "right" else "right"]
    return max(values.values()) - min(values.values())


def _synkinesis_items(measured: dict, shifts: dict, side: str) -> list[dict]:
    rest = measured["rest"]
    narrowing = [{s: rest[s]["fissure_height"] - measured[e][s]["fissure_height"] for s in ("right", "left")}
                 for e in ("smile", "pucker") if e in measured]
    ocular = None if not narrowing else _linear(max(0.0, max(_excess(n, side) for n in narrowing)), OCULAR_ZERO_MM)
    mid = shifts.get("eye_closure_full") or shifts.get("eye_closure_gentle")
    midfacial = None if not mid else _linear(max(0.0, _excess(mid, side)), MIDFACIAL_ZERO_MM)
    return [_item("ocular synkinesis", "synkinesis", ocular,
                  f"extra eye narrowing on the affected side in smile / pucker; 0 at {OCULAR_ZERO_MM} mm"),
            _item("midfacial synkinesis", "synkinesis", midfacial,
                  f"extra commissure movement on the affected side in eye closure; 0 at {MIDFACIAL_ZERO_MM} mm")]


def _mean(items: list[dict], group: str | None = None) -> float | None:
    values = [i["score"] for i in items if i["score"] is not None and group in (None, i["group"])]
    return round(float(np.mean(values)), 1) if values else None


def score(measured: dict, shifts: dict) -> Scores:
    """The scores of a session's measurements (``expression -> side -> measure``, mm) and
    commissure shifts (``expression -> side -> mm``)."""
    moved = movements(measured, shifts)
    side, asym = affected_side(measured, moved)
    items = _static_items(measured["rest"]) + _dynamic_items(moved, side) + _synkinesis_items(measured, shifts, side)
    for group, names in NOT_AUTOMATED.items():
        items += [{"item": n, "group": group, "score": None, "automated": False,
                   "basis": "not measurable from face landmarks"} for n in names]
    return Scores(items, _mean(items, "static"), _mean(items, "dynamic"), _mean(items, "synkinesis"),
                  _mean(items), side, round(asym, 3), region_weakness(moved), side_basis(moved))
