"""medface's data model: volumes, meshes, landmarks, images, plans, results and live panel updates.

Importing this package is cheap: each class loads (with numpy) when it is first used, so the
standard-library-only parts of the data layer, such as the landmark vocabulary
(:mod:`medface.data.vocabulary`), load without numpy.
"""

from __future__ import annotations

from ..lazy import lazy_exports

__all__ = ["FaceImage", "Landmarks", "SurfaceMesh", "Plan", "PanelUpdate", "Provenance", "InputRecord", "Result",
           "Volume", "sha256_file", "sha256_path"]

_LAZY = {"FaceImage": "image", "Landmarks": "landmarks", "SurfaceMesh": "mesh", "Plan": "plan",
         "PanelUpdate": "panel", "Provenance": "provenance", "InputRecord": "provenance", "sha256_file": "provenance",
         "sha256_path": "provenance", "Result": "result", "Volume": "volume"}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
