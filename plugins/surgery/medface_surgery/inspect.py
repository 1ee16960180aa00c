"""`surgery inspect-ct`: grid, orientation, intensities and bone volume of a CT."""

from __future__ import annotations

import numpy as np

from medface.data import Result, Volume
from medface.errors import InputError

from medface.anatomy.ct_checks import MIN_SLICES, coverage
from medface.anatomy.ct_intensity import check_content, judge_hu


def _grid_warnings(ct: Volume, grid: dict) -> list[str]:
    """What would stop or weaken `surgery segment`, in the words its errors use."""
    warnings = []
    if not grid["is_volume"]:
        n = grid["slices"]
        warnings.append(f"the CT is {n} slice{'s' if n > 1 else ''} thick ({grid['thickness_mm']:g} mm along "
                        f"{grid['thinnest_axis']}): segmentation needs a volume of at least {MIN_SLICES} slices")
    try:
        check_content(ct.array)
    except InputError as exc:
        warnings.append(exc.message)
    return warnings


def inspect_ct(ct: Volume, bone_threshold: float = 300.0) -> Result:
    """Grid (with the slice count and thickness the segmentation uses), orientation,
    intensities (in HU or not) and the bone volume above a threshold."""
    geometry = ct.describe()
    verdict = judge_hu(ct.array, ct.units)
    grid = coverage(ct)
    warnings = _grid_warnings(ct, grid)
    voxel_ml = float(np.prod(ct.spacing)) / 1000.0
    if verdict.in_hu:
        bone_ml = float((ct.array >= bone_threshold).sum()) * voxel_ml
    else:
        bone_ml = None
        warnings.append(verdict.reason + ("; bone volume not computed; segmentation needs --bone-hu and --skin-hu for "
                                          "it" if verdict.eight_bit else
                                          "; bone volume not computed (segmentation will calibrate the values)"))
    if np.allclose(ct.direction, np.eye(3)) and np.allclose(ct.origin, 0):
        warnings.append("the file stores no orientation (identity direction, zero origin): which way the face "
                        "points must be found from the data or given")
    summary = {
        "size_ijk": " x ".join(str(n) for n in geometry["shape_ijk"]),
        "spacing_mm": geometry["spacing_mm"],
        "extent_mm": geometry["extent_mm"],
        "slices": f"{grid['slices']} along {grid['thinnest_axis']} (the thinnest axis)",
        "thickness_mm": grid["thickness_mm"],
        "orientation": geometry["orientation"],
        "values_in_hu": verdict.in_hu,
        "bone_volume_ml": round(bone_ml, 2) if bone_ml is not None else "n/a",
    }
    metrics = {**verdict.percentiles, "voxel_volume_ml": voxel_ml, "slices": grid["slices"],
               "thickness_mm": grid["thickness_mm"]}
    if bone_ml is not None:
        metrics["bone_volume_ml"] = bone_ml
    return Result(command="surgery.inspect-ct", summary=summary, metrics=metrics,
                  tables={"geometry": [geometry], "coverage": [grid]}, warnings=warnings,
                  limits=["The bone volume is a threshold count, not a segmentation."])
