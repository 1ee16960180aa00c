"""Training the skull-to-face shape model: from the synthetic phantom, or from a lab's own pairs.

``train_phantom_model`` draws unaffected subjects from :func:`medface.phantom.cohort` (sex, age
and BMI sampled by the phantom) whose skull and skin come in dense correspondence with the
phantom template. ``train_from_pairs`` (and the command ``medface forensic train``,
:mod:`.train_command`) reads pairs that a lab has already brought into correspondence (layout
below); :func:`read_pairs` checks them. Bringing real CT surfaces into correspondence with the
template (non-rigid registration) is up to the lab (:mod:`.register` registers the template
skull onto a skull, but not the skin). :func:`write_phantom_pairs` writes phantom subjects in
this layout, as an example and for tests.

Layout for ``train_from_pairs(pairs_dir)``::

    pairs_dir/
      <subject id>/
        cranium.ply     skull without mandible, same vertex count and order as the template
                        cranium (``skull.ply`` is accepted as a synonym)
        mandible.ply    the mandible, same vertex count and order as the template mandible
        skin.ply        the skin, same vertices AND triangles as the template skin
        subject.json    {"sex": "F" | "M", "age": years, "bmi": kg/m^2} (other keys ignored;
                        "synthetic": true marks phantom subjects)
      template/         optional: cranium.ply, mandible.ply, skin.ply and landmarks.mrk.json

All meshes in mm in LPS, skull and skin of a subject in one frame (subjects may lie in
different poses: training aligns them). ``template/`` (else the first subject) fixes the
topology every subject must share and the output triangles. When that topology is the medface
phantom template's, the vertex subsets are chosen on the phantom template and ``forensic
reconstruct`` can use the model; a lab template of its own topology needs
``template/landmarks.mrk.json`` with ``po_l``, ``po_r``, ``t_l``, ``t_r``, ``me_s`` and ``g_s``
(LPS mm, on the template) to place the subsets.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medface.errors import InputError

from .shape_model import SEX_CODES, ShapeModel, fit_shape_model, save_model
from .template import template_head  # noqa: F401  (also imported from here by scripts and tests)

DEFAULT_SUBSETS = {"cranium": 3000, "mandible": 800, "face": 8000}


def choose_subsets(cranium: np.ndarray, mandible: np.ndarray, skin: np.ndarray, landmarks: dict | None = None, *,
                   sizes: dict | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Fixed vertex subsets of the template (sorted indices), drawn uniformly at random (seeded)
    from: the anterior cranium (the facial skeleton and forehead: in front of the porion
    plane by 20 mm), the whole mandible, and the anterior skin (in front of the tragion by
    15 mm, from 25 mm below the soft-tissue menton to 60 mm above the soft-tissue glabella).
    Without landmarks the LPS frame of the phantom (porion at y = 0) is assumed."""
    sizes = dict(DEFAULT_SUBSETS, **(sizes or {}))
    rng = np.random.default_rng(seed)
    lm = landmarks or {}
    y_po = float(np.mean([lm[k][1] for k in ("po_l", "po_r") if k in lm])) if "po_l" in lm else 0.0
    y_t = float(np.mean([lm[k][1] for k in ("t_l", "t_r") if k in lm])) if "t_l" in lm else -5.0
    z_me = float(lm["me_s"][2]) if "me_s" in lm else -100.0
    z_g = float(lm["g_s"][2]) if "g_s" in lm else 40.0

    def pick(mask, k):
        idx = np.flatnonzero(mask)
        if len(idx) == 0:
            raise InputError("no template vertices in the region for a vertex subset; is the template in LPS mm?")
        return np.sort(rng.choice(idx, size=min(k, len(idx)), replace=False))

    return {
        "cranium": pick(cranium[:, 1] < y_po - 20.0, sizes["cranium"]),
        "mandible": pick(np.ones(len(mandible), bool), sizes["mandible"]),
        "face": pick((skin[:, 1] < y_t - 15.0) & (skin[:, 2] > z_me - 25.0) & (skin[:, 2] < z_g + 60.0),
                     sizes["face"]),
    }


