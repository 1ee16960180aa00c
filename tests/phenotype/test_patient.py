"""Patients, not photos: several photos of one patient combined into one ranking."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from medface_phenotype.patient import mean_embedding, screen_patient_command

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data"


def test_the_mean_embedding_is_the_unit_direction_of_the_mean():
    e = np.array([[3.0, 0.0], [0.0, 0.5]])
    m = mean_embedding(e)
    assert np.isclose(np.linalg.norm(m), 1.0) and np.allclose(m, [np.sqrt(0.5), np.sqrt(0.5)])


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    folder = tmp_path_factory.mktemp("Jane_Doe_MRN12345")
    shutil.copy(SAMPLE / "condition_hypertelorism.png", folder / "a_Jane_Doe_front.png")
    shutil.copy(SAMPLE / "condition_hypertelorism.png", folder / "b_Jane_Doe_again.png")
    (folder / "c_Jane_Doe_broken.png").write_bytes((SAMPLE / "photo_frontal.png").read_bytes()[:300])
    return folder


def test_a_patients_photos_combine_and_an_unreadable_one_is_listed_not_lost(patient):
    result = screen_patient_command(patient)
    assert result.summary["verdict"] == "2 of 3 photos combined"
    rows = result.tables["photos"]
    assert [r["combined"] for r in rows] == [True, True, False]
    assert rows[2]["verdict"].startswith("unreadable")
    # two copies of one photo: the patient's ranking is that photo's ranking
    assert result.summary["top_condition"] == rows[0]["top_condition"]
    assert result.tables["conditions"][0]["similarity"] == pytest.approx(rows[0]["top_similarity"], abs=1e-3)
    text = json.dumps(result.to_dict())
    assert "Jane" not in text and "MRN12345" not in text  # photo names may name the patient


def test_a_patient_whose_photos_all_fail_the_gate_is_refused(tmp_path):
    from PIL import Image

    Image.new("RGB", (400, 400), (128, 128, 128)).save(tmp_path / "blank.png")
    result = screen_patient_command(tmp_path)
    assert result.refused and "quality gate" in result.refusal
    assert result.tables["photos"][0]["combined"] is False
