"""The forensic validation document (markdown) from the results of :func:`.evaluate.evaluate`.

Pure text assembly: no computation, no files. ``forensic evaluate`` writes its output as
``forensic.md`` next to ``forensic_evaluation.json`` and the error-map figure; a real-data section
(``forensic_real_data.md``, written by ``scripts/forensic_real_data.py`` from the public files
in ``../shared/data``) is included where it exists in the same folder.
"""

from __future__ import annotations

from . import metrics as M

METHODS = ("model", "baseline", "offset")
#: how the page names each method (the results' keys: "baseline" is the tissue-depth method)
LABELS = {"model": "model", "baseline": "tissue-depth baseline", "offset": "constant-offset baseline"}
SHORT = {"model": "model", "baseline": "tissue-depth", "offset": "constant offset"}


def _methods(res: dict) -> list[str]:
    return [m for m in METHODS if m in res]


def _others(res: dict, what) -> str:
    """``what(method)`` for each baseline present, as "tissue-depth X, constant offset Y"."""
    return ", ".join(f"{SHORT[m]} {what(res[m])}" for m in _methods(res) if m != "model")


GOALS = (("mean error ≤ 2.0 mm", lambda r: r["model"]["face"]["mean"] <= 2.0,
          lambda r: f"{r['model']['face']['mean']:.2f} mm (baselines: "
                    f"{_others(r, lambda m: format(m['face']['mean'], '.2f') + ' mm')})"),
         ("≥ 75 % within 2.5 mm", lambda r: r["model"]["face"]["within_2.5"] >= 75.0,
          lambda r: f"{r['model']['face']['within_2.5']:.1f} % (baselines: "
                    f"{_others(r, lambda m: format(m['face']['within_2.5'], '.1f') + ' %')})"),
         ("1σ coverage 68 ± 10 %", lambda r: abs(r["model"]["calibration"]["within_1sd"] - 68.0) <= 10.0,
          lambda r: f"{r['model']['calibration']['within_1sd']:.1f} % (±2σ: {r['model']['calibration']['within_2sd']:.1f} %)"),
         ("rank-1 ≥ 50 %", lambda r: r["model"]["identification"]["rank1"] >= 50.0,
          lambda r: f"{r['model']['identification']['rank1']:.0f} % among {r['model']['identification']['pool_size']} faces "
                    f"(baselines: {_others(r, lambda m: format(m['identification']['rank1'], '.0f') + ' %')})"))

HEADER = """# Forensic plugin: validation of the skull-to-face model

**The tables and maps of the first part are measured on SYNTHETIC data (the medface phantom),
not on real skulls and faces.** The phantom builds every face from its skull with tabulated
soft-tissue depths; the training, calibration and test faces are then displaced by the
literature tissue prior (`docs/forensic_tissue_prior.md`): its sex, age and BMI effect and a
random, spatially correlated residual that the skull does not determine{residual}. The model
learned exactly this population, so these figures show that the method and the code work; they
are NOT an estimate of accuracy in forensic casework and must not be quoted as such (real
faces differ from their skulls in ways the phantom does not model). The real-data part (a real
head CT, a real skull mesh) follows at the end.

This page is written by `medface forensic evaluate --out docs/validation` (the real-data part
by `scripts/forensic_real_data.py`); the numbers are in `docs/validation/forensic_evaluation.json`.
"""


def _residual_text(population: dict | None) -> str:
    if not population:
        return ""
    return (f" (given sex, age and BMI, the depth varies between people by {population['site_sd_rms_mm']:.1f} mm "
            f"RMS over the table's {population['sites']} depth sites, the 2018 T-Table's error of a tabulated mean; "
            f"the residual added to the phantom's own variation is {population['residual_sd_rms_sites_mm']:.1f} mm RMS "
            f"there and {population['residual_sd_rms_face_mm']:.1f} mm RMS over the face region, correlated over about "
            f"{population['correlation_length_mm']:g} mm)")


def _pct(v: float) -> str:
    return f"{v:.1f} %"


