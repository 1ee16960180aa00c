"""Face + terms fusion on simulated patients (issue 19's fused figures), end to end on the CPU.

A copy of the demo screening package gets a gallery of phantom syndrome patients
(`gallery-add --patients`), then `train-fusion` embeds *other* phantom patients of the same
syndromes, simulates their terms, and reports held-out top-1/top-10 of the face alone, the terms
alone and the fusion. The demo network was trained on the eleven condition presets, not on
syndromes: the face's figures here are those of an encoder that never saw these syndromes.

run: .venv/bin/python scripts/evaluate_fusion.py [syndromes] [gallery patients] [query patients]
     [syndromes outside the gallery] [out]
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import medface
from medface_phenotype.screening import DEMO_MODEL
from medface_phenotype.syndromes import choose
from phantom_sets import render


def main(syndromes: int = 100, gallery_patients: int = 2, query_patients: int = 4, outside: int = 25,
         out: str = "/tmp/medface-fusion") -> dict:
    """``outside`` more syndromes have query patients but no gallery entry (a real clinic's
    patient may have a syndrome the gallery lacks; without them the fusion would learn that the
    answer is always in the gallery)."""
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    labels = [s.id for s in choose(syndromes + outside)]
    start = time.perf_counter()
    gallery_set = render(root / "gallery", {lab: gallery_patients for lab in labels[:syndromes]}, seed=31)
    queries = render(root / "queries", {lab: query_patients for lab in labels}, seed=32)
    rendered = time.perf_counter() - start
    package = root / "package"
    if package.exists():
        shutil.rmtree(package)
    shutil.copytree(DEMO_MODEL, package)
    medface.run("phenotype.gallery-add", model=package, data=gallery_set, patients=True)
    trained = medface.run("phenotype.train-fusion", model=package, data=queries, repeats=5, seed=0)
    report = {"syndromes": syndromes, "outside_gallery_syndromes": outside,
              "gallery_patients_per_syndrome": gallery_patients,
              "query_patients_per_syndrome": query_patients, "render_seconds": round(rendered, 1),
              "total_seconds": round(time.perf_counter() - start, 1), "summary": trained.summary,
              "held_out": trained.metrics["fusion"]["held_out"]}
    (root / "fusion_report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


if __name__ == "__main__":
    args = sys.argv[1:]
    ints = [int(a) for a in args[:4]]
    print(json.dumps(main(*ints, *args[4:5]), indent=1))
