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


def figure(model: ShapeModel, res: dict, path) -> Path:
    """Mean absolute error maps (baseline, model) and the mean posterior SD on the mean face."""
    from medface.data import SurfaceMesh
    from medface.viz import Scene, render_panels

    skin = SurfaceMesh(model.mean_skin(), model.skin_faces)
    scenes = [Scene().add_mesh(skin, scalars=res["mean_abs_error_map"]["baseline"], clim=(0, 4), cmap="magma"),
              Scene().add_mesh(skin, scalars=res["mean_abs_error_map"]["model"], clim=(0, 4), cmap="magma"),
              Scene().add_mesh(skin, scalars=res["mean_sd_map"], clim=(0, 4), cmap="magma")]
    return render_panels(scenes, path, views="three_quarter_left", size=(420, 460),
                         titles=["baseline: mean abs. error", "model: mean abs. error", "model: mean posterior SD"])


VARIANTS = {"full": {}, "no_mandible": {"mandible": False}, "no_covariates": {"covariates": False}}


def evaluate_command(out, model=None, n_test: int = 100, seed: int = 1000, sigma: float = 1.0,
                     variants: bool = True, figures: bool = True):
    """CLI entry of `forensic evaluate`: the model (default: the phantom-trained one) and the
    baseline on ``n_test`` held-out phantom subjects (and, with ``variants``, without the
    mandible and without covariates); writes forensic_evaluation.json, forensic.md (the validation
    page) and images/forensic_error_maps.png into ``out``."""
    from medface.data import Result

    from . import validation_doc
    from .reconstruct import default_model
    from .shape_model import load_model

    shape = load_model(model) if model else default_model()
    t0 = time.perf_counter()
    results = {name: evaluate(shape, n_test, seed, sigma=sigma, **kw)
               for name, kw in (VARIANTS.items() if variants else [("full", {})])}
    elapsed = time.perf_counter() - t0
    res = results["full"]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {name: {k: v for k, v in r.items() if k not in ("mean_abs_error_map", "mean_sd_map")}
           for name, r in results.items()}
    doc["model"] = shape.metadata
    (out / "forensic_evaluation.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    fig = None
    if figures:
        fig = figure(shape, res, out / "images" / "forensic_error_maps.png")
    real = out / "forensic_real_data.md"
    page = validation_doc.markdown(results, shape.metadata, figure="images/forensic_error_maps.png" if fig else None,
                                   real_data=real.read_text(encoding="utf-8") if real.is_file() else None,
                                   timings={"Evaluation (all variants, "
                                            f"{n_test} subjects each)": elapsed})
    (out / "forensic.md").write_text(page, encoding="utf-8")
    m, b = res["model"], res["baseline"]
    result = Result(command="forensic.evaluate",
                    summary={"test_subjects": n_test, "model_mean_mm": round(m["face"]["mean"], 3),
                             "baseline_mean_mm": round(b["face"]["mean"], 3),
                             "model_within_2.5mm_pct": round(m["face"]["within_2.5"], 1),
                             "coverage_1sigma_pct": round(m["calibration"]["within_1sd"], 1),
                             "rank1_pct": m["identification"]["rank1"]},
                    outputs={"evaluation": str(out / "forensic_evaluation.json"),
                             "validation page": str(out / "forensic.md")},
                    tables={"face and regions": [
                        {"region": r, "model_mean_mm": round(a["mean"], 3), "model_within_2.5mm_pct":
                         round(a["within_2.5"], 1), "baseline_mean_mm": round(c["mean"], 3)}
                        for r, a, c in [("face", m["face"], b["face"])]
                        + [(r, m["regions"][r], b["regions"][r]) for r in M.REGIONS]],
                        "goals": [{"goal": name, "measured": text(res), "met": bool(ok(res))}
                                  for name, ok, text in validation_doc.GOALS]},
                    limits=["Held-out subjects are synthetic phantom heads, whose faces follow their skulls far more "
                            "closely than real faces do: these figures are not casework accuracy."])
    if fig:
        result.figures["error maps"] = str(fig)
    return result
