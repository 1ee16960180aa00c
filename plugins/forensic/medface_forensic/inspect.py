"""`forensic inspect-skull`: size, components and holes of a skull mesh, and a unit check."""

from __future__ import annotations

from medface.data import Result, SurfaceMesh
from medface.data.mesh import MESH_CHECKS, mesh_problems

from .skull_size import PLAUSIBLE_MM, count_holes, judge_size

_OTHER_CHECKS = tuple(c for c in MESH_CHECKS if c not in ("open", "components"))


def inspect_skull(skull: SurfaceMesh, scale: float = 1.0, out=None) -> Result:
    mesh = skull.scaled(scale) if scale != 1.0 else skull
    info = mesh.describe()
    verdict = judge_size(mesh.extent)
    holes = count_holes(mesh.boundary_edges())
    warnings = []
    if not verdict.plausible:
        hint = (f"it looks like {verdict.suggested_unit}: try --scale {verdict.suggested_scale:g}"
                if verdict.suggested_unit else f"try --scale {verdict.suggested_scale:g}")
        warnings.append(f"largest extent {verdict.largest_extent:.4g} mm is outside the human range "
                        f"{PLAUSIBLE_MM[0]:.0f}-{PLAUSIBLE_MM[1]:.0f} mm; {hint}")
    if info["components"] > 1:
        warnings.append(f"{info['components']} separate components (a loose mandible, teeth or fragments)")
    if holes:
        warnings.append(f"{holes} holes or open rims in the surface")
    warnings += mesh_problems(mesh, checks=_OTHER_CHECKS)  # holes and components are reported above
    summary = {
        "vertices": info["vertices"],
        "triangles": info["triangles"],
        "extent_mm": info["extent_mm"],
        "plausible_size": verdict.plausible,
        "components": info["components"],
        "holes": holes,
        "watertight": info["watertight"],
    }
    return Result(command="forensic.inspect-skull", summary=summary,
                  metrics={"largest_extent_mm": verdict.largest_extent, "area_mm2": info["area_mm2"]},
                  tables={"mesh": [info]}, warnings=warnings)
