"""Landmark files: 3D Slicer Markups JSON (``.mrk.json``) and CSV.

Reading accepts any Markups schema version 1.0.x: control points of "Fiducial" (point list)
markups become landmarks, their ``label`` being the landmark id. Positions in RAS are turned
into LPS (x and y negated) and micrometres into millimetres. Writing produces schema v1.0.3 in
LPS millimetres. A landmark's confidence is stored in the control point's extra key
``medfaceConfidence`` (the schema allows additional properties; Slicer ignores it).

Both are untrusted input. A markups file is validated against 3D Slicer's own schema
(``schemas/markups-schema-v1.0.3.json``, shipped with medface) with jsonschema before any
point is read; a CSV file is decoded as UTF-8 (or, with a warning, as Latin-1), and its lines
are at most :data:`MAX_CSV_LINE` characters. Either may hold at most
``budget().max_landmarks`` points (1,000,000 unless ``MEDFACE_MAX_LANDMARKS`` says otherwise)
and ``budget().max_text_bytes`` bytes; reading takes time linear in the file's size.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import re
from pathlib import Path

import numpy as np

from ..data.landmarks import Landmarks
from ..errors import InputError
from ._files import atomic_output, output_suffix
from .limits import check_count
from .sniff import landmark_csv_columns, require_category
from .textfiles import load_json, read_text, schema_problems

MARKUPS_SCHEMA = ("https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/"
                  "Schema/markups-schema-v1.0.3.json#")
CONFIDENCE_KEY = "medfaceConfidence"
LANDMARK_SUFFIXES = (".mrk.json", ".json", ".csv")
#: 3D Slicer's Markups JSON schema v1.0.3, which every markups file read is validated against
MARKUPS_SCHEMA_FILE = Path(__file__).parent / "schemas" / "markups-schema-v1.0.3.json"
#: the longest line (in characters) of a landmark CSV file
MAX_CSV_LINE = 65_536
_SHOWN_PROBLEMS = 5

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

    JSON: the file must follow 3D Slicer's markups schema v1.0.3; every "Fiducial" markup's
    control points, ``label`` as the id; points whose ``positionStatus`` is "undefined" are
    skipped. CSV: a header with ``id`` (or ``label``), ``x``, ``y``, ``z`` and optional
    ``confidence``, ``description`` and ``coordinate_system`` columns; a comment line
    ``# coordinateSystem=RAS`` makes RAS the file's default; UTF-8, or Latin-1 with a warning.
    Raises :class:`InputError` naming the file and the offending key or line.
    """
    kind = require_category(path, "landmarks")
    path = Path(path)
    return _read_markups_json(path) if kind == "markups-json" else _read_csv(path)


@functools.lru_cache(maxsize=1)
def markups_validator():
    """A jsonschema validator for 3D Slicer's markups schema v1.0.3 (built once)."""
    from jsonschema import Draft7Validator

    schema = json.loads(MARKUPS_SCHEMA_FILE.read_text(encoding="utf-8"))
    return Draft7Validator(schema)


def markups_problems(doc) -> list[tuple[str, str]]:
    """``(where, problem)`` for every place ``doc`` (a parsed markups file) breaks 3D Slicer's
    markups schema v1.0.3, sorted by where; [] when it follows it."""
    return schema_problems(markups_validator(), doc)


def _read_markups_json(path: Path) -> Landmarks:
    doc = load_json(path, "markups file")
    markups = doc.get("markups") if isinstance(doc, dict) else None
    if not isinstance(markups, list):
        raise InputError("key 'markups' must be a list of markups", path=path)
    # the schema's cost is per item: bound markups, control points and measurements before it runs
    count = len(markups) + sum(len(m[key]) for m in markups if isinstance(m, dict)
                               for key in ("controlPoints", "measurements") if isinstance(m.get(key), list))
    check_count(count, "max_landmarks", "markups, control points and measurements", path)
    _check_schema(doc, path)
    collected = _Collected(path)
    other_types = []
    for i, markup in enumerate(markups):
        if markup["type"] != "Fiducial":
            other_types.append(str(markup["type"]))
            continue
        collected.name = collected.name or str(markup.get("name", ""))
        _read_fiducial(markup, f"markups[{i}]", collected)
    if not collected.found_fiducial:
        found = ", ".join(sorted(set(other_types))) or "no markups at all"
        raise InputError(f"has no Fiducial (point list) markup; it holds {found}", path=path,
                         hint="landmarks are read from point lists")
    return collected.landmarks()


