"""Figures and numbers for docs/surgery.md ("Printed guides and splints", "Fibula free flap") and
docs/validation/surgery.md: a bimaxillary plan's cutting guides and splints, and a fibula plan for
a 40 mm body defect of the phantom mandible. Writes PNGs to docs/images/ and prints the figures.

Run: .venv/bin/python scripts/surgery_or_figures.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins" / "surgery"))
OUT = REPO / "docs" / "images"
GUIDE, SPLINT, FIB = (0.20, 0.50, 0.90), (0.95, 0.75, 0.20), (0.85, 0.35, 0.30)


def main() -> None:
    from medface_surgery.fibula import body_defect_planes, plan_fibula
    from medface_surgery.guides import plan_guides
    from medface_surgery.plan import SurgeryPlan
    from medface_surgery.printable import check_printable
    from medface_surgery.splints import plan_splints

    from medface import io
    from medface.viz import Scene, render_panels

    lm = io.read_landmarks(REPO / "sample_data" / "landmarks.mrk.json")
    bones = {"cranium": io.read_mesh(REPO / "sample_data" / "skull.ply"),
             "mandible": io.read_mesh(REPO / "sample_data" / "mandible.ply")}
    report = {}
    plan = SurgeryPlan.from_preset("bimaxillary", lm, advance=5.0, mandible_advance=3.0)
    t = time.perf_counter()
    planned = plan.apply(bones)
    guides = plan_guides(plan, bones)
    t_guides = time.perf_counter() - t
    t = time.perf_counter()
    splints = plan_splints(plan, bones, planned)
    t_splints = time.perf_counter() - t
    report["timings_s"] = {"apply+guides": round(t_guides, 2), "splints": round(t_splints, 2)}
    report["parts"] = [check_printable(g.mesh).to_dict() for g in guides.values()] + \
        [check_printable(s.mesh).to_dict() for s in splints.values()]
    report["splints"] = [s.row() for s in splints.values()]
    bone = Scene().add_mesh(bones["cranium"], color="bone").add_mesh(bones["mandible"], color="bone")
    for g in guides.values():
        bone.add_mesh(g.mesh, color=GUIDE, name=g.name)
    parts = Scene()
    for g in guides.values():
        parts.add_mesh(g.mesh, color=GUIDE, name=g.name)
    render_panels([bone, bone, parts], OUT / "surgery_guides_bimax.png", views=["frontal", "three_quarter_left", "frontal"],
                  titles=["cutting guides on the bone", "three-quarter left", "the guides alone"], size=(460, 460),
                  link_cameras=False)
    scenes, views, titles = [], [], []
    for key, s in splints.items():
        scenes += [Scene().add_mesh(s.mesh, color=SPLINT), Scene().add_mesh(s.mesh, color=SPLINT)]
        views += ["inferior", "left"]
        titles += [f"{key} splint, from below", f"{key} splint, left (opened {s.opening_deg:.1f} deg)"]
    upper = planned.segments["maxilla"]
    scenes.append(Scene().add_mesh(upper, color="bone").add_mesh(splints["intermediate"].mesh, color=SPLINT))
    views.append("left")
    titles.append("intermediate splint on the moved maxilla")
    render_panels(scenes, OUT / "surgery_splints_bimax.png", views=views, titles=titles, size=(380, 380),
                  shape=(1, len(scenes)), link_cameras=False)
    # fibula
    md = bones["mandible"]
    pa, pb = body_defect_planes(md, lm, side="left", start_mm=15.0, length_mm=40.0)
    t = time.perf_counter()
    fib = plan_fibula(md, [pa, pb], landmarks=lm)
    report["fibula_time_s"] = round(time.perf_counter() - t, 2)
    report["fibula"] = {"metrics": fib.metrics, "segments": fib.segment_rows, "junctions": fib.junction_rows,
                        "guides": [g.row() for g in fib.guides.values()], "warnings": fib.warnings}
    mirror = plan_fibula(md, [pa, pb], landmarks=lm, contour="mirror", guides=False)
    report["fibula_mirror"] = {"metrics": mirror.metrics, "segments": mirror.segment_rows}
    recon = Scene()
    for s in fib.stumps:
        recon.add_mesh(s, color="bone")
    for s in fib.segments:
        recon.add_mesh(s, color=FIB)
    orig = Scene().add_mesh(md, color="bone").add_mesh(fib.guides["mandible"].mesh, color=GUIDE)
    fibula_scene = Scene()
    for piece in fib.fibula_pieces:
        fibula_scene.add_mesh(piece, color=FIB)
    fibula_scene.add_mesh(fib.guides["fibula"].mesh, color=GUIDE)
    render_panels([orig, recon, recon], OUT / "surgery_fibula_plan.png", views=["three_quarter_left", "three_quarter_left", "inferior"],
                  titles=["resection guide (40 mm body defect)", "fibula segments in the defect", "from below"],
                  size=(440, 440), link_cameras=False)
    render_panels([fibula_scene, fibula_scene], OUT / "surgery_fibula_guide.png", views=["left", "frontal"],
                  titles=["fibula guide and pieces, lateral", "anterior"], size=(440, 440), link_cameras=False)
    print(json.dumps(report, indent=1, default=str))


if __name__ == "__main__":
    main()
