"""Self-test: grade a phantom session and check that the measurements are physiological.

A phantom session (``medface.phantom.expressions``) with a known right-sided palsy is graded
and its affected side must be found; its rest measurements must lie in adult ranges
(eye distance 50-80 mm, MRD1 and MRD2 0.2-8 mm: the phantom's eyes are narrow; brow height
5-40 mm).
"""

from __future__ import annotations


def _session(workdir):
    from medface.phantom.expressions import Palsy, render_expression_set, write_expression_set

    palsy = Palsy(side="right", severity={"brow": 0.9, "eye": 0.8, "smile": 0.9, "lower_lip": 0.8}, synkinesis=0.0)
    folder = workdir / "session"
    write_expression_set(folder, render_expression_set(palsy=palsy, seed=1, size=(512, 512)), palsy)
    return folder, "right"


def selftest(workdir):
    import medface

    folder, side = _session(workdir)
    result = medface.run("expression.grade", photos=folder, out=workdir / "out")
    assert not result.refused, result.refusal
    m = result.metrics
    assert 50 < m["eye_distance_mm"] < 80, m["eye_distance_mm"]
    for s in ("right", "left"):
        for name, lo, hi in (("mrd1", 0.2, 8), ("mrd2", 0.2, 8), ("brow_height", 5, 40)):
            assert lo < m[f"rest.{s}.{name}"] < hi, (s, name, m[f"rest.{s}.{name}"])
    assert (workdir / "out" / "measurements.csv").exists() and (workdir / "out" / "rest_measured.png").exists()
    assert result.summary["affected_side"] == side, result.summary
    return f"found the right-sided palsy of a phantom session (total {result.summary['efacestyle_total']})"