def fit_from_arrays(craniums, mandibles, skins, covariates, *, template, landmarks=None, sizes=None, seed=0,
                    calibration_folds: int = 5, calibration_set=None, calibration_sigma: float = 1.0,
                    **fit_kw) -> ShapeModel:
    """Fit from full-resolution training arrays (n, N, 3) in correspondence; ``template`` is a
    (cranium, mandible, skin SurfaceMesh) triple defining the subsets and output faces. The
    posterior SD is then calibrated (:mod:`.calibration`) on ``calibration_set`` (a tuple
    craniums, mandibles, skins, covariates of other subjects) when given, else by
    ``calibration_folds``-fold cross-validation (0 skips calibration)."""
    from . import calibration

    t_cr, t_md, t_sk = template
    subsets = choose_subsets(t_cr.vertices, t_md.vertices, t_sk.vertices, landmarks, sizes=sizes, seed=seed)
    meta = fit_kw.pop("metadata", {})
    meta["vertex_subset_seed"] = int(seed)
    craniums, mandibles = np.asarray(craniums), np.asarray(mandibles)
    covariates = np.asarray(covariates, np.float64)

    n_components = fit_kw.pop("n_components", None)

    def fit(rows, n_components=n_components, **extra):
        return fit_shape_model(craniums[rows][:, subsets["cranium"]], mandibles[rows][:, subsets["mandible"]],
                               skins[rows], covariates[rows], cranium_idx=subsets["cranium"],
                               mandible_idx=subsets["mandible"], face_idx=subsets["face"], skin_faces=t_sk.faces,
                               n_cranium=len(t_cr.vertices), n_mandible=len(t_md.vertices),
                               n_components=n_components, **fit_kw, **extra)

    model = fit(np.arange(len(craniums)), metadata=meta)
    t0 = time.perf_counter()
    if calibration_set is not None:
        c_cr, c_md, c_sk, c_cov = calibration_set
        cases = calibration.errors_of(model, c_cr, c_md, c_sk, np.asarray(c_cov, np.float64), t_sk.faces,
                                      sigma=calibration_sigma)
        how = f"{len(c_cr)} separate calibration subjects reconstructed by the final model"
    elif calibration_folds:
        q = model.n_components
        cases = calibration.held_out_errors(lambda rows: fit(rows, n_components=q), craniums, mandibles, skins,
                                            covariates, t_sk.faces, folds=calibration_folds,
                                            sigma=calibration_sigma, seed=seed)
        how = f"{calibration_folds}-fold cross-validation on the training subjects"
    else:
        return model
    model.sd_scale = calibration.sd_scale(*cases[True], t_sk.faces)
    model.sd_scale_no_mandible = calibration.sd_scale(*cases[False], t_sk.faces)
    face = np.zeros(model.n_skin, bool)
    face[subsets["face"]] = True
    model.metadata["sd_calibration"] = {
        "method": how + "; per vertex, the 68.3 % quantile of |signed normal error| / posterior SD, smoothed over "
                        "the mesh, with and without the mandible (medface_forensic.calibration)",
        "sigma_mm": float(calibration_sigma),
        "coverage_on_calibration_data_pct": calibration.coverage_report(*cases[True], model.sd_scale, face),
        "coverage_without_mandible_pct": calibration.coverage_report(*cases[False], model.sd_scale_no_mandible,
                                                                     face),
        "seconds": round(time.perf_counter() - t0, 1)}
    return model


TISSUE_PRIOR_SEED = 7919  # residual fields: subject i of cohort seed s draws from (this, s, i)


def prior_following_skin(skin_vertices, skin_faces, sex: str, age: float, bmi: float, seed: int,
                         index: int) -> np.ndarray:
    """A phantom subject's skin made to follow the literature tissue prior
    (:func:`.tissue_prior.apply_tissue_prior`): the sex/age/BMI thickness change plus one
    residual field, seeded by (cohort ``seed``, subject ``index``) so that it is reproducible."""
    from .tissue_prior import apply_tissue_prior

    rng = np.random.default_rng([TISSUE_PRIOR_SEED, int(seed), int(index)])
    return apply_tissue_prior(skin_vertices, skin_faces, sex, age, bmi, rng)


