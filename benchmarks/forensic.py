"""Forensic reconstruction speed: the full ``Reconstruction(variants=8).run`` on a 50k-vertex skull, and 100 variants.

A held-out phantom skull (cranium + mandible, ``cohort(1, seed=4242)``) is decimated to about
50,000 vertices, turned into an arbitrary pose and reconstructed with the default phantom-trained
model (trained and cached on first use, not timed) along the whole user path of
``medface forensic reconstruct --skull x.ply``: load and checks, template registration (starts,
similarity ICP and mandible, non-rigid field, outputs), the skull's sex and age estimate, bone
distance, robust conditioning (6 EM rounds), and the outputs (posterior mean and SD, 8 variants,
thickness, tissue-depth baseline, soft-tissue landmarks).

* ``reconstruct_s``: the median of ``--runs`` runs after a first one (``first_run_s``: the first
  run in the process also fills the template caches once, as one command call does);
* ``baseline_s``: the same reconstruction, runs interleaved with those above, along the
  pre-optimisation code path rebuilt from the core's public pieces (``pre_optimisation``): the
  similarity search with every one of the 48 starts through 12 coarse ICP steps and the best four
  through 40 refined steps, one start at a time, both closest-point directions queried per step
  with the moved source's k-d tree rebuilt (``reference_icp``, of ``closest_pairs`` and
  ``umeyama``); the displacement field evaluated level by level (``reference_field``, of
  ``gaussian_kernel``); the robust conditioning on the default BLAS threads. The non-rigid fit's
  arithmetic is the same in both. ``ratio = baseline_s / reconstruct_s`` (higher is better).
* 100 variants in one call against 100 calls of one (``variants_ratio``, higher is better).

Goals: reconstruction <= 5 s, 100 variants <= 1 s on the 2-core machine. Last line: key=value.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import time

import numpy as np


def decimated(mesh, target: int):
    """(vertices, faces) of ``mesh`` decimated to about ``target`` vertices (VTK's decimate_pro)."""
    import pyvista as pv

    faces = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).ravel()
    poly = pv.PolyData(mesh.vertices, faces).decimate_pro(1.0 - target / len(mesh.vertices), preserve_topology=True)
    return np.asarray(poly.points), np.asarray(poly.faces).reshape(-1, 4)[:, 1:]


def bench_skull():
    """The held-out phantom skull, about 50k vertices, in an arbitrary pose."""
    from scipy.spatial.transform import Rotation

    from medface.data import SurfaceMesh
    from medface.phantom import cohort

    head = next(cohort(1, seed=4242)).head
    cv, cf = decimated(head.cranium, 44_000)
    mv, mf = decimated(head.mandible, 6_000)
    rot = Rotation.from_euler("xyz", [15, 40, -70], degrees=True).as_matrix()
    v = np.concatenate([cv, mv]) @ rot.T + np.array([30.0, 10.0, -50.0])
    return SurfaceMesh(v, np.concatenate([cf, mf + len(cv)]))


def reference_icp(source, target, start=None, *, iterations=40, trim=None, scale=True, field_of_view=None):
    """The pre-optimisation ICP loop: one start; per step the moved source, both closest-point
    directions (:func:`closest_pairs`, the moved source's k-d tree rebuilt) and Umeyama's fit."""
    from medface.anatomy.registration import TRIM, ICPResult, PointCloud, Similarity, closest_pairs, umeyama

    trim = TRIM if trim is None else trim
    s, r, t = start if start is not None else Similarity.identity(source.points.shape[1])
    med, done = np.inf, 0
    for done in range(1, iterations + 1):
        moved = PointCloud(s * source.points @ r.T + t, None if source.normals is None else source.normals @ r.T)
        i1, j1, d1 = closest_pairs(moved, target, trim, field_of_view)
        i2, j2, d2 = closest_pairs(target, moved, trim)
        a = np.concatenate([source.points[i1], source.points[j2]])
        b = np.concatenate([target.points[j1], target.points[i2]])
        s_new, r_new, t_new = umeyama(a, b, scale=scale)
        change = np.abs(s_new - s) + np.abs(r_new - r).max() + np.abs(t_new - t).max() / 100
        s, r, t = s_new, r_new, t_new
        med = float(np.median(np.concatenate([d1, d2])))
        if change < 1e-5:
            break
    moved = PointCloud(s * source.points @ r.T + t, source.normals)
    d_in = moved.tree.query(target.points, workers=1)[0]
    return ICPResult(Similarity(s, r, t), float(np.median(d_in)), med, done)


class StageTimer:
    """Seconds spent in named functions of the reconstruction path during one run (wrappers put
    on the module attributes the path looks up; a name that is not there is skipped)."""

    STAGES = (("skull_input", "load_skull", "load"), ("reconstruction.Reconstruction", "_estimate_demography", "demography"),
              ("conditioning", "bone_distance", "bone_distance"), ("conditioning", "robust_condition", "conditioning"),
              ("reconstruction.Reconstruction", "_result", "outputs"))

    def __init__(self):
        import importlib

        self.seconds: dict = {}
        for path, name, label in self.STAGES:
            module, _, attr = path.partition(".")
            owner = importlib.import_module(f"medface_forensic.{module}")
            owner = getattr(owner, attr) if attr else owner
            if hasattr(owner, name):
                setattr(owner, name, self.wrap(getattr(owner, name), label))

    def wrap(self, function, label):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - t0

        return timed


