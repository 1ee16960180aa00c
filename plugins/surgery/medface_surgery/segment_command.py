"""`surgery segment`: bone (skull, mandible) and skin surfaces from a head CT, in LPS mm."""

from __future__ import annotations

from medface.anatomy.ct_segmentation import Segmentation, segment_ct
from medface.data import Result, Volume

from .figures import segmentation_figure

LIMITS = [
    ("Thresholds in HU: metal artefacts, thin bone (orbital floor, maxillary walls) and partial volume at "
    "coarse voxels make holes or bridges that a threshold cannot tell from anatomy."),
    ("Without an orientation in the file, left and right cannot be told from anatomy: the data are assumed "
    "not mirrored."),
    ("The mandible is split from the skull by erosion and regrowth; where the teeth or condyles touch the "
    "skull the boundary follows the narrowest bone, not the joint space."),
]


def _summary(seg: Segmentation) -> dict:
    o, c = seg.orientation, seg.calibration
    summary = {
        "meshes": ", ".join(f"{k} ({m.n_faces} faces)" for k, m in seg.meshes.items()),
        "calibration": "values in HU" if c.identity else f"hu = {c.slope:.4g} * value {c.intercept:+.4g}",
        "face_direction": f"{o.face} in index space ({'estimated' if o.estimated else 'from the file'})",
        "mandible": seg.mandible_method,
    }
    summary.update({f"{k}_volume_ml": round(v, 1) for k, v in seg.volumes_ml.items()})
    return summary


def _metrics(seg: Segmentation) -> dict:
    metrics = {f"{k}_volume_ml": v for k, v in seg.volumes_ml.items()}
    metrics.update({f"{k}_faces": m.n_faces for k, m in seg.meshes.items()})
    metrics.update({f"time_{k}_s": v for k, v in seg.timings_s.items()})
    metrics.update({"hu_slope": seg.calibration.slope, "hu_intercept": seg.calibration.intercept})
    return metrics


def _tables(seg: Segmentation) -> dict:
    return {"calibration": [seg.calibration.to_dict()], "orientation": [seg.orientation.to_dict()],
            "meshes": [{"name": k, "vertices": m.n_vertices, "faces": m.n_faces, "watertight": m.is_watertight(),
                        "area_mm2": round(m.area(), 1), "volume_ml": round(m.signed_volume() / 1000.0, 2)}
                       for k, m in seg.meshes.items()],
            "bone_components": [seg.stats]}


def segment(ct: Volume, bone_hu: float | None = None, skin_hu: float | None = None, target_faces: int = 100_000,
            face_direction: str = "auto", figures: bool = True, landmarks=None, *, context=None) -> Result:
    """Segment bone and skin, mesh them (flying edges, smoothing, decimation) in LPS mm.

    ``bone_hu`` / ``skin_hu`` left out mean 300 and -400 HU; an 8-bit export (values 0-255) is
    refused unless one of them is given (see :func:`~medface.anatomy.ct_segmentation.segment_ct`).

    Declares ``skin.ply``, ``skull.ply`` and ``mandible.ply`` (when separated) and a figure, which
    the runner writes into the output folder when there is one; the meshes are in
    ``result.data`` for Python callers.
    """
    if context is not None:
        context.stage("segmenting the CT and meshing bone and skin")
    seg = segment_ct(ct, bone_hu=bone_hu, skin_hu=skin_hu, target_faces=target_faces, face_direction=face_direction,
                     landmarks=landmarks)
    result = Result(command="surgery.segment", summary=_summary(seg), metrics=_metrics(seg), tables=_tables(seg),
                    warnings=list(seg.warnings), limits=list(LIMITS), data={**seg.meshes, "segmentation": seg})
    for name, mesh in seg.meshes.items():
        result.declare(name, f"{name}.ply", mesh)
    if figures:
        result.declare("segmentation", "segmentation.png", segmentation_figure(seg.meshes), face=True)
    return result