def _stats(res: dict, method: str, region: str) -> dict:
    m = res[method]
    return m["face"] if region == "face" else m["regions"][region]


def error_table(res: dict) -> str:
    """Model, tissue-depth and constant-offset baselines: mean, RMS, P95 and % within 2.5 mm,
    over the face and per region (the % within 2.0 mm is in the JSON)."""
    methods = _methods(res)
    head = " | ".join(f"{SHORT[m]} mean | RMS | P95 | ≤ 2.5 mm" for m in methods)
    rows = [f"| region | {head} |", "|---|" + "---|" * (4 * len(methods))]
    for r in ("face", *M.REGIONS):
        rows.append(f"| {r} | " + " | ".join(
            f"{s['mean']:.2f} | {s['rms']:.2f} | {s['p95']:.2f} | {_pct(s['within_2.5'])}"
            for s in (_stats(res, m, r) for m in methods)) + " |")
    return "\n".join(rows)


def _corr(v) -> str:
    return "n/a" if v is None or v != v else f"{v:.2f}"


def calibration_table(res: dict) -> str:
    """Per region: the share of signed errors within ±1σ and ±2σ of the model's SD, the SD's
    rank correlation with the absolute error and the median SD."""
    m = res["model"]
    corr, corr_r = m.get("sd_error_rank_corr"), m.get("sd_error_rank_corr_regions", {})
    sd = m.get("sd_median_mm", {})
    rows = ["| region | within ±1σ | within ±2σ | rank corr. (SD, abs. error) | median SD (mm) |",
            "|---|---|---|---|---|"]

    def sd_text(v):
        return "n/a" if v is None else f"{v:.2f}"

    cal = m["calibration"]
    rows.append(f"| face | {_pct(cal['within_1sd'])} | {_pct(cal['within_2sd'])} | {_corr(corr)} | "
                f"{sd_text(sd.get('face'))} |")
    for r in M.REGIONS:
        c = m["calibration_regions"][r]
        rows.append(f"| {r} | {_pct(c['within_1sd'])} | {_pct(c['within_2sd'])} | {_corr(corr_r.get(r))} | "
                    f"{sd_text(sd.get('regions', {}).get(r))} |")
    return "\n".join(rows)


