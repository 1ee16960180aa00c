"""End to end on a tiny phantom data set: train a package, evaluate it on GMDB's protocol, add a
condition to its gallery without retraining (the figures of the real run are in
docs/validation/phenotype.md; here only the mechanics that a user relies on are checked)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest

import medface
from medface.runtime import read_card, verify_package
from medface_phenotype.dataset import read_dataset, write_phantom_dataset
from medface_phenotype.gallery import load_gallery


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    data = write_phantom_dataset(root / "data", subjects_per_condition={"hypertelorism": 4, "micrognathia": 4,
                                                                        "long_philtrum": 2},
                                 controls=4, severities=("severe",), photos_per_subject=1, seed=3, size=256)
    model = root / "model"
    medface.run("phenotype.train", data=data, out=model, epochs=2, min_subjects=3, batch_size=8)
    return root, data, model


def test_training_writes_a_verified_synthetic_package_with_gallery_and_split(tiny):
    _, data, model = tiny
    assert verify_package(model) == []
    card = read_card(model)
    assert card.is_synthetic and "synthetic" in card.training_data
    scr = card.extra["screening"]
    assert scr["rare"] == ["long_philtrum"] and "long_philtrum" not in card.labels
    assert set(card.labels) == {"hypertelorism", "micrognathia", "unaffected"}
    assert scr["temperature"] > 0
    gallery = load_gallery(model)
    assert "long_philtrum" in gallery.labels and "unaffected" not in gallery.labels
    split = json.loads((model / "split.json").read_text(encoding="utf-8"))
    ds = read_dataset(data)
    subject = {r.image_id: r.subject for r in ds.records}
    test_subjects = {subject[i] for i in split["test"]}
    assert test_subjects and not test_subjects & {subject[i] for i in split["train"] + split["val"]}
    assert not set(split["test"]) & set(gallery.image_ids)


def test_evaluate_reports_the_four_gmdb_settings(tiny):
    root, data, model = tiny
    out = root / "eval"
    result = medface.run("phenotype.evaluate", model=model, data=data, out=out)
    report = json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
    assert set(report["settings"]) == {"F/F", "R/R", "F/F+R", "R/F+R"}
    ff = report["settings"]["F/F"]
    assert ff["n_conditions"] == 2 and ff["chance"]["top1"] == pytest.approx(0.5)
    assert 0 <= ff["top_k"]["top1"] <= 1
    doc = (out / "phenotype.md").read_text(encoding="utf-8")
    assert "F/F+R" in doc and "synthetic" in doc.lower()
    assert result.summary["document"].endswith("phenotype.md")
    assert any(p.suffix == ".png" for p in (out / "figures").iterdir())


def test_gallery_add_makes_a_new_condition_matchable(tiny, tmp_path):
    root, data, model = tiny
    grown = tmp_path / "model"
    shutil.copytree(model, grown)
    new = write_phantom_dataset(tmp_path / "new", subjects_per_condition={"hypotelorism": 2}, controls=0,
                                severities=("severe",), seed=9, size=256)
    before = load_gallery(grown)
    result = medface.run("phenotype.gallery-add", model=grown, data=new)
    after = load_gallery(grown)
    assert result.summary["new_conditions"] == "hypotelorism"
    assert len(after) == len(before) + result.summary["added"] and "hypotelorism" in after.labels
    # a photo of the added case now finds its condition at distance ~0
    row = next(csv.DictReader(open(new / "metadata.csv", encoding="utf-8")))
    screened = medface.run("phenotype.screen", image=new / "images" / row["image_id"], model=grown)
    top = screened.tables["conditions"][0]
    assert top["condition"] == "hypotelorism" and top["similarity"] > 0.99
    assert np.isfinite(screened.summary["syndromic_score"])


def test_the_evaluation_logic_needs_no_files_and_gives_the_commands_report(tiny, tmp_path):
    from medface_phenotype import ScreeningEvaluation

    root, data, model = tiny
    before = sorted(p.name for p in model.iterdir())
    report = ScreeningEvaluation(model).evaluate(data)
    assert sorted(p.name for p in model.iterdir()) == before  # nothing written into the package
    out = tmp_path / "eval"
    medface.run("phenotype.evaluate", model=model, data=data, out=out)
    assert json.loads(json.dumps(report)) == json.loads((out / "evaluation.json").read_text(encoding="utf-8"))
