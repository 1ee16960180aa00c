"""Training the skull-to-face shape model: from the synthetic phantom, or from a lab's own pairs.

``train_phantom_model`` draws unaffected subjects from :func:`medface.phantom.cohort` (sex, age
and BMI sampled by the phantom) whose skull and skin come in dense correspondence with the
phantom template. ``train_from_pairs`` reads pairs that a lab has already brought into
correspondence (layout below). Bringing real CT surfaces into correspondence with the template
(non-rigid registration) is OUT OF SCOPE of this version.

Layout for ``train_from_pairs(pairs_dir)``::

    pairs_dir/
      <subject id>/
        cranium.ply     skull without mandible, same vertex count and order as the template
                        cranium (``skull.ply`` is accepted as a synonym)
        mandible.ply    the mandible, same topology as the template mandible
        skin.ply        the skin, same topology as the template skin
        subject.json    {"sex": "F" | "M", "age": years, "bmi": kg/m^2}

All meshes in mm in one patient frame (LPS). A folder ``template/`` (or the first subject)
fixes the vertex subsets and the output faces.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from medface.errors import InputError

from .shape_model import SEX_CODES, ShapeModel, fit_shape_model, save_model

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
                    **fit_kw) -> ShapeModel:
    """Fit from full-resolution training arrays (n, N, 3) in correspondence; ``template`` is a
    (cranium, mandible, skin SurfaceMesh) triple defining the subsets and output faces."""
    t_cr, t_md, t_sk = template
    subsets = choose_subsets(t_cr.vertices, t_md.vertices, t_sk.vertices, landmarks, sizes=sizes, seed=seed)
    meta = fit_kw.pop("metadata", {})
    meta["vertex_subset_seed"] = int(seed)
    return fit_shape_model(np.asarray(craniums)[:, subsets["cranium"]], np.asarray(mandibles)[:, subsets["mandible"]],
                           skins, np.asarray(covariates, np.float64),
                           cranium_idx=subsets["cranium"], mandible_idx=subsets["mandible"], face_idx=subsets["face"],
                           skin_faces=t_sk.faces, n_cranium=len(t_cr.vertices), n_mandible=len(t_md.vertices),
                           metadata=meta, **fit_kw)


def phantom_training_set(n: int, seed: int):
    """Arrays (craniums, mandibles, skins float32, covariates, subject dicts) of ``n`` unaffected
    phantom subjects of cohort ``seed``."""
    from medface import phantom

    cr = mdb = sk = None
    covs, subjects = np.zeros((n, 3)), []
    for i, member in enumerate(phantom.cohort(n, seed=seed)):
        head = member.head
        if cr is None:
            cr = np.empty((n, *head.cranium.vertices.shape), np.float32)
            mdb = np.empty((n, *head.mandible.vertices.shape), np.float32)
            sk = np.empty((n, *head.skin.vertices.shape), np.float32)
        cr[i], mdb[i], sk[i] = head.cranium.vertices, head.mandible.vertices, head.skin.vertices
        s = member.subject
        covs[i] = (SEX_CODES[s.sex], s.age, s.bmi)
        subjects.append({"id": s.subject_id, "sex": s.sex, "age": float(s.age), "bmi": float(s.bmi)})
        member.__dict__.pop("head", None)  # free the meshes
    return cr, mdb, sk, covs, subjects


def template_head():
    """The phantom's mean female head (template topology and landmarks)."""
    from medface import phantom

    return phantom.make_head(phantom.mean_subject("F"))


def train_phantom_model(n: int = 200, seed: int = 0, out=None, *, sizes=None, **fit_kw) -> ShapeModel:
    """Train on ``n`` synthetic phantom subjects (cohort ``seed``); save to ``out`` if given."""
    t0 = time.perf_counter()
    cr, md, sk, covs, _ = phantom_training_set(n, seed)
    t1 = time.perf_counter()
    tmpl = template_head()
    meta = {"training_data": f"synthetic: medface phantom cohort(n={n}, seed={seed}), unaffected subjects, "
                             "sex/age/BMI sampled by the phantom; NOT real anatomy",
            "training_seed": int(seed)}
    model = fit_from_arrays(cr, md, sk, covs, template=(tmpl.cranium, tmpl.mandible, tmpl.skin),
                            landmarks=tmpl.landmarks, sizes=sizes, metadata=meta, **fit_kw)
    model.metadata["timing_s"] = {"generate": round(t1 - t0, 2), "fit": round(time.perf_counter() - t1, 2)}
    if out is not None:
        save_model(model, out)
    return model


def read_pairs(pairs_dir):
    """Read a pairs folder (see the module docstring) into training arrays."""
    from medface.io.meshes import read_mesh

    root = Path(pairs_dir)
    if not root.is_dir():
        raise InputError("pairs folder does not exist", path=root)
    folders = sorted(p for p in root.iterdir() if p.is_dir() and p.name != "template")
    if len(folders) < 3:
        raise InputError(f"need at least 3 subject folders, found {len(folders)}", path=root)
    cr, md, sk, covs = [], [], [], []
    for f in folders:
        skull = f / "cranium.ply" if (f / "cranium.ply").is_file() else f / "skull.ply"
        for p in (skull, f / "mandible.ply", f / "skin.ply", f / "subject.json"):
            if not p.is_file():
                raise InputError(f"missing {p.name}", path=f, hint="see medface_forensic.train for the layout")
        meshes = [read_mesh(skull), read_mesh(f / "mandible.ply"), read_mesh(f / "skin.ply")]
        info = json.loads((f / "subject.json").read_text(encoding="utf-8"))
        try:
            cov = (SEX_CODES[str(info["sex"]).upper()], float(info["age"]), float(info["bmi"]))
        except (KeyError, ValueError) as exc:
            raise InputError(f"subject.json needs sex (F/M), age and bmi: {exc}", path=f / "subject.json") from None
        for lst, m in zip((cr, md, sk), meshes):
            if lst and len(m.vertices) != len(lst[0][0]):
                raise InputError(f"{len(m.vertices)} vertices, but the first subject has {len(lst[0][0])}: "
                                 "meshes must be in correspondence (same topology)", path=m.source or f)
            lst.append((m.vertices, m.faces))
        covs.append(cov)
    tdir = root / "template"
    template = tuple(read_mesh(tdir / n) for n in ("cranium.ply", "mandible.ply", "skin.ply")) \
        if tdir.is_dir() else None
    return cr, md, sk, np.array(covs), template, [f.name for f in folders]


def train_from_pairs(pairs_dir, out=None, *, sizes=None, **fit_kw) -> ShapeModel:
    """Train on a lab's own skull-skin pairs, already in correspondence (see module docstring)."""
    from medface.data import SurfaceMesh

    cr, md, sk, covs, template, names = read_pairs(pairs_dir)
    if template is None:
        template = tuple(SurfaceMesh(v, f) for v, f in (cr[0], md[0], sk[0]))
    meta = {"training_data": f"pairs folder {Path(pairs_dir).name}: {len(names)} subjects (user supplied)"}
    model = fit_from_arrays(np.stack([v for v, _ in cr]), np.stack([v for v, _ in md]),
                            np.stack([v for v, _ in sk]).astype(np.float32), covs, template=template,
                            sizes=sizes, metadata=meta, **fit_kw)
    if out is not None:
        save_model(model, out)
    return model
