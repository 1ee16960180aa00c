"""Validation on phantom faces of known palsy: render expression sets, grade them, compare.

The phantom's expression sets (``medface.phantom.expressions``: ``render_expression_set(palsy=,
seed=, size=)`` -> ``expression -> FaceImage``; ``Palsy(side, severity: region -> 0..1,
synkinesis: 0..1)``) carry their truth. For each session the affected side found is compared
with the truth, and each region's dynamic item score with its severity: a region of severity
``s`` should score about ``100 * (1 - s)`` (0 normal movement, 1 flaccid).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .grading import grade_photos

#: the dynamic eFACE-style item that measures each phantom region
REGION_ITEMS = {"brow": "brow elevation", "eye": "full eye closure", "smile": "oral commissure movement with smile",
                "lower_lip": "lower lip movement"}


#: a session's grade from the mean severity over the four regions (**assumption**: equal thirds
#: of the scale; House-Brackmann and eFACE grade the face as a whole, not per region)
GRADE_LIMITS = (("mild", 0.3), ("moderate", 0.6), ("severe", 1.01))
#: a face without palsy is in the normal range when no side is found and the total is at least
#: this (**assumption**, fixed before the phantom was graded; Banks et al. 2015 give no cut-off)
NORMAL_TOTAL = 80.0


def draw_palsies(n: int, seed: int = 0) -> list[dict]:
    """``n`` palsy descriptions (``side``, ``severity``, ``synkinesis``): every fourth none
    (the first among them), the others alternating right and left, each region's severity
    uniform in 0.2-1 (a quarter of them 0), synkinesis in 0-0.6 for every other one."""
    rng = np.random.default_rng(seed)
    out, palsied = [], 0
    for i in range(n):
        if i % 4 == 0:
            out.append({"side": None, "severity": {r: 0.0 for r in REGION_ITEMS}, "synkinesis": 0.0})
            continue
        palsied += 1
        severity = {r: 0.0 if rng.random() < 0.25 else round(float(rng.uniform(0.2, 1.0)), 2) for r in REGION_ITEMS}
        out.append({"side": "right" if palsied % 2 else "left", "severity": severity,
                    "synkinesis": round(float(rng.uniform(0.0, 0.6)), 2) if palsied % 2 == 0 else 0.0})
    return out


def palsy_grade(palsy: dict) -> str:
    """``normal``, or ``mild`` / ``moderate`` / ``severe`` by the mean region severity
    (:data:`GRADE_LIMITS`)."""
    if palsy["side"] is None:
        return "normal"
    mean = float(np.mean([palsy["severity"].get(r, 0.0) for r in REGION_ITEMS]))
    return next(name for name, limit in GRADE_LIMITS if mean < limit)


def phantom_renderer(size: int) -> Callable[[dict, int], dict]:
    """``render(palsy_dict, seed) -> expression -> FaceImage`` from the phantom's expression sets."""
    from medface.phantom.expressions import Palsy, render_expression_set

    def render(palsy: dict, seed: int) -> dict:
        p = None if palsy["side"] is None else Palsy(side=palsy["side"], severity=dict(palsy["severity"]),
                                                     synkinesis=palsy["synkinesis"])
        return render_expression_set(palsy=p, seed=seed, size=(size, size))

    return render


@dataclass
class Evaluation:
    rows: list[dict] = field(default_factory=list)
    metrics: dict = field(default_factory=dict)


def _row(index: int, palsy: dict, grading) -> dict:
    items = {i["item"]: i["score"] for i in grading.scores.items}
    row = {"session": index, "grade": palsy_grade(palsy), "true_side": palsy["side"] or "none",
           "found_side": grading.affected_side, "side_by": grading.scores.side_by, "warnings": len(grading.warnings),
           "true_synkinesis": palsy["synkinesis"], "skipped": "; ".join(grading.skipped)}
    for region, item in REGION_ITEMS.items():
        row[f"{region}_severity"] = palsy["severity"].get(region, 0.0) if palsy["side"] else 0.0
        row[f"{region}_score"] = items.get(item)
    row["ocular_synkinesis_score"] = items.get("ocular synkinesis")
    row["total"] = grading.scores.total
    return row


def _side_accuracy(rows: list[dict], grades: tuple[str, ...]) -> float | None:
    chosen = [r["true_side"] == r["found_side"] for r in rows if r["grade"] in grades]
    return float(np.mean(chosen)) if chosen else None


