"""`make demo`: run each plugin's main command on the bundled sample data (`sample_data/`, a
synthetic phantom head written by `medface sample-data`) and say where the output went. When the
real public files in ../shared/data exist, they are inspected too.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


SAMPLE = REPO / "sample_data"


def sample_inputs() -> dict[str, Path]:
    inputs = {"ct": SAMPLE / "head_ct.nii.gz", "dicom": SAMPLE / "head_ct_dicom", "mesh": SAMPLE / "skull.ply",
              "photo": SAMPLE / "photo_frontal.png"}
    missing = [str(p) for p in inputs.values() if not p.exists()]
    if missing:
        raise SystemExit(f"sample data missing ({', '.join(missing)}); run `medface sample-data --out sample_data`")
    return inputs


def medface(*args: str) -> int:
    cmd = [sys.executable, "-m", "medface", *args]
    print("\n$ medface " + " ".join(args), flush=True)
    return subprocess.call(cmd)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="demo_output", help="output folder")
    out = Path(parser.parse_args().out).resolve()
    inputs = sample_inputs()
    failures = 0
    failures += medface("plugins", "list") != 0
    failures += medface("surgery", "inspect-ct", "--ct", str(inputs["dicom"]), "--out", str(out / "surgery_dicom")) != 0
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
