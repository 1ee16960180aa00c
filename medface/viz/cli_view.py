"""``medface view FILE... [--view NAME] [--png OUT] [--html OUT] [--landmarks F] [--scalars NAME] [--size WxH]``.

Shows any mesh or volume medface reads. A volume appears as three slices (axial, coronal,
sagittal) in their physical place; a CT also gets the outline of its bone surface (300 HU).
Without ``--png`` / ``--html`` a window opens when there is a display.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..errors import ParameterError
from .views import VIEWS

BONE_HU = 300.0


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("files", nargs="+", metavar="FILE", help="meshes (STL, PLY, OBJ, VTP, VTK) or volumes (NIfTI, "
                   "NRRD, MHA, a DICOM folder); landmark files are drawn as landmarks")
    p.add_argument("--view", default="frontal", metavar="NAME", help=f"one of: {', '.join(VIEWS)} (default: frontal)")
    p.add_argument("--png", metavar="OUT", help="write a PNG picture off-screen")
    p.add_argument("--html", metavar="OUT", help="write a standalone HTML file to rotate in a browser")
    p.add_argument("--landmarks", action="append", default=[], metavar="F.mrk.json", help="landmarks to draw "
                   "with labels (repeatable)")
    p.add_argument("--scalars", metavar="NAME", help="colour meshes by this per-vertex array (mm colour bar)")
    p.add_argument("--size", default="900x900", metavar="WxH", help="picture size in pixels (default: 900x900)")
    p.add_argument("--no-labels", action="store_true", help="draw landmarks without their ids")


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(x) for x in str(text).lower().split("x"))
    except ValueError:
        raise ParameterError(f"--size must look like 800x600, got {text!r}", parameter="size") from None
    if not (16 <= w <= 16384 and 16 <= h <= 16384):
        raise ParameterError(f"--size must be 16..16384 pixels per side, got {text!r}", parameter="size")
    return w, h


def bone_surface(volume, threshold: float = BONE_HU, max_dim: int = 160):
    """An iso-surface of ``volume`` at ``threshold`` (LPS mm), from a volume subsampled to ``max_dim``."""
    import pyvista as pv

    from ..data.mesh import SurfaceMesh

    step = max(1, int(np.ceil(max(volume.shape_ijk) / max_dim)))
    a = np.asarray(volume.array[::step, ::step, ::step], np.float32)
    if a.max() < threshold or min(a.shape) < 2:
        return None
    img = pv.ImageData(dimensions=a.shape[::-1])
    img.point_data["v"] = a.ravel()  # array [k, j, i] raveled is i-fastest, VTK's order
    surf = img.contour([threshold], scalars="v", method="flying_edges")
    if surf.n_points == 0:
        return None
    surf = surf.triangulate()
    ijk = np.asarray(surf.points, float) * step
    faces = np.asarray(surf.faces).reshape(-1, 4)[:, 1:]
    return SurfaceMesh(volume.index_to_physical(ijk), faces, name="bone (300 HU)")


def build_scene(meshes, volumes, landmark_sets, *, scalars: str | None = None, labels: bool = True):
    from .scene import Scene, looks_like_ct

    scene = Scene()
    if scalars is not None and not any(scalars in m.point_data for m in meshes):
        have = sorted({k for m in meshes for k in m.point_data}) or ["none"]
        raise ParameterError(f"no mesh has a per-vertex array {scalars!r} (have: {', '.join(have)})",
                             parameter="scalars")
    several = len(meshes) > 1 or bool(volumes)
    palette = ["bone", "skin", (0.55, 0.75, 0.55), (0.6, 0.6, 0.85), (0.85, 0.75, 0.45)]
    for n, mesh in enumerate(meshes):
        name = (mesh.name or "").lower()
        is_skin = "skin" in name or "face" in name
        is_bone = any(w in name for w in ("skull", "bone", "mandible", "cranium"))
        color = "skin" if is_skin else "bone" if is_bone else palette[n % len(palette)]
        opacity = 0.45 if (is_skin and several and not volumes) else 1.0
        if scalars is not None and scalars in mesh.point_data:
            values = np.asarray(mesh.point_data[scalars], float)
            diverging = bool(np.nanmin(values) < 0 < np.nanmax(values))
            scene.add_mesh(mesh, scalars=scalars, diverging=diverging, opacity=opacity, scalar_bar_title="mm")
        elif not volumes:
            scene.add_mesh(mesh, color=color, opacity=opacity)
    for volume in volumes:
        outlines = list(meshes)
        colors = [(1.0, 0.5, 0.3)] * len(meshes)
        if looks_like_ct(volume):
            bone = bone_surface(volume)
            if bone is not None:
                outlines.append(bone)
                colors.append("outline")
        scene.add_volume_slices(volume, meshes=outlines, outline_colors=colors)
    for lm in landmark_sets:
        scene.add_landmarks(lm, labels=labels, size=max(1.0, float(np.ptp(scene.bounds(), axis=0).max()) / 120))
    return scene


def run(args) -> int:
    from .. import io
    from ..data.image import FaceImage
    from ..data.landmarks import Landmarks
    from ..data.mesh import SurfaceMesh
    from ..data.volume import Volume
    from .views import check_view

    check_view(args.view)
    size = parse_size(args.size)
    meshes, volumes, landmark_sets = [], [], []
    for path in args.files:
        obj = io.read(path)
        if isinstance(obj, SurfaceMesh):
            meshes.append(obj)
        elif isinstance(obj, Volume):
            volumes.append(obj)
        elif isinstance(obj, Landmarks):
            landmark_sets.append(obj)
        elif isinstance(obj, FaceImage):
            raise ParameterError(f"{path} is a 2D image; `medface view` shows meshes and volumes", parameter="FILE")
    for path in args.landmarks:
        landmark_sets.append(io.read_landmarks(path))
    if not meshes and not volumes:
        raise ParameterError("give at least one mesh or volume to view", parameter="FILE")
    scene = build_scene(meshes, volumes, landmark_sets, scalars=args.scalars, labels=not args.no_labels)

    from .render import export_html, render_png, show

    if args.png:
        print(f"wrote {render_png(scene, args.png, view=args.view, size=size)}")
    if args.html:
        print(f"wrote {export_html(scene, args.html, view=args.view)}")
    if not args.png and not args.html:
        show(scene, view=args.view, size=size)
    return 0