def _region_metrics(rows: list[dict], region: str) -> dict:
    """Mean absolute difference of the item score from ``100 (1 - severity)`` and the Spearman
    rank correlation of the measured asymmetry (``100 - score``) with the true severity."""
    from scipy.stats import spearmanr

    pairs = np.array([(r[f"{region}_severity"], r[f"{region}_score"]) for r in rows
                      if r[f"{region}_score"] is not None], float).reshape(-1, 2)
    if not len(pairs):
        return {}
    m = {f"{region}_score_mae": round(float(np.abs(pairs[:, 1] - 100.0 * (1.0 - pairs[:, 0])).mean()), 2),
         f"{region}_scored": len(pairs)}
    if len(pairs) > 2 and pairs[:, 0].std() > 0 and pairs[:, 1].std() > 0:
        m[f"{region}_spearman"] = round(float(spearmanr(pairs[:, 0], 100.0 - pairs[:, 1]).statistic), 3)
    return m


def _metrics(rows: list[dict]) -> dict:
    m = {"sessions": len(rows), "side_accuracy": float(np.mean([r["true_side"] == r["found_side"] for r in rows])),
         "side_accuracy_moderate_severe": _side_accuracy(rows, ("moderate", "severe")),
         "side_accuracy_mild": _side_accuracy(rows, ("mild",)),
         "side_found_by": {rule: sum(r["side_by"] == rule for r in rows) for rule in sorted({r["side_by"] for r in rows})},
         "sessions_with_warnings": sum(r["warnings"] > 0 for r in rows)}
    normals = [r for r in rows if r["grade"] == "normal"]
    if normals:
        m["normal_sessions"] = len(normals)
        m["normal_total_min"] = min((r["total"] for r in normals if r["total"] is not None), default=None)
        m["normals_in_normal_range"] = float(np.mean([r["found_side"] == "none" and r["total"] is not None
                                                      and r["total"] >= NORMAL_TOTAL for r in normals]))
    for region in REGION_ITEMS:
        m.update(_region_metrics(rows, region))
    return m


def evaluate_sets(palsies: list[dict], render: Callable[[dict, int], dict], seed: int = 0,
                  progress=lambda xs: xs) -> Evaluation:
    """Grade the rendered set of each palsy and compare with its truth."""
    rows = []
    for i, palsy in progress(list(enumerate(palsies))):
        grading = grade_photos(render(palsy, seed + i))
        rows.append(_row(i, palsy, grading))
    return Evaluation(rows, _metrics(rows))


def severity_figure(rows: list[dict]):
    """Score against severity per region (the line: the ideal 100 * (1 - severity))."""
    from .figures import _canvas, _pixels

    fig, canvas = _canvas((9.0, 2.8))
    for k, region in enumerate(REGION_ITEMS):
        ax = fig.add_subplot(1, len(REGION_ITEMS), k + 1)
        pts = [(r[f"{region}_severity"], r[f"{region}_score"]) for r in rows if r[f"{region}_score"] is not None]
        if pts:
            ax.scatter(*zip(*pts), s=14)
        ax.plot([0, 1], [100, 0], color="grey", lw=1)
        ax.set_xlim(-0.05, 1.05), ax.set_ylim(-5, 105)
        ax.set_title(REGION_ITEMS[region], fontsize=7)
        ax.set_xlabel(f"{region} severity (truth)", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.tight_layout()
    return _pixels(fig, canvas)


def side_figure(rows: list[dict]):
    """Counts of found against true affected side."""
    from .figures import _canvas, _pixels

    sides = ["none", "right", "left"]
    counts = np.array([[sum(r["true_side"] == t and r["found_side"] == f for r in rows) for f in sides]
                       for t in sides])
    fig, canvas = _canvas((3.6, 3.2))
    ax = fig.add_subplot(1, 1, 1)
    ax.imshow(counts, cmap="Blues")
    for (t, f), c in np.ndenumerate(counts):
        ax.text(f, t, str(c), ha="center", va="center")
    ax.set_xticks(range(3), sides), ax.set_yticks(range(3), sides)
    ax.set_xlabel("found side"), ax.set_ylabel("true side")
    fig.tight_layout()
    return _pixels(fig, canvas)
