"""Soft-tissue prediction: set-up and plan-update time of the FEM, against the previous pipeline.

The phantom's sample head (sample_data/) with its skin resampled to about 50k vertices; bone
segments cranium (fixed), maxilla (a Le Fort I box split of the skull) and mandible; nu = 0.45.

* the model (``surgery simulate``'s defaults): tetrahedra fitted to the surfaces (cut cells,
  ``mesher="fitted"``), graded away from the moving bone (2 h cubes beyond ``grade_mm``), cubes
  of at most 1 mm in the saw's gap between cranium and maxilla (``resolve_gaps``), the mean-dilatation
  B-bar element, ``h`` and ``roi`` as ``surgery simulate`` uses them;
* side by side: the model without the gap refinement (``resolve_gaps=False``, the default
  before 2026-12-08);
* the baseline, measured in the same run: the committed pipeline (stair-stepped voxel mesh, plain
  P1 tetrahedra, ``h`` = 3 mm, tissue beyond 25 mm of the moving bone held still, SuperLU with
  its minimum-degree ordering, ``solver="direct-mmd"``);
* side by side: the model on a uniform mesh (``grade_mm=None``, the default before 2026-12-07 (5));
* side by side at the model's mesh: SuperLU with its minimum-degree ordering instead of the
  default factorisation (PARDISO, Intel MKL through pypardiso, where installed;
  ``solver="direct-mmd"``) and AMG-preconditioned CG (``solver="amg"``, pyamg) instead of a
  factorisation (``--no-sides`` skips them);
* setup: tissue mesh, stiffness assembly, one factorisation (or AMG hierarchy), the 24 basis solves;
* update: ``SoftTissueModel.predict`` for a new plan (median over a series of plans); also a
  from-scratch solve (re-assemble, re-factorise, solve) and the preview tier's figures.

ratio = baseline set-up time / model set-up time (higher is better). Prints ``key=value`` on
its last line.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from medface_surgery.fem import SoftTissueModel
from medface_surgery.preview import RigidBlendPreview
from medface_surgery.tissue_validation import phantom_case, translation

REPO = Path(__file__).resolve().parents[1]
#: the pieces cut from one bone (the Le Fort I split of the skull), as `surgery simulate` refines them
SAW_GAPS = [("cranium", "maxilla")]


def median_time(fn, plans) -> float:
    """Median seconds of ``fn(plan)`` over the plans."""
    times = []
    for plan in plans:
        t0 = time.perf_counter()
        fn(plan)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def measure(segments, skin, plans, moves, *, scratch: bool = True, **kwargs) -> dict:
    """Set-up, update and (with ``scratch``) from-scratch figures of one configuration of the FEM."""
    t0 = time.perf_counter()
    model = SoftTissueModel(segments, skin, fixed=["cranium"], **kwargs)
    setup = time.perf_counter() - t0
    update = median_time(model.predict, plans)
    fast = model.predict(moves)
    out = {"model": model, "setup": setup, "update": update, "scratch": float("nan"), "rel": float("nan"),
           "info": model.info(), "fast": fast}
    if scratch:
        t0 = time.perf_counter()
        scratch_pred = model.solve_direct(moves, refactorize=True)
        out["scratch"] = time.perf_counter() - t0
        out["rel"] = float(np.linalg.norm(fast - scratch_pred) / np.linalg.norm(scratch_pred - skin.vertices))
    return out


def main() -> None:
    from medface_surgery.fem import DEFAULT_GRADE_MM, DEFAULT_H
    from medface_surgery.simulation import ROI_MM

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skin-vertices", type=int, default=50_000)
    parser.add_argument("--h", type=float, default=DEFAULT_H)
    parser.add_argument("--roi", type=float, default=ROI_MM)
    parser.add_argument("--updates", type=int, default=25)
    parser.add_argument("--no-baseline", action="store_true", help="skip the committed pipeline")
    parser.add_argument("--no-sides", action="store_true", help="skip the other solvers at the model's mesh")
    parser.add_argument("--grade", type=float, default=DEFAULT_GRADE_MM, help="mm from the moving bone beyond "
                                                                               "which the mesh is coarse")
    args = parser.parse_args()

    segments, skin, _, moves = phantom_case(REPO / "sample_data", skin_vertices=args.skin_vertices)
    plans = [{"maxilla": translation(dy=-a), "mandible": translation(dy=-b, dz=0.3 * b)}
             for a, b in zip(np.linspace(1, 5, args.updates), np.linspace(2, 8, args.updates))]
    runs = {}
    if not args.no_baseline:
        runs["baseline"] = measure(segments, skin, plans, moves, h=3.0, roi=25.0, element="p1", mesher="voxel",
                                   solver="direct-mmd")
    runs["model"] = measure(segments, skin, plans, moves, h=args.h, roi=args.roi, grade_mm=args.grade,
                            resolve_gaps=SAW_GAPS)
    runs["model, no gap refinement"] = measure(segments, skin, plans, moves, h=args.h, roi=args.roi,
                                               grade_mm=args.grade, scratch=False)
    runs["model, uniform"] = measure(segments, skin, plans, moves, h=args.h, roi=args.roi, grade_mm=None,
                                     resolve_gaps=SAW_GAPS)
    g = runs["model, uniform"]
    g["rel"] = float(np.linalg.norm(g["fast"] - runs["model"]["fast"])
                     / np.linalg.norm(runs["model"]["fast"] - skin.vertices))  # against the model
    if not args.no_sides:
        for solver in ("amg", "direct-mmd"):
            runs[f"model, {solver}"] = measure(segments, skin, plans, moves, h=args.h, roi=args.roi, solver=solver,
                                               grade_mm=args.grade, resolve_gaps=SAW_GAPS, scratch=False)
            r = runs[f"model, {solver}"]
            r["rel"] = float(np.linalg.norm(r["fast"] - runs["model"]["fast"])
                             / np.linalg.norm(runs["model"]["fast"] - skin.vertices))  # against the default
    for name, r in runs.items():
        info = r["info"]
        print(f"{name}: {info['mesher']} mesh, {info['element']} element, {info['solver']} solver, h {info['h_mm']:g} mm, "
              f"roi {info['roi_mm']} mm, grade {info['grade_mm']} mm, gap cubes {info['gap_spacing_mm']} mm; "
              f"{info['nodes']} nodes, {info['tets']} tets, {info['free_dofs']} free dofs; set-up {r['setup']:.1f} s "
              f"{info['timings_s']}; plan update (median of {len(plans)}) {1e3 * r['update']:.2f} ms; from scratch "
              f"{r['scratch']:.1f} s; relative difference (update vs from scratch; sides: vs the model) {r['rel']:.1e}")
    t0 = time.perf_counter()
    preview = RigidBlendPreview(segments, skin, fixed=["cranium"])
    preview_setup = time.perf_counter() - t0
    preview_update = median_time(preview.predict, plans)
    print(f"preview set-up {preview_setup:.2f} s; preview update {1e3 * preview_update:.2f} ms")
    m = runs["model"]
    base = runs.get("baseline", m)
    print(f"skin_vertices={skin.n_vertices} nodes={m['info']['nodes']} tets={m['info']['tets']} "
          f"free_dofs={m['info']['free_dofs']} setup_s={m['setup']:.2f} update_ms={1e3 * m['update']:.2f} "
          f"scratch_s={m['scratch']:.2f} baseline_setup_s={base['setup']:.2f} "
          f"baseline_update_ms={1e3 * base['update']:.2f} preview_setup_s={preview_setup:.2f} "
          f"preview_update_ms={1e3 * preview_update:.2f} uniform_setup_s={g['setup']:.2f} "
          f"uniform_free_dofs={g['info']['free_dofs']} no_gaps_setup_s={runs['model, no gap refinement']['setup']:.2f} "
          f"ratio={base['setup'] / m['setup']:.2f}")


if __name__ == "__main__":
    main()
