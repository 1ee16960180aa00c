"""`forensic reconstruct`: the most likely face over a skull, variants and an uncertainty map.

Skull (mesh, any pose and units via ``scale``; or a head CT whose bone is segmented,
:mod:`.ct_input`) -> size and shape checks (:mod:`.skull_input`)
-> template registration with landmark transfer (:mod:`.register`) -> the joint skull-face
statistical model conditioned on the registered skull and on sex, age and BMI
(:mod:`.shape_model`) -> posterior mean face, per-vertex SD, sampled variants, soft-tissue
landmarks and a tissue-thickness map, all in the input skull's own frame and units.

The default model is trained on the synthetic phantom population the first time it is needed
and cached (``$MEDFACE_CACHE_DIR/forensic``); a lab's own model (``train_from_pairs``) is given
with ``model``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from medface.data import Landmarks, Result, SurfaceMesh
from medface.errors import ParameterError

DEFAULT_SUBJECTS, DEFAULT_SEED = 200, 0
# Added in quadrature to the SD of a model trained on synthetic heads only: what the phantom
# population cannot know about real people. An assumption, of the size of the errors that the
# literature reports for real reconstructions (manual ones put 54-77 % of the face within 2.5 mm;
# Hu et al. 2021 reach under 2 mm on CT), not a measured value; a model trained on a lab's own
# pairs (`forensic train`) gets none, its calibration covers it.
SYNTHETIC_SD_FLOOR_MM = 2.5
UNOBSERVED_SIGMA_MM = 1000.0  # observation noise of skull vertices outside a CT's scan: no information
SEXES = {"F": "F", "M": "M", "unknown": None, "f": "F", "m": "M"}


def _source_key() -> str:
    """A hash of the code the default model depends on (this plugin's model code and the phantom)."""
    import medface.phantom as phantom

    from . import calibration, shape_model, template, train

    h = hashlib.sha256()
    files = [Path(m.__file__) for m in (shape_model, train, calibration, template)]
    files += sorted(Path(phantom.__file__).parent.glob("*.py"))
    for f in files:
        h.update(f.read_bytes())
    return h.hexdigest()[:16]


def default_model():
    """The phantom-trained model, from the cache or trained now (about 2 minutes, once)."""
    from medface.phantom.template import cache_dir

    from .shape_model import load_model
    from .train import train_phantom_model

    folder = cache_dir() / "forensic" / f"phantom-n{DEFAULT_SUBJECTS}-s{DEFAULT_SEED}-{_source_key()}"
    if (folder / "model.json").is_file():
        return load_model(folder)
    model = train_phantom_model(DEFAULT_SUBJECTS, DEFAULT_SEED)
    tmp = folder.with_name(folder.name + f".{os.getpid()}.tmp")
    from .shape_model import save_model

    save_model(model, tmp)
    try:
        os.replace(tmp, folder)
    except OSError:  # another process finished first
        pass
    _prune_stale(folder)
    return load_model(folder) if (folder / "model.json").is_file() else model


def _baseline(shape, cranium, mandible, sex, age, bmi):
    """The classic tissue-depth face (:mod:`.baseline`) for comparison, in mm; None when the
    model's skin is not the phantom template's (the pegs are defined on that template)."""
    from .baseline import tissue_depth_face
    from .template import template_head

    if shape.n_skin != len(template_head().skin.vertices):
        return None
    return tissue_depth_face(shape, cranium, mandible, sex=sex, age=age, bmi=bmi)


def _prune_stale(folder: Path) -> None:
    """Remove default models cached by earlier versions of the code (about 26 MB each)."""
    import shutil

    prefix = folder.name.rsplit("-", 1)[0] + "-"
    for other in folder.parent.glob(prefix + "*"):
        if other != folder and other.is_dir() and not other.name.endswith(".tmp") and (other / "model.json").exists():
            shutil.rmtree(other, ignore_errors=True)


def _soft_landmarks(model, face: np.ndarray) -> dict:
    """Soft-tissue landmarks read off the reconstructed face at the template's vertices."""
    from medface.anatomy.landmarks import soft_tissue_ids

    from .template import template_head

    tmpl = template_head()
    out = {}
    known = set(soft_tissue_ids())
    for lid, p in tmpl.landmarks.items():
        if lid in known:
            k = int(np.argmin(np.linalg.norm(tmpl.skin.vertices - np.asarray(p), axis=1)))
            out[lid] = face[k]
    return out


def thickness(face: np.ndarray, bone_vertices: np.ndarray) -> np.ndarray:
    """Distance (mm) from each face vertex to the nearest bone vertex: the tissue-thickness map."""
    from scipy.spatial import cKDTree

    return cKDTree(bone_vertices).query(face)[0]


def reconstruct(skull: SurfaceMesh | None = None, out=None, sex: str = "unknown", age: float | None = None,
                bmi: float | None = None, variants: int = 8, landmarks: Landmarks | None = None,
                scale: float = 1.0, model=None, seed: int = 0, figures: bool = True, ct=None,
                bone_hu: float = 300.0, face_direction: str = "auto") -> Result:
    """CLI entry of `forensic reconstruct` (see the module docstring). Give ``skull`` (a mesh)
    or ``ct`` (a head CT volume, mm; ``bone_hu`` and ``face_direction`` go to its segmentation)."""
    from .register import register_skull
    from .shape_model import load_model
    from .skull_input import load_skull

    if sex not in SEXES:
        raise ParameterError(f"sex must be F, M or unknown, got {sex!r}", parameter="sex")
    if skull is None and ct is None:
        raise ParameterError("no skull given: give a skull surface mesh (skull, --skull) or a head CT (ct, --ct)")
    if skull is not None and ct is not None:
        raise ParameterError("both a skull mesh (skull) and a CT (ct) were given: give exactly one of them")
    ct_skull = None
    if ct is not None:
        from .ct_input import skull_from_ct

        if scale != 1.0:
            raise ParameterError(f"a CT is in millimetres already: leave scale at 1 with ct, got {scale:g}",
                                 parameter="scale")
        ct_skull = skull_from_ct(ct, bone_hu=bone_hu, face_direction=face_direction)
    skull_in = ct_skull.skull_input() if ct_skull else load_skull(skull, scale=scale)
    user = None
    if landmarks is not None:
        user = {k: np.asarray(v, float) * float(scale) for k, v in landmarks.to_dict().items()}
    reg = register_skull(skull_in, landmarks=user, field_of_view=ct_skull.field_of_view if ct_skull else None)
    shape = load_model(model) if model else default_model()
    cranium = reg.vertices[: reg.n_cranium]
    mandible = reg.vertices[reg.n_cranium:] if reg.mandible_present else None
    sigma, mandible_sigma = 1.0, None
    if reg.observed is not None and not reg.observed.all():  # a CT that cuts the skull: no data beyond it
        sigma = np.where(reg.observed[: reg.n_cranium], 1.0, UNOBSERVED_SIGMA_MM)
        mandible_sigma = np.where(reg.observed[reg.n_cranium:], 1.0, UNOBSERVED_SIGMA_MM)
    post = shape.condition(cranium, mandible, sigma=sigma, mandible_sigma=mandible_sigma, sex=SEXES[sex], age=age,
                           bmi=bmi)
    face_mm = post.mean
    model_sd = post.sd()
    synthetic = "synthetic" in shape.metadata.get("training_data", "")
    floor = SYNTHETIC_SD_FLOOR_MM if synthetic else 0.0
    sd = np.sqrt(model_sd ** 2 + floor ** 2)
    samples = post.sample(int(variants), seed) if variants else np.zeros((0,) + face_mm.shape, np.float32)
    unit = 1.0 / float(scale)  # back to the input's own units
    face = face_mm * unit
    thick = thickness(face_mm, skull_in.mesh.vertices)
    soft = {k: v * unit for k, v in _soft_landmarks(shape, face_mm).items()}
    baseline = _baseline(shape, cranium, mandible, SEXES[sex], age, bmi)

    result = Result(command="forensic.reconstruct")
    face_region = sd < np.percentile(sd, 95)
    result.summary = {"mandible": "present" if reg.mandible_present else "missing (lower face less certain)",
                      "registration_residual_mm": round(float(reg.residual_mm.get("final_median", np.nan)), 2),
                      "median_sd_mm": round(float(np.median(sd)), 2),
                      "max_sd_mm": round(float(sd.max()), 2), "variants": int(variants),
                      "model": shape.metadata.get("training_data", "")[:80]}
    result.metrics = {"registration": {"scale": reg.scale, "residual_mm": reg.residual_mm,
                                       "timings_s": reg.timings_s},
                      "sd_mm": {"median": float(np.median(sd)), "p95": float(np.percentile(sd, 95)),
                                "model_median": float(np.median(model_sd)), "synthetic_floor": floor},
                      "tissue_thickness_mm": {"median": float(np.median(thick[face_region]))}}
    result.tables["craniometric landmarks"] = [
        {"id": k, "source": reg.landmark_source.get(k, "transferred"),
         "uncertainty_mm": round(float(reg.uncertainty_mm.get(k, np.nan)), 2)} for k in sorted(reg.uncertainty_mm)]
    if ct_skull is not None:
        seg = ct_skull.segmentation
        result.summary = {"input": "CT (bone segmented)", **ct_skull.summary(), **result.summary}
        result.metrics["ct_segmentation"] = {"calibration": seg.calibration.to_dict(),
                                             "orientation": seg.orientation.to_dict(), "volumes_ml": seg.volumes_ml,
                                             "mandible_method": seg.mandible_method, "bone_hu": float(bone_hu),
                                             "cut_ends": ct_skull.cut_ends, "timings_s": seg.timings_s}
        if reg.observed is not None:
            result.metrics["registration"]["cranium_inside_scan"] = float(reg.observed[: reg.n_cranium].mean())
        result.warnings += list(ct_skull.warnings)
    result.warnings += list(reg.warnings)  # they begin with the skull input's
    if synthetic:
        result.warnings.append("The face model was trained on synthetic phantom heads only: the reconstruction "
                               "shows what the phantom population predicts, not a validated likeness. Its SD map "
                               f"(sd_mm) adds an assumed {floor:g} mm for what the phantom cannot know about real "
                               "people to the model's own SD (model_sd_mm); the variants show the model's spread "
                               "only.")
    result.limits += ["The bone does not determine the eyes, the lips' fullness, the nose tip's detail, ears, hair, "
                      "skin colour, expression or weight history; the uncertainty map shows where the model "
                      "itself is unsure, not these.",
                      "A reconstruction is an investigative aid for recognition, never an identification."]
    if out is not None:
        display = ct_skull.to_display if ct_skull is not None else None
        _write(Path(out), result, face, sd, thick, samples * unit, soft, skull_in, shape, figures, display, model_sd)
        if baseline is not None:
            from medface.io import write_mesh

            write_mesh(SurfaceMesh(baseline * unit, shape.skin_faces, name="tissue-depth baseline face"),
                       Path(out) / "tissue_depth_face.ply")
            result.outputs["tissue-depth baseline"] = str(Path(out) / "tissue_depth_face.ply")
    if baseline is not None:
        gap = np.linalg.norm(baseline - face_mm, axis=1)
        result.metrics["tissue_depth_baseline"] = {"median_distance_to_model_mm": float(np.median(gap)),
                                                   "p95_distance_to_model_mm": float(np.percentile(gap, 95))}
    result.data.update({"face": SurfaceMesh(face, shape.skin_faces,
                                            point_data={"sd_mm": sd, "model_sd_mm": model_sd}),
                        "variants": samples * unit, "registration": reg})
    if ct_skull is not None:
        result.data["ct_skull"] = ct_skull
    return result


def _write(out: Path, result: Result, face, sd, thick, samples, soft, skull_in, shape, figures: bool,
           display=None, model_sd=None) -> None:
    """Meshes, landmarks and pictures; ``display`` maps points to an upright frame for the
    pictures only (a CT whose file stores no orientation)."""
    from medface.io import write_landmarks, write_mesh

    out.mkdir(parents=True, exist_ok=True)
    if display is not None:  # the bone from a CT, in the CT's frame
        write_mesh(skull_in.mesh, out / "skull.ply")
        result.outputs["skull"] = str(out / "skull.ply")
    point_data = {"sd_mm": sd.astype(np.float32), "tissue_thickness_mm": thick.astype(np.float32)}
    if model_sd is not None:
        point_data["model_sd_mm"] = np.asarray(model_sd, np.float32)
    mesh = SurfaceMesh(face, shape.skin_faces, point_data=point_data, name="reconstructed face")
    write_mesh(mesh, out / "face.ply")
    result.outputs["face"] = str(out / "face.ply")
    for i, v in enumerate(samples):  # with the SD as point data, like face.ply (vertex i is vertex i in all)
        write_mesh(SurfaceMesh(v, shape.skin_faces, point_data={"sd_mm": sd.astype(np.float32)}),
                   out / f"variant_{i:02d}.ply")
    if len(samples):
        result.outputs["variants"] = f"{len(samples)} files variant_NN.ply"
    write_landmarks(Landmarks.from_dict(soft), out / "face_landmarks.mrk.json")
    result.outputs["soft-tissue landmarks"] = str(out / "face_landmarks.mrk.json")
    if figures:
        from medface.viz import Scene, render_panels

        show = display or (lambda v: v)
        bone = SurfaceMesh(show(skull_in.mesh.vertices), skull_in.mesh.faces)
        mesh = SurfaceMesh(show(mesh.vertices), mesh.faces, point_data=mesh.point_data, name=mesh.name)
        samples = [show(v) for v in samples]
        skull_scene = Scene().add_mesh(bone, color="bone")
        over = Scene().add_mesh(bone, color="bone").add_mesh(mesh, opacity=0.45)
        unc = Scene().add_mesh(mesh, scalars="sd_mm", cmap="magma", scalar_bar_title="SD mm")
        path = out / "reconstruction.png"
        render_panels([skull_scene, over, Scene().add_mesh(mesh), unc], path, views="three_quarter_left",
                      titles=["skull", "face over skull", "most likely face", "uncertainty (SD)"], size=(360, 360))
        result.figures["reconstruction"] = str(path)
        if len(samples):
            grid = [Scene().add_mesh(SurfaceMesh(v, shape.skin_faces)) for v in samples[:8]]
            path = out / "variants.png"
            render_panels(grid, path, views="frontal", shape=(2, (len(grid) + 1) // 2), size=(240, 240))
            result.figures["variants"] = str(path)
