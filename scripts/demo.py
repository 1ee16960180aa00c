"""`make demo`: run each plugin's main command on sample inputs and say where the output went.

Until the synthetic phantom (issue 2) writes `sample_data/`, the demo makes small synthetic
inputs itself (a CT of a bone shell, a skull-sized surface, a test-card photo) and, when the
real public files in ../shared/data exist, also inspects those.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def make_inputs(folder: Path) -> dict[str, Path]:
    import trimesh

    from medface.data import FaceImage, SurfaceMesh, Volume
    from medface.io import write_image, write_mesh, write_volume

    folder.mkdir(parents=True, exist_ok=True)
    k, j, i = np.mgrid[0:48, 0:64, 0:64]
    r = np.sqrt((i - 32.0) ** 2 + (j - 32.0) ** 2 + ((k - 24.0) * 2) ** 2)
    hu = np.where(r < 28, 40, -1000).astype(np.int16)
    hu[(r >= 24) & (r < 28)] = 1100
    ct = folder / "synthetic_ct.nii.gz"
    write_volume(Volume(hu, spacing=(2.0, 2.0, 3.0), origin=(-64.0, -64.0, -72.0), units="HU"), ct)

    skull = trimesh.creation.icosphere(subdivisions=4)
    skull.apply_scale((72.0, 95.0, 80.0))
    mesh = folder / "synthetic_skull.stl"
    write_mesh(SurfaceMesh.from_trimesh(skull), mesh)

    y, x = np.mgrid[0:256, 0:256]
    card = 70 + 100 * (((x // 16) + (y // 16)) % 2) + 40 * (((x - 128) ** 2 + (y - 128) ** 2) < 80 ** 2)
    photo = folder / "test_card.png"
    write_image(FaceImage(np.repeat(card[..., None], 3, axis=2).astype(np.uint8)), photo)
    return {"ct": ct, "mesh": mesh, "photo": photo}


def medface(*args: str) -> int:
    cmd = [sys.executable, "-m", "medface", *args]
    print("\n$ medface " + " ".join(args), flush=True)
    return subprocess.call(cmd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output", help="output folder")
    out = Path(parser.parse_args().out).resolve()
    inputs = make_inputs(out / "inputs")
    failures = 0
    failures += medface("plugins", "list") != 0
    failures += medface("surgery", "inspect-ct", "--ct", str(inputs["ct"]), "--out", str(out / "surgery")) != 0
    failures += medface("forensic", "inspect-skull", "--skull", str(inputs["mesh"]),
                        "--out", str(out / "forensic")) != 0
    failures += medface("phenotype", "inspect", "--image", str(inputs["photo"]), "--out", str(out / "phenotype")) != 0
    if SHARED.is_dir():
        print(f"\nreal public data found in {SHARED}:")
        failures += medface("surgery", "inspect-ct", "--ct", str(SHARED / "headsq" / "headsq.mhd"),
                            "--out", str(out / "real_headsq")) != 0
        failures += medface("forensic", "inspect-skull", "--skull", str(SHARED / "meshes" / "skull_low_resolution.obj"),
                            "--out", str(out / "real_skull")) != 0
        failures += medface("phenotype", "inspect", "--image", str(SHARED / "faces" / "astronaut.png"),
                            "--out", str(out / "real_photo")) != 0
    print(f"\ndemo output: {out}")
    for result in sorted(out.rglob("result.json")):
        print(f"  {result.relative_to(out)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