def phantom_training_set(n: int, seed: int, *, tissue_prior: bool = True):
    """Arrays (craniums, mandibles, skins float32, covariates, subject dicts) of ``n`` unaffected
    phantom subjects of cohort ``seed``. With ``tissue_prior`` (the default, what the default
    model learns from) each face follows the literature tissue prior for the subject's own sex,
    age and BMI (:func:`prior_following_skin`); without it, the phantom's faces as built."""
    from medface import phantom

    cr = mdb = sk = None
    covs, subjects = np.zeros((n, 3)), []
    for i, member in enumerate(phantom.cohort(n, seed=seed)):
        head = member.head
        if cr is None:
            cr = np.empty((n, *head.cranium.vertices.shape), np.float32)
            mdb = np.empty((n, *head.mandible.vertices.shape), np.float32)
            sk = np.empty((n, *head.skin.vertices.shape), np.float32)
        s = member.subject
        skin = head.skin.vertices
        if tissue_prior:
            skin = prior_following_skin(skin, head.skin.faces, s.sex, s.age, s.bmi, seed, i)
        cr[i], mdb[i], sk[i] = head.cranium.vertices, head.mandible.vertices, skin
        covs[i] = (SEX_CODES[s.sex], s.age, s.bmi)
        subjects.append({"id": s.subject_id, "sex": s.sex, "age": float(s.age), "bmi": float(s.bmi)})
        member.__dict__.pop("head", None)  # free the meshes
    return cr, mdb, sk, covs, subjects


CALIBRATION_SEED_OFFSET = 500  # calibration cohort seed = training seed + this (evaluation uses 1000)


