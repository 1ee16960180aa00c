"""Figures for docs/validation/surgery.md (## Segmentation): headsq and the phantom CT to surfaces.

Run: .venv/bin/python scripts/surgery_segment_figures.py   (needs ../shared/data for headsq)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins" / "surgery"))
OUT = REPO / "docs" / "validation" / "images"


def panels(seg, path, title):
    from medface.viz import Scene, render_panels

    bone = Scene().add_mesh(seg.meshes["skull"], color="bone", name="skull")
    if "mandible" in seg.meshes:
        bone.add_mesh(seg.meshes["mandible"], color=(0.55, 0.70, 0.95), name="mandible")
    skin = Scene().add_mesh(seg.meshes["skin"], color="skin", name="skin")
    render_panels([skin, skin, bone, bone], path, views=["frontal", "left", "frontal", "left"],
                  titles=[f"{title}: skin, frontal", "skin, left", "bone (mandible blue), frontal", "bone, left"],
                  size=(420, 420))


def main() -> None:
    from medface.anatomy.ct_segmentation import segment_ct

    from medface import io

    ct = io.read_volume(REPO / "sample_data" / "head_ct.nii.gz")
    seg = segment_ct(ct)
    panels(seg, OUT / "surgery_segment_phantom.png", "phantom")
    report = {"phantom": {"volumes_ml": seg.volumes_ml, "mandible": seg.mandible_method, "timings_s": seg.timings_s}}
    shared = REPO.parent / "shared" / "data" / "headsq" / "headsq.mhd"
    if shared.is_file():
        hq = io.read_volume(shared)
        seg = segment_ct(hq.with_array(hq.array & 0x7FFF))
        panels(seg, OUT / "surgery_segment_headsq.png", "headsq")
        report["headsq"] = {"volumes_ml": seg.volumes_ml, "mandible": seg.mandible_method,
                            "calibration": seg.calibration.to_dict(), "orientation": seg.orientation.to_dict(),
                            "faces": {k: m.n_faces for k, m in seg.meshes.items()},
                            "watertight": {k: m.is_watertight() for k, m in seg.meshes.items()},
                            "warnings": seg.warnings, "timings_s": seg.timings_s}
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
