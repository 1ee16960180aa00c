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


def test_evaluate_reports_counts_against_chance_and_subgroups(tiny, tmp_path):
    from medface_phenotype import ScreeningEvaluation
    from medface_phenotype.validation_doc import write_evaluation

    _, data, model = tiny
    report = ScreeningEvaluation(model).evaluate(data)
    for name, s in report["settings"].items():
        if s["skipped"]:
            continue
        c = s["counts"]["top1"]
        assert c["n"] == s["n_queries"] and c["successes"] == round(s["top_k_per_image"]["top1"] * s["n_queries"])
        assert 0.0 <= c["p_value"] <= 1.0 and c["chance"] == pytest.approx(s["chance"]["top1"])
    assert set(report["subgroups"]) == {"sex", "age band", "skin tone", "style"}
    test_labels = {r.image_id: r.label for r in read_dataset(data).records}
    split = json.loads((model / "split.json").read_text(encoding="utf-8"))
    for name, table in report["subgroups"].items():
        assert table["available"], name
        # every held-out photo falls in exactly one group of each grouping
        assert sum(r["n_queries"] for r in table["groups"]) == report["n_test_images"] == len(split["test"])
        assert sum(r["n_control"] for r in table["groups"]) == sum(test_labels[i] == "unaffected"
                                                                    for i in split["test"])
    assert [r["group"] for r in report["subgroups"]["style"]["groups"]] == ["photo"]
    assert {r["group"] for r in report["subgroups"]["sex"]["groups"]} <= {"F", "M"}
    doc = write_evaluation(report, tmp_path).read_text(encoding="utf-8")
    assert "## Hits against chance" in doc and "## Subgroups" in doc and "### age band" in doc


def test_subgroup_tables_say_which_column_the_data_set_lacks_and_name_a_bad_value(tmp_path):
    from medface.errors import InputError
    from medface_phenotype.dataset import Record
    from medface_phenotype.evaluate import subgroup_tables

    records = [Record(f"p{i}", f"s{i}", lab, tmp_path / f"p{i}.png", {"age": age, "style": "photo"})
               for i, (lab, age) in enumerate([("a", "25"), ("a", "65"), ("unaffected", "30"), ("b", "44")])]
    labels = np.array([r.label for r in records])
    tables = subgroup_tables(records, labels, np.array([1.0, 2.0, np.nan, 1.0]), np.array([0.9, 0.8, 0.1, 0.7]))
    assert tables["sex"] == {"column": "sex", "available": False,
                             "reason": "not available: the data set has no `sex` column"}
    assert tables["skin tone"]["reason"] == "not available: the data set has no `skin_tone` column"
    assert [r["group"] for r in tables["age band"]["groups"]] == ["20-39", "40-59", "60+"]
    records[1].extra["age"] = "sixty"
    with pytest.raises(InputError, match="p1.*sixty"):
        subgroup_tables(records, labels, np.array([1.0, 2.0, np.nan, 1.0]), None)


def test_a_gallery_of_syndrome_patients_gives_syndromes_and_genes_from_the_face(tiny, tmp_path):
    """gallery-add --patients: one entry per patient; screening then names syndromes (ids and
    names of the pinned annotations, distance, the gallery entry behind each) and their genes."""
    from medface_phenotype import hpo_annotations as HA

    _, _, model = tiny
    grown = tmp_path / "model"
    shutil.copytree(model, grown)
    labels = ("OMIM:100800", "OMIM:101600")
    cases = write_phantom_dataset(tmp_path / "syn", subjects_per_condition={lab: 2 for lab in labels}, controls=0,
                                  photos_per_subject=2, seed=4, size=256)
    added = medface.run("phenotype.gallery-add", model=grown, data=cases, patients=True)
    gallery = load_gallery(grown)
    entries = [i for i in gallery.image_ids if i.startswith("patient:")]
    assert added.summary["entries"] == "patients" and len(entries) == added.summary["added"] == 4
    assert np.allclose(np.linalg.norm(gallery.embeddings[-4:], axis=1), 1.0, atol=1e-5)
    photo = sorted((cases / "images").glob("*.png"))[0]
    result = medface.run("phenotype.screen", image=photo, model=grown, top=10)
    rows = result.tables["suggested syndromes"]
    known = HA.release_diseases()
    assert {r["id"] for r in rows} == set(labels)
    assert all(r["name"] == known[r["id"]].name and r["gallery_image"].startswith("patient:") for r in rows)
    assert all(abs(r["distance"] - (1 - r["similarity"])) < 1e-3 for r in rows)
    genes = {g["gene"]: g["disease"] for g in result.tables["suggested genes"]}
    assert genes and all(gene in known[disease].genes for gene, disease in genes.items())
    assert result.summary["top_syndrome"].startswith(rows[0]["id"])
    assert any(m.name.startswith("HPO annotations") for m in result.provenance.models)


def test_train_fusion_on_simulated_patients_then_screen_fuses_face_and_terms(tiny, tmp_path):
    """train-fusion: patients not in the gallery (a gallery patient is refused), held-out figures
    for face, terms and fusion, fusion.json in the package; screen --hpo then ranks by both."""
    from medface.errors import InputError
    from medface_phenotype import hpo_annotations as HA

    _, _, model = tiny
    grown = tmp_path / "model"
    shutil.copytree(model, grown)
    labels = ("OMIM:100800", "OMIM:101600")
    gallery_set = write_phantom_dataset(tmp_path / "gallery", subjects_per_condition={lab: 2 for lab in labels},
                                        controls=0, photos_per_subject=1, seed=4, size=256)
    medface.run("phenotype.gallery-add", model=grown, data=gallery_set, patients=True)
    with pytest.raises(InputError, match="in the gallery"):
        medface.run("phenotype.train-fusion", model=grown, data=gallery_set)
    patients = write_phantom_dataset(tmp_path / "patients", subjects_per_condition={lab: 3 for lab in labels},
                                     controls=0, photos_per_subject=1, seed=5, size=256)
    trained = medface.run("phenotype.train-fusion", model=grown, data=patients, repeats=2)
    assert trained.summary["patients"] == 6 and (grown / "fusion.json").is_file()
    rows = {r["ranking"]: r for r in trained.tables["held-out simulated patients"]}
    assert set(rows) == {"gestalt", "terms", "terms_in_gallery", "fused"}
    assert all(0 <= r["top1"] <= r["top10"] <= 1 for r in rows.values())
    terms = sorted(t for t, f in HA.release_diseases()["OMIM:100800"].features.items() if f and f >= 0.8)[:5]
    photo = sorted((patients / "images").glob("*.png"))[0]
    screened = medface.run("phenotype.screen", image=photo, model=grown, hpo=",".join(terms))
    fused = screened.tables["suggested syndromes (face and terms)"]
    assert screened.metrics["clinician_terms"]["fused"] is True and len(fused) == 10
    assert {"OMIM:100800", "OMIM:101600"} & {r["id"] for r in fused}
    assert all(r["face_similarity"] is not None for r in fused if r["id"] in labels)
    assert screened.summary["fused_top_syndrome"].startswith(fused[0]["id"])
    assert not any("not fused" in w for w in screened.warnings)
