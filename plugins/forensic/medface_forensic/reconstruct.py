"""`forensic reconstruct`: the command over :class:`.reconstruction.Reconstruction`.

It binds the parameters, runs the logic and turns its :class:`~.reconstruction.ReconstructionResult`
into a Result: summary, metrics, the landmark table, warnings, and the declared outputs
(face.ply, variant_NN.ply, face_landmarks.mrk.json, tissue_depth_face.ply, skull.ply for a CT,
the pictures), which the runner writes. The logic, the default model and the constants live in
:mod:`.reconstruction` and :mod:`.model_cache`.
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
        _record_models(context, model)
    _declare(result, rec, figures)
    result.data.update({"face": rec.face, "variants": rec.variants, "registration": rec.registration,
                        "reconstruction": rec})
    if rec.ct_skull is not None:
        result.data["ct_skull"] = rec.ct_skull
    return result


def _record_models(context, model) -> None:
    """The skull-face model and the template head used, hashed into the provenance."""
    from .model_cache import default_model_folder
    from .template import data_paths, template_head

    folder = Path(model) if model else default_model_folder()
    if folder.is_dir():  # not there only when a read-only cache kept the trained model in memory
        context.record_model("skull-face model", folder)
    context.record_model("template head", data_paths()[0], sha256=template_head().sha256)


def _summary(rec, variants: int) -> dict:
    reg, sd = rec.registration, rec.sd_mm
    summary = {"mandible": "present" if reg.mandible_present else "missing (lower face less certain)",
               "registration_residual_mm": round(float(reg.residual_mm.get("final_median", np.nan)), 2),
               "median_sd_mm": round(float(np.median(sd)), 2), "max_sd_mm": round(float(sd.max()), 2),
               "variants": int(variants), "model": rec.model.metadata.get("training_data", "")[:80]}
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
    if rec.baseline_gap_mm is not None:
        gap = rec.baseline_gap_mm
        metrics["tissue_depth_baseline"] = {"median_distance_to_model_mm": float(np.median(gap)),
                                            "p95_distance_to_model_mm": float(np.percentile(gap, 95))}
    return metrics


def _landmark_rows(reg) -> list[dict]:
    return [{"id": k, "source": reg.landmark_source.get(k, "transferred"),
             "uncertainty_mm": round(float(reg.uncertainty_mm.get(k, np.nan)), 2)} for k in sorted(reg.uncertainty_mm)]


def _declare(result: Result, rec, figures: bool) -> None:
    """The files of a reconstruction, in the order they are listed."""
    from .files import VariantFiles

    if rec.ct_skull is not None:  # the bone from a CT, in the CT's frame
        result.declare("skull", "skull.ply", rec.skull.mesh)
    result.declare("face", "face.ply", rec.face)
    if len(rec.variants):
        result.declare("variants", "variant_NN.ply", VariantFiles(rec.variant_meshes()), kind="saveable")
    result.declare("soft-tissue landmarks", "face_landmarks.mrk.json", rec.soft_tissue_landmarks)
    if figures:
        result.declare("reconstruction", "reconstruction.png", _overview_figure(rec), face=True)
        if len(rec.variants):
            n = len(rec.variants[:8])
            result.declare("variants", "variants.png", Figure(lambda: _variant_scenes(rec), views="frontal",
                                                              shape=(2, (n + 1) // 2), size=(240, 240)), face=True)
    if rec.baseline is not None:
        result.declare("tissue-depth baseline", "tissue_depth_face.ply", rec.baseline)


def _overview_figure(rec) -> Figure:
    """Skull, face over skull, most likely face, uncertainty (upright for a CT without orientation)."""
    def scenes():
        from medface.data import SurfaceMesh
        from medface.viz import Scene

        mesh, face = rec.skull.mesh, rec.face
        bone = SurfaceMesh(rec.display(mesh.vertices), mesh.faces)
        shown = SurfaceMesh(rec.display(face.vertices), face.faces, point_data=face.point_data, name=face.name)
        return [Scene().add_mesh(bone, color="bone"), Scene().add_mesh(bone, color="bone").add_mesh(shown, opacity=0.45),
                Scene().add_mesh(shown), Scene().add_mesh(shown, scalars="sd_mm", cmap="magma", scalar_bar_title="SD mm")]

    return Figure(scenes, views="three_quarter_left", size=(360, 360),
                  titles=["skull", "face over skull", "most likely face", "uncertainty (SD)"])


def _variant_scenes(rec) -> list:
    from medface.data import SurfaceMesh
    from medface.viz import Scene

    return [Scene().add_mesh(SurfaceMesh(rec.display(v), rec.face.faces)) for v in rec.variants[:8]]
