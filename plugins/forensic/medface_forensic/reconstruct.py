"""`forensic reconstruct`: the command over :class:`.reconstruction.Reconstruction`.

It binds the parameters, runs the logic and turns its :class:`~.reconstruction.ReconstructionResult`
into a Result: summary, metrics, the landmark table, the fit check, warnings, and the declared
outputs, which the runner writes: face.ply, variant_NN.ply, tissue_depth_face.ply (skull.ply for
a CT), each with a VTK XML PolyData twin (.vtp) whose point arrays VTK, ParaView and 3D Slicer
read, face_landmarks.mrk.json and the pictures. Pictures are drawn in millimetres in the
skull's Frankfurt frame, whatever the file's pose and units. In casework (run purpose
``casework``) a reconstruction whose fit check found problems is refused (exit code 8) and no
face is written. The logic, the default model and the constants live in :mod:`.reconstruction`
and :mod:`.model_cache`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medface.data import Result
from medface.data.outputs import Figure
from medface.anatomy.ct_segmentation import DEFAULT_BONE_HU
from medface.errors import ParameterError

from .model_cache import DEFAULT_SEED, DEFAULT_SUBJECTS, default_model  # noqa: F401  (scripts import them here)
from .reconstruction import SEXES, SYNTHETIC_SD_FLOOR_MM, UNOBSERVED_SIGMA_MM, sex_code, thickness  # noqa: F401

#: the arrays of a shape model hashed when it exists in memory only (:func:`_record_models`)
MODEL_ARRAYS = ("mean", "W", "cranium_idx", "mandible_idx", "face_idx", "cov_center", "cov_std", "skin_mean", "skin_W",
                "skin_resid_var", "skin_faces", "eigenvalues", "sd_scale", "sd_scale_no_mandible")

LIMITS = ["The bone does not determine the eyes, the lips' fullness, the nose tip's detail, ears, hair, skin colour, "
          "expression or weight history; the uncertainty map shows where the model itself is unsure, not these.",
          "A reconstruction is an investigative aid for recognition, never an identification."]


def _check_input(skull, ct, sex: str, scale: float) -> None:
    sex_code(sex)
    if skull is None and ct is None:
        raise ParameterError("no skull given: give a skull surface mesh (skull, --skull) or a head CT (ct, --ct)")
    if skull is not None and ct is not None:
        raise ParameterError("both a skull mesh (skull) and a CT (ct) were given: give exactly one of them")
    if ct is not None and scale != 1.0:
        raise ParameterError(f"a CT is in millimetres already: leave scale at 1 with ct, got {scale:g}",
                             parameter="scale")


def reconstruct(skull=None, *, ct=None, sex: str = "unknown", age: float | None = None, bmi: float | None = None,
                variants: int = 8, landmarks=None, scale: float = 1.0, model=None, seed: int = 0,
                figures: bool = True, bone_hu: float | None = None, face_direction: str = "auto", context=None) -> Result:
    """CLI entry of `forensic reconstruct`. Give ``skull`` (a mesh) or ``ct`` (a head CT volume,
    mm; ``bone_hu`` and ``face_direction`` go to its segmentation)."""
    from .reconstruction import Reconstruction
    from .shape_model import load_model

    _check_input(skull, ct, sex, scale)
    logic = Reconstruction(load_model(model) if model else None, variants=variants, seed=seed)
    common = {"sex": sex, "age": age, "bmi": bmi, "landmarks": landmarks,
              "progress": context.stage if context is not None else None}
    if ct is not None:
        rec = logic.run_ct(ct, bone_hu=bone_hu, face_direction=face_direction, **common)
    else:
        rec = logic.run(skull, scale=scale, **common)
    result = Result(command="forensic.reconstruct", summary=_summary(rec, variants), metrics=_metrics(rec, bone_hu))
    result.tables["craniometric landmarks"] = _landmark_rows(rec.registration)
    result.warnings += rec.warnings
    result.limits += LIMITS
    if context is not None:
        _record_models(context, model, rec.model)
    _apply_fit_check(result, getattr(rec, "fit_check", None), _purpose(context))
    if not result.refused:
        _declare(result, rec, figures)
    result.data.update({"face": rec.face, "variants": rec.variants, "registration": rec.registration,
                        "reconstruction": rec})
    if rec.ct_skull is not None:
        result.data["ct_skull"] = rec.ct_skull
    return result


def _record_models(context, model, shape) -> None:
    """The skull-face model and the template head used, hashed into the provenance: the model's
    folder (each file's sha256 in the record's parts), or the arrays of a model that exists in
    memory only (a read-only cache)."""
    from medface.data.provenance import sha256_arrays

    from .model_cache import default_model_folder
    from .template import data_paths, template_head

    folder = Path(model) if model else default_model_folder()
    if (folder / "model.safetensors").is_file():
        context.record_model("skull-face model", folder)
    else:
        arrays = [getattr(shape, k) for k in MODEL_ARRAYS if getattr(shape, k, None) is not None]
        context.record_model("skull-face model (in memory)", folder, sha256=sha256_arrays(*arrays))
    context.record_model("template head", data_paths()[0], sha256=template_head().sha256)


def _purpose(context) -> str | None:
    options = getattr(context, "options", None)
    return getattr(options, "purpose", None)


def _apply_fit_check(result: Result, check, purpose: str | None) -> None:
    """The reconstruction's self-check (latent Mahalanobis distance, residual per skull region,
    problems found) into metrics, a table and warnings; in casework a problem refuses the result."""
    if check is None:
        return
    problems = [str(p) for p in (getattr(check, "problems", None) or [])]
    regions = _region_rows(getattr(check, "region_residuals", None)) or _listed_rows(getattr(check, "regions", None))
    by_region = {row["region"]: {k: v for k, v in row.items() if k != "region"} for row in regions}
    summary = dict(check.summary()) if callable(getattr(check, "summary", None)) else {}
    summary.update({"problems": problems, "region_residuals_mm": by_region})
    mahalanobis = getattr(check, "mahalanobis", None)
    if mahalanobis is not None:
        summary["mahalanobis"] = float(mahalanobis)
    result.metrics["fit_check"] = summary
    if regions:
        result.tables["fit check: residual per skull region"] = regions
    result.warnings += [p for p in problems if p not in result.warnings]
    if problems and purpose == "casework":
        result.refuse("the fit check failed, so no face is given for casework: " + "; ".join(problems))


def _region_rows(residuals) -> list[dict]:
    """Table rows from ``{region: value or {statistic: value}}`` (mm)."""
    rows = []
    for region, value in dict(residuals or {}).items():
        if isinstance(value, dict):
            rows.append({"region": str(region), **{f"{k}_mm" if not str(k).endswith("_mm") else str(k): _number(v)
                                                   for k, v in value.items()}})
        else:
            rows.append({"region": str(region), "residual_mm": _number(value)})
    return rows


def _listed_rows(rows) -> list[dict]:
    """Table rows from a list of ``{"region": name, statistic: value, ...}`` rows."""
    return [{"region": str(row.get("region", i)), **{k: _number(v) for k, v in row.items() if k != "region"}}
            for i, row in enumerate(rows or []) if isinstance(row, dict)]


def _number(value):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    try:
        return round(float(value), 3)
    except (TypeError, ValueError):
        return value


def _summary(rec, variants: int) -> dict:
    reg, sd = rec.registration, rec.sd_mm
    summary = {"mandible": "present" if reg.mandible_present else "missing (lower face less certain)",
               "registration_residual_mm": round(float(reg.residual_mm.get("final_median", np.nan)), 2),
               "median_sd_mm": round(float(np.median(sd)), 2), "max_sd_mm": round(float(sd.max()), 2),
               "variants": int(variants), "model": rec.model.metadata.get("training_data", "")[:80]}
    for name, source in getattr(rec, "covariate_sources", {}).items():
        summary[f"{name}_used"] = source
    if getattr(rec, "demography", None) is not None:
        d = rec.demography
        summary["skull_sex_estimate"] = f"{d.sex} (P(male) = {d.p_male:.2f})" if d.sex_informative else "uninformative"
        summary["skull_age_estimate"] = d.age_label if d.age_informative else "uninformative (whole adult range)"
    if rec.ct_skull is not None:
        summary = {"input": "CT (bone segmented)", **rec.ct_skull.summary(), **summary}
    return summary


def _metrics(rec, bone_hu: float | None) -> dict:
    reg, sd = rec.registration, rec.sd_mm
    metrics = {"registration": {"scale": reg.scale, "residual_mm": reg.residual_mm, "timings_s": reg.timings_s},
               "sd_mm": {"median": float(np.median(sd)), "p95": float(np.percentile(sd, 95)),
                         "model_median": float(np.median(rec.model_sd_mm)), "synthetic_floor": rec.synthetic_floor_mm},
               "tissue_thickness_mm": {"median": float(np.median(rec.thickness_mm[rec.face_region]))}}
    if rec.ct_skull is not None:
        seg = rec.ct_skull.segmentation
        metrics["ct_segmentation"] = {"calibration": seg.calibration.to_dict(), "orientation": seg.orientation.to_dict(),
                                      "volumes_ml": seg.volumes_ml, "mandible_method": seg.mandible_method,
                                      "bone_hu": float(DEFAULT_BONE_HU if bone_hu is None else bone_hu), "cut_ends": rec.ct_skull.cut_ends,
                                      "timings_s": seg.timings_s}
        if reg.observed is not None:
            metrics["registration"]["cranium_inside_scan"] = float(reg.observed[: reg.n_cranium].mean())
    if getattr(rec, "demography", None) is not None:
        metrics["demography"] = rec.demography.to_dict()
    if rec.baseline_gap_mm is not None:
        gap = rec.baseline_gap_mm
        metrics["tissue_depth_baseline"] = {"median_distance_to_model_mm": float(np.median(gap)),
                                            "p95_distance_to_model_mm": float(np.percentile(gap, 95))}
    return metrics


def _landmark_rows(reg) -> list[dict]:
    return [{"id": k, "source": reg.landmark_source.get(k, "transferred"),
             "uncertainty_mm": round(float(reg.uncertainty_mm.get(k, np.nan)), 2)} for k in sorted(reg.uncertainty_mm)]


def _declare(result: Result, rec, figures: bool) -> None:
    """The files of a reconstruction, in the order they are listed: each mesh as PLY and as VTP
    (the same vertices and point arrays, for VTK, ParaView and 3D Slicer)."""
    if rec.ct_skull is not None:  # the bone from a CT, in the CT's frame
        _declare_mesh(result, "skull", "skull", rec.skull.mesh)
    _declare_mesh(result, "face", "face", rec.face)
    for i, mesh in enumerate(rec.variant_meshes()):
        _declare_mesh(result, f"variant {i:02d}", f"variant_{i:02d}", mesh)
    result.declare("soft-tissue landmarks", "face_landmarks.mrk.json", rec.soft_tissue_landmarks)
    if figures:
        picture = picture_frame(rec)
        result.declare("reconstruction", "reconstruction.png", _overview_figure(rec, picture), face=True)
        if len(rec.variants):
            n = len(rec.variants[:8])
            result.declare("variants", "variants.png", Figure(lambda: _variant_scenes(rec, picture), views="frontal",
                                                              shape=(2, (n + 1) // 2), size=(240, 240)), face=True)
    if rec.baseline is not None:
        _declare_mesh(result, "tissue-depth baseline", "tissue_depth_face", baseline_with_values(rec))


def _declare_mesh(result: Result, name: str, stem: str, mesh) -> None:
    result.declare(name, f"{stem}.ply", mesh)
    result.declare(f"{name} (VTK)", f"{stem}.vtp", mesh)


def baseline_with_values(rec):
    """The tissue-depth face with point arrays like the model's face: its tissue thickness over
    the skull and its distance from the model's face (mm)."""
    from medface.data import SurfaceMesh

    base = rec.baseline
    base_mm = np.asarray(base.vertices, float) * rec.scale
    point_data = dict(base.point_data)
    point_data["tissue_thickness_mm"] = thickness(base_mm, rec.skull.mesh.vertices).astype(np.float32)
    if rec.baseline_gap_mm is not None:
        point_data["distance_to_model_mm"] = np.asarray(rec.baseline_gap_mm, np.float32)
    return SurfaceMesh(base.vertices, base.faces, point_data=point_data, name=base.name)