def variants_table(results: dict) -> str:
    names = {"full": "skull + mandible + sex/age/BMI", "no_mandible": "mandible missing",
             "no_covariates": "sex, age, BMI unknown"}
    rows = ["| inputs | model mean (mm) | ≤ 2.5 mm | ±1σ | ±2σ | rank corr. | rank-1 | rank-5 | rank-10 | "
            "tissue-depth mean (mm) | tissue-depth rank-1 | constant offset mean (mm) | constant offset rank-1 |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, res in results.items():
        m, b, o = res["model"], res["baseline"], res.get("offset")
        offset = f"{o['face']['mean']:.2f} | {_rank(o, 1)}" if o else "n/a | n/a"
        rows.append(f"| {names.get(key, key)} | {m['face']['mean']:.2f} | {_pct(m['face']['within_2.5'])} | "
                    f"{_pct(m['calibration']['within_1sd'])} | {_pct(m['calibration']['within_2sd'])} | "
                    f"{_corr(m.get('sd_error_rank_corr'))} | "
                    f"{_rank(m, 1)} | {_rank(m, 5)} | {_rank(m, 10)} | "
                    f"{b['face']['mean']:.2f} | {_rank(b, 1)} | {offset} |")
    return "\n".join(rows)


def _rank(method: dict, k: int) -> str:
    """"97 % (97/100)": the rank-k identification rate with its count."""
    ident = method["identification"]
    count = ident.get("counts", {}).get(f"rank{k}")
    shown = f"{ident[f'rank{k}']:.0f} %"
    return f"{shown} ({count}/{ident['n_probes']})" if count is not None else shown


def identification_section(res: dict, figure: str | None = None) -> str:
    """Rank-1/5/10 identification of the model and the baselines in the pool, with counts, and the CMC figure."""
    pool = res["identification_pool"]
    rows = ["| method | rank-1 | rank-5 | rank-10 | median rank | rank-1 by chance |", "|---|---|---|---|---|---|"]
    for who in _methods(res):
        ident = res[who]["identification"]
        rows.append(f"| {LABELS[who]} | {_rank(res[who], 1)} | {_rank(res[who], 5)} | {_rank(res[who], 10)} | "
                    f"{ident['median_rank']:g} | {ident['chance_rank1_pct']:.1f} % |")
    text = (f"### Identification\n\nEach of the {res['n_test']} reconstructions (and each baseline face) ranked "
            f"against a pool of {pool['size']} faces: the {pool['true_faces']} held-out true faces and "
            f"{pool['distractors']} distractor phantom faces (`cohort({pool['distractors']}, "
            f"seed={pool['distractor_seed']})`, in no training, calibration or test set, their faces following "
            f"the same tissue prior); as CR-GAN and Claes et al. report it. Distance: {pool['distance']} "
            f"({pool['vertices']} vertices, every 4th of the face region); a pool face at the same distance as the "
            "true one counts as closer.\n\n" + "\n".join(rows))
    if figure:
        text += (f"\n\n![CMC curve]({figure})\n\nCumulative match characteristic: the share of reconstructions whose "
                 "true face is among the k closest pool faces (solid: model, dotted: tissue-depth baseline, "
                 "dash-dot: constant-offset baseline, dashed: chance; thick: all inputs, thin: the variants; "
                 "log scale of k).")
    return text


def goals_table(res: dict) -> str:
    rows = ["| goal | measured (synthetic) | met |", "|---|---|---|"]
    for name, ok, text in GOALS:
        rows.append(f"| {name} | {text(res)} | {'yes' if ok(res) else '**no**'} |")
    return "\n".join(rows)


def comparison_text(res: dict) -> str:
    """Where the model's mean error is not below a baseline's (face or region), in words."""
    worse = []
    for b in (m for m in _methods(res) if m != "model"):
        for r in ("face", *M.REGIONS):
            a, c = _stats(res, "model", r)["mean"], _stats(res, b, r)["mean"]
            if a >= c:
                worse.append(f"{r}: model {a:.2f} mm, {LABELS[b]} {c:.2f} mm")
    if not worse:
        return "The model's mean error is below both baselines' over the face and in every region."
    return ("The model's mean error is NOT below a baseline's in: " + "; ".join(worse) + ".")


def _component_choice(meta: dict) -> str:
    """A disclosure for the default phantom model: its variance target was chosen on test data."""
    if "medface phantom" not in meta.get("training_data", "") or meta.get("variance_target") != 0.999:
        return ""
    return ("  The default 99.9 % replaced 99 % (then 13 components) after the 99 % model's lip error (2.2 mm,\n"
            "  worse than the baseline's) was seen on 20 of the test subjects of an earlier phantom population\n"
            "  (before the tissue prior): a choice made on test data, which a separate validation cohort would\n"
            "  have avoided. It was kept unchanged since.\n")


def _explicit_covariates(meta: dict) -> bool:
    return str(meta.get("covariate_effect", "")).startswith("explicit")


def method_section(meta: dict, res: dict) -> str:
    cal = meta.get("sd_calibration", {})
    cal_cov = cal.get("coverage_on_calibration_data_pct", {})
    subsets = meta.get("vertex_subsets", {})
    depth = res.get("offset", {}).get("depth_mm")
    if _explicit_covariates(meta):
        covariates = (
            "- **Sex, age and BMI** enter this model through the explicit covariate effect of the literature\n"
            "  tissue prior (`tissue_prior.covariate_effect`; not as PPCA dimensions): three dense fields over\n"
            "  the skin, mm of outward displacement per unit of sex (men minus women), age (per year) and BMI\n"
            "  (per kg/m²). Each training face was moved back along its normals to the cohort's mean\n"
            "  covariates before the PPCA; at conditioning the effect of the case's covariates is added to\n"
            "  the face, and the variance of a covariate that is unknown (the training cohort's spread) or\n"
            "  uncertain (observation SDs: sex 0.05, age 5 years, BMI 2 kg/m²) is added to the SD.\n")
        ppca_dims = ""
    else:
        covariates = ("- **Covariates**: sex, age and BMI are extra observed dimensions of the PPCA (observation\n"
                      "  SDs: sex 0.05, age 5 years, BMI 2 kg/m²).\n")
        ppca_dims = " plus sex, age and BMI as extra observed dimensions"
    prior = ""
    if meta.get("tissue_prior"):
        prior = ("- **Training faces** (and the calibration and test faces alike) follow the literature tissue\n"
                 "  prior (`tissue_prior.py`, `docs/forensic_tissue_prior.md`): each phantom face is moved along\n"
                 "  its normals by the prior's thickness change for the subject's own sex, age and BMI (published\n"
                 "  male-female differences, whose sizes are assumed; the phantom table's age and BMI slopes) plus\n"
                 "  one random residual field, smooth over about 15 mm, whose SD per site brings the\n"
                 "  between-person spread to the 2018 T-Table's 3.7 mm error of a tabulated mean.\n")
    offset = ""
    if depth is not None:
        offset = (f"- **Constant-offset baseline** (`baseline.constant_offset_face`): each vertex of the training\n"
                  f"  mean face, placed on the skull by the cranium's rigid fit, moved along the line from its\n"
                  f"  nearest bone vertex (cranium or mandible) to lie exactly {depth:.1f} mm from it: the skull\n"
                  f"  pushed out by one depth. {depth:.1f} mm is the median tissue thickness over the face region\n"
                  f"  of the template head (skin vertex to nearest bone vertex, `baseline.typical_face_depth`),\n"
                  f"  fixed, not tuned on any evaluation. A method that cannot beat it has learned nothing about\n"
                  f"  faces beyond their average thickness.\n")
    return f"""## Method

Code: `medface_forensic/shape_model.py` (model), `calibration.py` (SD calibration),
`baseline.py` (both baselines), `tissue_prior.py`, `train.py`, `metrics.py`, `evaluate.py`;
tests in `tests/forensic/`.

- **Model.** Joint probabilistic PCA (Tipping & Bishop 1999) over a fixed, seeded random subset
  of template vertices ({subsets.get('cranium', '?')} anterior-cranium, {subsets.get('mandible', '?')} mandible,
  {subsets.get('face', '?')} anterior skin vertices){ppca_dims}: the statistical reconstruction approach of
  Claes et al. 2010. Rigid generalised Procrustes alignment on the cranium (no scaling: absolute
  size carries information). Components: the fewest explaining
  {100 * (meta.get('variance_target') or float('nan')):g} % of the variance: **{meta.get('n_components', '?')} components** for
  {meta.get('n_subjects', '?')} training subjects (explained {100 * meta.get('explained_variance', float('nan')):.1f} %,
  σ² = {meta.get('sigma2_mm2', float('nan')):.3f} mm²). The full-resolution skin follows from the latent
  variable by a least-squares linear map with a per-vertex residual variance.
{_component_choice(meta)}{covariates}{prior}- **Conditioning** on the observed skull (cranium, mandible when present; observation noise
  σ = {res['sigma_mm']:g} mm per vertex plus the model's σ²) gives the Gaussian posterior of the face: mean,
  per-vertex SD along the surface normal, samples.
- **SD calibration** ({cal.get('method', 'none')}). On the calibration subjects the raw
  posterior SD covered {cal_cov.get('raw_within_1sd', float('nan')):.1f} % of the true points at ±1σ and
  {cal_cov.get('raw_within_2sd', float('nan')):.1f} % at ±2σ; after calibration {cal_cov.get('within_1sd', float('nan')):.1f} % and
  {cal_cov.get('within_2sd', float('nan')):.1f} %. The test subjects below are a different cohort.
- **Tissue-depth baseline**: the classic method (`baseline.py`): the tissue prior's mean depth
  (`tissue_prior.site_thickness`) for the subject's sex, age and BMI at each craniometric landmark
  with a tabulated depth, placed along the outward bone normal, and the training mean face
  (placed on the skull by the cranium's rigid fit) warped through those pegs by a thin-plate
  spline. Its depths are the means of the same prior the test faces were built from, which
  favours it here.
{offset}"""


def data_section(meta: dict, res: dict) -> str:
    prior = ", faces displaced by the same tissue prior (residuals of their own)" if meta.get("tissue_prior") else ""
    return f"""## Data

Training: {meta.get('training_data', '?')}. Calibration: {meta.get('calibration_data', 'none')}.
Test: `cohort({res['n_test']}, seed={res['test_seed']})`, unaffected subjects, disjoint from both{prior}.
Skulls and faces are in dense correspondence (same template topology), so no registration is
involved: this isolates the statistical model from skull registration (registration is tested
in `tests/forensic/test_register.py` and on the real data below).

Face region and sub-regions: a template vertex mask from the soft-tissue landmarks of the
phantom's mean female head (in front of the tragion by 15 mm, below g_s + 35 mm, above me_s,
no downward-facing skin: ears, scalp, neck and submental skin excluded; sub-regions forehead,
orbits, nose, lips, cheeks, chin; exact rules in `medface_forensic/metrics.py`);
{res['face_vertices']} face vertices.

Distance: absolute point-to-plane distance of each reconstructed vertex along the true skin's
normal at the corresponding vertex (the usual approximation of a surface distance for small
errors), pooled over vertices and subjects. Identification: each reconstruction against a
pool of {res['identification_pool']['size']} faces (the {res['n_test']} true test faces and {res['identification_pool']['distractors']} distractors), mean vertex
distance over the face region (every 4th face vertex) after rigid alignment. Calibration: share of face vertices whose signed normal error
lies within ±1 / ±2 posterior SD (nominal 68.3 % and 95.4 %); rank correlation: Spearman's ρ
between the posterior SD and the absolute normal error over every (subject, vertex) pair of the
face or region (1: the SD orders the errors perfectly, 0: it says nothing about where they are).
"""


def floor_text(population: dict | None) -> str:
    """The mean error the tissue prior's residual alone leaves, for scale (empty without it)."""
    floor = (population or {}).get("residual_floor_mean_abs_mm")
    if not floor:
        return ""
    regions = ", ".join(f"{r} {floor['regions'][r]:.2f}" for r in M.REGIONS)
    return ("For scale: the tissue prior's residual, which no skull determines, alone leaves a mean absolute "
            f"error of about {floor['face']:.2f} mm over the face ({regions} mm) to a predictor that knew "
            "everything else about each test face (√(2/π) × the residual's SD, averaged over the vertices; the "
            "phantom's own random depth variation comes on top).")


def calibration_text(res: dict) -> str:
    m = res["model"]
    cal, corr = m["calibration"], m.get("sd_error_rank_corr")
    ideal = (m.get("sd_error_rank_corr_ideal") or {}).get("face")
    text = (f"Over the face {cal['within_1sd']:.1f} % of the signed errors lie within ±1σ (nominal 68.3 %) and "
            f"{cal['within_2sd']:.1f} % within ±2σ (nominal 95.4 %).")
    if corr is not None:
        text += f" The SD's rank correlation with the absolute error is ρ = {_corr(corr)}"
        if ideal is not None:
            text += (f"; errors drawn from a Gaussian with exactly the reported SDs would give ρ = {_corr(ideal)} "
                     "(the ceiling for a correct SD: a large SD allows, not forces, a large error)")
        text += "."
    return text


def goals_text(res: dict) -> str:
    return ("The goals are measured on the phantom, whose faces come from the same tissue prior that the model "
            "learned and that the tissue-depth baseline takes its depths from; met or not, they say little about "
            "real data. The calibration goal is helped by construction: the SD was calibrated on a separate "
            "cohort of the same population.")


def markdown(results: dict, meta: dict, *, figure: str | None = None, real_data: str | None = None,
             timings: dict | None = None, cmc_figure: str | None = None, population: dict | None = None) -> str:
    """The whole page. ``results`` maps a variant name ("full" first) to an evaluate() dict;
    ``figure`` and ``cmc_figure`` are the error maps' and the CMC curve's files; ``population``
    the tissue prior's residual figures (:func:`.evaluate.population_summary`)."""
    full = results["full"]
    floor = floor_text(population)
    parts = [HEADER.format(residual=_residual_text(population)), method_section(meta, full), data_section(meta, full),
             "## Results (skull with mandible, sex/age/BMI given)\n\nAbsolute normal errors in mm (model, "
             "tissue-depth baseline, constant-offset baseline).\n\n" + error_table(full) + "\n\n"
             + comparison_text(full) + (" " + floor if floor else ""),
             "Uncertainty calibration of the model on the test subjects:\n\n" + calibration_table(full) + "\n\n"
             + calibration_text(full),
             identification_section(full, cmc_figure),
             "### Variants\n\n" + variants_table(results),
             "### Goals of the issue\n\n" + goals_table(full) + "\n\n" + goals_text(full)]
    if figure:
        panels = ("constant-offset baseline's absolute normal error, the tissue-depth baseline's, the model's, and "
                  "the model's mean posterior SD (calibrated)") if "offset" in full else (
                  "tissue-depth baseline's absolute normal error, the model's, and the model's mean posterior SD "
                  "(calibrated)")
        parts.append(f"## Figure\n\n![error maps]({figure})\n\nMeans over the {full['n_test']} test subjects, drawn "
                     "on the training mean face, three-quarter left view, common colour scale 0-4 mm. Left to "
                     f"right: the {panels}. The ears, scalp and neck in the picture lie outside the measured face "
                     "region.")
    t = dict(meta.get("timing_s", {}))
    lines = []
    if t:
        lines.append(f"- Training the model: {t.get('generate', float('nan')):.0f} s generating the phantom heads, "
                     f"{t.get('fit', float('nan')):.0f} s fitting and calibrating.")
    lines.append(f"- Conditioning + posterior mean + per-vertex SD + 100 full-resolution samples: median "
                 f"{full['timing_condition_plus_100_samples_s']:.2f} s per skull.")
    if timings:
        lines += [f"- {k}: {v:.0f} s" for k, v in timings.items()]
    parts.append("## Timings (2 shared CPU cores)\n\n" + "\n".join(lines))
    if real_data:
        parts.append(real_data.strip())
    tuning = ("- Nothing in the synthetic part was tuned on this evaluation: the model's settings, the tissue\n"
              "  prior and the constant-offset depth were fixed before it was run"
              + (";\n  the one earlier choice made on test data is disclosed under Method.\n" if _component_choice(meta)
                 else ".\n"))
    parts.append(f"""## Limits

- The statistical figures are synthetic (above). Real skull-face pairs in correspondence
  (`medface forensic train --pairs`) are needed for casework figures; none were available.
{tuning}- Vertex correspondence and a point-to-plane distance stand in for a true surface distance on
  the phantom; the real-data section measures true surface distances.
- The SD calibration is learned under the training population with exact correspondence; on
  a real skull the registration error and the population difference add to the uncertainty
  (the observation noise σ covers part of it).
- The uncertainty map carries the variation the model saw in its phantom training faces (the
  tissue prior's residual included); what else no skull determines (eyes, lips' fullness,
  nose-tip detail, ears, hair, skin colour, expression, weight history) is not in it.
- No neural generative model was trained: on the phantom, what the skull does not determine is
  the tissue prior's random residual, which no model can predict from the skull; whether a
  neural model helps needs real paired data.""")
    return "\n\n".join(parts) + "\n"
