"""Self-test: the unit check of `inspect-skull`, then the main pipeline on the sample head.

1. A skull-sized closed surface passes `inspect-skull`; the same surface in centimetres is
   caught with a ``--scale 10`` hint.
2. `reconstruct` on the sample skull (``sample_data/skull.ply`` + ``mandible.ply``: the
   phantom's sample head, another topology than the template, with teeth): the face written
   to ``face.ply`` must lie on the sample's true skin (``skin.ply``) within a few mm over the
   front of the face. It uses the default model (trained and cached the first time, about 2-4
   minutes; afterwards the test takes well under a minute).

The sample files are taken from ``$MEDFACE_SAMPLE_DATA``, ``./sample_data`` or the checkout's
``sample_data``; where none is found, the sample head is built by the phantom.
"""

from __future__ import annotations

from pathlib import Path

SAMPLE_FILES = ("skull.ply", "mandible.ply", "skin.ply")
FRONT_MEAN_MM = 3.0  # the sample face's front lies this close to the true skin (about 1.5 mm measured)


def _sample_folder(workdir: Path) -> Path:
    """A folder with the sample skull, mandible and skin (see the module docstring)."""
    from medface.phantom.sample_data import find_sample_data

    return find_sample_data(SAMPLE_FILES) or _build_sample(workdir / "sample")


def _build_sample(folder: Path) -> Path:
    """The sample head of `medface sample-data` (seed 0): its skull, mandible and skin."""
    import numpy as np

    from medface.io import write_mesh
    from medface.phantom import make_head, sample_subject

    subject = sample_subject(np.random.default_rng(0), sex="F", age=38.0, bmi=23.5, subject_id="sample-0")
    head = make_head(subject)
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in zip(SAMPLE_FILES, ("cranium", "mandible", "skin")):
        write_mesh(head.mesh(part), folder / name)
    return folder


def _check_inspect(workdir: Path) -> None:
    import trimesh

    import medface
    from medface.data import SurfaceMesh
    from medface.io import write_mesh

    ellipsoid = trimesh.creation.icosphere(subdivisions=3)
    ellipsoid.apply_scale((70.0, 95.0, 80.0))  # half-axes of a cranium in mm
    mesh = SurfaceMesh.from_trimesh(ellipsoid)
    write_mesh(mesh, workdir / "skull_mm.stl")
    result = medface.run("forensic.inspect-skull", skull=workdir / "skull_mm.stl", out=workdir / "mm")
    assert result.summary["plausible_size"] is True, result.warnings
    assert result.summary["watertight"] and result.summary["holes"] == 0, result.summary
    write_mesh(mesh.scaled(0.1), workdir / "skull_cm.ply")
    result = medface.run("forensic.inspect-skull", skull=workdir / "skull_cm.ply")
    assert result.summary["plausible_size"] is False
    assert any("--scale 10" in w for w in result.warnings), result.warnings


def _check_reconstruct(workdir: Path) -> float:
    """Reconstruct the sample skull; returns the mean distance (mm) of the face's front to the true skin."""
    import numpy as np
    from scipy.spatial import cKDTree

    import medface
    from medface.data import SurfaceMesh
    from medface.io import read_mesh, write_mesh

    sample = _sample_folder(workdir)
    cranium, mandible, skin = (read_mesh(sample / f) for f in SAMPLE_FILES)
    skull = SurfaceMesh(np.concatenate([cranium.vertices, mandible.vertices]),
                        np.concatenate([cranium.faces, mandible.faces + cranium.n_vertices]), name="sample skull")
    write_mesh(skull, workdir / "sample_skull.ply")
    out = workdir / "reconstruction"
    result = medface.run("forensic.reconstruct", skull=workdir / "sample_skull.ply", sex="F", age=38.0, bmi=23.5,
                         variants=2, figures=False, out=out)
    assert result.summary["mandible"] == "present", result.summary
    face = read_mesh(out / "face.ply")
    assert "sd_mm" in face.point_data and (out / "variant_01.ply").is_file()
    front = face.vertices[:, 1] < np.percentile(face.vertices[:, 1], 30)
    gap = float(cKDTree(skin.vertices).query(face.vertices[front])[0].mean())
    assert gap < FRONT_MEAN_MM, f"the reconstructed face's front lies {gap:.2f} mm from the true skin on average"
    return gap


def selftest(workdir: Path) -> str:
    workdir = Path(workdir)
    _check_inspect(workdir)
    gap = _check_reconstruct(workdir)
    return (f"millimetre skull accepted, centimetre skull caught with a --scale 10 hint; the sample skull's "
            f"reconstructed face lies {gap:.2f} mm (mean, front of the face) from its true skin")
