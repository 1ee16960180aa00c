"""Markups, landmark CSV, plans, photos and plugin manifests as untrusted input (issue 14).

Every reproducer of the issue for these readers, on a file the test writes: each ends in a
result or a MedfaceError (InputError, ManifestError) that says what is wrong, never in a
TypeError, RecursionError, UnicodeDecodeError, ValueError, a hang or a huge allocation.
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import time
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from medface.data import FaceImage, Landmarks
from medface.errors import InputError, ManifestError, MedfaceError
from medface.io import read, read_image, read_landmarks, read_plan, sniff, write_image, write_landmarks
from medface.io.markups import MARKUPS_SCHEMA, MAX_CSV_LINE, markups_problems
from medface.io.sniff import category
from medface.io.textfiles import schema_problems
from medface.plugin.manifest import MANIFEST_NAME, read_manifest

REPO = Path(__file__).resolve().parents[2]
SHIPPED_MANIFEST = REPO / "plugins" / "surgery" / "medface_surgery" / MANIFEST_NAME


@contextmanager
def deadline(seconds: int):
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def expired(signum, frame):
        raise AssertionError(f"still running after {seconds} s: the reader hangs")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def markups(tmp_path: Path, doc, name: str = "points.mrk.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def fiducial(points, **extra) -> dict:
    return {"@schema": MARKUPS_SCHEMA, "markups": [{"type": "Fiducial", "controlPoints": points, **extra}]}


# markups JSON ------------------------------------------------------------------------------
def test_markups_units_of_the_wrong_type_name_the_key(tmp_path):
    path = markups(tmp_path, fiducial([{"label": "n", "position": [1, 2, 3]}], coordinateUnits={}))
    with pytest.raises(InputError) as info:
        read_landmarks(path)
    text = str(info.value)
    assert "3D Slicer markups schema" in text and str(path) in text
    assert "'markups[0].coordinateUnits': expected a string or a list, got an object" in text


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_deeply_nested_markups_are_refused(tmp_path, depth):
    path = markups(tmp_path, '{"@schema": "x", "markups": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(InputError, match="nests"):
        read_landmarks(path)


def test_markups_follow_slicers_schema_not_ours(tmp_path):
    doc = fiducial([{"label": "n", "position": [1, 2, 3]}])
    del doc["@schema"]  # 3D Slicer's schema requires it
    with pytest.raises(InputError, match="'@schema': missing required key") as info:
        read_landmarks(markups(tmp_path, doc))
    assert MARKUPS_SCHEMA in str(info.value)  # the hint shows what to add
    bad = fiducial([{"label": f"p{k}", "position": [1, 2], "selected": "yes"} for k in range(4)])
    with pytest.raises(InputError, match=r"\(and 3 more\)") as info:
        read_landmarks(markups(tmp_path, bad))
    assert "'markups[0].controlPoints[0].position': expected at least 3 items, got 2" in str(info.value)
    assert "'markups[0].controlPoints[0].selected': expected true/false, got a string" in str(info.value)


def test_markups_problems_open_slicers_anyof_branches():
    good = fiducial([{"label": "n", "position": [1.0, 2.0, 3.0]}], coordinateUnits=["um", "UCUM", "micrometer"])
    assert markups_problems(good) == []
    problems = dict(markups_problems(fiducial([{"label": 7, "positionStatus": "lost"}], coordinateUnits="cm")))
    assert problems["markups[0].coordinateUnits"].startswith('"cm" is not one of "mm", "um"')
    assert problems["markups[0].controlPoints[0].label"] == "expected a string, got a number (7)"
    assert problems["markups[0].controlPoints[0].positionStatus"].startswith('"lost" is not one of')


@pytest.mark.parametrize("number", ["NaN", "1e400", "1" * 5000, "-Infinity"])
def test_markups_numbers_json_cannot_hold_are_refused(tmp_path, number):
    path = markups(tmp_path, json.dumps(fiducial([{"label": "n", "position": [1, 2, 3]}])).replace("[1, 2, 3]",
                                                                                                    f"[1, 2, {number}]"))
    with pytest.raises(InputError, match="cannot be parsed"):
        read_landmarks(path)


def test_markups_point_budget(tmp_path, monkeypatch):
    path = markups(tmp_path, fiducial([{"label": f"p{k}", "position": [k, 0, 0]} for k in range(30)]))
    assert len(read_landmarks(path)) == 30
    monkeypatch.setenv("MEDFACE_MAX_LANDMARKS", "20")
    with pytest.raises(InputError, match="too large: the file declares 31 markups, control points and measurements"
                                         ".*MEDFACE_MAX_LANDMARKS"):
        read_landmarks(path)


# landmark CSV ------------------------------------------------------------------------------
def test_latin1_csv_is_read_with_a_warning(tmp_path):
    path = tmp_path / "points.csv"
    path.write_bytes("id,x,y,z,description\nn,1,2,3,Nasion (r\xe9f\xe9rence)\n".encode("latin-1"))
    with pytest.warns(UserWarning, match="not UTF-8.*Latin-1"):
        landmarks = read_landmarks(path)
    assert landmarks.descriptions == {"n": "Nasion (référence)"}
    np.testing.assert_array_equal(landmarks["n"], [1, 2, 3])


@pytest.mark.parametrize("row", [
    "n,1,2," + "3" * 5_000_000,                 # one huge field (csv's field limit raised csv.Error)
    "n,1,2,3" + "," * 5_000_000,                # a row of five million empty fields
    'n,1,2,"3' + "x" * 5_000_000,               # a quote never closed
])
def test_csv_with_huge_rows_is_refused_fast(tmp_path, row):
    path = tmp_path / "points.csv"
    path.write_text("id,x,y,z\n" + row + "\n", encoding="utf-8")
    with deadline(20), pytest.raises(InputError, match=f"line 2 has 5,0.* characters; .* at most {MAX_CSV_LINE:,}"):
        read_landmarks(path)


def test_300k_landmark_rows_read_in_linear_time(tmp_path, monkeypatch):
    path = tmp_path / "dense.csv"
    path.write_text("id,x,y,z\n" + "".join(f"p{i},{i},{-i},0.5\n" for i in range(300_000)), encoding="utf-8")
    start = time.perf_counter()
    with deadline(60):
        landmarks = read_landmarks(path)
    assert len(landmarks) == 300_000 and landmarks.ids[-1] == "p299999"
    np.testing.assert_array_equal(landmarks["p299999"], [299999, -299999, 0.5])
    assert time.perf_counter() - start < 30  # quadratic took many minutes
    monkeypatch.setenv("MEDFACE_MAX_LANDMARKS", "100000")
    with pytest.raises(InputError, match="too large: the file declares 300,000 landmark rows"):
        read_landmarks(path)


def test_text_inputs_are_bounded(tmp_path, monkeypatch):
    csv_path = tmp_path / "points.csv"
    csv_path.write_text("id,x,y,z\n" + "n,1,2,3\n" + "# padding\n" * 100, encoding="utf-8")
    json_path = markups(tmp_path, fiducial([{"label": "n", "position": [1, 2, 3], "description": "x" * 2000}]))
    monkeypatch.setenv("MEDFACE_MAX_TEXT_BYTES", "1000")
    for path in (csv_path, json_path):
        with pytest.raises(InputError, match="too large: .* bytes, more than the budget of 1,000"):
            read_landmarks(path)


# plans -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "message"), [
    ("1" * 5000, "an integer of 5,000 digits"),
    ("[" * 100_000 + "]" * 100_000, "nests too deeply"),
    ("[" * 200 + "]" * 200, "nests more than 64 levels deep"),
    ("NaN", "NaN, which is not a JSON number"),
    ("1e999", "out of the range of a double"),
])
def test_plans_json_cannot_hold_are_refused(tmp_path, value, message):
    path = tmp_path / "plan.json"
    path.write_text('{"kind": "medface.surgery.plan", "version": "1.0", "kerf_mm": ' + value + "}", encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        read_plan(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("doc", "message"), [
    ({"kind": ["medface.surgery.plan"], "version": "1.0"}, "field kind: expected a string, got a list"),
    ({"kind": "medface.surgery.plan", "version": 1.0}, "field version: expected a string, got a number"),
    ([1, 2], "a plan must be a JSON object, got a list"),
])
def test_plan_fields_of_the_wrong_type(tmp_path, doc, message):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(InputError, match=message):
        read_plan(path)


def test_schema_problems_say_what_was_expected():
    import jsonschema

    schema = {"type": "object", "required": ["kind"], "properties": {
        "kerf_mm": {"type": "number"}, "moves": {"type": "array", "items": {"type": "object"}}}}
    problems = schema_problems(jsonschema.Draft202012Validator(schema), {"kerf_mm": [1], "moves": [{}, 3]})
    assert problems == [("kerf_mm", "expected a number, got a list ([1])"), ("kind", "missing required key"),
                        ("moves[1]", "expected an object, got a number (3)")]


# photos ----------------------------------------------------------------------------------
def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG that declares width x height pixels but holds no image data (a bomb's header)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize(("width", "height", "declared"), [(20_000, 20_000, "400,000,000"),
                                                            (60_000, 60_000, "3,600,000,000")])
def test_decompression_bombs_are_too_large_before_decoding(tmp_path, width, height, declared):
    from PIL import Image

    before = Image.MAX_IMAGE_PIXELS
    path = png_header_only(tmp_path / "bomb.png", width, height)
    with pytest.raises(InputError, match=f"too large: the file declares {declared} pixels") as info:
        read_image(path)
    assert "corrupt" not in str(info.value) and "MEDFACE_MAX_PIXELS" in str(info.value)
    assert Image.MAX_IMAGE_PIXELS == before  # Pillow's global limit is restored


def test_pixel_budget_is_configurable(tmp_path, monkeypatch):
    path = write_image(FaceImage(np.zeros((40, 50, 3), dtype=np.uint8)), tmp_path / "small.png")
    assert read_image(path).pixels.shape == (40, 50, 3)
    monkeypatch.setenv("MEDFACE_MAX_PIXELS", "1000")
    with pytest.raises(InputError, match=r"too large: the file declares 2,000 pixels.*\(50 x 40\)"):
        read_image(path)


@pytest.mark.parametrize("make", ["truncated", "empty", "text"])
def test_broken_photos_are_input_errors(tmp_path, make):
    rng = np.random.default_rng(1)
    good = write_image(FaceImage(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)), tmp_path / "good.png")
    path = tmp_path / "photo.png"
    data = {"truncated": good.read_bytes()[:200], "empty": b"", "text": b"this is not a picture\n"}[make]
    path.write_bytes(data)
    with pytest.raises(InputError, match="truncated|empty|does not recognise"):
        read_image(path)


# not regular files --------------------------------------------------------------------------
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")


@pytest.fixture
def odd_paths(tmp_path):
    """A named pipe (no writer: opening it for reading would block forever), a symlink loop and
    a folder, each named like a valid input."""
    fifo = tmp_path / "pipe.mrk.json"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.json"
    loop.symlink_to(tmp_path / "loop.json")
    folder = tmp_path / "folder.png"
    folder.mkdir()
    return {"pipe": fifo, "loop": loop, "folder": folder}


@needs_fifo
@pytest.mark.parametrize("kind", ["pipe", "loop", "folder"])
@pytest.mark.parametrize("reader", [read_landmarks, read_plan, read_image, sniff])
def test_only_regular_files_are_read(odd_paths, kind, reader):
    with deadline(10), pytest.raises(InputError) as info:
        reader(odd_paths[kind])
    assert str(odd_paths[kind]) in str(info.value)


@needs_fifo
@pytest.mark.parametrize("kind", ["pipe", "loop"])
def test_manifest_that_is_not_a_regular_file(tmp_path, kind):
    path = tmp_path / MANIFEST_NAME
    if kind == "pipe":
        os.mkfifo(path)
    else:
        path.symlink_to(path)
    with deadline(10), pytest.raises(ManifestError) as info:
        read_manifest(path)
    assert str(path) in str(info.value)
    with deadline(10), pytest.raises(ManifestError):
        read_manifest(tmp_path)  # the folder holding it


def test_manifest_folder_without_a_manifest(tmp_path):
    (tmp_path / MANIFEST_NAME).mkdir()  # a folder named like the manifest
    with pytest.raises(ManifestError, match="folder, not a file"):
        read_manifest(tmp_path)


# plugin manifests ----------------------------------------------------------------------------
@pytest.mark.parametrize(("extra", "message"), [
    ("deep = " + "[" * 5000 + "]" * 5000, "nests too deeply"),
    ("deep = " + "{a = " * 3000 + "1" + "}" * 3000, "nests too deeply"),
    ("deep = " + "[" * 100 + "]" * 100, "nests more than 64 levels deep"),
    ("big = " + "1" * 5000, "holds a value TOML cannot take"),
    ("x" + ".x" * 20_000 + " = 1", "dotted parts nests too deeply"),
    ("pad = '" + "x" * (1024 * 1024) + "'", "larger than 1,048,576 bytes"),
])
def test_hostile_manifests_are_manifest_errors(tmp_path, extra, message):
    path = tmp_path / MANIFEST_NAME
    path.write_text(extra + "\n" + SHIPPED_MANIFEST.read_text(encoding="utf-8"), encoding="utf-8")
    with deadline(10), pytest.raises(ManifestError, match=message) as info:
        read_manifest(path)
    assert str(path) in str(info.value)


# the sniffer and the readers agree ------------------------------------------------------------
def seed_files(folder: Path) -> list[Path]:
    points = Landmarks(["n", "prn", "go_l"], np.array([[1.5, -88.0, 40.5], [0.1, -110.7, 10.0], [48.0, -20.0, -45.5]]),
                       confidence={"n": 0.9}, descriptions={"prn": "pronasale"})
    photo = FaceImage(np.random.default_rng(3).integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return [write_landmarks(points, folder / "seed.mrk.json"), write_landmarks(points, folder / "seed.csv"),
            write_image(photo, folder / "seed.png"), write_image(photo, folder / "seed.jpg")]


def mutants(data: bytes, rng: random.Random, count: int) -> list[bytes]:
    out = [data[: len(data) * k // 8] for k in range(1, 8)]  # truncations
    for _ in range(count):
        flipped = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            flipped[rng.randrange(len(flipped))] = rng.randrange(256)
        out.append(bytes(flipped))
    for token in (b"1.5", b"0.9", b'"n"', b"[", b"{"):
        if token in data:
            for swap in (b"[]", b"{}", b"NaN", b"1" * 400, b'"x"', b"null"):
                out.append(data.replace(token, swap, 1))
    return out


@pytest.mark.filterwarnings("ignore:.*read it as Latin-1:UserWarning")
def test_a_file_the_sniffer_accepts_never_crashes_its_reader(tmp_path):
    rng = random.Random(14)
    seeds = seed_files(tmp_path)
    outcomes = {"result": 0, "refused": 0}
    for seed in seeds:
        for k, data in enumerate(mutants(seed.read_bytes(), rng, 25)):
            path = tmp_path / f"mutant{k}{''.join(seed.suffixes)}"
            path.write_bytes(data)
            try:
                found = category(sniff(path))
            except InputError:
                outcomes["refused"] += 1
                continue
            try:
                read(path)
                outcomes["result"] += 1
            except MedfaceError:
                outcomes["refused"] += 1
            except Exception as exc:  # noqa: BLE001 - exactly what this test looks for
                pytest.fail(f"{path.name} (mutant of {seed.name}, sniffed as {found}) crashed the reader: {exc!r}")
    assert outcomes["result"] and outcomes["refused"]


_NOTE_MANIFEST = """
name = "notes"
title = "Reader notes"
version = "1.0.0"
category = "Testing"
contributors = ["medface tests"]
help = "Reads landmarks."

[[commands]]
id = "count"
help = "Count landmarks."
python_name = "notes_pkg.commands:count"

[[commands.parameters]]
name = "points"
type = "landmarks"
help = "Landmarks."
"""


def test_a_readers_note_reaches_the_results_warnings(medface_plugins, tmp_path):
    """A Latin-1 CSV read for a command: its note is in result.warnings (and so in the report),
    not only on the terminal."""
    import warnings

    import medface

    medface_plugins.add("notes_pkg", manifest=_NOTE_MANIFEST, modules={"commands.py": (
        "from medface.data import Result\n"
        "def count(points):\n"
        "    return Result(command='notes.count', summary={'n': len(points.ids)})\n")})
    path = tmp_path / "points.csv"
    path.write_bytes("id,x,y,z,description\nn,1,2,3,Nasion (r\xe9f\xe9rence)\n".encode("latin-1"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the note must not escape as a Python warning
        result = medface.run("notes.count", points=path)
    assert result.summary["n"] == 1
    assert any("Latin-1" in w for w in result.warnings), result.warnings
