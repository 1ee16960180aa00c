"""Validation of the skull-to-face model on held-out synthetic phantom subjects.

For every held-out subject (a cohort seed disjoint from training) the face is reconstructed
from its skull (cranium + mandible, in correspondence, no registration) with sex, age and BMI
given, and compared with its true skin on the face region of :mod:`.metrics`. Two BASELINES
(:mod:`.baseline`) are measured the same way: the classic tissue-depth method (key
``"baseline"``: the tissue prior's mean depths along the bone normals, the mean face warped
through them) and the constant offset (key ``"offset"``: every face vertex one fixed depth,
:func:`.baseline.typical_face_depth`, from its nearest bone vertex). For the model also: the
coverage of its posterior SD (share within ±1σ and ±2σ) and the Spearman rank correlation
between that SD and the absolute error (pooled over subjects and vertices, over the face and per
region): whether the uncertainty map points at where the face is wrong.

Identification (as CR-GAN and Claes et al. report it): each reconstruction (and each baseline
face) is ranked against a pool of the held-out true faces plus :data:`DISTRACTORS` distractor
phantom faces from a cohort of its own (seed ``seed + DISTRACTOR_SEED_OFFSET``), face-to-face
distance :data:`.metrics.FACE_DISTANCE`; rank-1, rank-5 and rank-10 rates with counts and the
CMC curve.

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
from .baseline import constant_offset_face, tissue_depth_face
from .shape_model import ShapeModel
from .template import template_head
from .train import phantom_training_set


DISTRACTORS = 100  # distractor faces in the identification pool, beside the test subjects' own
DISTRACTOR_SEED_OFFSET = 1000  # their cohort: test seed + this (training 0, calibration 500, test 1000)
#: the methods measured: the model, the tissue-depth baseline, the constant-offset baseline
METHODS = ("model", "baseline", "offset")
METHOD_NAMES = {"model": "model", "baseline": "tissue-depth baseline", "offset": "constant-offset baseline"}
PANEL_NAMES = {"baseline": "tissue depth", "offset": "constant offset"}  # short, for the error-map titles


def identification_vertices(face: np.ndarray) -> np.ndarray:
    """The face-region vertices compared in identification: every 4th keeps it quick."""
    return np.flatnonzero(face)[::4]


def distractor_faces(n: int, seed: int, vertices: np.ndarray) -> list[np.ndarray]:
    """The ``vertices`` of ``n`` phantom faces of cohort ``seed`` (not test, training or calibration)."""
    skins = phantom_training_set(n, seed)[2] if n else np.zeros((0, 1, 3))
    return [skin[vertices].astype(np.float64) for skin in skins]


def evaluate(model: ShapeModel, n_test: int = 100, seed: int = 1000, *, sigma: float = 1.0,
             covariates: bool = True, mandible: bool = True, distractors: list[np.ndarray] | None = None) -> dict:
    """Metrics of the model and of both baselines (:data:`METHODS`) on ``n_test`` held-out
    phantom subjects; ``distractors``: the other faces of the identification pool (default
    :func:`distractor_faces`). Per method: errors over the face and per region
    (:func:`.metrics.summarise`), per-subject means and identification; for the model also the
    SD's coverage and its rank correlation with the error (face and regions)."""
    tmpl = template_head()
    regions = M.face_regions(tmpl.skin.vertices, tmpl.skin.faces, tmpl.landmarks)
    face = regions["face"]
    ident = identification_vertices(face)
    if distractors is None:
        distractors = distractor_faces(DISTRACTORS, seed + DISTRACTOR_SEED_OFFSET, ident)
    cr, md, sk, _, subjects = phantom_training_set(n_test, seed)
    err = {name: [] for name in METHODS}
    probes = {name: [] for name in METHODS}  # the identification vertices of each method's faces
    signed, sds, times = [], [], []
    for i in range(n_test):
        s = subjects[i]
        t0 = time.perf_counter()
        kw = {"sex": s["sex"], "age": s["age"], "bmi": s["bmi"]} if covariates else {}
        post = model.condition(cr[i], md[i] if mandible else None, sigma=sigma, **kw)
        mean, sd = post.mean, post.sd()
        post.sample(100, i)
        times.append(time.perf_counter() - t0)
        normals = vertex_normals(sk[i], model.skin_faces)
        faces = {"model": mean,
                 "baseline": tissue_depth_face(model, cr[i], md[i] if mandible else None, **kw),
                 "offset": constant_offset_face(model, cr[i], md[i] if mandible else None)}
        for name, f in faces.items():
            _, sgn = M.vertex_errors(f, sk[i], normals)
            err[name].append(np.abs(sgn).astype(np.float32))
            probes[name].append(f[ident])
            if name == "model":
                signed.append(sgn.astype(np.float32))
        sds.append(np.asarray(sd, np.float32))
    pool = [sk[i][ident].astype(np.float64) for i in range(n_test)] + list(distractors)
    out = {"n_test": n_test, "test_seed": seed, "sigma_mm": sigma, "covariates_given": covariates,
           "mandible_given": mandible, "face_vertices": int(face.sum()),
           "identification_pool": {"size": len(pool), "true_faces": n_test, "distractors": len(distractors),
                                   "distractor_seed": seed + DISTRACTOR_SEED_OFFSET, "vertices": len(ident),
                                   "distance": M.FACE_DISTANCE},
           "timing_condition_plus_100_samples_s": float(np.median(times))}
    for name in METHODS:
        e = np.array(err[name])
        out[name] = {"face": M.summarise(e[:, face]),
                     "regions": {r: M.summarise(e[:, regions[r]]) for r in M.REGIONS},
                     "per_subject_mean": [float(v) for v in e[:, face].mean(1)]}
    sg, sd = np.array(signed), np.array(sds)
    out["model"]["calibration"] = M.coverage(sg[:, face], sd[:, face])
    out["model"]["calibration_regions"] = {r: M.coverage(sg[:, regions[r]], sd[:, regions[r]]) for r in M.REGIONS}
    # does the SD point at the error? Spearman over every (subject, vertex) of the face / region
    out["model"]["sd_error_rank_corr"] = M.sd_error_correlation(np.abs(sg[:, face]), sd[:, face])
    out["model"]["sd_error_rank_corr_regions"] = {r: M.sd_error_correlation(np.abs(sg[:, regions[r]]), sd[:, regions[r]])
                                                  for r in M.REGIONS}
    # the same for errors drawn from a Gaussian with exactly these SDs: what a correct SD would reach
    ideal = np.abs(np.random.default_rng(0).standard_normal(sd.shape).astype(np.float32)) * sd
    out["model"]["sd_error_rank_corr_ideal"] = {
        "face": M.sd_error_correlation(ideal[:, face], sd[:, face]),
        "regions": {r: M.sd_error_correlation(ideal[:, regions[r]], sd[:, regions[r]]) for r in M.REGIONS}}
    del ideal
    out["model"]["sd_median_mm"] = {"face": float(np.median(sd[:, face])),
                                    "regions": {r: float(np.median(sd[:, regions[r]])) for r in M.REGIONS}}
    for name in METHODS:
        out[name]["identification"] = M.identification(probes[name], pool, list(range(n_test)))
    from .baseline import typical_face_depth

    out["offset"]["depth_mm"] = typical_face_depth()
    out["mean_abs_error_map"] = {k: np.array(v).mean(0) for k, v in err.items()}
    out["mean_sd_map"] = sd.mean(0)
    return out


