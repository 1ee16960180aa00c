"""Soft-tissue prediction: plan-update time of the precomputed FEM response against a solve from scratch.

The phantom's sample head (sample_data/) with its skin resampled to about 50k vertices; bone
segments cranium (fixed), maxilla (a Le Fort I box split of the skull) and mandible; tetrahedra
of 3 mm, tissue within 25 mm of the moving segments (``roi``), nu = 0.45. Figures:

* setup: tissue mesh, stiffness assembly, one SuperLU factorisation, the 24 basis solves;
* update: ``SoftTissueModel.predict`` for a new plan (median over a series of plans);
* baseline (from scratch): re-assemble, re-factorise and solve for one plan
  (``solve_direct(refactorize=True)``); also the direct solve with the kept factorisation;
* the preview tier (``RigidBlendPreview``): set-up and update.

ratio = from-scratch time / update time (higher is better). Prints ``key=value`` on its last line.
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


def median_time(fn, plans) -> float:
    """Median seconds of ``fn(plan)`` over the plans."""
    times = []
    for plan in plans:
        t0 = time.perf_counter()
        fn(plan)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skin-vertices", type=int, default=50_000)
    parser.add_argument("--h", type=float, default=3.0)
    parser.add_argument("--roi", type=float, default=25.0)
    parser.add_argument("--updates", type=int, default=25)
    args = parser.parse_args()

    segments, skin, _, moves = phantom_case(REPO / "sample_data", skin_vertices=args.skin_vertices)
    t0 = time.perf_counter()
    model = SoftTissueModel(segments, skin, h=args.h, fixed=["cranium"], roi=args.roi)
    setup = time.perf_counter() - t0
    info = model.info()
    print(f"skin: {skin.n_vertices} vertices; tissue: {info['nodes']} nodes, {info['tets']} tets, "
          f"{info['free_dofs']} free dofs; set-up {setup:.1f} s {info['timings_s']}")

    plans = [{"maxilla": translation(dy=-a), "mandible": translation(dy=-b, dz=0.3 * b)}
             for a, b in zip(np.linspace(1, 5, args.updates), np.linspace(2, 8, args.updates))]
    update = median_time(model.predict, plans)

    t0 = time.perf_counter()
    direct = model.solve_direct(moves)
    kept = time.perf_counter() - t0
    t0 = time.perf_counter()
    scratch_pred = model.solve_direct(moves, refactorize=True)
    scratch = time.perf_counter() - t0
    fast = model.predict(moves)
    disp = np.linalg.norm(direct - skin.vertices)
    rel = float(max(np.linalg.norm(fast - direct), np.linalg.norm(fast - scratch_pred)) / disp)

    t0 = time.perf_counter()
    preview = RigidBlendPreview(segments, skin, fixed=["cranium"])
    preview_setup = time.perf_counter() - t0
    preview_update = median_time(preview.predict, plans)

    print(f"FEM set-up {setup:.2f} s; plan update (median of {len(plans)}) {1e3 * update:.2f} ms; "
          f"direct solve with kept factorisation {1e3 * kept:.0f} ms; from scratch {scratch:.2f} s; "
          f"update vs direct relative difference {rel:.1e}")
    print(f"preview set-up {preview_setup:.2f} s; preview update {1e3 * preview_update:.2f} ms")
    print(f"skin_vertices={skin.n_vertices} nodes={info['nodes']} tets={info['tets']} free_dofs={info['free_dofs']} "
          f"setup_s={setup:.2f} update_ms={1e3 * update:.2f} direct_ms={1e3 * kept:.1f} scratch_s={scratch:.2f} "
          f"preview_setup_s={preview_setup:.2f} preview_update_ms={1e3 * preview_update:.2f} "
          f"ratio={scratch / update:.0f}")


if __name__ == "__main__":
    main()