def picture_frame(rec):
    """A function taking points in mm of the input skull's frame to the pictures' frame: the
    skull's Frankfurt frame (:func:`medface.anatomy.head_frame` of the registered landmarks:
    mid-sagittal plane, porion-orbitale horizontal, origin between the porions), so a skull in
    any pose or stored frame is drawn upright. A CT's bone is first turned by its display
    orientation; without porion and orbitale the pictures keep that frame."""
    from medface.anatomy import head_frame
    from medface.errors import InputError

    marks = {k: rec.display(np.asarray(v, float)[None])[0] for k, v in rec.registration.landmarks.to_dict().items()}
    if rec.ct_skull is not None and np.linalg.det(rec.ct_skull.display) < 0:
        marks = _swap_sides(marks)  # a mirroring display: the landmarks' sides are the mirror's
    try:
        frame = head_frame(marks)
    except InputError:
        return rec.display
    return lambda points: frame.to_frame(rec.display(np.asarray(points, float)))


def _swap_sides(marks: dict) -> dict:
    swapped = {}
    for k, v in marks.items():
        side = {"_l": "_r", "_r": "_l"}.get(k[-2:])
        swapped[k[:-2] + side if side else k] = v
    return swapped


def _overview_figure(rec, picture) -> Figure:
    """Skull, face over skull, most likely face, uncertainty, all in mm in the Frankfurt frame."""
    def scenes():
        from medface.data import SurfaceMesh
        from medface.viz import Scene

        mesh, face = rec.skull.mesh, rec.face  # the skull in mm, the face in the input's units
        bone = SurfaceMesh(picture(mesh.vertices), mesh.faces)
        shown = SurfaceMesh(picture(face.vertices * rec.scale), face.faces, point_data=face.point_data, name=face.name)
        return [Scene().add_mesh(bone, color="bone"), Scene().add_mesh(bone, color="bone").add_mesh(shown, opacity=0.45),
                Scene().add_mesh(shown), Scene().add_mesh(shown, scalars="sd_mm", cmap="magma", scalar_bar_title="SD mm")]

    return Figure(scenes, views="three_quarter_left", size=(360, 360),
                  titles=["skull", "face over skull", "most likely face", "uncertainty (SD)"])


def _variant_scenes(rec, picture) -> list:
    from medface.data import SurfaceMesh
    from medface.viz import Scene

    return [Scene().add_mesh(SurfaceMesh(picture(v * rec.scale), rec.face.faces)) for v in rec.variants[:8]]
