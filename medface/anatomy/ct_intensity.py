"""Is a CT in Hounsfield units? Judged from the voxel values, not from metadata alone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

AIR_HU = -1000.0


@dataclass
class IntensityVerdict:
    in_hu: bool
    reason: str
    percentiles: dict[str, float]


def judge_hu(array: np.ndarray, declared_units: str = "") -> IntensityVerdict:
    """A CT in HU has air near -1000 and soft tissue near 0 to 100.

    The verdict needs both: a sizeable share of voxels (>= 2 %) below -900, and a median of
    the voxels above -500 (the body) between -200 and 300 HU. Data in scanner units (for
    example unsigned values with air at 0) fail the first test.
    """
    sample = array.ravel()
    if sample.size > 2_000_000:
        sample = sample[:: sample.size // 2_000_000]
    sample = sample.astype(np.float32)
    pct = {f"p{q}": float(np.percentile(sample, q)) for q in (1, 5, 50, 95, 99)}
    air = float((sample < -900).mean())
    body = sample[sample > -500]
    body_median = float(np.median(body)) if body.size else float("nan")
    if air >= 0.02 and -200 <= body_median <= 300:
        return IntensityVerdict(True, f"{air:.0%} of voxels below -900 (air) and body median {body_median:.0f}",
                                pct)
    declared = f" although the file declares '{declared_units}'" if declared_units == "HU" else ""
    return IntensityVerdict(
        False, f"values do not look like HU{declared}: {air:.1%} of voxels below -900, "
               f"range {pct['p1']:.0f} to {pct['p99']:.0f}", pct)
