"""Validation of the skull-to-face model on held-out synthetic phantom subjects.

For every held-out subject (a cohort seed disjoint from training) the face is reconstructed
from its skull (cranium + mandible, in correspondence, no registration) with sex, age and BMI
given, and compared with its true skin on the face region of :mod:`.metrics`. The BASELINE is
the classic tissue-depth method of :mod:`.baseline` (table means along the bone normals, the
mean face warped through them).

``medface forensic evaluate --out docs/validation`` reproduces ``docs/validation/forensic.md``
(the default model: 200 phantom subjects; 100 test subjects; with the variants "mandible
missing" and "no covariates").
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from medface.data.mesh import vertex_normals

from . import metrics as M
from .baseline import tissue_depth_face
from .shape_model import ShapeModel
from .template import template_head
from .train import phantom_training_set


def evaluate(model: ShapeModel, n_test: int = 100, seed: int = 1000, *, sigma: float = 1.0,
             covariates: bool = True, mandible: bool = True) -> dict:
    """Metrics of the model and of the baseline on ``n_test`` held-out phantom subjects."""
    tmpl = template_head()
    regions = M.face_regions(tmpl.skin.vertices, tmpl.skin.faces, tmpl.landmarks)
    face = regions["face"]
    ident = np.flatnonzero(face)[::4]  # every 4th face vertex keeps identification quick
    cr, md, sk, _, subjects = phantom_training_set(n_test, seed)
    err = {"model": [], "baseline": []}
    signed, sds, recon_face, base_face, times = [], [], [], [], []
    for i in range(n_test):
        s = subjects[i]
        t0 = time.perf_counter()
        kw = {"sex": s["sex"], "age": s["age"], "bmi": s["bmi"]} if covariates else {}
        post = model.condition(cr[i], md[i] if mandible else None, sigma=sigma, **kw)
        mean, sd = post.mean, post.sd()
        post.sample(100, i)
        times.append(time.perf_counter() - t0)
        normals = vertex_normals(sk[i], model.skin_faces)
        _, sgn = M.vertex_errors(mean, sk[i], normals)
        base = tissue_depth_face(model, cr[i], md[i] if mandible else None, **kw)
        _, sgn_b = M.vertex_errors(base, sk[i], normals)
        base_face.append(base[ident])
        err["model"].append(np.abs(sgn))
        err["baseline"].append(np.abs(sgn_b))
        signed.append(sgn)
        sds.append(sd)
        recon_face.append(mean[ident])
    gallery = [sk[i][ident].astype(np.float64) for i in range(n_test)]
    out = {"n_test": n_test, "test_seed": seed, "sigma_mm": sigma, "covariates_given": covariates,
           "mandible_given": mandible, "face_vertices": int(face.sum()),
           "timing_condition_plus_100_samples_s": float(np.median(times))}
    for name in ("model", "baseline"):
        e = np.array(err[name])
        out[name] = {"face": M.summarise(e[:, face]),
                     "regions": {r: M.summarise(e[:, regions[r]]) for r in M.REGIONS},
                     "per_subject_mean": [float(v) for v in e[:, face].mean(1)]}
    sg, sd = np.array(signed), np.array(sds)
    out["model"]["calibration"] = M.coverage(sg[:, face], sd[:, face])
    out["model"]["calibration_regions"] = {r: M.coverage(sg[:, regions[r]], sd[:, regions[r]]) for r in M.REGIONS}
    out["model"]["identification"] = M.identification(recon_face, gallery, list(range(n_test)))
    out["baseline"]["identification"] = M.identification(base_face, gallery, list(range(n_test)))
    out["mean_abs_error_map"] = {k: np.array(v).mean(0) for k, v in err.items()}
    out["mean_sd_map"] = sd.mean(0)
    return out


def error_figure(model: ShapeModel, res: dict):
    """Mean absolute error maps (baseline, model) and the mean posterior SD on the mean face, as
    a declared figure (drawn by the runner)."""
    from medface.data.outputs import Figure

    def scenes():
        from medface.data import SurfaceMesh
        from medface.viz import Scene

        skin = SurfaceMesh(model.mean_skin(), model.skin_faces)
        maps = (res["mean_abs_error_map"]["baseline"], res["mean_abs_error_map"]["model"], res["mean_sd_map"])
        return [Scene().add_mesh(skin, scalars=m, clim=(0, 4), cmap="magma") for m in maps]

    return Figure(scenes, views="three_quarter_left", size=(420, 460),
                  titles=["baseline: mean abs. error", "model: mean abs. error", "model: mean posterior SD"])


VARIANTS = {"full": {}, "no_mandible": {"mandible": False}, "no_covariates": {"covariates": False}}
LIMIT = ("Held-out subjects are synthetic phantom heads, whose faces follow their skulls far more closely than real "
         "faces do: these figures are not casework accuracy.")


def evaluate_variants(model: ShapeModel, n_test: int = 100, seed: int = 1000, *, sigma: float = 1.0,
                      variants: bool = True, progress=None) -> dict:
    """:func:`evaluate` for each of :data:`VARIANTS` (only "full" without ``variants``)."""
    results = {}
    for name, kw in (VARIANTS.items() if variants else [("full", {})]):
        if progress is not None:
            progress(f"evaluating on {n_test} held-out phantom subjects ({name.replace('_', ' ')})")
        results[name] = evaluate(model, n_test, seed, sigma=sigma, **kw)
    return results


def evaluate_command(out, model=None, n_test: int = 100, seed: int = 1000, sigma: float = 1.0,
                     variants: bool = True, figures: bool = True, context=None):
    """CLI entry of `forensic evaluate`: the model (default: the phantom-trained one) and the
    baseline on ``n_test`` held-out phantom subjects (and, with ``variants``, without the
    mandible and without covariates); declares forensic_evaluation.json, forensic.md (the
    validation page, with the real-data section ``forensic_real_data.md`` found in ``out``) and
    images/forensic_error_maps.png."""
    from medface.data import Result

    from . import validation_doc
    from .model_cache import default_model
    from .shape_model import load_model

    shape = load_model(model) if model else default_model()
    t0 = time.perf_counter()
    results = evaluate_variants(shape, n_test, seed, sigma=sigma, variants=variants,
                                progress=context.stage if context is not None else None)
    elapsed = time.perf_counter() - t0
    res = results["full"]
    doc = {name: {k: v for k, v in r.items() if k not in ("mean_abs_error_map", "mean_sd_map")}
           for name, r in results.items()}
    doc["model"] = shape.metadata
    real = Path(out) / "forensic_real_data.md"
    page = validation_doc.markdown(results, shape.metadata, figure="images/forensic_error_maps.png" if figures else None,
                                   real_data=real.read_text(encoding="utf-8") if real.is_file() else None,
                                   timings={f"Evaluation (all variants, {n_test} subjects each)": elapsed})
    result = Result(command="forensic.evaluate", summary=_summary(res, n_test), tables=_tables(res), limits=[LIMIT])
    result.declare("evaluation", "forensic_evaluation.json", json.dumps(doc, indent=1), kind="text")
    result.declare("validation page", "forensic.md", page, kind="text")
    if figures:
        result.declare("error maps", "images/forensic_error_maps.png", error_figure(shape, res))
    return result


def _summary(res: dict, n_test: int) -> dict:
    m, b = res["model"], res["baseline"]
    return {"test_subjects": n_test, "model_mean_mm": round(m["face"]["mean"], 3),
            "baseline_mean_mm": round(b["face"]["mean"], 3), "model_within_2.5mm_pct": round(m["face"]["within_2.5"], 1),
            "coverage_1sigma_pct": round(m["calibration"]["within_1sd"], 1), "rank1_pct": m["identification"]["rank1"]}


def _tables(res: dict) -> dict:
    from . import validation_doc

    m, b = res["model"], res["baseline"]
    rows = [("face", m["face"], b["face"])] + [(r, m["regions"][r], b["regions"][r]) for r in M.REGIONS]
    return {"face and regions": [{"region": r, "model_mean_mm": round(a["mean"], 3),
                                  "model_within_2.5mm_pct": round(a["within_2.5"], 1),
                                  "baseline_mean_mm": round(c["mean"], 3)} for r, a, c in rows],
            "goals": [{"goal": name, "measured": text(res), "met": bool(ok(res))}
                      for name, ok, text in validation_doc.GOALS]}
