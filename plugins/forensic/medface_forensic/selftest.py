"""Self-test: a skull-sized closed surface passes; the same surface in centimetres is caught."""

from __future__ import annotations

from pathlib import Path


def selftest(workdir: Path) -> str:
    import trimesh

    import medface
    from medface.data import SurfaceMesh
    from medface.io import write_mesh

    ellipsoid = trimesh.creation.icosphere(subdivisions=3)
    ellipsoid.apply_scale((70.0, 95.0, 80.0))  # half-axes of a cranium in mm
    mesh = SurfaceMesh.from_trimesh(ellipsoid)
    path = workdir / "skull_mm.stl"
    write_mesh(mesh, path)
    result = medface.run("forensic.inspect-skull", skull=path, out=workdir / "mm")
    assert result.summary["plausible_size"] is True, result.warnings
    assert result.summary["watertight"] and result.summary["holes"] == 0, result.summary

    write_mesh(mesh.scaled(0.1), workdir / "skull_cm.ply")
    result = medface.run("forensic.inspect-skull", skull=workdir / "skull_cm.ply")
    assert result.summary["plausible_size"] is False
    assert any("--scale 10" in w for w in result.warnings), result.warnings
    return "millimetre skull accepted, centimetre skull caught with a --scale 10 hint"
