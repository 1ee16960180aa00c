"""The phenotype logic API (docs/phenotype.md, "Python API"): screening from a script, without
files, gives the same answer as the command, which is only an adapter over it."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

import medface
from medface.errors import ParameterError
from medface.io import read_image
from medface_phenotype import PhantomCohort, RankedCondition, Screener, ScreeningResult


@pytest.fixture(scope="module")
def screener():
    return Screener()


def test_the_documented_example_runs(repo_root, monkeypatch, capsys):
    text = (repo_root / "docs" / "phenotype.md").read_text(encoding="utf-8")
    section = text.split("## Python API", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(repo_root)
    namespace: dict = {}
    exec(compile(code, "docs/phenotype.md", "exec"), namespace)
    found = namespace["found"]
    assert isinstance(found, ScreeningResult) and found.screened
    assert namespace["heat"].shape == (112, 112) and 0.0 <= namespace["heat"].min() <= namespace["heat"].max() <= 1.0
    assert namespace["picture"].shape == (224, 224, 3) and namespace["picture"].dtype == np.uint8
    assert found.verdict in capsys.readouterr().out


def test_screening_an_array_ranks_like_the_command(repo_root, screener):
    photo = repo_root / "sample_data" / "condition_hypertelorism.png"
    found = screener.screen(read_image(photo).pixels)[0]
    result = medface.run("phenotype.screen", image=photo)
    assert [c.to_dict() for c in found.conditions] == result.tables["conditions"]
    assert all(isinstance(c, RankedCondition) for c in found.conditions)
    assert round(found.syndromic_score, 4) == result.summary["syndromic_score"]
    assert found.face.points5.shape == (5, 2) and found.landmarks.shape[1] == 2
    # without an output folder nothing is drawn: the command declares the aligned face and the face's
    # points on the photo only (no attention map is computed)
    assert [o.name for o in result.declared] == ["aligned_face", "face_points"] and not result.outputs


def test_batch_screening_agrees_with_one_by_one(repo_root, screener):
    photo = repo_root / "sample_data" / "photo_frontal.png"
    wall = np.full((300, 400, 3), 170, np.uint8)
    batch = Screener(top=5).screen_batch([photo, wall])
    single = screener.screen(read_image(photo))[0]
    assert [c.condition for c in batch[0].conditions] == [c.condition for c in single.conditions[:5]]
    assert np.allclose([c.similarity for c in batch[0].conditions], [c.similarity for c in single.conditions[:5]],
                       atol=2e-4)
    assert batch[0].syndromic_score == pytest.approx(single.syndromic_score, abs=1e-4)
    refused = batch[1]
    assert not refused.screened and refused.conditions == []
    assert refused.verdict == "refused: no face was found in the photo"
    assert [c.name for c in refused.quality.checks if c.status == "fail"] == ["face_found"]


def test_a_refused_photo_has_its_reasons_and_no_ranking(screener):
    found = screener.screen([np.full((60, 20, 3), 128, np.uint8)])[0]
    assert not found.screened and found.quality.refused and found.conditions == []
    assert "too small" in found.verdict and found.attention is None and found.top_condition is None


def test_top_must_be_positive():
    with pytest.raises(ParameterError, match="top"):
        Screener(top=0)


def test_phantom_data_table_matches_the_written_data_set(tmp_path):
    cohort = PhantomCohort.from_names(subjects=1, rare_subjects=0, controls=1,
                                      rare="hypotelorism,thin_upper_lip_vermilion,hemifacial_microsomia",
                                      severities="severe", photos=1, seed=4)
    assert "hypotelorism" not in cohort.photos_per_label()  # a rare condition given no subjects
    result = medface.run("phenotype.phantom-data", out=tmp_path, subjects=1, rare_subjects=0, controls=1,
                         severities="severe", photos=1, seed=4)
    with open(result.outputs["metadata"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    written: dict[str, int] = {}
    for row in rows:
        written[row["label"]] = written.get(row["label"], 0) + 1
    assert {r["label"]: r["photos"] for r in result.tables["photos per label"]} == written
    assert written == cohort.photos_per_label() and result.summary["photos"] == len(rows)
    assert all((tmp_path / "images" / row["image_id"]).is_file() for row in rows)


def test_repeated_screens_do_not_repeat_mediapipes_protobuf_warning(repo_root):
    """A batch of many photos must not print the same library deprecation warning per photo."""
    import warnings

    photo = repo_root / "sample_data" / "photo_frontal.png"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for _ in range(2):
            medface.run("phenotype.screen", image=photo)
    assert not [w for w in seen if "GetPrototype" in str(w.message)]