ERROR_MAP_CLIM_MM = (0.0, 4.0)  # the common colour scale of the error-map figure


def population_summary() -> dict:
    """The tissue prior's residual in figures (for the page): given sex, age and BMI, the RMS over
    the table's depth sites of the between-person SD and of the residual added to phantom faces,
    the added residual's RMS SD over the face region, its correlation length, and the mean
    absolute error it alone leaves (sqrt(2/pi) x its SD, averaged over the face and per region)."""
    from . import tissue_prior as tp

    tmpl = template_head()
    regions = M.face_regions(tmpl.skin.vertices, tmpl.skin.faces, tmpl.landmarks)
    keys = [s.key for s in tp.SITE_PRIORS]
    rsd = tp.residual_sd().astype(np.float64)

    def rms(v):
        return float(np.sqrt(np.mean(np.square(v))))

    floor = np.sqrt(2.0 / np.pi) * rsd
    return {"sites": len(keys), "site_sd_rms_mm": rms([tp.site_sd(k) for k in keys]),
            "residual_sd_rms_sites_mm": rms([tp.residual_site_sd(k) for k in keys]),
            "residual_sd_rms_face_mm": rms(rsd[regions["face"]]), "correlation_length_mm": tp.CORRELATION_LENGTH_MM,
            "residual_floor_mean_abs_mm": {"face": float(floor[regions["face"]].mean()),
                                           "regions": {r: float(floor[regions[r]].mean()) for r in M.REGIONS}}}


