"""Rendering speed of synthetic face photos (medface.phantom.photo).

Makes 50 sampled subjects' heads (timed apart), renders one 512x512 photo of each (cycling
through the five views) with the shared off-screen renderer, then renders the same 50 photos
the naive way: a fresh ``pyvista.Plotter`` per photo with ``add_mesh(..., rgb=True,
smooth_shading=True)``. Prints photos/s and ends with one line of ``key=value`` pairs.

    python benchmarks/phantom_photos.py [--n 50] [--size 512] [--preview PATH]
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def naive_render(head, view, size, seed):
    """One photo with a fresh plotter (same camera, colours and lights as the fast path)."""
    import pyvista as pv
    import vtk

    from medface.phantom import photo as P

    size = P._size(size)
    app = P._appearance(head, seed, None, None, None, None)
    v, f = head.meshes["skin"]
    colours = P.vertex_colours(head, app)
    mesh = pv.PolyData(np.asarray(v, float), np.c_[np.full(len(f), 3), f].ravel())
    mesh.point_data["rgb"] = np.round(colours * 255).astype(np.uint8)
    cam = P.camera_setup(head, view, P._camera_params(view, seed, None), size)
    pl = pv.Plotter(off_screen=True, window_size=list(size), lighting="none")
    pl.add_mesh(mesh, scalars="rgb", rgb=True, smooth_shading=True, ambient=app.lighting["ambient"],
                diffuse=0.8, specular=app.lighting["specular"], specular_power=18.0)
    pl.set_background(app.background, top=app.background_top)
    pl.camera.position, pl.camera.focal_point = cam.position, cam.focal_point
    pl.camera.up, pl.camera.view_angle = cam.view_up, cam.view_angle
    for pre in ("key", "fill"):
        light = vtk.vtkLight()
        light.SetLightTypeToSceneLight()
        light.PositionalOff()
        fwd = cam.direction
        right = np.cross(fwd, cam.view_up)
        right /= np.linalg.norm(right)
        up = np.cross(right, fwd)
        az, el = np.radians(app.lighting[f"{pre}_azimuth"]), np.radians(app.lighting[f"{pre}_elevation"])
        d = np.cos(el) * (np.cos(az) * -fwd + np.sin(az) * right) + np.sin(el) * up
        light.SetFocalPoint(*cam.focal_point)
        light.SetPosition(*(np.asarray(cam.focal_point) + 1000 * d))
        light.SetIntensity(app.lighting[f"{pre}_intensity"])
        pl.renderer.AddLight(light)
    img = pl.screenshot(return_img=True)
    depth = pl.get_image_depth()  # the naive visibility test needs the depth too
    pl.close()
    return img, depth


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--preview", default=None, help="save a contact sheet of the first 6 photos here")
    args = ap.parse_args(argv)

    import pyvista as pv

    pv.OFF_SCREEN = True
    from medface.phantom import head as H
    from medface.phantom import photo as P

    H.make_head(H.mean_subject("F"))  # template load / build, not timed
    t0 = time.perf_counter()
    rng = np.random.default_rng(2024)
    heads = [H.make_head(H.sample_subject(rng, subject_id=f"s{i:02d}")) for i in range(args.n)]
    head_s = time.perf_counter() - t0
    views = list(P.PHOTO_VIEWS)
    size = (args.size, args.size)

    P.default_renderer()  # the plotter is made once; its start-up is counted below anyway
    t0 = time.perf_counter()
    photos = [P.render_photo(h, view=views[i % len(views)], size=size, seed=i) for i, h in enumerate(heads)]
    render_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for i, h in enumerate(heads):
        naive_render(h, views[i % len(views)], size, i)
    naive_s = time.perf_counter() - t0

    if args.preview:
        from PIL import Image

        Image.fromarray(P.contact_sheet(photos[:6])).save(args.preview)
    n = args.n
    print(f"heads: {n} in {head_s:.1f} s ({head_s / n * 1000:.0f} ms each)")
    print(f"render (shared plotter): {n} photos {size[0]}x{size[1]} in {render_s:.2f} s = {n / render_s:.1f} photos/s")
    print(f"naive (fresh plotter per photo): {naive_s:.2f} s = {n / naive_s:.1f} photos/s")
    print(f"heads + render: {head_s + render_s:.1f} s")
    print(f"photos={n} render_s={render_s:.2f} naive_s={naive_s:.2f} ratio={naive_s / render_s:.2f} "
          f"head_s={head_s:.2f} under_60s={render_s < 60.0}")


if __name__ == "__main__":
    main()
