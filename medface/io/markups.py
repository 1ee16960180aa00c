"""Landmark files: 3D Slicer Markups JSON (``.mrk.json``) and CSV.

Reading accepts any Markups schema version 1.0.x: control points of "Fiducial" (point list)
markups become landmarks, their ``label`` being the landmark id. Positions in RAS are turned
into LPS (x and y negated) and micrometres into millimetres. Writing produces schema v1.0.3 in
LPS millimetres. A landmark's confidence is stored in the control point's extra key
``medfaceConfidence`` (the schema allows additional properties; Slicer ignores it).
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np

from ..data.landmarks import Landmarks
from ..errors import InputError
from ._files import atomic_output, output_suffix
from .sniff import landmark_csv_columns, require_category

MARKUPS_SCHEMA = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
                  "Schema/markups-schema-v1.0.3.json#")
CONFIDENCE_KEY = "medfaceConfidence"
LANDMARK_SUFFIXES = (".mrk.json", ".json", ".csv")

_RAS_TO_LPS = np.array([-1.0, -1.0, 1.0])
_UNIT_SCALE = {"mm": 1.0, "um": 1e-3}
# A control point's default orientation (identity in Slicer's RAS world) written in LPS, as Slicer does.
_ORIENTATION_LPS = [-1.0, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 1.0]
_DISPLAY = {
    "visibility": True,
    "opacity": 1.0,
    "color": [0.4, 1.0, 1.0],
    "selectedColor": [1.0, 0.5, 0.5],
    "activeColor": [0.4, 1.0, 0.0],
    "propertiesLabelVisibility": True,
    "pointLabelsVisibility": True,
    "textScale": 3.0,
    "glyphType": "Sphere3D",
    "glyphScale": 3.0,
    "glyphSize": 5.0,
    "useGlyphScale": True,
    "sliceProjection": False,
    "lineThickness": 0.2,
    "opacityGradientMode": "Solid",
}


# reading ----------------------------------------------------------------------------------
def read_landmarks(path) -> Landmarks:
    """Read landmarks (LPS mm) from a 3D Slicer Markups JSON file or a CSV file.

    JSON: every "Fiducial" markup's control points, ``label`` as the id; points whose
    ``positionStatus`` is "undefined" are skipped. CSV: a header with ``id`` (or ``label``),
    ``x``, ``y``, ``z`` and optional ``confidence``, ``description`` and ``coordinate_system``
    columns; a comment line ``# coordinateSystem=RAS`` makes RAS the file's default.
    Raises :class:`InputError` naming the file and the offending key or line.
    """
    kind = require_category(path, "landmarks")
    path = Path(path)
    return _read_markups_json(path) if kind == "markups-json" else _read_csv(path)


def _read_markups_json(path: Path) -> Landmarks:
    with open(path, encoding="utf-8-sig") as fh:
        doc = json.load(fh)  # the sniffer has already parsed it once
    markups = doc["markups"]
    if not isinstance(markups, list):
        raise InputError("key 'markups' must be a list of markups", path=path)
    collected = _Collected(path)
    other_types = []
    for i, markup in enumerate(markups):
        where = f"markups[{i}]"
        if not isinstance(markup, dict):
            raise InputError(f"'{where}' must be an object", path=path)
        if "type" not in markup:
            raise _missing(path, f"{where}.type", "each markup needs a type such as \"Fiducial\"")
        if markup["type"] != "Fiducial":
            other_types.append(str(markup["type"]))
            continue
        collected.name = collected.name or str(markup.get("name", ""))
        _read_fiducial(markup, where, collected)
    if not collected.found_fiducial:
        found = ", ".join(sorted(set(other_types))) or "no markups at all"
        raise InputError(f"has no Fiducial (point list) markup; it holds {found}", path=path,
                         hint="landmarks are read from point lists")
    return collected.landmarks()


class _Collected:
    """Landmarks gathered from the markups of one file, with where each label came from."""

    def __init__(self, path: Path):
        self.path = path
        self.name = ""
        self.found_fiducial = False
        self.ids: list[str] = []
        self.points: list[np.ndarray] = []
        self.confidence: dict[str, float] = {}
        self.descriptions: dict[str, str] = {}
        self.where: dict[str, str] = {}

    def add(self, label: str, point: np.ndarray, where: str) -> None:
        if label in self.where:
            raise InputError(f"duplicate landmark label '{label}' at '{where}' (already used at '{self.where[label]}')",
                             path=self.path, hint="each landmark id must appear once")
        self.where[label] = where
        self.ids.append(label)
        self.points.append(point)

    def landmarks(self) -> Landmarks:
        points = np.array(self.points, dtype=np.float64).reshape(-1, 3)
        return Landmarks(self.ids, points, self.confidence, self.descriptions, name=self.name, source=str(self.path))


def _read_fiducial(markup: dict, where: str, collected: _Collected) -> None:
    path = collected.path
    collected.found_fiducial = True
    system = markup.get("coordinateSystem", "LPS")  # the schema's default
    if system not in ("LPS", "RAS"):
        raise InputError(f"'{where}.coordinateSystem' is {system!r}; it must be \"LPS\" or \"RAS\"", path=path)
    scale = _unit_scale(markup.get("coordinateUnits", "mm"), f"{where}.coordinateUnits", path)
    flip = _RAS_TO_LPS if system == "RAS" else np.ones(3)
    points = markup.get("controlPoints", [])
    if not isinstance(points, list):
        raise InputError(f"'{where}.controlPoints' must be a list", path=path)
    for j, point in enumerate(points):
        cp_where = f"{where}.controlPoints[{j}]"
        if not isinstance(point, dict):
            raise InputError(f"'{cp_where}' must be an object", path=path)
        if point.get("positionStatus") == "undefined":
            continue  # placed in Slicer's list but never positioned
        label = _label(point, cp_where, path)
        collected.add(label, _position(point, cp_where, path) * scale * flip, f"{cp_where}.label")
        if point.get("description"):
            collected.descriptions[label] = str(point["description"])
        if CONFIDENCE_KEY in point:
            collected.confidence[label] = _confidence(point[CONFIDENCE_KEY], f"{cp_where}.{CONFIDENCE_KEY}", path)


def _missing(path: Path, key: str, hint: str | None = None) -> InputError:
    return InputError(f"missing required key '{key}'", path=path, hint=hint)


def _unit_scale(units, key: str, path: Path) -> float:
    code = units[0] if isinstance(units, list) and units else units  # [code, scheme, meaning] form
    if code not in _UNIT_SCALE:
        raise InputError(f"'{key}' is {units!r}; medface reads \"mm\" and \"um\"", path=path)
    return _UNIT_SCALE[code]


def _label(point: dict, where: str, path: Path) -> str:
    label = point.get("label", point.get("id"))
    if not isinstance(label, str) or not label.strip():
        raise InputError(f"'{where}.label' is missing or empty; the label is the landmark id", path=path)
    return label.strip()


def _position(point: dict, where: str, path: Path) -> np.ndarray:
    if "position" not in point:
        raise _missing(path, f"{where}.position", "a defined control point needs its position [x, y, z]")
    value = point["position"]
    if (not isinstance(value, list) or len(value) != 3
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in value)):
        raise InputError(f"'{where}.position' must be three finite numbers, got {value!r}", path=path)
    return np.array(value, dtype=np.float64)


def _confidence(value, where: str, path: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InputError(f"'{where}' must be a number between 0 and 1, got {value!r}", path=path)
    return float(value)


def _read_csv(path: Path) -> Landmarks:
    default_system = "LPS"
    rows: list[tuple[int, list[str]]] = []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        if line.lstrip().startswith("#"):
            match = re.search(r"coordinateSystem\s*[=:]\s*(\w+)", line)
            if match:
                default_system = _csv_system(match.group(1), f"line {number}", path)
        elif line.strip():
            rows.append((number, next(csv.reader([line]))))
    header = landmark_csv_columns(",".join(rows[0][1]))
    id_column = "id" if "id" in header else "label"
    collected = _Collected(path)
    collected.name = path.name.split(".")[0]
    for number, fields in rows[1:]:
        if len(fields) < len(header):
            raise InputError(f"line {number} has {len(fields)} fields but the header names {len(header)}", path=path)
        row = dict(zip(header, (f.strip() for f in fields)))
        _read_csv_row(row, id_column, default_system, number, collected)
    return collected.landmarks()


def _read_csv_row(row: dict[str, str], id_column: str, default_system: str, number: int,
                  collected: _Collected) -> None:
    path = collected.path
    label = row[id_column]
    if not label:
        raise InputError(f"line {number}: the '{id_column}' column is empty", path=path)
    system = _csv_system(row.get("coordinate_system") or default_system, f"line {number}", path)
    point = np.array([_csv_number(row[axis], axis, number, path) for axis in "xyz"])
    collected.add(label, point * (_RAS_TO_LPS if system == "RAS" else 1.0), f"line {number}")
    if row.get("confidence"):
        value = _csv_number(row["confidence"], "confidence", number, path)
        collected.confidence[label] = _confidence(value, f"line {number}, column 'confidence'", path)
    if row.get("description"):
        collected.descriptions[label] = row["description"]


def _csv_system(value: str, where: str, path: Path) -> str:
    system = value.strip().upper()
    if system not in ("LPS", "RAS"):
        raise InputError(f"{where}: coordinate system {value!r} is not LPS or RAS", path=path)
    return system


def _csv_number(text: str, column: str, line: int, path: Path) -> float:
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"line {line}: column '{column}' is not a number: {text!r}", path=path) from None
    if not math.isfinite(value):
        raise InputError(f"line {line}: column '{column}' is not finite: {text!r}", path=path)
    return value


# writing ----------------------------------------------------------------------------------
def write_landmarks(landmarks: Landmarks, path) -> Path:
    """Write landmarks as 3D Slicer Markups JSON v1.0.3 (``.mrk.json``/``.json``) or CSV (``.csv``).

    Both are LPS millimetres. JSON holds one "Fiducial" markup, each landmark a defined control
    point whose ``label`` is its id; CSV has columns ``id,x,y,z`` (plus ``confidence`` and
    ``description`` when any landmark has one). Coordinates are written exactly (shortest
    repr of each float64). The file appears only once complete.
    """
    path = Path(path)
    suffix = output_suffix(path, LANDMARK_SUFFIXES, "landmark")
    text = _csv_text(landmarks) if suffix == ".csv" else json.dumps(markups_document(landmarks), indent=2) + "\n"
    with atomic_output(path, "landmarks") as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path


def markups_document(landmarks: Landmarks) -> dict:
    """The Slicer Markups (schema v1.0.3) JSON document for ``landmarks``, as Python objects."""
    points = []
    for k, (label, position) in enumerate(zip(landmarks.ids, landmarks.points), start=1):
        point = {
            "id": str(k),
            "label": label,
            "description": landmarks.descriptions.get(label, ""),
            "associatedNodeID": "",
            "position": [float(c) for c in position],
            "orientation": list(_ORIENTATION_LPS),
            "selected": True,
            "locked": False,
            "visibility": True,
            "positionStatus": "defined",
        }
        if label in landmarks.confidence:
            point[CONFIDENCE_KEY] = float(landmarks.confidence[label])
        points.append(point)
    markup = {
        "type": "Fiducial",
        "coordinateSystem": "LPS",
        "coordinateUnits": "mm",
        "locked": False,
        "fixedNumberOfControlPoints": False,
        "labelFormat": "%N-%d",
        "lastUsedControlPointNumber": len(points),
        "name": landmarks.name or "landmarks",
        "controlPoints": points,
        "measurements": [],
        "display": dict(_DISPLAY),
    }
    return {"@schema": MARKUPS_SCHEMA, "markups": [markup]}


def _csv_text(landmarks: Landmarks) -> str:
    columns = ["id", "x", "y", "z"]
    if landmarks.confidence:
        columns.append("confidence")
    if landmarks.descriptions:
        columns.append("description")
    out = io.StringIO()
    out.write("# coordinateSystem=LPS coordinateUnits=mm (written by medface)\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for label, position in zip(landmarks.ids, landmarks.points):
        row = [label, *(repr(float(c)) for c in position)]
        if "confidence" in columns:
            row.append(repr(float(landmarks.confidence[label])) if label in landmarks.confidence else "")
        if "description" in columns:
            row.append(landmarks.descriptions.get(label, ""))
        writer.writerow(row)
    return out.getvalue()
