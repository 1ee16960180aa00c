"""Phantom cohort speed: 100 subjects (meshes and landmarks) on this machine.

Baseline, measured in the same run on 3 subjects: the straightforward implementation of the
same steps, without the precomputed bases: solving the warp with Jacobians from warping every
landmark field by field, warping each mesh field by field, casting the tissue-depth rays
against the whole skin and evaluating the skin correction at every skin vertex.
ratio = baseline time per subject / medface time per subject (higher is better).
Acceptance: 100 subjects in under 30 s.
"""

from __future__ import annotations

import time

import numpy as np


def _solve_amounts(template_landmarks: dict, targets: dict, J: np.ndarray, steps: int = 3) -> np.ndarray:
    """The straightforward solve: fixed Jacobian, every landmark warped field by field per step."""
    from medface.phantom import shape as SH

    goal = np.array([targets.get(n, v) for n, v in zip(SH.NAMES, SH.measure_vector(template_landmarks))])
    amounts = np.zeros(len(SH.NAMES))
    Jinv = SH.damped_inverse(J)
    for _ in range(steps):
        moved = SH.Warp(template_landmarks, dict(zip(SH.NAMES, amounts))).move_landmarks(template_landmarks)
        amounts = amounts + Jinv @ (goal - SH.measure_vector(moved))
    return amounts


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

    # baseline: the same steps done the straightforward way
    from medface.phantom import shape as SH
    from medface.phantom.template import ray_hit

    template = get_template()
    rng = np.random.default_rng(2)
    base_times = []
    tl = _basis().landmarks
    for _ in range(3):
        subject = sample_subject(rng)
        head = make_head(subject)
        t = time.perf_counter()
        _solve_amounts(tl, subject.targets, SH.jacobian(tl), steps=3)
        for _ in range(3):
            SH.jacobian(tl, head.warp.amounts)
        for name, (v, _) in template.meshes.items():
            head.warp.warp.forward(v, soft=(name == "skin"))
        sv, sf = head.meshes["skin"]
        for _ in range(3):
            head.correction.displacement(template.meshes["skin"][0])
            for key in ("g_s", "n_s", "a_s", "sl", "pog_s", "me_s", "or_s_l", "or_s_r", "zy_s_l", "zy_s_r",
                        "go_s_l", "go_s_r"):
                bone = {"g_s": "g", "n_s": "n", "a_s": "a", "sl": "b", "pog_s": "pog", "me_s": "me"}.get(
                    key, key.replace("_s", ""))
                d = head.landmarks[key] - head.landmarks[bone]
                ray_hit(sv, sf, head.landmarks[bone], d / np.linalg.norm(d))
        base_times.append(time.perf_counter() - t)
    baseline = float(np.median(base_times))
    per_subject = elapsed / 100
    print(f"template load/build and field basis: {setup:.1f} s (once per process)")
    print(f"100 subjects, meshes + landmarks:    {elapsed:.1f} s ({per_subject * 1000:.0f} ms each, "
          f"{n_vertices / 100 / 1000:.0f}k vertices each)")
    print(f"baseline: straightforward steps:     {baseline * 1000:.0f} ms per subject")
    print(f"subjects=100 cohort_s={elapsed:.2f} per_subject_ms={per_subject * 1000:.0f} "
          f"baseline_ms={baseline * 1000:.0f} under_30s={elapsed < 30} ratio={baseline / per_subject:.2f}")


if __name__ == "__main__":
    main()
