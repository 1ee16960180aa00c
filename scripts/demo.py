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


def write_reports(out: Path) -> int:
    """Every run with --out already wrote report.html; the forensic one is redone with a figure."""
    from medface.data import Result
    from medface.report import write_report

    print()
    for name in ("surgery", "forensic", "phenotype"):
        result_file = out / name / "result.json"
        if not result_file.is_file():
            return 1
        figures = {"skull": (out / "views" / "skull_three_quarter.png", "sample skull with landmarks")} \
            if name == "forensic" else {}
        paths = write_report(Result.load(result_file), out / name, figures=figures)
        print(f"report: {paths.html}")
    return 0


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
    failures += medface("forensic", "reconstruct", "--skull", str(SAMPLE / "skull.ply"), "--variants", "8",
                        "--out", str(out / "forensic_reconstruct")) != 0
    # the same head from its CT: skull and mandible segmented, the face in the CT's frame
    failures += medface("forensic", "reconstruct", "--ct", str(inputs["ct"]), "--variants", "8",
                        "--out", str(out / "forensic_reconstruct_ct")) != 0
    # the landmarks seed the mandible split: teeth and condyles stay with their bone at 2 mm voxels
    failures += medface("surgery", "segment", "--ct", str(inputs["ct"]), "--landmarks", str(SAMPLE / "landmarks.mrk.json"),
                        "--out", str(out / "surgery_segment")) != 0
    failures += medface("surgery", "plan", "--landmarks", str(SAMPLE / "landmarks.mrk.json"), "--procedure",
                        "bimaxillary", "--advance", "3", "--mandible-advance", "6",
                        "--out", str(out / "surgery_plan" / "plan.json")) != 0
    failures += medface("surgery", "simulate", "--plan", str(out / "surgery_plan" / "plan.json"),
                        "--bone", str(SAMPLE / "skull.ply"), "--mandible", str(SAMPLE / "mandible.ply"),
                        "--skin", str(SAMPLE / "skin.ply"), "--out", str(out / "surgery_simulate")) != 0
    failures += medface("surgery", "guides", "--plan", str(out / "surgery_plan" / "plan.json"),
                        "--bone", str(SAMPLE / "skull.ply"), "--mandible", str(SAMPLE / "mandible.ply"),
                        "--out", str(out / "surgery_guides")) != 0
    failures += medface("expression", "grade", "--photos", str(SAMPLE / "expressions"),
                        "--out", str(out / "expression_grade")) != 0
    failures += medface("phenotype", "inspect", "--image", str(inputs["photo"]), "--out", str(out / "phenotype")) != 0
    for condition in ("hypertelorism", "micrognathia", "midface_retrusion"):  # the sample's condition photos
        failures += medface("phenotype", "screen", "--image", str(SAMPLE / f"condition_{condition}.png"),
                            "--out", str(out / f"phenotype_screen_{condition}")) != 0
    failures += medface("phenotype", "screen-mesh", "--mesh", str(SAMPLE / "skin.ply"),
                        "--out", str(out / "phenotype_screen_mesh")) != 0
    failures += medface("view", str(SAMPLE / "skull.ply"), str(SAMPLE / "mandible.ply"), "--landmarks",
                        str(SAMPLE / "landmarks.mrk.json"), "--view", "three_quarter_left",
                        "--png", str(out / "views" / "skull_three_quarter.png")) != 0
    failures += medface("view", str(inputs["ct"]), "--png", str(out / "views" / "ct_slices.png")) != 0
    failures += medface("view", str(SAMPLE / "skin.ply"), "--html", str(out / "views" / "skin.html")) != 0
    failures += write_reports(out) != 0
    if SHARED.is_dir():
        print(f"\nreal public data found in {SHARED}:")
        failures += medface("surgery", "inspect-ct", "--ct", str(SHARED / "headsq" / "headsq.mhd"),
                            "--out", str(out / "real_headsq")) != 0
        failures += medface("surgery", "segment", "--ct", str(SHARED / "headsq" / "headsq.mhd"),
                            "--out", str(out / "real_headsq_segment")) != 0
        failures += medface("forensic", "inspect-skull", "--skull", str(SHARED / "meshes" / "skull_low_resolution.obj"),
                            "--out", str(out / "real_skull")) != 0
        failures += medface("phenotype", "inspect", "--image", str(SHARED / "faces" / "astronaut.png"),
                            "--out", str(out / "real_photo")) != 0
        failures += medface("phenotype", "screen", "--image", str(SHARED / "faces" / "grace_hopper.jpg"),
                            "--out", str(out / "real_photo_screen")) != 0
    print(f"\ndemo output: {out}")
    for result in sorted({*out.rglob("result.json"), *out.rglob("*.png"), *out.rglob("*.html")}):
        print(f"  {result.relative_to(out)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
