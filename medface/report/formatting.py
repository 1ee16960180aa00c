"""Values for people: units implied by key suffixes, rounded numbers, labels, durations.

Plain text only; the templates escape what they show.
"""

from __future__ import annotations

import math
import os
from typing import Any

__all__ = ["UNITS", "unit_of", "label", "format_number", "format_value", "duration"]

# key suffix -> unit shown after the value ("bone_volume_ml" -> "12.5 mL")
UNITS = {
    "mm": "mm", "cm": "cm", "m": "m", "mm2": "mm²", "mm3": "mm³", "cm3": "cm³",
    "ml": "mL", "cc": "cm³", "l": "L",
    "deg": "°", "degrees": "°", "rad": "rad",
    "s": "s", "sec": "s", "ms": "ms", "min": "min",
    "hu": "HU", "pct": "%", "percent": "%", "px": "px", "vox": "voxels",
    "kg": "kg", "g": "g", "years": "years", "yr": "years", "bmi": "kg/m²",
    "mb": "MB", "gb": "GB", "mib": "MiB", "gib": "GiB",
}


def unit_of(key: str) -> str:
    """The unit implied by a key's last ``_suffix`` (``"extent_mm"`` -> ``"mm"``), or ``""``."""
    if "_" not in key:
        return ""
    return UNITS.get(key.rsplit("_", 1)[1].lower(), "")


def label(key: str, value: Any = None) -> str:
    """``"bone_volume_ml"`` -> ``"Bone volume"`` (the unit goes with the value; kept for yes/no values)."""
    text = str(key)
    if unit_of(text) and not isinstance(value, bool):
        text = text.rsplit("_", 1)[0]
    text = text.replace("_", " ").strip() or str(key)
    return text[:1].upper() + text[1:]


def format_number(x: float | int) -> str:
    """Numbers for people: integers as they are, floats to about four significant digits."""
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return str(x)
    x = float(x)
    if math.isnan(x):
        return "n/a"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e7:
        decimals = min(6, max(0, 3 - math.floor(math.log10(a))))
        text = f"{x:.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text
    return f"{x:.3e}"


def _plain(value: Any) -> Any:
    """numpy scalars and arrays to Python values (without importing numpy)."""
    if hasattr(value, "tolist") and type(value).__module__.startswith("numpy"):
        return value.tolist()
    return value


def _is_number_list(value) -> bool:
    return isinstance(value, (list, tuple)) and bool(value) and \
        all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)


def format_value(key: str, value: Any, *, unit: bool = True) -> str:
    """A value as plain text, with the unit its key implies (not escaped)."""
    value = _plain(value)
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    suffix = f" {unit_of(key)}" if unit and unit_of(key) else ""
    if suffix in (" °", " %"):
        suffix = suffix.strip()
    if isinstance(value, (int, float)):
        return format_number(value) + suffix
    if _is_number_list(value):
        return "(" + ", ".join(format_number(v) for v in value) + ")" + suffix
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value("", v) for v in value) if value else "—"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {format_value(str(k), v)}" for k, v in value.items()) if value else "—"
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return str(value)


def duration(seconds: float | None) -> str:
    """``2.0`` -> ``"2 s"``, ``3725`` -> ``"1 h 2 min 5 s"``; ``None`` -> ``"—"``."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 60:
        return format_number(seconds) + " s"
    minutes, rest = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return (f"{hours} h " if hours else "") + f"{minutes} min {rest} s"
