"""A literature-based prior for adult facial soft-tissue thickness, per depth site and dense over
the template skin, with the between-person variation the skull does not explain.

Why: the phantom's tissue-depth table (:data:`medface.phantom.tables.TISSUE_DEPTHS`) has the
same means for men and women, and phantom faces follow their skulls almost exactly. A model
trained on them has no sexual dimorphism and almost no residual variation. This module gives

1. **site values** (:data:`SITE_PRIORS`, :func:`site_thickness`): for every table key, the mean
   thickness by sex, linear in age and BMI, and the between-person SD, each number with its
   source or marked ``assumption:`` (see ``docs/forensic_tissue_prior.md``). The pooled mean
   (sex unknown) at the reference age and BMI is the phantom table's, so only what the
   literature adds is new: the male-female difference, the slopes where the phantom applies
   none, and a realistic SD.
2. a **dense field** over the template skin (:func:`thickness_change`, :func:`residual_sd`):
   the site values are placed on template skin vertices (:func:`anchors`) and interpolated by a
   Gaussian radial basis (exact at the anchors, decaying to the background away from them).
   :func:`thickness_change` is the per-vertex change relative to what the phantom built for
   the same subject (the phantom's own table at the sites it follows, the reference point
   elsewhere).
3. a **sampler** of smooth, spatially correlated residual fields (:func:`sample_residual`):
   Gaussian-kernel-smoothed white noise on the skin, normalised to unit variance per vertex and
   scaled by :func:`residual_sd`.
4. :func:`apply_tissue_prior`: a phantom face displaced along its skin normals by both (what
   :func:`medface_forensic.train.phantom_training_set` does to every training subject).

The template topology is the phantom template's (:func:`medface_forensic.template.template_head`);
the dense fields are vectors over its skin vertices. Pure functions of their inputs; the
per-template precomputations are cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from medface.errors import ParameterError

# ----------------------------------------------------------------------------------- sources
REFERENCES: dict[str, str] = {
    "Stephan 2017": "Stephan CN. 2018 tallied facial soft tissue thicknesses for adults and sub-adults. Forensic "
                    "Science International 2017;280:113-123. doi:10.1016/j.forsciint.2017.09.016. Abstract read: "
                    "the 2018 T-Table grand means as point estimators on individuals of known thickness "
                    "(C-Table) give a standard error of the estimate of 3.7 mm (2013 T-Table: 3.9 mm).",
    "Stephan & Simpson 2008": "Stephan CN, Simpson EK. Facial soft tissue depths in craniofacial identification "
                              "(part I): an analytical review of the published adult data. J Forensic Sci "
                              "2008;53(6):1257-1272. doi:10.1111/j.1556-4029.2008.00852.x. Abstract read: "
                              "'minor differences between males and females'.",
    "Cha 2013": "Cha KS. Soft-tissue thickness of South Korean adults with normal facial profiles. Korean J Orthod "
                "2013;43(4):178-185. doi:10.4041/kjod.2013.43.4.178. Abstract read (CT, 22 men, 18 women): men "
                "significantly thicker at supraglabella, nasion, rhinion, mid-philtrum, supradentale and "
                "supraglenoid; women significantly thicker at lateral orbit, inferior malar and gonion.",
    "Eftekhari-Moghadam 2019": "Eftekhari-Moghadam AR, Latifi SM, Nazifi HR, Rezaian J. Influence of sex and body "
                               "mass index on facial soft tissue thickness measurements in an adult population of "
                               "southwest of Iran. Surgical and Radiologic Anatomy 2019. Abstract read (MRI): "
                               "nasion, mid-philtrum, upper lip, lower lip and beneath chin significantly thicker "
                               "in men; mid-philtrum the most discriminating (AUC 0.85).",
    "Dong 2012": "Dong Y, et al. Influence of sex and body mass index on facial soft tissue thickness measurements "
                 "of the northern Chinese adult population. Forensic Sci Int 2012;222(1-3):396.e1-7. "
                 "doi:10.1016/j.forsciint.2012.06.004. Abstract read (CT, 200 adults 18-32 y): males thicker at "
                 "most landmarks, one third of the differences significant; thickness increased with BMI at "
                 "every landmark for both sexes.",
    "Drgacova 2016": "Drgacova A, Dupej J, Veleminska J. Facial soft tissue thicknesses in the present Czech "
                     "population. Forensic Sci Int 2016;260:106.e1-106.e7. doi:10.1016/j.forsciint.2016.01.011. "
                     "Abstract read (CT, 102 adults 21-83 y): greatest sexual dimorphism in the lower face; "
                     "ageing mostly affects the upper face.",
    "German CT 2017": "In vivo facial soft tissue depths of a modern adult population from Germany. International "
                      "Journal of Legal Medicine 2017. doi:10.1007/s00414-017-1581-y. Abstract read (MSCT, 160 men, "
                      "160 women): thickness increases with BMI; male-female differences significant at almost all "
                      "landmarks except a few at the nasal root and the orbits. Authors not retrieved.",
    "Thakur & Sehrawat 2023": "Thakur S, Sehrawat JS. Age and sex dependent differences in midline facial soft "
                              "tissue thicknesses measured on MRI scans of Northwest Indian subjects. Egypt J "
                              "Forensic Sci 2023;13:38. doi:10.1186/s41935-023-00356-z. Abstract read: males "
                              "thicker at most midline landmarks (mid-philtrum, supradentale, labrale inferius "
                              "highly significant); the oldest group thinnest.",
    "De Greef et al. 2009": "De Greef S, Vandermeulen D, Claes P, Suetens P, Willems G. The influence of sex, age "
                            "and body mass index on facial soft tissue depths. Forensic Sci Med Pathol "
                            "2009;5(2):60-65. doi:10.1007/s12024-009-9085-9. Abstract read: BMI has the dominant "
                            "role; age and sex cannot be dropped at all landmarks. Coefficients not retrieved.",
    "Chen 2011": "Chen F, Chen Y, Yu Y, Qiang Y, Liu M, Fulton D, Chen T. Age and sex related measurement of "
                 "craniofacial soft tissue thickness and nasal profile in the Chinese population. Forensic Sci Int "
                 "2011. doi:10.1016/j.forsciint.2011.05.027. Abstract read (MRI, 425 adults): males thicker at "
                 "most landmarks except seven (six of them bilateral); the lower face varies more than the upper.",
}

ASSUMPTION = "assumption:"
#: the real-world error of a tabulated mean used as an individual's thickness (Stephan 2017)
T_TABLE_SEE_MM = 3.7
AGE_RANGE = (18.0, 100.0)
BMI_RANGE = (10.0, 60.0)
MIN_THICKNESS_MM = 0.5
INTERPOLATION_WIDTH_MM = 15.0   # Gaussian RBF width of the dense fields (assumption, see docs)
BACKGROUND_SD_MM = 1.0          # residual SD far from every site (scalp, neck, ears): assumption
CORRELATION_LENGTH_MM = 15.0    # of the residual field: corr(d) = exp(-d^2 / (2 L^2)); assumption
NOISE_CENTRES = 2500            # white-noise centres on the template skin
NOISE_NEIGHBOURS = 48           # centres that each vertex averages
ANCHOR_NORMAL_RADIUS_MM = 4.0

_SEX_SRC = {
    "midline_lip": "Cha 2013; Eftekhari-Moghadam 2019; Thakur & Sehrawat 2023",
    "upper": "Cha 2013; Eftekhari-Moghadam 2019; Dong 2012",
    "lower": "Drgacova 2016; Eftekhari-Moghadam 2019; Dong 2012",
    "female": "Cha 2013",
    "orbit": "German CT 2017; Stephan & Simpson 2008",
    "general": "Dong 2012; Chen 2011; Stephan & Simpson 2008",
}
_SIZE_ASSUMED = ("assumption: the direction (men thicker / women thicker / no difference) is from the sources "
                 "named; the size is assumed (their tables were not readable with the project's tools), kept "
                 "within 'minor' differences (Stephan & Simpson 2008), at most 2 mm where the sources find the "
                 "strongest dimorphism")
_SLOPE_ASSUMED = ("assumption: the phantom table's slopes (medface.phantom.tables), whose direction follows "
                  "De Greef et al. 2009 (BMI dominant), Dong 2012 and German CT 2017 (thicker with BMI) and "
                  "Thakur & Sehrawat 2023 (thinner with age at the lips); coefficients not retrieved")
_SD_SOURCE = ("relative sizes: the phantom table's SDs (assumed); overall level scaled so that their root mean "
              "square over the table's sites is the 2018 T-Table standard error of the estimate, 3.7 mm "
              "(Stephan 2017); the larger spread of the lower face follows Chen 2011 and Drgacova 2016. "
              "assumption: that SEE (sexes pooled, no BMI adjustment, measurement error included) is an "
              "upper bound of the spread left once sex, age and BMI are known")


@dataclass(frozen=True)
class SitePrior:
    """The literature prior at one depth site (a key of the phantom's TISSUE_DEPTHS)."""

    key: str
    sex_difference: float      # male minus female mean, mm
    sex_source: str
    size_source: str = _SIZE_ASSUMED
    slope_source: str = _SLOPE_ASSUMED


def _site(key, diff, src):
    return SitePrior(key, float(diff), _SEX_SRC[src])


#: male-minus-female differences (mm); directions sourced, sizes assumed (see the sources)
SITE_PRIORS: tuple[SitePrior, ...] = (
    _site("vertex", 0.0, "general"),
    _site("supraglabella", 0.5, "upper"),
    _site("glabella", 0.5, "upper"),
    _site("nasion", 0.7, "upper"),
    _site("rhinion", 0.3, "upper"),
    _site("mid_philtrum", 2.0, "midline_lip"),
    _site("upper_lip_margin", 1.5, "midline_lip"),
    _site("lower_lip_margin", 1.2, "midline_lip"),
    _site("chin_lip_fold", 0.8, "lower"),
    _site("mental_eminence", 1.0, "lower"),
    _site("gnathion", 0.8, "lower"),
    _site("beneath_chin", 1.0, "lower"),
    _site("frontal_eminence", 0.3, "general"),
    _site("supraorbital", 0.3, "orbit"),
    _site("suborbital", 0.0, "orbit"),
    _site("inferior_malar", -1.0, "female"),
    _site("lateral_orbit", -0.5, "female"),
    _site("zygomatic_arch", 0.3, "general"),
    _site("gonion", 0.0, "general"),
    _site("supra_m2", 1.0, "lower"),
    _site("sub_m2", 1.0, "lower"),
    _site("mid_ramus", 0.5, "general"),
)
_BY_KEY = {s.key: s for s in SITE_PRIORS}

#: soft-tissue-only anchors (no bone under a depth table): residual SD in mm, no mean change
NOSE_ANCHORS: dict[str, float] = {"prn": 3.5, "al_l": 3.0, "al_r": 3.0}
#: a nose anchor closer than this to a site's anchor is left out (subnasale meets mid-philtrum's)
MIN_ANCHOR_SPACING_MM = 3.0
NOSE_SOURCE = ("assumption: the nasal tip and alae lie over cartilage, so no depth table covers them; the nose "
               "is where a face is least determined by the skull (Hona & Stephan 2023 and the nasal-prediction "
               "literature, not read here), so an SD of about the T-Table's 3.7 mm SEE is assumed")


# ------------------------------------------------------------------------------ site values
def _check(name: str, value, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not np.isfinite(value) or not lo <= float(value) <= hi:
        raise ParameterError(f"{name} must be a number in {lo:g}-{hi:g}, got {value!r}", parameter=name.lower())
    return float(value)


def _sex_sign(sex) -> float:
    s = "UNKNOWN" if sex is None else str(sex).strip().upper()
    signs = {"M": 0.5, "F": -0.5, "UNKNOWN": 0.0}
    if s not in signs:
        raise ParameterError(f"sex must be 'F', 'M' or 'unknown', got {sex!r}", parameter="sex")
    return signs[s]


def site_prior(key: str) -> SitePrior:
    """The :class:`SitePrior` of a table key (``"mid_philtrum"``) or bony id (``"pog"``, ``"zy_r"``)."""
    from medface.phantom.tables import tissue_entry

    try:
        entry = tissue_entry(key)
    except ParameterError:
        raise ParameterError(f"no tissue-thickness site {key!r}; known: {', '.join(_BY_KEY)}",
                             parameter="site") from None
    return _BY_KEY[entry.key]


def _entry(key: str):
    from medface.phantom.tables import tissue_entry

    return tissue_entry(site_prior(key).key)


def site_thickness(key: str, sex=None, age=None, bmi=None) -> float:
    """Prior mean thickness (mm) at a site for a sex ("F", "M", "unknown"/None), age (18-100 y) and
    BMI (10-60 kg/m^2; None keeps the site's reference values): the phantom table's pooled mean
    at its reference point, plus half the male-female difference for men (minus for women), plus
    the slopes; never below 0.5 mm."""
    entry, prior = _entry(key), site_prior(key)
    a = entry.ref_age if age is None else _check("age", age, *AGE_RANGE)
    b = entry.ref_bmi if bmi is None else _check("BMI", bmi, *BMI_RANGE)
    pooled = 0.5 * (entry.mean_male + entry.mean_female)
    mean = pooled + _sex_sign(sex) * prior.sex_difference
    mean += entry.age_slope * (a - entry.ref_age) + entry.bmi_slope * (b - entry.ref_bmi)
    return max(mean, MIN_THICKNESS_MM)


@lru_cache(maxsize=1)
def sd_scale() -> float:
    """The factor that brings the table SDs' root mean square to the T-Table SEE (3.7 mm)."""
    from medface.phantom.tables import TISSUE_DEPTHS

    sds = np.array([0.5 * (e.sd_male + e.sd_female) for e in TISSUE_DEPTHS])
    return float(T_TABLE_SEE_MM / np.sqrt(np.mean(sds ** 2)))


def site_sd(key: str) -> float:
    """Between-person SD (mm) of the thickness at a site given sex, age and BMI (see ``_SD_SOURCE``)."""
    e = _entry(key)
    return float(0.5 * (e.sd_male + e.sd_female) * sd_scale())


def phantom_follows(key: str) -> bool:
    """Whether the phantom builds its skin from the table at this site (its DEPTH_PAIRS)."""
    from medface.phantom.template import DEPTH_PAIRS

    followed = {_entry(b).key for b, _ in DEPTH_PAIRS.values()}
    return site_prior(key).key in followed


def phantom_thickness(key: str, sex=None, age=None, bmi=None) -> float:
    """What the phantom's skin has at the site on average: its table for the subject where it
    follows the table, the table's reference value where it does not (no age/BMI there)."""
    from medface.phantom.tables import tissue_depth

    entry = _entry(key)
    if phantom_follows(key):
        return tissue_depth(entry.key, "unknown" if sex is None else sex, age, bmi)[0]
    return tissue_depth(entry.key, "unknown")[0]


def residual_site_sd(key: str) -> float:
    """SD (mm) to ADD to a phantom face at a site so that its total between-person spread is
    :func:`site_sd`: the phantom already varies the depth by its table SD where it follows it."""
    e = _entry(key)
    own = 0.5 * (e.sd_male + e.sd_female) if phantom_follows(key) else 0.0
    return float(np.sqrt(max(site_sd(key) ** 2 - own ** 2, (0.5 * site_sd(key)) ** 2)))


# --------------------------------------------------------------------------------- anchors
@dataclass(frozen=True)
class Anchor:
    """A template skin vertex carrying a site's values (``key``: table key, or a nose landmark)."""

    key: str
    label: str          # the landmark or constructed point it stands for (left/right)
    skin_vertex: int
    point: np.ndarray   # the skin vertex position on the template


def _bone_targets(lm: dict) -> dict[str, tuple[str, np.ndarray]]:
    """Left-side bone target points of every table site (bony landmarks, or points constructed
    from nearby landmarks where the vocabulary has none; documented in the docs)."""
    g, ex = lm["g"], lm["ex_l"]
    t = {"vertex": lm["v"], "glabella": g, "nasion": lm["n"], "rhinion": lm["rhi"], "mid_philtrum": lm["a"],
         "upper_lip_margin": lm["pr"], "lower_lip_margin": lm["id"], "chin_lip_fold": lm["b"],
         "mental_eminence": lm["pog"], "gnathion": lm["gn"], "beneath_chin": lm["me"], "suborbital": lm["or_l"],
         "zygomatic_arch": lm["zy_l"], "gonion": lm["go_l"], "supra_m2": lm["ecm_l"],
         "supraglabella": g + [0.0, -10.0, 12.0],
         "frontal_eminence": g + [28.0, -10.0, 35.0],
         "supraorbital": np.array([lm["or_l"][0], g[1] - 10.0, g[2] - 12.0]),
         "lateral_orbit": ex + [8.0, 0.0, 0.0],
         "inferior_malar": 0.5 * (lm["zm_l"] + lm["zy_l"]) + [0.0, 0.0, -8.0],
         "sub_m2": lm["ecm_l"] + [8.0, 0.0, -25.0],
         "mid_ramus": 0.5 * (lm["go_l"] + lm["co_l"]) + [6.0, 0.0, 0.0]}
    return {k: v for k, v in t.items()}


def _mirror(p: np.ndarray) -> np.ndarray:
    return np.array([-p[0], p[1], p[2]])


@lru_cache(maxsize=1)
def anchors() -> tuple[Anchor, ...]:
    """The template skin vertices over every site (both sides of bilateral ones) and the nose
    anchors: the bone vertex nearest the site's target, pushed out along the mean bone normal by
    the phantom's pooled depth, then the nearest template skin vertex."""
    from scipy.spatial import cKDTree

    from medface.data.mesh import vertex_normals
    from medface.phantom.tables import tissue_entry

    from .template import template_head

    head = template_head()
    lm = {k: np.asarray(v, float) for k, v in head.landmarks.items()}
    bones = [head.cranium, head.mandible]
    trees = [cKDTree(b.vertices) for b in bones]
    normals = [vertex_normals(b.vertices, b.faces) for b in bones]
    skin_tree = cKDTree(head.skin.vertices)
    out = []
    for key, target in _bone_targets(lm).items():
        entry = tissue_entry(key)
        depth = 0.5 * (entry.mean_male + entry.mean_female)
        sides = [("l", target), ("r", _mirror(target))] if entry.bilateral else [("", target)]
        for side, p in sides:
            dist = [t.query(p)[0] for t in trees]
            k = int(np.argmin(dist))
            v = bones[k].vertices
            vi = trees[k].query(p)[1]
            near = trees[k].query_ball_point(v[vi], ANCHOR_NORMAL_RADIUS_MM)
            n = normals[k][near].mean(0)
            n /= np.linalg.norm(n)
            si = int(skin_tree.query(v[vi] + depth * n)[1])
            out.append(Anchor(key, f"{key}_{side}" if side else key, si, head.skin.vertices[si].copy()))
    for name in NOSE_ANCHORS:
        si = int(skin_tree.query(lm[name])[1])
        p = head.skin.vertices[si]
        if min(np.linalg.norm(a.point - p) for a in out) >= MIN_ANCHOR_SPACING_MM:
            out.append(Anchor(name, name, si, p.copy()))
    return tuple(out)


# ----------------------------------------------------------------------------- dense fields
@lru_cache(maxsize=1)
def _interpolation_basis() -> np.ndarray:
    """(n_skin, n_anchors) float32 B with field = B @ anchor_values: Gaussian RBF interpolation
    (exact at the anchors, no polynomial term, so it decays to 0 away from them)."""
    from .template import template_head

    pts = np.array([a.point for a in anchors()])
    eps = 1.0 / INTERPOLATION_WIDTH_MM
    gram = np.exp(-(eps * np.linalg.norm(pts[:, None] - pts[None], axis=2)) ** 2)
    inv = np.linalg.solve(gram + 1e-9 * np.eye(len(pts)), np.eye(len(pts)))
    skin = template_head().skin.vertices
    out = np.empty((len(skin), len(pts)), np.float32)
    for s in range(0, len(skin), 20000):
        d = np.linalg.norm(skin[s:s + 20000, None] - pts[None], axis=2)
        out[s:s + 20000] = np.exp(-(eps * d) ** 2) @ inv
    return out


def interpolate(anchor_values: np.ndarray) -> np.ndarray:
    """Dense per-skin-vertex field (n_skin,) from one value per anchor (:func:`anchors` order)."""
    vals = np.asarray(anchor_values, np.float64)
    if vals.shape != (len(anchors()),):
        raise ParameterError(f"need one value per anchor ({len(anchors())}), got shape {vals.shape}",
                             parameter="anchor_values")
    return _interpolation_basis().astype(np.float64) @ vals


def site_changes(sex=None, age=None, bmi=None) -> np.ndarray:
    """Per anchor: prior mean minus what the phantom builds for the same subject (0 on the nose)."""
    return np.array([site_thickness(a.key, sex, age, bmi) - phantom_thickness(a.key, sex, age, bmi)
                     if a.key in _BY_KEY else 0.0 for a in anchors()])


def thickness_change(sex=None, age=None, bmi=None) -> np.ndarray:
    """(n_skin,) mm: the prior's thickness minus the phantom's for this sex, age and BMI, dense
    over the template skin (positive: the skin moves outward)."""
    return interpolate(site_changes(sex, age, bmi))


@lru_cache(maxsize=1)
def covariate_effect() -> np.ndarray:
    """(3, n_skin) float32 mm: the prior's thickness change per unit of sex (men minus women),
    age (per year) and BMI (per kg/m^2), dense over the template skin (0 on the nose and far
    from the sites). :func:`site_thickness` is linear in all three (above its 0.5 mm floor), so
    these fields carry its whole dependence on the covariates; the face model adds them at
    conditioning time (:mod:`.shape_model`)."""
    from medface.phantom.tables import tissue_entry

    rows = []
    for part in ("sex", "age", "bmi"):
        vals = []
        for a in anchors():
            if a.key not in _BY_KEY:
                vals.append(0.0)
                continue
            entry = tissue_entry(a.key)
            vals.append({"sex": _BY_KEY[a.key].sex_difference, "age": entry.age_slope, "bmi": entry.bmi_slope}[part])
        rows.append(interpolate(np.array(vals)))
    return np.asarray(rows, np.float32)


def thickness(sex=None, age=None, bmi=None) -> np.ndarray:
    """(n_skin,) mm: the prior's absolute mean thickness interpolated over the skin (sites only;
    for display and tests: the value decays to 0 far from the sites and is 0 on the nose)."""
    return interpolate(np.array([site_thickness(a.key, sex, age, bmi) if a.key in _BY_KEY else 0.0
                                 for a in anchors()]))


@lru_cache(maxsize=1)
def residual_sd() -> np.ndarray:
    """(n_skin,) mm: SD of the face's residual displacement along the normal (what a phantom face
    lacks): the sites' :func:`residual_site_sd` and the nose anchors' SDs, interpolated above
    the background SD and floored at half of it."""
    vals = np.array([residual_site_sd(a.key) if a.key in _BY_KEY else NOSE_ANCHORS[a.key] for a in anchors()])
    field = BACKGROUND_SD_MM + interpolate(vals - BACKGROUND_SD_MM)
    return np.maximum(field, 0.5 * BACKGROUND_SD_MM)


# ---------------------------------------------------------------------------- residual sampler
@lru_cache(maxsize=1)
def _noise_kernel() -> tuple[np.ndarray, np.ndarray]:
    """(indices, weights) (n_skin, k): each skin vertex's nearest noise centres and normalised
    Gaussian weights (sum of squares 1, so a sum of unit white noise has unit variance)."""
    from scipy.spatial import cKDTree

    from .template import template_head

    skin = template_head().skin.vertices
    centres = skin[np.random.default_rng(0).choice(len(skin), NOISE_CENTRES, replace=False)]
    dist, idx = cKDTree(centres).query(skin, k=NOISE_NEIGHBOURS)
    sigma_k = CORRELATION_LENGTH_MM / np.sqrt(2.0)  # smoothing kernel giving that correlation length
    w = np.exp(-0.5 * (dist / sigma_k) ** 2)
    w /= np.sqrt((w ** 2).sum(1, keepdims=True))
    return idx.astype(np.int32), w.astype(np.float32)


def unit_residual(rng: np.random.Generator, k: int | None = None) -> np.ndarray:
    """Smooth Gaussian field(s) of unit variance per vertex over the template skin:
    (n_skin,) or, with ``k``, (k, n_skin)."""
    idx, w = _noise_kernel()
    z = rng.standard_normal((1 if k is None else int(k), NOISE_CENTRES)).astype(np.float32)
    fields = np.einsum("vk,svk->sv", w, z[:, idx])
    return fields[0] if k is None else fields


def sample_residual(rng: np.random.Generator | int | None = None, k: int | None = None) -> np.ndarray:
    """Residual normal displacement(s) (mm) with per-vertex SD :func:`residual_sd`, spatially
    correlated over about :data:`CORRELATION_LENGTH_MM`."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    return unit_residual(rng, k) * residual_sd().astype(np.float32)


@lru_cache(maxsize=1)
def template_thickness() -> np.ndarray:
    """(n_skin,) mm: distance of each template skin vertex to the nearest template bone vertex."""
    from scipy.spatial import cKDTree

    from .template import template_head

    head = template_head()
    bone = np.concatenate([head.cranium.vertices, head.mandible.vertices])
    return cKDTree(bone).query(head.skin.vertices)[0]


def apply_tissue_prior(skin_vertices, skin_faces, sex, age, bmi, rng) -> np.ndarray:
    """A phantom face with the prior applied: each template-topology skin vertex moved along its
    normal by :func:`thickness_change` for the subject's sex, age and BMI plus one
    :func:`sample_residual` field from ``rng`` (a Generator or a seed). The inward move is
    limited to 80 % of the template's local tissue thickness so that the skin never crosses the
    bone. Returns a new (n_skin, 3) float64 array."""
    from medface.data.mesh import vertex_normals

    v = np.asarray(skin_vertices, np.float64)
    n_skin = len(_interpolation_basis())
    if v.shape != (n_skin, 3):
        raise ParameterError(f"the skin must have the template's {n_skin} vertices, got shape {v.shape}",
                             parameter="skin_vertices")
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    move = thickness_change(sex, age, bmi) + sample_residual(rng)
    move = np.maximum(move, -0.8 * template_thickness())
    return v + move[:, None] * vertex_normals(v, skin_faces)
