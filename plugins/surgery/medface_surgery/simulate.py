"""`surgery simulate`: a plan applied to bone and skin surfaces, with the predicted face.

Surfaces come from a CT (segmented by :mod:`.segment`) or are given as meshes. The plan's
osteotomies cut the bones (:mod:`.cutting`), its moves carry the segments (:mod:`.plan`), and the
skin is predicted by the linear-elastic finite-element model (:mod:`.fem`) and, for comparison,
by the fast rigid-blend preview (:mod:`.preview`). Landmarks move with their segments and the
cephalometric measures are tabulated before and after (:mod:`medface.anatomy.cephalometry`).
Every output is a pure function of the inputs and the plan.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from medface.data import Result, SurfaceMesh, Volume
from medface.errors import InputError

from .plan import apply_plan, check_plan, transform_points

#: the plan's bone names for the surfaces of a segmentation
BONE_NAMES = {"skull": "cranium", "mandible": "mandible"}
TISSUE_MODELS = ("fem", "preview")


def _surfaces(ct: Volume | None, bone: SurfaceMesh | None, mandible: SurfaceMesh | None,
              skin: SurfaceMesh | None) -> tuple[dict[str, SurfaceMesh], SurfaceMesh, list[str]]:
    """Bones by plan name, the skin, and notes on where they came from."""
    notes = []
    if ct is not None:
        if any(m is not None for m in (bone, mandible, skin)):
            raise InputError("give either a CT or bone and skin meshes, not both")
        from medface.anatomy.ct_segmentation import segment_ct

        seg = segment_ct(ct)
        notes += seg.warnings
        if "mandible" not in seg.meshes:
            notes.append("the mandible could not be split from the skull: plans that cut or move it cannot run")
        bones = {BONE_NAMES[k]: m for k, m in seg.meshes.items() if k in BONE_NAMES}
        return bones, seg.meshes["skin"], notes
    if bone is None or skin is None:
        raise InputError("simulate needs a CT, or at least a bone and a skin mesh",
                         hint="medface surgery simulate --ct CT --plan plan.json, or --bone B [--mandible M] --skin S")
    bones = {"cranium": bone}
    if mandible is not None:
        bones["mandible"] = mandible
    return bones, skin, notes


def tissue_segments(bones: dict[str, SurfaceMesh], planned) -> tuple[dict[str, SurfaceMesh], list[str]]:
    """Every bone piece before the moves (moving segments in their original place, uncut bones
    and remainders as fixed pieces) and the names of the fixed ones."""
    pieces, fixed = {}, []
    for name, moved in planned.segments.items():
        back = np.linalg.inv(planned.transforms[name])
        pieces[name] = SurfaceMesh(transform_points(back, moved.vertices), moved.faces, name=name)
    for bone, mesh in bones.items():
        if bone in planned.rest:
            piece = planned.rest[bone]
        elif bone in planned.kerf_volume:  # cut, and every piece of it moves
            continue
        else:
            piece = mesh  # not cut at all
        pieces[f"{bone} (fixed)"] = piece
        fixed.append(f"{bone} (fixed)")
    return pieces, fixed


#: free tissue farther than this from the moving bone is held still (mm): it keeps the system
#: small enough to factorise in seconds; soft tissue 25 mm from a moved segment barely moves
ROI_MM = 25.0


def simulate_surfaces(plan, bones: dict[str, SurfaceMesh], skin: SurfaceMesh, *, tissue: str = "fem",
                      h: float = 3.0, nu: float = 0.45, roi: float | None = ROI_MM) -> dict:
    """The plan on these surfaces: moved segments, predicted skin (FEM and preview),
    landmarks and measures before and after. Returns a dict of arrays and meshes."""
    from medface.anatomy.cephalometry import before_after_table, soft_tissue_change

    from .fem import SoftTissueModel
    from .preview import RigidBlendPreview
    from .tissue_validation import compare, face_regions

    if tissue not in TISSUE_MODELS:
        raise InputError(f"unknown tissue model {tissue!r}; use one of {', '.join(TISSUE_MODELS)}")
    plan = check_plan(plan)
    planned = apply_plan(plan, bones)
    pieces, fixed = tissue_segments(bones, planned)
    moves = {name: planned.transforms[name] for name in planned.segments}
    preview = RigidBlendPreview(pieces, skin, fixed=fixed)
    skin_preview = preview.predict(moves)
    out = {"planned": planned, "pieces": pieces, "skin_preview": skin_preview, "fixed": fixed}
    if tissue == "fem":
        model = SoftTissueModel(pieces, skin, h=h, nu=nu, fixed=fixed, roi=roi)
        out["skin_fem"] = model.predict(moves)
        out["fem_info"] = model.info()
    predicted = out.get("skin_fem", skin_preview)
    out["displacement"] = np.linalg.norm(predicted - skin.vertices, axis=1)
    out["skin_after"] = SurfaceMesh(predicted, skin.faces, name="skin (predicted)",
                                    point_data={"displacement_mm": out["displacement"].astype(np.float32)})
    landmarks = {k: np.asarray(v, float) for k, v in plan.content.get("landmarks", {}).items()}
    out["measures"] = before_after_table(landmarks, planned.landmarks or landmarks) if landmarks else []
    try:
        regions = face_regions(skin, landmarks)
    except InputError:  # no soft-tissue landmarks in the plan: the whole skin is one region
        regions = None
    out["skin_change"] = soft_tissue_change(skin.vertices, predicted, regions)
    if tissue == "fem":
        out["preview_vs_fem"] = compare(skin_preview, out["skin_fem"], skin, regions)
    return out


def _figures(out_dir: Path, skin: SurfaceMesh, bones: dict, sim: dict) -> dict[str, str]:
    from medface.viz import Scene, render_panels

    before_bone, after_bone = Scene(), Scene()
    for mesh in bones.values():
        before_bone.add_mesh(mesh, color="bone")
    for mesh in [*sim["planned"].segments.values(), *(sim["pieces"][k] for k in sim["fixed"])]:
        after_bone.add_mesh(mesh, color="bone")
    skin_before = Scene().add_mesh(skin)
    skin_after = Scene().add_mesh(sim["skin_after"], scalars="displacement_mm", cmap="viridis")
    figures = {}
    path = out_dir / "before_after_left.png"
    render_panels([before_bone, after_bone, skin_before, skin_after], path, views="left",
                  titles=["bone before", "bone after", "skin before", "skin after (mm)"], size=(360, 360))
    figures["before/after (left)"] = str(path)
    path = out_dir / "before_after_frontal.png"
    render_panels([skin_before, skin_after], path, views="frontal", titles=["skin before", "skin after (mm)"],
                  size=(400, 400))
    figures["before/after (frontal)"] = str(path)
    return figures


def simulate(plan, ct: Volume | None = None, bone: SurfaceMesh | None = None, mandible: SurfaceMesh | None = None,
             skin: SurfaceMesh | None = None, out=None, tissue: str = "fem", h: float = 3.0,
             figures: bool = True) -> Result:
    """CLI entry of `surgery simulate`."""
    from medface.io import write_mesh

    bones, skin_mesh, notes = _surfaces(ct, bone, mandible, skin)
    sim = simulate_surfaces(plan, bones, skin_mesh, tissue=tissue, h=h)
    planned = sim["planned"]
    disp = sim["displacement"]
    result = Result(command="surgery.simulate")
    result.summary = {"segments": ", ".join(planned.segments), "tissue_model": tissue,
                      "max_skin_change_mm": round(float(disp.max()), 2),
                      "mean_skin_change_mm": round(float(disp.mean()), 3),
                      "skin_vertices": len(skin_mesh.vertices)}
    result.warnings += notes
    result.tables["measures"] = [{k: (round(v, 2) if isinstance(v, float) else v) for k, v in row.items()}
                                 for row in sim["measures"]]
    result.tables["soft-tissue change"] = [{"region": name, **{k: round(float(v), 3) if isinstance(v, float) else v
                                                                for k, v in stats.items()}}
                                           for name, stats in sim["skin_change"].items()]
    if "preview_vs_fem" in sim:
        result.metrics["preview_vs_fem"] = sim["preview_vs_fem"]
        result.tables["preview vs FEM"] = [{"region": name, **{k: round(float(v), 3) if isinstance(v, float) else v
                                                              for k, v in stats.items()}}
                                           for name, stats in sim["preview_vs_fem"].items()]
    if "fem_info" in sim:
        result.metrics["fem"] = sim["fem_info"]
    result.metrics["kerf_volume_mm3"] = {k: round(float(v), 1) for k, v in planned.kerf_volume.items()}
    result.limits += ["Soft tissue is linear-elastic and homogeneous (no muscles, no sliding layers, no swelling); "
                      "no patient pre- and post-operative data was available to validate the prediction.",
                      "Bone surfaces from CT are threshold segmentations: check them before any printing."]
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        for name, mesh in planned.segments.items():
            path = out / f"segment_{name}.stl"
            write_mesh(mesh, path)
            result.outputs[f"segment {name}"] = str(path)
        for bone, mesh in planned.rest.items():
            path = out / f"{bone}_rest.stl"
            write_mesh(mesh, path)
            result.outputs[f"{bone} (rest)"] = str(path)
        write_mesh(sim["skin_after"], out / "skin_predicted.ply")
        result.outputs["predicted skin"] = str(out / "skin_predicted.ply")
        if figures:
            result.figures.update(_figures(out, skin_mesh, bones, sim))
    result.data.update({"segments": planned.segments, "skin_after": sim["skin_after"]})
    return result
