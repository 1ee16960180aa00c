"""Is a CT in Hounsfield units? Judged from the voxel values, not from metadata alone.

Also what the values say before anything is segmented (:func:`check_content`): a field of view
of one value, a CT of only air, and 8-bit exports (integer values 0-255), which are windowed
images rather than HU and need the user's thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from medface.errors import InputError

AIR_HU = -1000.0
#: at most this share of voxels above -500 HU in a CT of "only air" (0.1 %: noise and specks)
ONLY_AIR_BODY_SHARE = 0.001


@dataclass
class IntensityVerdict:
    in_hu: bool
    reason: str
    percentiles: dict[str, float]
    eight_bit: bool = False  # integer values within 0-255: an 8-bit export (windowed), not HU


def _sample(array: np.ndarray, n: int = 2_000_000) -> np.ndarray:
    flat = np.asarray(array).ravel()
    if flat.size > n:
        flat = flat[:: flat.size // n]
    return flat.astype(np.float32)


def looks_eight_bit(array: np.ndarray, sample: np.ndarray | None = None) -> bool:
    """Integer values, all within 0-255 and spanning more than one value: an 8-bit export."""
    a = np.asarray(array)
    if a.dtype == np.uint8 or a.dtype == np.int8:
        return a.dtype == np.uint8 or bool(a.min() >= 0)
    if a.dtype == bool:
        return False
    if not (float(a.min()) >= 0.0 and float(a.max()) <= 255.0 and float(a.max()) > float(a.min())):
        return False
    s = _sample(a) if sample is None else sample
    return bool(np.all(s == np.round(s)))


def judge_hu(array: np.ndarray, declared_units: str = "") -> IntensityVerdict:
    """A CT in HU has air near -1000 and soft tissue near 0 to 100.

    The verdict needs both: a sizeable share of voxels (>= 2 %) below -900, and a median of
    the voxels above -500 (the body) between -200 and 300 HU. Data in scanner units (for
    example unsigned values with air at 0) fail the first test. A scan of bone and air only
    (a dry skull: no soft tissue) is in HU too when its air sits at -1000 +- 60 and its body
    median is bone (300 to 3000 HU): only HU put air at -1000 (scanner units are unsigned).
    """
    sample = _sample(array)
    pct = {f"p{q}": float(np.percentile(sample, q)) for q in (1, 5, 50, 95, 99)}
    eight_bit = looks_eight_bit(array, sample)
    low = sample[sample < -900]
    air = low.size / sample.size
    body = sample[sample > -500]
    body_median = float(np.median(body)) if body.size else float("nan")
    if air >= 0.02 and -200 <= body_median <= 300:
        return IntensityVerdict(True, f"{air:.0%} of voxels below -900 (air) and body median {body_median:.0f}",
                                pct)
    if air >= 0.02 and 300 < body_median <= 3000 and abs(float(np.median(low)) - AIR_HU) <= 60:
        soft = float(((body > -200) & (body < 200)).mean())
        return IntensityVerdict(True, f"{air:.0%} of voxels at air (-1000) and a body of mostly bone (median "
                                      f"{body_median:.0f}, {soft:.0%} in the soft-tissue range)", pct)
    declared = f" although the file declares '{declared_units}'" if declared_units == "HU" else ""
    if eight_bit:
        return IntensityVerdict(
            False, f"values {pct['p1']:.0f} to {pct['p99']:.0f} (integers within 0-255) look like an 8-bit export, "
                   f"not Hounsfield units{declared}", pct, eight_bit=True)
    return IntensityVerdict(
        False, f"values do not look like HU{declared}: {air:.1%} of voxels below -900, "
               f"range {pct['p1']:.0f} to {pct['p99']:.0f}", pct)


def check_content(array: np.ndarray) -> None:
    """Refuse, with what is wrong, a CT whose values hold nothing to segment: one value
    everywhere (an empty field of view), or only air (at most 0.1 % of the voxels above -500 HU
    while 98 % or more lie below -900 HU)."""
    a = np.asarray(array)
    lo, hi = float(a.min()), float(a.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise InputError("the CT holds NaN or infinite values", hint="check the file; re-export the CT")
    if lo == hi:
        raise InputError(f"every voxel of the CT has the value {lo:g}: the field of view is empty (no head in it)",
                         hint="check that the file is the head CT series you meant, not a blank or a localiser")
    sample = _sample(a)
    air, body = float((sample < -900).mean()), float((sample > -500).mean())
    if air >= 0.98 and body <= ONLY_AIR_BODY_SHARE:
        raise InputError(f"the CT shows only air: {air:.1%} of its voxels are below -900 HU and "
                         f"{body:.2%} above -500 HU (nothing that could be a body)",
                         hint="check that the file is the head CT series you meant and that its field of view "
                              "holds the head")
