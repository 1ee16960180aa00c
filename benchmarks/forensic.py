"""Forensic reconstruction speed: a 50k-vertex skull, registration included, and 100 variants.

A held-out phantom skull (cranium + mandible) is decimated to about 50,000 vertices, turned
into an arbitrary pose and reconstructed with the phantom-trained model (trained and cached on
first use, not timed): load and checks, template registration (rigid, scaled, non-rigid),
conditioning, posterior mean and SD. Then 100 variants are sampled in one call; the baseline in
the same run draws them one call at a time. ratio = one-at-a-time / batched (higher is better).
Goals: reconstruction <= 10 s, 100 variants <= 1 s on the 2-core machine. Last line: key=value.
"""

from __future__ import annotations

import time

import numpy as np


def main() -> None:
    from scipy.spatial.transform import Rotation

    from medface.data import SurfaceMesh
    from medface.phantom import cohort
    from medface_forensic.reconstruct import default_model
    from medface_forensic.register import register_skull
    from medface_forensic.skull_input import load_skull

    model = default_model()  # cached after the first run
    head = next(cohort(1, seed=4242)).head
    import pyvista as pv

    def decimated(mesh, target):
        faces = np.hstack([np.full((len(mesh.faces), 1), 3), mesh.faces]).ravel()
        poly = pv.PolyData(mesh.vertices, faces).decimate_pro(1.0 - target / len(mesh.vertices), preserve_topology=True)
        return np.asarray(poly.points), np.asarray(poly.faces).reshape(-1, 4)[:, 1:]

    cv, cf = decimated(head.cranium, 44_000)
    mv, mf = decimated(head.mandible, 6_000)
    rot = Rotation.from_euler("xyz", [15, 40, -70], degrees=True).as_matrix()
    v = np.concatenate([cv, mv]) @ rot.T + np.array([30.0, 10.0, -50.0])
    skull = SurfaceMesh(v, np.concatenate([cf, mf + len(cv)]))

    t0 = time.perf_counter()
    reg = register_skull(load_skull(skull))
    t1 = time.perf_counter()
    post = model.condition(reg.vertices[: reg.n_cranium], reg.vertices[reg.n_cranium:] if reg.mandible_present else None)
    mean, sd = post.mean, post.sd()
    t2 = time.perf_counter()
    post.sample(100, 0)
    t3 = time.perf_counter()
    for i in range(100):
        post.sample(1, i)
    t4 = time.perf_counter()
    rec, batched, single = t2 - t0, t3 - t2, t4 - t3
    print(f"skull: {len(skull.vertices)} vertices; registration {t1 - t0:.2f} s "
          f"({', '.join(f'{k} {v:.2f}' for k, v in reg.timings_s.items())}), conditioning + mean + SD {t2 - t1:.2f} s")
    print(f"reconstruction (registration included): {rec:.2f} s   goal <= 10 s")
    print(f"100 variants: batched {batched:.3f} s (goal <= 1 s), one at a time {single:.3f} s")
    print(f"face vertices {len(mean)}, median SD {np.median(sd):.2f} mm")
    print(f"skull_vertices={len(skull.vertices)} reconstruct_s={rec:.2f} variants100_s={batched:.3f} "
          f"variants100_one_by_one_s={single:.3f} ratio={single / batched:.2f}")


if __name__ == "__main__":
    main()
