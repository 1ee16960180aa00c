"""The 3D visualizer: scenes, anatomical views in LPS, PNG / panel / window / HTML output.

::

    from medface import io
    from medface.viz import Scene, render_png, render_panels, export_html

    skin = io.read("sample_data/skin.ply")
    scene = Scene().add_mesh(skin).add_landmarks(io.read("sample_data/landmarks.mrk.json"))
    render_png(scene, "frontal.png", view="frontal")
    export_html(scene, "head.html")

Importing this package is cheap: pyvista and VTK load when a scene gets its first item.
Views and their left/right convention are described in ``docs/viewing.md``.
"""

from __future__ import annotations

from .views import VIEW_TITLES, VIEWS, Camera, camera_for, check_view, perspective_camera, view_yaw

__all__ = ["VIEWS", "VIEW_TITLES", "Camera", "camera_for", "perspective_camera", "check_view", "view_yaw", "Scene",
           "render_png", "render_image", "render_panels", "show", "export_html", "scene_camera", "NoDisplayError"]

_LAZY = {"Scene": "scene", "render_png": "render", "render_image": "render", "render_panels": "render",
         "show": "render", "export_html": "render", "scene_camera": "render", "NoDisplayError": "render"}


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medface.viz' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{module}", __name__), name)
