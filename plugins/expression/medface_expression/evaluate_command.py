"""`expression evaluate`: the grading checked on phantom expression sets of known palsy."""

from __future__ import annotations

from pathlib import Path

from medface.data import Result

from .evaluate import draw_palsies, evaluate_sets, phantom_renderer, severity_figure, side_figure

LIMITS = ["Synthetic faces only: the phantom's expressions are a model of facial movement, not patients; "
          "agreement here says the measurements follow the phantom's palsy, not that they grade real palsy."]


def evaluate(subjects: int = 6, size: int = 512, seed: int = 0, out: Path | None = None, context=None) -> Result:
    """Render ``subjects`` phantom sessions (the first without palsy), grade each and compare
    with the truth; declares ``sessions.csv`` and two figures."""
    palsies = draw_palsies(subjects, seed)
    progress = context.progress if context is not None else (lambda xs: xs)
    found = evaluate_sets(palsies, phantom_renderer(size), seed=seed, progress=progress)
    m = found.metrics
    summary = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in m.items()
               if k in ("sessions", "side_accuracy", "side_accuracy_moderate_severe", "normals_in_normal_range")
               or k.endswith(("_mae", "_spearman"))}
    result = Result(command="expression.evaluate", summary=summary, metrics=m, tables={"sessions": found.rows},
                    limits=list(LIMITS))
    result.declare("sessions", "sessions.csv", found.rows, kind="table")
    result.declare("score against severity", "severity.png", severity_figure(found.rows),
                   figure="score against severity")
    result.declare("affected side", "sides.png", side_figure(found.rows), figure="affected side")
    return result