def error_figure(model: ShapeModel, res: dict):
    """Mean absolute error maps (constant offset, tissue-depth baseline, model) and the mean
    posterior SD on the mean face, as a declared figure (drawn by the runner)."""
    from medface.data.outputs import Figure

    keys = [k for k in ("offset", "baseline") if k in res["mean_abs_error_map"]]

    def scenes():
        from medface.data import SurfaceMesh
        from medface.viz import Scene

        skin = SurfaceMesh(model.mean_skin(), model.skin_faces)
        maps = [res["mean_abs_error_map"][k] for k in keys] + [res["mean_abs_error_map"]["model"], res["mean_sd_map"]]
        return [Scene().add_mesh(skin, scalars=m, clim=ERROR_MAP_CLIM_MM, cmap="magma") for m in maps]

    return Figure(scenes, views="three_quarter_left", size=(420, 460),
                  titles=[f"{PANEL_NAMES[k]}: mean error" for k in keys]
                  + ["model: mean error", "model: mean posterior SD"])


VARIANTS = {"full": {}, "no_mandible": {"mandible": False}, "no_covariates": {"covariates": False}}
LIMIT = ("Held-out subjects are synthetic phantom heads: faces built from their skulls by tabulated depths, then "
         "displaced by the literature tissue prior (its sex, age and BMI effect and a random residual); the model "
         "learned the same population it is tested on, so these figures are not casework accuracy.")


def evaluate_variants(model: ShapeModel, n_test: int = 100, seed: int = 1000, *, sigma: float = 1.0,
                      variants: bool = True, progress=None) -> dict:
    """:func:`evaluate` for each of :data:`VARIANTS` (only "full" without ``variants``), all
    against one identification pool."""
    say = progress or (lambda text: None)
    tmpl = template_head()
    ident = identification_vertices(M.face_regions(tmpl.skin.vertices, tmpl.skin.faces, tmpl.landmarks)["face"])
    say(f"generating {DISTRACTORS} distractor phantom faces for the identification pool")
    distractors = distractor_faces(DISTRACTORS, seed + DISTRACTOR_SEED_OFFSET, ident)
    results = {}
    for name, kw in (VARIANTS.items() if variants else [("full", {})]):
        say(f"evaluating on {n_test} held-out phantom subjects ({name.replace('_', ' ')})")
        results[name] = evaluate(model, n_test, seed, sigma=sigma, distractors=distractors, **kw)
    return results


