"""Landmark files: Slicer Markups JSON and CSV, LPS/RAS, units, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medface.data import Landmarks
from medface.errors import InputError, OutputError
from medface.io import read_landmarks, write_landmarks
from medface.io.markups import MARKUPS_SCHEMA, MARKUPS_SCHEMA_FILE, markups_problems

SCHEMA_PATH = MARKUPS_SCHEMA_FILE  # 3D Slicer's own markups-schema-v1.0.3.json, shipped in medface/io/schemas


@pytest.fixture(scope="module")
def validator():
    from jsonschema import Draft7Validator

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return Draft7Validator(schema)


@pytest.fixture
def points() -> Landmarks:
    return Landmarks(
        ["n", "prn", "pog_s", "go_l"],
        np.array([[1.25, -88.123456789012, 40.5], [0.1, -110.7, 10.0], [-0.3, -95.0, -60.2], [48.0, -20.0, -45.5]]),
        confidence={"n": 0.9, "go_l": 0.25},
        descriptions={"prn": "pronasale, the tip of the nose", "go_l": 'gonion "left", by hand'},
        name="face landmarks",
    )


def markups_file(tmp_path: Path, markups: list, name: str = "points.mrk.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps({"@schema": MARKUPS_SCHEMA, "markups": markups}))
    return path


def fiducial(points: list, **extra) -> dict:
    return {"type": "Fiducial", "controlPoints": points, **extra}


def assert_same(a: Landmarks, b: Landmarks) -> None:
    assert a.ids == b.ids
    np.testing.assert_array_equal(a.points, b.points)
    assert a.confidence == b.confidence
    assert a.descriptions == b.descriptions


# writing and reading ----------------------------------------------------------------------
def test_markups_round_trip_is_exact(tmp_path, points):
    back = read_landmarks(write_landmarks(points, tmp_path / "out" / "face.mrk.json"))
    assert_same(points, back)
    assert back.name == "face landmarks"


def test_written_markups_validate_against_the_schema(tmp_path, points, validator):
    doc = json.loads(write_landmarks(points, tmp_path / "face.mrk.json").read_text(encoding="utf-8"))
    assert sorted(e.message for e in validator.iter_errors(doc)) == []
    markup = doc["markups"][0]
    assert doc["@schema"].endswith("markups-schema-v1.0.3.json#")
    assert (markup["type"], markup["coordinateSystem"], markup["coordinateUnits"]) == ("Fiducial", "LPS", "mm")
    assert [p["label"] for p in markup["controlPoints"]] == points.ids
    assert [p["id"] for p in markup["controlPoints"]] == ["1", "2", "3", "4"]
    assert {p["positionStatus"] for p in markup["controlPoints"]} == {"defined"}
    assert markup["controlPoints"][0]["medfaceConfidence"] == 0.9


def test_schema_rejects_a_broken_document(validator):
    broken = {"@schema": MARKUPS_SCHEMA, "markups": [
        {"type": "Fiducial", "coordinateSystem": "XYZ",
         "controlPoints": [{"label": "n", "position": [1.0, 2.0]}],
         "display": {"opacity": 1.5, "glyphType": "Teapot3D"}}]}
    assert list(validator.iter_errors(broken))
    failed = {where for where, _ in markups_problems(broken)}  # Slicer's anyOf branches opened
    assert "markups[0].coordinateSystem" in failed
    assert "markups[0].controlPoints[0].position" in failed
    assert "markups[0].display.opacity" in failed
    assert "markups[0].display.glyphType" in failed
    assert list(validator.iter_errors({"markups": []}))  # "@schema" is required


def test_ras_file_is_read_into_lps(tmp_path):
    path = markups_file(tmp_path, [fiducial([{"label": "n", "position": [10.0, -20.0, 30.0]}],
                                            coordinateSystem="RAS")])
    np.testing.assert_array_equal(read_landmarks(path)["n"], [-10.0, 20.0, 30.0])


def test_missing_coordinate_system_means_lps(tmp_path):
    path = markups_file(tmp_path, [fiducial([{"label": "n", "position": [10.0, -20.0, 30.0]}])])
    np.testing.assert_array_equal(read_landmarks(path)["n"], [10.0, -20.0, 30.0])


@pytest.mark.parametrize("units", ["um", ["um", "UCUM", "micrometer"]])
def test_micrometres_become_millimetres(tmp_path, units):
    path = markups_file(tmp_path, [fiducial([{"label": "n", "position": [1500.0, -250.0, 10.0]}],
                                            coordinateUnits=units)])
    np.testing.assert_allclose(read_landmarks(path)["n"], [1.5, -0.25, 0.01])


def test_undefined_points_and_other_markups_are_skipped(tmp_path):
    path = markups_file(tmp_path, [
        {"type": "Line", "controlPoints": [{"label": "L-1", "position": [0, 0, 0]}]},
        fiducial([{"label": "n", "position": [1, 2, 3]},
                  {"label": "prn", "positionStatus": "undefined"},
                  {"label": "sn", "position": [4, 5, 6], "positionStatus": "defined"}], name="F"),
    ])
    landmarks = read_landmarks(path)
    assert landmarks.ids == ["n", "sn"] and landmarks.name == "F"


def test_slicer_style_file_reads(tmp_path):
    point = {"id": "1", "label": "n", "description": "", "associatedNodeID": "", "position": [-1.5, 2.5, 3.0],
             "orientation": [-1.0, -0.0, -0.0, -0.0, -1.0, -0.0, 0.0, 0.0, 1.0], "selected": True,
             "locked": False, "visibility": True, "positionStatus": "defined"}
    path = markups_file(tmp_path, [fiducial([point], name="F", coordinateSystem="LPS", coordinateUnits="mm",
                                            locked=False, labelFormat="%N-%d", measurements=[],
                                            display={"visibility": True, "glyphType": "Sphere3D"})])
    landmarks = read_landmarks(path)
    assert landmarks.ids == ["n"] and landmarks.descriptions == {} and landmarks.confidence == {}


def test_csv_round_trip_is_exact(tmp_path, points):
    back = read_landmarks(write_landmarks(points, tmp_path / "face.csv"))
    assert_same(points, back)


def test_csv_in_ras(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("# exported by a planning tool\n# coordinateSystem=RAS\nlabel,x,y,z\nn,1,2,3\n")
    np.testing.assert_array_equal(read_landmarks(path)["n"], [-1, -2, 3])
    path.write_text("id,x,y,z,coordinate_system\nn,1,2,3,RAS\nprn,1,2,3,LPS\n")
    landmarks = read_landmarks(path)
    np.testing.assert_array_equal(landmarks.points, [[-1, -2, 3], [1, 2, 3]])


def test_write_landmarks_refuses_unknown_extensions(tmp_path, points):
    with pytest.raises(OutputError, match=r"\.mrk\.json"):
        write_landmarks(points, tmp_path / "points.fcsv")


# bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(("markups", "key"), [
    ([fiducial([{"label": "n", "position": [1, 2, 3]}, {"label": "prn"}])], "markups[0].controlPoints[1].position"),
    ([{"controlPoints": []}], "markups[0].type"),
    ([fiducial([{"label": "n", "position": [1, "two", 3]}])], "markups[0].controlPoints[0].position[1]"),
    ([fiducial([{"label": "n", "position": [1, 2]}])], "markups[0].controlPoints[0].position"),
    ([fiducial([{"position": [1, 2, 3]}])], "markups[0].controlPoints[0].label"),
    ([fiducial([{"label": "n", "position": [1, 2, 3]}], coordinateSystem="XYZ")], "markups[0].coordinateSystem"),
    ([fiducial([{"label": "n", "position": [1, 2, 3], "medfaceConfidence": 7}])],
     "markups[0].controlPoints[0].medfaceConfidence"),
])
def test_bad_markups_name_the_file_and_key(tmp_path, markups, key):
    path = markups_file(tmp_path, markups)
    with pytest.raises(InputError) as info:
        read_landmarks(path)
    assert str(path) in str(info.value) and f"'{key}'" in str(info.value)


def test_missing_markups_key(tmp_path):
    path = tmp_path / "points.mrk.json"
    path.write_text(json.dumps({"@schema": MARKUPS_SCHEMA, "controlPoints": []}))
    with pytest.raises(InputError, match="'markups'") as info:
        read_landmarks(path)
    assert str(path) in str(info.value)


def test_duplicate_labels_are_refused(tmp_path):
    path = markups_file(tmp_path, [fiducial([{"label": "n", "position": [1, 2, 3]}]),
                                   fiducial([{"label": "n", "position": [4, 5, 6]}])])
    with pytest.raises(InputError, match="duplicate landmark label 'n'") as info:
        read_landmarks(path)
    assert "markups[1].controlPoints[0].label" in str(info.value) and str(path) in str(info.value)


def test_file_without_point_lists_is_refused(tmp_path):
    path = markups_file(tmp_path, [{"type": "Curve", "controlPoints": []}])
    with pytest.raises(InputError, match="no Fiducial .* Curve"):
        read_landmarks(path)


def test_truncated_markups_file_is_refused(tmp_path, points):
    text = write_landmarks(points, tmp_path / "face.mrk.json").read_text(encoding="utf-8")
    cut = tmp_path / "cut.mrk.json"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match="cannot be parsed") as info:
        read_landmarks(cut)
    assert str(cut) in str(info.value)


def test_bad_csv_names_the_line(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("id,x,y,z\nn,1,2,3\nprn,1,abc,3\n")
    with pytest.raises(InputError, match=r"line 3: column 'y' is not a number: 'abc'") as info:
        read_landmarks(path)
    assert str(path) in str(info.value)
    path.write_text("id,x,y,z\nn,1,2,3\nn,4,5,6\n")
    with pytest.raises(InputError, match="duplicate landmark label 'n' at 'line 3'"):
        read_landmarks(path)
