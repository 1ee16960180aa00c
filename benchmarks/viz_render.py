"""Off-screen PNG of a ~1-million-triangle mesh: medface.viz against a naive pyvista path.

Run: .venv/bin/python benchmarks/viz_render.py [--repeat 3]

medface:  Scene().add_mesh(mesh) (vertex normals with numpy, once) + render_png(view="frontal")
baseline: mesh.to_pyvista() + a fresh pyvista.Plotter + add_mesh(smooth_shading=True) (VTK recomputes
          normals and splits vertices) + screenshot to a PNG, each time.
Both times include building the data set, the plotter, the render and writing the PNG.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def big_mesh(target: int = 1_000_000):
    """A bumpy head-sized sphere with about ``target`` triangles (as a SurfaceMesh)."""
    import pyvista as pv

    from medface.data.mesh import SurfaceMesh

    phi = int(np.sqrt(target / 4)) + 2
    sphere = pv.Sphere(radius=90.0, theta_resolution=2 * phi, phi_resolution=phi).triangulate()
    pts = np.asarray(sphere.points)
    r = 1.0 + 0.04 * np.sin(6 * np.arctan2(pts[:, 1], pts[:, 0])) * np.cos(4 * pts[:, 2] / 90.0)
    faces = np.asarray(sphere.faces).reshape(-1, 4)[:, 1:]
    return SurfaceMesh(pts * r[:, None], faces, name="bench")


def medface_render(mesh, path, size):
    from medface.viz import Scene, render_png

    render_png(Scene().add_mesh(mesh), path, view="frontal", size=size)


def naive_render(mesh, path, size):
    import pyvista as pv

    poly = mesh.to_pyvista()
    p = pv.Plotter(off_screen=True, window_size=list(size))
    p.add_mesh(poly, color=(0.87, 0.68, 0.58), smooth_shading=True)
    p.camera_position = "xz"
    p.screenshot(str(path))
    p.close()


def timed(fn, *args, repeat=3):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--triangles", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=800)
    args = ap.parse_args()
    from medface.viz.render import _plotter

    _plotter((64, 64)).close()  # load the GL back end once, outside both timings
    mesh = big_mesh(args.triangles)
    size = (args.size, args.size)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        probe = _plotter((64, 64))
        probe.render_window.Render()
        caps = probe.render_window.ReportCapabilities().splitlines()
        probe.close()
        gl = next((line.split(":", 1)[1].strip() for line in caps if "renderer string" in line.lower()), "?")
        print(f"mesh: {mesh.n_faces} triangles, {mesh.n_vertices} vertices; image {size[0]}x{size[1]}; GL: {gl}")
        base, base_all = timed(naive_render, mesh, out / "naive.png", size, repeat=args.repeat)
        ours, ours_all = timed(medface_render, mesh, out / "medface.png", size, repeat=args.repeat)
    print(f"baseline (naive pyvista): median {base:.2f} s  runs {', '.join(f'{t:.2f}' for t in base_all)}")
    print(f"medface render_png:       median {ours:.2f} s  runs {', '.join(f'{t:.2f}' for t in ours_all)}")
    print(f"render_s={ours:.2f} under_2s={ours < 2.0} ratio={base / ours:.2f}")


if __name__ == "__main__":
    main()