def train_phantom_model(n: int = 200, seed: int = 0, out=None, *, sizes=None, n_calibration: int | None = None,
                        **fit_kw) -> ShapeModel:
    """Train on ``n`` synthetic phantom subjects (cohort ``seed``) and calibrate the SD on
    ``n_calibration`` other subjects (cohort ``seed + CALIBRATION_SEED_OFFSET``; default
    ``max(10, n // 3)``; 0 skips calibration); save to ``out`` if given. The faces follow the
    literature tissue prior, whose sex, age and BMI effect the model carries explicitly
    (``covariate_effect``, see :mod:`.shape_model`)."""
    from .tissue_prior import covariate_effect

    t0 = time.perf_counter()
    cr, md, sk, covs, _ = phantom_training_set(n, seed)
    n_cal = max(10, n // 3) if n_calibration is None else int(n_calibration)
    cal = phantom_training_set(n_cal, seed + CALIBRATION_SEED_OFFSET)[:4] if n_cal else None
    t1 = time.perf_counter()
    tmpl = template_head()
    meta = {"training_data": f"synthetic: medface phantom cohort(n={n}, seed={seed}), unaffected subjects, "
                             "sex/age/BMI sampled by the phantom, faces displaced to follow the literature "
                             "tissue prior (medface_forensic.tissue_prior); NOT real anatomy",
            "training_seed": int(seed), "tissue_prior": True,
            "calibration_data": f"synthetic: medface phantom cohort(n={n_cal}, seed={seed + CALIBRATION_SEED_OFFSET})"
            if n_cal else "none",
            "covariate_effect": "explicit: the literature tissue prior's sex, age and BMI fields "
                                "(medface_forensic.tissue_prior.covariate_effect), removed from the training faces "
                                "and added at conditioning"}
    fit_kw.setdefault("covariate_effect", covariate_effect())
    model = fit_from_arrays(cr, md, sk, covs, template=(tmpl.cranium, tmpl.mandible, tmpl.skin),
                            landmarks=tmpl.landmarks, sizes=sizes, metadata=meta, calibration_set=cal,
                            calibration_folds=0, **fit_kw)
    model.metadata["timing_s"] = {"generate": round(t1 - t0, 2), "fit": round(time.perf_counter() - t1, 2)}
    if out is not None:
        save_model(model, out)
    return model


# ------------------------------------------------------------------------------ pairs folders
MESH_FILES = ("cranium", "mandible", "skin")
SUBJECT_FILE = "subject.json"
TEMPLATE_FOLDER = "template"
TEMPLATE_LANDMARKS = "landmarks.mrk.json"
SUBSET_LANDMARKS = ("po_l", "po_r", "t_l", "t_r", "me_s", "g_s")  # what choose_subsets reads
SEXES = {"F": "F", "M": "M", "FEMALE": "F", "MALE": "M"}
AGE_RANGE = (0.0, 120.0)  # years
BMI_RANGE = (10.0, 80.0)  # kg/m^2
MAX_SKIN_OFFSET_MM = 80.0  # skull centroid to skin centroid (about 30 mm in the phantom)
LAYOUT_HINT = "see `medface plugins info forensic` or docs/forensic.md for the pairs layout"


@dataclass
class Pairs:
    """A pairs folder read into memory (vertices float32, mm); see :func:`read_pairs`.

    ``template`` is the (cranium, mandible, skin) SurfaceMesh triple whose topology every subject
    shares; ``subset_template``/``landmarks`` are what the vertex subsets are chosen on (the
    medface phantom template when the topology is medface's, else ``template/`` with its
    landmarks). ``medface_topology`` says whether ``forensic reconstruct`` can use the model."""

    root: Path
    ids: list[str]
    craniums: np.ndarray
    mandibles: np.ndarray
    skins: np.ndarray
    covariates: np.ndarray
    subjects: list[dict]
    template: tuple
    subset_template: tuple
    landmarks: dict | None
    medface_topology: bool
    synthetic: bool = False

    def __len__(self) -> int:
        return len(self.ids)


def _mesh_file(folder: Path, part: str) -> Path:
    if part == "cranium" and not (folder / "cranium.ply").is_file() and (folder / "skull.ply").is_file():
        return folder / "skull.ply"
    return folder / f"{part}.ply"


def _check_files(folder: Path, what: str) -> None:
    for part in MESH_FILES:
        p = _mesh_file(folder, part)
        if not p.is_file():
            hint = LAYOUT_HINT
            if (folder / "model.json").is_file():
                hint = "this looks like a trained model folder: keep models outside the pairs folder"
            extra = " (or skull.ply)" if part == "cranium" else ""
            raise InputError(f"{what}: missing {p.name}{extra}", path=folder, hint=hint)


def _number(info: dict, key: str, unit: str, lo: float, hi: float, path: Path, who: str) -> float:
    v = info.get(key)
    if v is None:
        raise InputError(f"subject {who}: subject.json has no '{key}'", path=path,
                         hint='write {"sex": "F" or "M", "age": years, "bmi": kg/m^2}')
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"subject {who}: '{key}' must be a number ({unit}), got {v!r}", path=path)
    v = float(v)
    if not (np.isfinite(v) and lo <= v <= hi):
        raise InputError(f"subject {who}: '{key}' is {v:g} {unit}, outside the plausible {lo:g}-{hi:g} {unit}",
                         path=path)
    return v


def read_subject_info(path: Path, subject_id: str) -> dict:
    """Sex, age and BMI from a subject.json; InputError naming the subject and the key."""
    who = f"'{subject_id}'"
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError(f"subject {who}: subject.json is not UTF-8 text", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"subject {who}: subject.json is not valid JSON ({exc.msg} at line {exc.lineno} "
                         f"column {exc.colno})", path=path,
                         hint='write {"sex": "F", "age": 40, "bmi": 24}') from None
    if not isinstance(info, dict):
        raise InputError(f"subject {who}: subject.json must hold an object "
                         '{"sex": ..., "age": ..., "bmi": ...}', path=path)
    sex = SEXES.get(str(info.get("sex", "")).strip().upper()) if isinstance(info.get("sex"), str) else None
    if sex is None:
        raise InputError(f"subject {who}: 'sex' must be \"F\" or \"M\", got {info.get('sex')!r}", path=path,
                         hint="the model needs the sex of every training subject")
    return {"id": subject_id, "sex": sex, "age": _number(info, "age", "years", *AGE_RANGE, path, who),
            "bmi": _number(info, "bmi", "kg/m^2", *BMI_RANGE, path, who),
            "synthetic": bool(info.get("synthetic", False))}