def _check_schema(doc: dict, path: Path) -> None:
    problems = markups_problems(doc)
    if not problems:
        return
    shown = "; ".join(f"'{where}': {problem}" for where, problem in problems[:_SHOWN_PROBLEMS])
    more = f" (and {len(problems) - _SHOWN_PROBLEMS} more)" if len(problems) > _SHOWN_PROBLEMS else ""
    hint = "save it from 3D Slicer, or write it with medface.io.write_landmarks"
    if any(where == "@schema" for where, _ in problems):
        hint = f'a markups file starts with "@schema": "{MARKUPS_SCHEMA}"; ' + hint
    raise InputError(f"does not follow the 3D Slicer markups schema v1.0.3: {shown}{more}", path=path, hint=hint)


class _Collected:
    """Landmarks gathered from the markups of one file, with where each label came from."""

    def __init__(self, path: Path):
        self.path = path
        self.name = ""
        self.found_fiducial = False
        self.ids: list[str] = []
        self.points: list = []
        self.confidence: dict[str, float] = {}
        self.descriptions: dict[str, str] = {}
        self.where: dict[str, str] = {}

    def add(self, label: str, point, where: str) -> None:
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
    """One point list's control points (the schema has already checked their types)."""
    path = collected.path
    collected.found_fiducial = True
    system = markup.get("coordinateSystem", "LPS")  # the schema's default
    scale = _unit_scale(markup.get("coordinateUnits", "mm"), f"{where}.coordinateUnits", path)
    flip = _RAS_TO_LPS if system == "RAS" else np.ones(3)
    for j, point in enumerate(markup.get("controlPoints", [])):
        cp_where = f"{where}.controlPoints[{j}]"
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
    if not isinstance(code, str) or code not in _UNIT_SCALE:
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
    default_system, rows = _csv_lines(read_text(path, "landmark CSV file", latin1_fallback=True), path)
    header = landmark_csv_columns(",".join(_csv_fields(*rows[0], path)))
    id_column = "id" if "id" in header else "label"
    missing = [c for c in (id_column, "x", "y", "z") if c not in header]
    if missing:
        raise InputError(f"line {rows[0][0]}: the header lacks the column(s) {', '.join(missing)}", path=path,
                         hint="a landmark CSV starts with a header such as id,x,y,z")
    check_count(len(rows) - 1, "max_landmarks", "landmark rows", path)
    collected = _Collected(path)
    collected.name = path.name.split(".")[0]
    for number, line in rows[1:]:
        fields = _csv_fields(number, line, path)
        if len(fields) < len(header):
            raise InputError(f"line {number} has {len(fields)} fields but the header names {len(header)}", path=path)
        row = dict(zip(header, (f.strip() for f in fields)))
        _read_csv_row(row, id_column, default_system, number, collected)
    return collected.landmarks()


def _csv_lines(text: str, path: Path) -> tuple[str, list[tuple[int, str]]]:
    """The file's default coordinate system and its non-comment, non-blank lines (numbered)."""
    default_system = "LPS"
    rows: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if len(line) > MAX_CSV_LINE:
            raise InputError(f"line {number} has {len(line):,} characters; a landmark CSV line has at most "
                             f"{MAX_CSV_LINE:,}", path=path, hint="the file is corrupt or not a landmark table")
        if line.lstrip().startswith("#"):
            match = re.search(r"coordinateSystem\s*[=:]\s*(\w+)", line)
            if match:
                default_system = _csv_system(match.group(1), f"line {number}", path)
        elif line.strip():
            rows.append((number, line))
    if not rows:
        raise InputError("has no header line", path=path, hint="a landmark CSV starts with a header such as id,x,y,z")
    return default_system, rows


def _csv_fields(number: int, line: str, path: Path) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error as exc:
        raise InputError(f"line {number} cannot be read as CSV: {exc}", path=path) from None


def _read_csv_row(row: dict[str, str], id_column: str, default_system: str, number: int,
                  collected: _Collected) -> None:
    path = collected.path
    label = row[id_column]
    if not label:
        raise InputError(f"line {number}: the '{id_column}' column is empty", path=path)
    system = _csv_system(row.get("coordinate_system") or default_system, f"line {number}", path)
    x, y, z = (_csv_number(row[axis], axis, number, path) for axis in "xyz")
    collected.add(label, (-x, -y, z) if system == "RAS" else (x, y, z), f"line {number}")
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
        raise InputError(f"line {line}: column '{column}' is not a number: {_clip(text)!r}", path=path) from None
    if not math.isfinite(value):
        raise InputError(f"line {line}: column '{column}' is not finite: {_clip(text)!r}", path=path)
    return value


def _clip(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


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
