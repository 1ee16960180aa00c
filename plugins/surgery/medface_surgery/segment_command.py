"""`surgery segment`: bone (skull, mandible) and skin surfaces from a head CT, in LPS mm."""

from __future__ import annotations

from pathlib import Path

from medface.data import Result, Volume

from medface.anatomy.ct_segmentation import Segmentation, segment_ct

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


def _figures(seg: Segmentation, out: Path) -> dict:
    from medface.viz import Scene, render_panels

    bone = Scene().add_mesh(seg.meshes["skull"], color="bone", name="skull")
    if "mandible" in seg.meshes:
        bone.add_mesh(seg.meshes["mandible"], color=(0.75, 0.82, 0.95), name="mandible")
    skin = Scene().add_mesh(seg.meshes["skin"], color="skin", name="skin")
    path = render_panels([skin, bone, bone], out / "segmentation.png", views=["frontal", "frontal", "left"],
                         titles=["skin", "bone (mandible blue)", "bone, left"])
    return {"segmentation": str(path)}


def segment(ct: Volume, out=None, bone_hu: float = 300.0, skin_hu: float = -400.0, target_faces: int = 100_000,
            face_direction: str = "auto", figures: bool = True) -> Result:
    """Segment bone and skin, mesh them (flying edges, smoothing, decimation) in LPS mm.

    Writes ``skin.ply``, ``skull.ply`` and ``mandible.ply`` (when separated) and a figure into
    ``out`` when given; the meshes are in ``result.data`` for Python callers.
    """
    from medface.io import write_mesh

    seg = segment_ct(ct, bone_hu=bone_hu, skin_hu=skin_hu, target_faces=target_faces, face_direction=face_direction)
    outputs, figs = {}, {}
    if out is not None:
        out = Path(out)
        for name, mesh in seg.meshes.items():
            outputs[name] = str(write_mesh(mesh, out / f"{name}.ply"))
        if figures:
            figs = _figures(seg, out)
    metrics = {f"{k}_volume_ml": v for k, v in seg.volumes_ml.items()}
    metrics.update({f"{k}_faces": m.n_faces for k, m in seg.meshes.items()})
    metrics.update({f"time_{k}_s": v for k, v in seg.timings_s.items()})
    metrics.update({"hu_slope": seg.calibration.slope, "hu_intercept": seg.calibration.intercept})
    tables = {"calibration": [seg.calibration.to_dict()], "orientation": [seg.orientation.to_dict()],
              "meshes": [{"name": k, "vertices": m.n_vertices, "faces": m.n_faces, "watertight": m.is_watertight(),
                          "area_mm2": round(m.area(), 1), "volume_ml": round(m.signed_volume() / 1000.0, 2)}
                         for k, m in seg.meshes.items()],
              "bone_components": [seg.stats]}
    return Result(command="surgery.segment", summary=_summary(seg), outputs=outputs, metrics=metrics, tables=tables,
                  figures=figs, warnings=list(seg.warnings), limits=list(LIMITS),
                  data={**seg.meshes, "segmentation": seg})