def _unit_hint(length: float) -> str:
    from .skull_input import LENGTH_MM, TYPICAL_LENGTH_MM
    from .skull_size import UNIT_FACTORS

    fits = [(u, f) for u, f in UNIT_FACTORS.items() if f != 1.0 and LENGTH_MM[0] <= length * f <= LENGTH_MM[1]]
    if fits:
        unit, f = min(fits, key=lambda kv: abs(np.log(length * kv[1] / TYPICAL_LENGTH_MM)))
        return f"if the meshes are in {unit}, multiply their coordinates by {f:g} before training"
    return "every mesh must be in millimetres (LPS)"


def check_skull_size(cranium: np.ndarray, mandible: np.ndarray, who: str, path=None) -> float:
    """Largest principal extent (mm) of cranium + mandible; InputError when no adult skull in mm
    measures that (140-260 mm), with the measured size and a unit hint."""
    from .skull_input import LENGTH_MM, principal_extents

    pts = np.concatenate([cranium, mandible])
    length = float(principal_extents(pts[:: max(1, len(pts) // 30000)].astype(np.float64))[0])
    if not LENGTH_MM[0] <= length <= LENGTH_MM[1]:
        raise InputError(f"{who}: the skull (cranium + mandible) measures {length:.4g} along its largest axis; "
                         f"a human skull in millimetres measures {LENGTH_MM[0]:.0f}-{LENGTH_MM[1]:.0f} mm",
                         path=path, hint=_unit_hint(length))
    return length


def _read_meshes(folder: Path, who: str):
    from medface.io.meshes import read_mesh

    out = []
    for part in MESH_FILES:
        p = _mesh_file(folder, part)
        try:
            out.append(read_mesh(p))
        except InputError as exc:
            raise InputError(f"{who}: {p.name}: {exc.message}", path=p, hint=exc.hint) from None
    return out


def _check_subject(meshes, ref, who: str, folder: Path, ref_name: str = "the template") -> None:
    """Vertex counts, skin faces, size and frame of one subject against the reference topology."""
    for part, m, r in zip(MESH_FILES, meshes, ref):
        if len(m.vertices) != len(r.vertices):
            raise InputError(f"{who}: {Path(m.source).name} has {len(m.vertices)} vertices but {ref_name}'s "
                             f"{part} has {len(r.vertices)}", path=m.source,
                             hint="every mesh must be in dense correspondence with the template (same vertices "
                                  "in the same order); bring raw CT surfaces into it with "
                                  "`medface forensic correspond`")
    skin, ref_skin = meshes[2], ref[2]
    if skin.faces.shape != ref_skin.faces.shape or not np.array_equal(skin.faces, ref_skin.faces):
        raise InputError(f"{who}: skin.ply has different triangles from {ref_name}'s skin "
                         f"({len(skin.faces)} vs {len(ref_skin.faces)})", path=skin.source,
                         hint="the skin must keep the template's topology (same triangles, same vertex order); "
                              "do not remesh, decimate or clean it after registration")
    check_skull_size(meshes[0].vertices, meshes[1].vertices, who, folder)
    centre = np.concatenate([meshes[0].vertices, meshes[1].vertices]).mean(0)
    offset = float(np.linalg.norm(skin.vertices.mean(0) - centre))
    if offset > MAX_SKIN_OFFSET_MM:
        raise InputError(f"{who}: the skin's centre lies {offset:.0f} mm from the skull's "
                         f"(at most {MAX_SKIN_OFFSET_MM:.0f} mm expected)", path=folder,
                         hint="skull and skin of a subject must share one frame (LPS mm), as cut from one CT")


def _same_topology(meshes, other) -> bool:
    return all(len(a.vertices) == len(b.vertices) for a, b in zip(meshes, other)) and \
        np.array_equal(meshes[2].faces, other[2].faces)


def read_pairs(pairs_dir) -> Pairs:
    """Read and check a pairs folder (layout in the module docstring).

    Raises :class:`InputError` (with the path and a hint) for a missing folder, fewer than 3
    subjects, missing files, a subject.json that is not valid JSON or lacks a plausible sex, age
    or BMI, meshes whose vertex count differs from the template's, NaN coordinates, a skin whose
    triangles differ from the template's, a skull that is not 140-260 mm long (not in mm), and a
    skin in another frame than its skull. Folders whose name starts with "." are ignored."""
    from medface.data import SurfaceMesh
    from medface.io import read_landmarks

    root = Path(pairs_dir)
    if not root.exists():
        raise InputError("the pairs folder does not exist", path=root, hint=LAYOUT_HINT)
    if not root.is_dir():
        raise InputError("the pairs path is not a folder", path=root, hint=LAYOUT_HINT)
    folders = sorted(p for p in root.iterdir()
                     if p.is_dir() and p.name != TEMPLATE_FOLDER and not p.name.startswith("."))
    if len(folders) < 3:
        raise InputError(f"need at least 3 subject folders, found {len(folders)}", path=root,
                         hint="a useful model needs dozens to hundreds of subjects; " + LAYOUT_HINT)
    # cheap checks of every subject first: files present, subject.json valid
    subjects = []
    for f in folders:
        who = f"subject '{f.name}'"
        _check_files(f, who)
        if not (f / SUBJECT_FILE).is_file():
            raise InputError(f"{who}: missing {SUBJECT_FILE}", path=f,
                             hint='write {"sex": "F" or "M", "age": years, "bmi": kg/m^2}')
        subjects.append(read_subject_info(f / SUBJECT_FILE, f.name))
    # the reference topology: template/ or the first subject; checked before the other subjects
    tdir = root / TEMPLATE_FOLDER
    landmarks, first = None, None
    if tdir.is_dir():
        _check_files(tdir, "template")
        template = tuple(_read_meshes(tdir, "template"))
        check_skull_size(template[0].vertices, template[1].vertices, "template", tdir)
        if (tdir / TEMPLATE_LANDMARKS).is_file():
            landmarks = read_landmarks(tdir / TEMPLATE_LANDMARKS).to_dict()
    else:
        first = _read_meshes(folders[0], f"subject '{folders[0].name}'")
        template = tuple(SurfaceMesh(m.vertices, m.faces, name=f"template {p} ({folders[0].name})")
                         for p, m in zip(MESH_FILES, first))
    medface_tmpl = template_head()
    phantom_meshes = (medface_tmpl.cranium, medface_tmpl.mandible, medface_tmpl.skin)
    medface_topology = _same_topology(template, phantom_meshes)
    subset_template = template
    if landmarks is None:
        if medface_topology:  # subsets by vertex index on the phantom template: any frame works
            subset_template, landmarks = phantom_meshes, dict(medface_tmpl.landmarks)
        else:
            raise InputError(
                "the meshes do not share the medface template's topology, so the skull and face regions of the "
                f"model cannot be placed without landmarks on the template (template/{TEMPLATE_LANDMARKS})",
                path=tdir if tdir.is_dir() else root,
                hint=f"add {TEMPLATE_FOLDER}/cranium.ply, mandible.ply, skin.ply and {TEMPLATE_LANDMARKS} "
                     f"with {', '.join(SUBSET_LANDMARKS)} (LPS mm, on the template)")
    missing = [k for k in SUBSET_LANDMARKS if k not in landmarks]
    if missing:
        raise InputError(f"the template landmarks lack {', '.join(missing)}", path=tdir / TEMPLATE_LANDMARKS,
                         hint="they place the vertex subsets: skull in front of the porion, face in front of "
                              "the tragion between soft-tissue menton and glabella")
    n = len(folders)
    cr = md = sk = None
    for i, f in enumerate(folders):
        who = f"subject '{f.name}'"
        meshes = first if (i == 0 and first is not None) else _read_meshes(f, who)
        _check_subject(meshes, template, who, f, "the template" if first is None else
                       f"the first subject ('{folders[0].name}', the reference without a template/ folder)")
        if cr is None:
            cr, md, sk = (np.empty((n, len(m.vertices), 3), np.float32) for m in meshes)
        cr[i], md[i], sk[i] = (m.vertices for m in meshes)
        del meshes
    first = None
    covs = np.array([(SEX_CODES[s["sex"]], s["age"], s["bmi"]) for s in subjects], np.float64)
    synthetic = all(s.pop("synthetic") for s in subjects)
    return Pairs(root=root, ids=[f.name for f in folders], craniums=cr, mandibles=md, skins=sk, covariates=covs,
                 subjects=subjects, template=template, subset_template=subset_template, landmarks=landmarks,
                 medface_topology=medface_topology, synthetic=synthetic)


def pairs_subsets(pairs: Pairs, *, sizes: dict | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """The model's vertex subsets for a pairs folder (see :func:`choose_subsets`)."""
    t_cr, t_md, t_sk = pairs.subset_template
    return choose_subsets(t_cr.vertices, t_md.vertices, t_sk.vertices, pairs.landmarks, sizes=sizes, seed=seed)


def training_description(pairs: Pairs) -> str:
    kind = "synthetic phantom subjects written by write_phantom_pairs; NOT real anatomy" if pairs.synthetic \
        else "user supplied"
    return f"pairs folder {pairs.root.name}: {len(pairs)} subjects ({kind})"


def train_from_pairs(pairs_dir, out=None, *, sizes=None, seed: int = 0, **fit_kw) -> ShapeModel:
    """Train on a lab's own skull-skin pairs, already in correspondence (see module docstring)."""
    pairs = pairs_dir if isinstance(pairs_dir, Pairs) else read_pairs(pairs_dir)
    if len(pairs) < 4:  # the SD calibration's folds would train on fewer than 3
        fit_kw.setdefault("calibration_folds", 0)
    meta = dict(fit_kw.pop("metadata", {}))
    meta.update({"training_data": training_description(pairs), "pairs_folder": str(pairs.root.resolve()),
                 "template_topology": "medface phantom template" if pairs.medface_topology else "user template"})
    # the subset template has the pairs' topology (it is the phantom template only when they share it)
    model = fit_from_arrays(pairs.craniums, pairs.mandibles, pairs.skins, pairs.covariates,
                            template=pairs.subset_template, landmarks=pairs.landmarks, sizes=sizes, seed=seed,
                            metadata=meta, **fit_kw)
    if out is not None:
        save_model(model, out)
    return model


@dataclass
class TrainingOutcome:
    """A model trained on a pairs folder, its k-fold cross-validation (None with too few
    subjects) and the seconds each step took."""

    pairs: Pairs
    model: ShapeModel
    cross_validation: dict | None
    timings_s: dict


def train_and_validate(pairs_dir, *, n_components: int | None = None, variance: float = 0.999, seed: int = 0,
                       sizes: dict | None = None, folds: int = 5, progress=None) -> TrainingOutcome:
    """Read and check a pairs folder, fit the model (:func:`train_from_pairs`) and cross-validate
    it (:func:`cross_validate`); the timings and the cross-validation go into the model's
    metadata. ``progress`` gets a line per step."""
    say = progress or (lambda text: None)
    t0 = time.perf_counter()
    say("reading and checking the pairs")
    data = pairs_dir if isinstance(pairs_dir, Pairs) else read_pairs(pairs_dir)
    t1 = time.perf_counter()
    say(f"fitting the model on {len(data)} subjects")
    model = train_from_pairs(data, sizes=sizes, seed=seed, n_components=n_components, variance=variance)
    t2 = time.perf_counter()
    say(f"{folds}-fold cross-validation")
    cv = cross_validate(data, pairs_subsets(data, sizes=sizes, seed=seed), folds=folds, seed=seed,
                        n_components=n_components, variance=variance)
    t3 = time.perf_counter()
    timings = {"read": round(t1 - t0, 2), "fit": round(t2 - t1, 2), "cross_validation": round(t3 - t2, 2)}
    model.metadata["timing_s"] = timings
    if cv is not None:
        model.metadata["cross_validation"] = {k: v for k, v in cv.items() if k != "subjects"}
    return TrainingOutcome(data, model, cv, timings)


# --------------------------------------------------------------------------- cross-validation
def cross_validate(pairs: Pairs, subsets: dict, *, folds: int = 5, seed: int = 0, n_components: int | None = None,
                   variance: float = 0.999, sigma: float = 1.0) -> dict | None:
    """k-fold cross-validation (subjects shuffled with ``seed``): each fold's subjects are
    reconstructed from their cranium + mandible (with sex, age and BMI) by a model trained on the
    others, and compared with their own skin on the face vertex subset (correspondence distance,
    mm); the baseline is the training mean face placed on the skull. The folds' models see the
    face subset only, which keeps this cheap. None when a fold would train on fewer than 4."""
    n = len(pairs)
    k = min(int(folds), n)
    groups = np.array_split(np.random.default_rng(seed).permutation(n), k)
    if n - max(len(g) for g in groups) < 4:
        return None
    cidx, midx, fidx = subsets["cranium"], subsets["mandible"], subsets["face"]
    crs, mds = pairs.craniums[:, cidx], pairs.mandibles[:, midx]
    face_pts = pairs.skins[:, fidx].astype(np.float64)
    rows = []
    for g, test in enumerate(groups):
        train = np.setdiff1d(np.arange(n), test)
        m = fit_shape_model(crs[train], mds[train], face_pts[train], pairs.covariates[train],
                            cranium_idx=cidx, mandible_idx=midx, face_idx=np.arange(len(fidx)),
                            skin_faces=np.zeros((0, 3), np.int64), n_cranium=pairs.craniums.shape[1],
                            n_mandible=pairs.mandibles.shape[1], n_components=n_components, variance=variance)
        for i in test:
            s = pairs.subjects[i]
            post = m.condition(pairs.craniums[i], pairs.mandibles[i], sigma=sigma, sex=s["sex"], age=s["age"],
                               bmi=s["bmi"])
            err = float(np.linalg.norm(post.mean - face_pts[i], axis=1).mean())
            base = float(np.linalg.norm(m.baseline_face(pairs.craniums[i]) - face_pts[i], axis=1).mean())
            rows.append({"id": pairs.ids[i], "fold": g, "model_mean_mm": round(err, 3),
                         "baseline_mean_mm": round(base, 3)})
    rows.sort(key=lambda r: pairs.ids.index(r["id"]))
    return {"folds": k, "face_vertices": len(fidx), "sigma_mm": sigma,
            "model_mean_mm": float(np.mean([r["model_mean_mm"] for r in rows])),
            "baseline_mean_mm": float(np.mean([r["baseline_mean_mm"] for r in rows])), "subjects": rows}


# ----------------------------------------------------------------------- phantom pairs folder
def write_phantom_pairs(folder, n: int = 8, seed: int = 0, *, template: bool = True) -> Path:
    """Write ``n`` unaffected phantom subjects (cohort ``seed``) in the pairs layout: one folder
    per subject (cranium.ply, mandible.ply, skin.ply, subject.json marked synthetic) and, with
    ``template``, ``template/`` (the phantom's mean female head and its landmarks). A worked
    example of the layout, and test data for ``forensic train``; NOT real anatomy."""
    from medface import phantom
    from medface.data import Landmarks
    from medface.io import write_landmarks, write_mesh

    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    if template:
        head = template_head()
        (root / TEMPLATE_FOLDER).mkdir(exist_ok=True)
        for part in MESH_FILES:
            write_mesh(getattr(head, part), root / TEMPLATE_FOLDER / f"{part}.ply")
        write_landmarks(Landmarks.from_dict(head.landmarks), root / TEMPLATE_FOLDER / TEMPLATE_LANDMARKS)
    for member in phantom.cohort(n, seed=seed):
        s, head = member.subject, member.head
        sub = root / s.subject_id
        sub.mkdir(exist_ok=True)
        for part in MESH_FILES:
            write_mesh(getattr(head, part), sub / f"{part}.ply")
        info = {"sex": s.sex, "age": round(float(s.age), 1), "bmi": round(float(s.bmi), 2), "synthetic": True,
                "source": f"medface phantom cohort(seed={seed}), subject {member.index}"}
        (sub / SUBJECT_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        member.__dict__.pop("head", None)
    return root