def cmc_image(results: dict) -> np.ndarray:
    """The CMC curves (model solid, tissue-depth baseline dotted, constant offset dash-dot; each
    variant; chance dashed) as an RGB array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure as PlotFigure

    fig = PlotFigure(figsize=(6.4, 4.4), dpi=110)
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    full = results["full"]
    pool = full["identification_pool"]["size"]
    for name, res in results.items():
        for who, style in (("model", "-"), ("baseline", ":"), ("offset", "-.")):
            if who not in res:
                continue
            curve = res[who]["identification"]["cmc_pct"]
            ax.plot(np.arange(1, len(curve) + 1), curve, style, linewidth=2 if name == "full" else 1,
                    label=f"{METHOD_NAMES[who]}, {name.replace('_', ' ')}")
    ranks = np.arange(1, pool + 1)
    ax.plot(ranks, 100.0 * ranks / pool, "--", color="0.5", linewidth=1, label="chance")
    for k in M.IDENTIFICATION_RANKS:
        ax.axvline(k, color="0.85", linewidth=0.8, zorder=0)
    ax.set_xscale("log")
    ax.set_xlim(1, pool)
    ticks = [k for k in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if k < pool / 1.25] + [pool]  # no overlap
    ax.set_xticks(ticks, [str(k) for k in ticks])
    ax.minorticks_off()
    ax.set_ylim(0, 102)
    ax.set_xlabel(f"rank k (pool of {pool} faces: {full['n_test']} true, "
                  f"{full['identification_pool']['distractors']} distractors)")
    ax.set_ylabel("identified within rank k (%)")
    ax.set_title("Cumulative match characteristic (synthetic phantom)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def evaluate_command(out, model=None, n_test: int = 100, seed: int = 1000, sigma: float = 1.0,
                     variants: bool = True, figures: bool = True, context=None):
    """CLI entry of `forensic evaluate`: the model (default: the phantom-trained one), the
    tissue-depth baseline and the constant-offset baseline on ``n_test`` held-out phantom
    subjects (and, with ``variants``, without the mandible and without covariates), each ranked
    in an identification pool of the test faces and :data:`DISTRACTORS` distractors; declares
    forensic_evaluation.json, forensic.md (the validation page, with the real-data section
    ``forensic_real_data.md`` found in ``out``), images/forensic_error_maps.png and
    images/forensic_cmc.png."""
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
    cmc_file = "images/forensic_cmc.png" if figures else None
    doc["model"] = shape.metadata
    population = population_summary() if shape.metadata.get("tissue_prior") else None
    if population:
        doc["population"] = population
    real = Path(out) / "forensic_real_data.md"
    page = validation_doc.markdown(results, shape.metadata, figure="images/forensic_error_maps.png" if figures else None,
                                   cmc_figure=cmc_file,
                                   real_data=real.read_text(encoding="utf-8") if real.is_file() else None,
                                   timings={f"Evaluation ({'all variants' if variants else 'all inputs only'}, "
                                            f"{n_test} subjects each)": elapsed},
                                   population=population)
    result = Result(command="forensic.evaluate", summary=_summary(res, n_test), tables=_tables(res), limits=[LIMIT])
    result.declare("evaluation", "forensic_evaluation.json", json.dumps(doc, indent=1), kind="text")
    result.declare("validation page", "forensic.md", page, kind="text")
    if figures:
        result.declare("error maps", "images/forensic_error_maps.png", error_figure(shape, res))
        result.declare("CMC curve", cmc_file, cmc_image(results), kind="image", figure="CMC curve")
    return result


def _summary(res: dict, n_test: int) -> dict:
    m, b, o = res["model"], res["baseline"], res["offset"]
    return {"test_subjects": n_test, "model_mean_mm": round(m["face"]["mean"], 3),
            "baseline_mean_mm": round(b["face"]["mean"], 3), "offset_mean_mm": round(o["face"]["mean"], 3),
            "model_within_2.5mm_pct": round(m["face"]["within_2.5"], 1),
            "coverage_1sigma_pct": round(m["calibration"]["within_1sd"], 1),
            "coverage_2sigma_pct": round(m["calibration"]["within_2sd"], 1),
            "sd_error_rank_corr": round(m["sd_error_rank_corr"], 3), "rank1_pct": m["identification"]["rank1"],
            "rank10_pct": m["identification"]["rank10"], "baseline_rank1_pct": b["identification"]["rank1"],
            "offset_rank1_pct": o["identification"]["rank1"], "identification_pool": m["identification"]["pool_size"]}


def identification_rows(res: dict, methods=METHODS) -> list[dict]:
    """Rank-k identification rates and counts of each of ``methods`` present in ``res``."""
    rows = []
    for who in (w for w in methods if w in res):
        ident = res[who]["identification"]
        row = {"method": who, "probes": ident["n_probes"], "pool": ident["pool_size"]}
        for k in M.IDENTIFICATION_RANKS:
            row[f"rank{k}_pct"] = round(ident[f"rank{k}"], 1)
            row[f"rank{k}_count"] = ident["counts"][f"rank{k}"]
        rows.append(row | {"median_rank": ident["median_rank"]})
    return rows


def _tables(res: dict) -> dict:
    from . import validation_doc

    m, b, o = res["model"], res["baseline"], res["offset"]
    rows = [("face", m["face"], b["face"], o["face"])] + [(r, m["regions"][r], b["regions"][r], o["regions"][r])
                                                          for r in M.REGIONS]
    return {"face and regions": [{"region": r, "model_mean_mm": round(a["mean"], 3),
                                  "model_within_2.5mm_pct": round(a["within_2.5"], 1),
                                  "baseline_mean_mm": round(c["mean"], 3), "offset_mean_mm": round(d["mean"], 3)}
                                 for r, a, c, d in rows],
            "identification": identification_rows(res),
            "goals": [{"goal": name, "measured": text(res), "met": bool(ok(res))}
                      for name, ok, text in validation_doc.GOALS]}
