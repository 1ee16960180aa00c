"""`medface sample-data`: the committed files are consistent, and regeneration is bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medface.cli import main
from medface.data.provenance import sha256_path
from medface.io import read_image, read_landmarks, read_mesh, read_volume

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_committed_sample_data_matches_its_index_and_size_limit():
    index = json.loads((SAMPLE / "index.json").read_text(encoding="utf-8"))
    assert "synthetic" in index["description"].lower()
    total = 0
    for name, entry in index["files"].items():
        path = SAMPLE / name
        assert path.exists(), name
        assert sha256_path(path) == entry["sha256"], f"{name} changed without regenerating the index"
        assert entry["description"]
        total += entry["bytes"]
    assert total < 20e6


def test_committed_sample_files_read_back():
    ct = read_volume(SAMPLE / "head_ct.nii.gz")
    dicom = read_volume(SAMPLE / "head_ct_dicom")
    assert ct.array.min() <= -950 and ct.array.max() >= 1500  # air and bone in HU
    assert dicom.units == "HU" and dicom.spacing[0] == pytest.approx(3.0)
    for name in ("skull", "mandible", "skin"):
        mesh = read_mesh(SAMPLE / f"{name}.ply")
        assert mesh.is_watertight(), name
    marks = read_landmarks(SAMPLE / "landmarks.mrk.json")
    assert len(marks) > 60 and "n" in marks and "prn" in marks
    photo = read_image(SAMPLE / "photo_frontal.png")
    assert photo.width == 512


def test_sample_data_is_regenerated_bit_for_bit(tmp_path, capsys):
    for out in ("a", "b"):
        assert main(["sample-data", "--out", str(tmp_path / out), "--seed", "4"]) == 0
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 100
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    assert "sample files" in capsys.readouterr().out
