"""A first screening network trained on phantom *syndromes* (not the condition presets), on the
CPU, then GMDB's evaluation of it and the face + terms fusion with it as the face.

Ages 1-80 (children through the phantom's growth model), frequent syndromes with many subjects,
rare ones with at most 6 (gallery only), controls. Everything synthetic.

run: .venv/bin/python scripts/train_syndrome_model.py [frequent] [subjects] [rare] [epochs] [out]
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import medface
from medface_phenotype.syndromes import choose
from phantom_sets import render

AGES = (1.0, 80.0)


def main(frequent: int = 60, subjects: int = 24, rare: int = 20, epochs: int = 30,
         out: str = "/tmp/medface-syndromes") -> dict:
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    freq = [s.id for s in choose(frequent)]
    rare_ids = [s.id for s in choose(rare, rare=True)]
    spc = {**{f: subjects for f in freq}, **{r: 4 for r in rare_ids}}
    t0 = time.perf_counter()
    data = render(root / "data", spc, controls=subjects * 2, seed=41, ages=AGES)
    t_render = time.perf_counter() - t0
    model = root / "model"
    medface.run("phenotype.train", data=data, out=model, epochs=epochs, min_subjects=8, rare=",".join(rare_ids),
                name="phantom-syndromes", version="0.1.0")
    t_train = time.perf_counter() - t0 - t_render
    evaluation = medface.run("phenotype.evaluate", model=model, data=data, out=root / "evaluation")
    report = json.loads((root / "evaluation" / "evaluation.json").read_text(encoding="utf-8"))
    t_eval = time.perf_counter() - t0 - t_render - t_train
    # the fusion with this network as the face: other patients of the frequent syndromes and of
    # 25 % more syndromes the gallery lacks
    outside = [s.id for s in choose(frequent + frequent // 4)][frequent:]
    queries = render(root / "queries", {lab: 4 for lab in freq + outside}, seed=42, ages=AGES)
    fused = medface.run("phenotype.train-fusion", model=model, data=queries, repeats=5, seed=0)
    summary = {"frequent": frequent, "subjects": subjects, "rare": rare, "epochs": epochs, "ages": AGES,
               "seconds": {"render": round(t_render), "train": round(t_train), "evaluate": round(t_eval),
                           "total": round(time.perf_counter() - t0)},
               "evaluate_summary": evaluation.summary, "settings": {k: {m: v.get(m) for m in ("top_k", "chance",
                                                                                              "n_queries")}
                                                                    for k, v in report["settings"].items()},
               "fusion": fused.summary, "fusion_held_out": fused.metrics["fusion"]["held_out"]["rankings"]}
    (root / "report.json").write_text(json.dumps(summary, indent=1, default=str), encoding="utf-8")
    return summary


if __name__ == "__main__":
    args = sys.argv[1:]
    ints = [int(a) for a in args[:4]]
    print(json.dumps(main(*ints, *args[4:5]), indent=1, default=str))
