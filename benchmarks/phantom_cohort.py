"""Phantom cohort speed: 100 subjects (meshes and landmarks) on this machine.

Baseline, measured in the same run: warping each template mesh by evaluating every shape
field at every vertex (no precomputed field basis), the straightforward implementation.
ratio = baseline time per subject / medface time per subject (higher is better).
Acceptance: 100 subjects in under 30 s.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from medface.phantom import cohort
    from medface.phantom.head import _basis, make_head, sample_subject
    from medface.phantom.template import get_template

    t0 = time.perf_counter()
    get_template()
    _basis()
    setup = time.perf_counter() - t0

    start = time.perf_counter()
    n_vertices = 0
    for member in cohort(100, conditions=["hypertelorism", "micrognathia", "midface_retrusion"], seed=1):
        head = member.head
        n_vertices += sum(len(v) for v, _ in head.meshes.values())
        assert len(head.landmarks) > 60
    elapsed = time.perf_counter() - start

    # baseline: the same warp evaluated field by field on every vertex
    template = get_template()
    rng = np.random.default_rng(2)
    base_times = []
    for _ in range(3):
        head = make_head(sample_subject(rng))
        t = time.perf_counter()
        for name, (v, _) in template.meshes.items():
            head.warp.warp.forward(v, soft=(name == "skin"))
        base_times.append(time.perf_counter() - t)
    baseline = float(np.median(base_times))
    per_subject = elapsed / 100
    print(f"template load/build and field basis: {setup:.1f} s (once per process)")
    print(f"100 subjects, meshes + landmarks:    {elapsed:.1f} s ({per_subject * 1000:.0f} ms each, "
          f"{n_vertices / 100 / 1000:.0f}k vertices each)")
    print(f"baseline: field-by-field mesh warp:  {baseline * 1000:.0f} ms per subject (warp alone)")
    print(f"subjects=100 cohort_s={elapsed:.2f} per_subject_ms={per_subject * 1000:.0f} "
          f"baseline_warp_ms={baseline * 1000:.0f} under_30s={elapsed < 30} ratio={baseline / per_subject:.2f}")


if __name__ == "__main__":
    main()