def reference_field(self, points, chunk: int = 20000):
    """The pre-optimisation :class:`DisplacementField` evaluation: each level's kernel from scratch."""
    from medface.anatomy.registration import gaussian_kernel

    points = np.asarray(points, float)
    out = np.zeros_like(points)
    for centres, width, weights in self.levels:
        origin = centres.mean(0)
        c = (centres - origin).astype(np.float32)
        w = weights.astype(np.float32)
        for a in range(0, len(points), chunk):
            x = (points[a:a + chunk] - origin).astype(np.float32)
            out[a:a + chunk] += gaussian_kernel(x, c, width) @ w
    return out


@contextlib.contextmanager
def pre_optimisation(timer: StageTimer):
    """The reconstruction along the pre-optimisation code path (see the module docstring)."""
    import inspect

    from medface.anatomy.registration import DisplacementField
    from medface_forensic import conditioning, register

    saved = {k: getattr(register, k) for k in ("icp", "icp_batch", "COARSE_STEPS", "COARSE_KEPT", "COARSE_MARGIN_MM",
                                               "REFINE_CHECKS")}
    field_call, condition = DisplacementField.__call__, conditioning.robust_condition
    register.icp = reference_icp
    register.icp_batch = lambda source, target, starts, **kw: [reference_icp(source, target, st, **kw) for st in starts]
    register.COARSE_STEPS, register.COARSE_KEPT, register.COARSE_MARGIN_MM, register.REFINE_CHECKS = (12,), 10 ** 9, np.inf, ()
    DisplacementField.__call__ = reference_field
    conditioning.robust_condition = timer.wrap(inspect.unwrap(condition), "conditioning")  # without its BLAS limit
    try:
        yield
    finally:
        for k, v in saved.items():
            setattr(register, k, v)
        DisplacementField.__call__, conditioning.robust_condition = field_call, condition


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each code path after the first")
    args = parser.parse_args()

    from medface_forensic.model_cache import default_model
    from medface_forensic.reconstruction import Reconstruction

    model = default_model()  # trained and cached on first use; not timed
    skull = bench_skull()
    timer = StageTimer()
    rec = Reconstruction(model, variants=8)

    def run():
        timer.seconds.clear()
        t0 = time.perf_counter()
        result = rec.run(skull)
        total = time.perf_counter() - t0
        stages = {f"registration_{k}": v for k, v in result.registration.timings_s.items() if k != "total"}
        stages.update(timer.seconds)
        stages["other"] = total - sum(stages.values())
        return total, stages, result

    first, _, _ = run()
    fast, slow, stage_rows, baseline_rows = [], [], [], []
    for _ in range(args.runs):  # interleaved, so that a change of load hits both alike
        total, stages, result = run()
        fast.append(total)
        stage_rows.append(stages)
        with pre_optimisation(timer):
            total, stages, _ = run()
        slow.append(total)
        baseline_rows.append(stages)
    rec_s, base_s = float(np.median(fast)), float(np.median(slow))
    median = {k: float(np.median([row[k] for row in stage_rows])) for k in stage_rows[0]}
    base_median = {k: float(np.median([row[k] for row in baseline_rows])) for k in baseline_rows[0]}

    post = result.posterior
    post.sample(100, 0)  # the skin map in the skull's frame, computed once per posterior
    t0 = time.perf_counter()
    post.sample(100, 0)
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(100):
        post.sample(1, i)
    single = time.perf_counter() - t0

    print(f"skull: {len(skull.vertices)} vertices; model: {model.n_components} components")
    print(f"reconstruction (median of {args.runs}): {rec_s:.2f} s   goal <= 5 s   (first run in the process {first:.2f} s)")
    print("  stages: " + ", ".join(f"{k} {v:.2f}" for k, v in median.items()))
    print(f"baseline, pre-optimisation code path (median of {args.runs}): {base_s:.2f} s")
    print("  stages: " + ", ".join(f"{k} {v:.2f}" for k, v in base_median.items()))
    print(f"runs: fast {', '.join(f'{t:.2f}' for t in fast)}; baseline {', '.join(f'{t:.2f}' for t in slow)}")
    print(f"100 variants: batched {batched:.3f} s (goal <= 1 s), one at a time {single:.3f} s")
    print(f"face vertices {len(result.face.vertices)}, median SD {np.median(result.sd_mm):.2f} mm")
    print(f"skull_vertices={len(skull.vertices)} reconstruct_s={rec_s:.2f} first_run_s={first:.2f} "
          f"registration_s={sum(v for k, v in median.items() if k.startswith('registration_')):.2f} "
          f"similarity_s={median['registration_similarity']:.2f} baseline_s={base_s:.2f} "
          f"variants100_s={batched:.3f} variants100_one_by_one_s={single:.3f} variants_ratio={single / batched:.2f} "
          f"ratio={base_s / rec_s:.2f}")


if __name__ == "__main__":
    main()
