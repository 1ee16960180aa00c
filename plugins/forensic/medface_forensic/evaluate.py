"""Validation of the skull-to-face model on held-out synthetic phantom subjects.

For every held-out subject (a cohort seed disjoint from training) the face is reconstructed
from its skull (cranium + mandible, in correspondence, no registration) with sex, age and BMI
given, and compared with its true skin on the face region of :mod:`.metrics`. The BASELINE is
the training mean face placed on the skull by the cranium's rigid Procrustes transform (the
PPCA with only its mean: what a population-average tissue depth gives).

Run ``python -m medface_forensic.evaluate --out docs/validation`` to reproduce the figures of
``docs/validation/forensic.md`` (trains on 200 phantom subjects, tests on 100).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from medface.data.mesh import vertex_normals

from . import metrics as M
from .shape_model import ShapeModel
from .train import phantom_training_set, template_head, train_phantom_model


def evaluate(model: ShapeModel, n_test: int = 100, seed: int = 1000, *, sigma: float = 1.0,
             covariates: bool = True, mandible: bool = True) -> dict:
    """Metrics of the model and of the baseline on ``n_test`` held-out phantom subjects."""
    tmpl = template_head()
    regions = M.face_regions(tmpl.skin.vertices, tmpl.skin.faces, tmpl.landmarks)
    face = regions["face"]
    ident = np.flatnonzero(face)[::4]  # every 4th face vertex keeps identification quick
    cr, md, sk, _, subjects = phantom_training_set(n_test, seed)
    err = {"model": [], "baseline": []}
    signed, sds, recon_face, times = [], [], [], []
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
        _, sgn_b = M.vertex_errors(model.baseline_face(cr[i]), sk[i], normals)
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
    base = [model.baseline_face(cr[i])[ident] for i in range(n_test)]
    out["baseline"]["identification"] = M.identification(base, gallery, list(range(n_test)))
    out["mean_abs_error_map"] = {k: np.array(v).mean(0) for k, v in err.items()}
    out["mean_sd_map"] = sd.mean(0)
    return out


def _table(res: dict) -> str:
    rows = ["| region | model mean | RMS | P95 | ≤2.0 mm | ≤2.5 mm | baseline mean | RMS | P95 | ≤2.0 mm | ≤2.5 mm |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in ("face", *M.REGIONS):
        a = res["model"]["face"] if r == "face" else res["model"]["regions"][r]
        b = res["baseline"]["face"] if r == "face" else res["baseline"]["regions"][r]
        rows.append(f"| {r} | " + " | ".join(
            f"{s['mean']:.2f} | {s['rms']:.2f} | {s['p95']:.2f} | {s['within_2.0']:.1f} % | {s['within_2.5']:.1f} %"
            for s in (a, b)) + " |")
    return "\n".join(rows)


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


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/validation")
    p.add_argument("--n-train", type=int, default=200)
    p.add_argument("--n-test", type=int, default=100)
    p.add_argument("--sigma", type=float, default=1.0)
    p.add_argument("--model-dir", default=None, help="also save the trained model here")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    model = train_phantom_model(a.n_train, seed=0, out=a.model_dir)
    t_train = time.perf_counter() - t0
    results = {"full": evaluate(model, a.n_test, sigma=a.sigma),
               "no_mandible": evaluate(model, a.n_test, sigma=a.sigma, mandible=False),
               "no_covariates": evaluate(model, a.n_test, sigma=a.sigma, covariates=False)}
    out = Path(a.out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    figure(model, results["full"], out / "images" / "forensic_error_maps.png")
    summary = {"train_s": t_train, "model": {k: v for k, v in model.metadata.items()}}
    for k, r in results.items():
        summary[k] = {kk: vv for kk, vv in r.items() if kk not in ("mean_abs_error_map", "mean_sd_map")}
        print(k, "\n" + _table(r), "\ncalibration", r["model"]["calibration"], "\nident model",
              r["model"]["identification"], "baseline", r["baseline"]["identification"],
              "\ntime", r["timing_condition_plus_100_samples_s"])
    (out / "forensic_evaluation.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    print("train_s", t_train, model.metadata)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def evaluate_command(out, model=None, n_test: int = 100, seed: int = 1000, sigma: float = 1.0,
                     figures: bool = True):
    """CLI entry of `forensic evaluate`: the model (default: the phantom-trained one) and the
    baseline on ``n_test`` held-out phantom subjects; evaluation.json, error tables, error maps."""
    from medface.data import Result

    from .reconstruct import default_model
    from .shape_model import load_model

    shape = load_model(model) if model else default_model()
    res = evaluate(shape, n_test, seed, sigma=sigma)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    doc = {k: v for k, v in res.items() if k not in ("mean_abs_error_map", "mean_sd_map")}
    (out / "evaluation.json").write_text(json.dumps(doc, indent=1), encoding="utf-8")
    (out / "errors.md").write_text(_table(res) + "\n", encoding="utf-8")
    m, b = res["model"], res["baseline"]
    result = Result(command="forensic.evaluate",
                    summary={"test_subjects": n_test, "model_mean_mm": round(m["face"]["mean"], 3),
                             "baseline_mean_mm": round(b["face"]["mean"], 3),
                             "model_within_2.5mm_pct": round(m["face"]["within_2.5"], 1),
                             "coverage_1sigma_pct": round(m["calibration"]["within_1sd"], 1),
                             "rank1_pct": m["identification"]["rank1"]},
                    outputs={"evaluation": str(out / "evaluation.json"), "tables": str(out / "errors.md")},
                    tables={"face and regions": [
                        {"region": r, "model_mean_mm": round(a["mean"], 3), "model_within_2.5mm_pct":
                         round(a["within_2.5"], 1), "baseline_mean_mm": round(c["mean"], 3)}
                        for r, a, c in [("face", m["face"], b["face"])]
                        + [(r, m["regions"][r], b["regions"][r]) for r in M.REGIONS]]},
                    limits=["Held-out subjects are synthetic phantom heads, whose faces follow their skulls far more "
                            "closely than real faces do: these figures are not casework accuracy."])
    if figures:
        result.figures["error maps"] = str(figure(shape, res, out / "error_maps.png"))
    return result
