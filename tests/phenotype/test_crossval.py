"""Repeated subject-disjoint splits (`phenotype crossval`): no test subject is ever fitted on or in
the gallery of its split, every figure comes with an interval over splits, rare conditions keep
at most six subjects, and the GestaltNet method trains and evaluates end to end."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

import medface
from medface.errors import ParameterError
from medface_phenotype import crossval
from medface_phenotype.dataset import read_dataset, write_phantom_dataset
from medface_phenotype.prepare import PreparedSet
from medface_phenotype.protocol import SETTINGS

GROUPS = {"freq_a": 12, "freq_b": 12, "freq_c": 12, "rare_x": 9, "rare_y": 4, "unaffected": 12}


def write_listed_dataset(root, *, columns=("sex", "age", "skin_tone")):
    """A data set whose photos are empty files (crossval's preparation is replaced in these
    tests): two photos per subject, with the subgroup columns given."""
    (root / "images").mkdir(parents=True)
    rows = []
    for label, n in GROUPS.items():
        for s in range(n):
            for j in range(2):
                image_id = f"{label}-{s}_{j}.png"
                (root / "images" / image_id).write_bytes(b"")
                row = {"image_id": image_id, "subject": f"{label}-{s}", "label": label, "sex": "FM"[s % 2],
                       "age": str(22 + 5 * s), "skin_tone": ["I", "III", "V"][s % 3]}
                rows.append({k: v for k, v in row.items() if k in ("image_id", "subject", "label") + columns})
    with open(root / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return root


class LabelMethod:
    """An encoder that sees the label through noise (a perfect-ish method that needs no photos);
    it records what each fit was given."""

    def __init__(self, name="label oracle", noise=0.3, probabilities=True):
        self.name, self.noise, self.with_probs = name, noise, probabilities
        self.fits: list[dict] = []

    def fit(self, ds, prepared, train_idx, val_idx, classes, seed):
        self.fits.append({"train": np.asarray(train_idx), "val": np.asarray(val_idx), "classes": list(classes)})
        self.classes, self.seed = list(classes), seed

    def embed(self, ds, prepared, idx):
        names = sorted(set(ds.labels))
        rng = np.random.default_rng(self.seed)
        emb = np.eye(len(names))[[names.index(ds.records[i].label) for i in idx]]
        emb = emb + self.noise * rng.normal(size=emb.shape)
        return emb / np.linalg.norm(emb, axis=1, keepdims=True)

    def probabilities(self, ds, prepared, idx):
        if not self.with_probs:
            return None
        p = np.full((len(idx), len(self.classes)), 0.1)
        for row, i in enumerate(idx):
            if ds.records[i].label in self.classes:
                p[row, self.classes.index(ds.records[i].label)] = 1.0
        return p / p.sum(axis=1, keepdims=True)


@pytest.fixture
def listed(tmp_path, monkeypatch):
    def every_photo_usable(ds, **kwargs):
        n = len(ds)
        return PreparedSet(np.zeros((n, 4, 4, 3), np.uint8), np.ones(n, bool), [""] * n)

    monkeypatch.setattr(crossval, "prepare_dataset", every_photo_usable)
    return write_listed_dataset(tmp_path / "data")


def test_no_test_subject_is_fitted_on_or_in_the_gallery_of_its_split(listed):
    method = LabelMethod()
    report = crossval.cross_validate(listed, [method], splits=3, seed=4, rare=["rare_x", "rare_y"])
    ds = read_dataset(listed)
    subject = {r.image_id: r.subject for r in ds.records}
    assert [s["seed"] for s in report["split_images"]] == [4, 5, 6]
    tests = []
    for fit, split in zip(method.fits, report["split_images"]):
        test_subjects = {subject[i] for i in split["test"]}
        fitted = {ds.records[i].subject for i in np.concatenate([fit["train"], fit["val"]])}
        gallery = {subject[i] for i in split["train"] + split["val"]}
        assert test_subjects and not test_subjects & fitted and not test_subjects & gallery
        assert fitted == gallery                      # the gallery is exactly what the method was fitted on
        assert fit["classes"] == ["freq_a", "freq_b", "freq_c", "unaffected"]
        tests.append(frozenset(split["test"]))
    assert len(set(tests)) == 3                       # each seed draws another split
    runs = report["methods"]["label oracle"]["per_split"]
    assert all(r["n_test_images"] == len(s["test"]) for r, s in zip(runs, report["split_images"]))


def test_every_figure_has_a_mean_and_an_interval_that_contains_it(listed):
    report = crossval.cross_validate(listed, [LabelMethod()], splits=3, rare=["rare_x", "rare_y"])
    block = report["methods"]["label oracle"]
    summary = block["summary"]
    for setting in SETTINGS:
        for k in (1, 5, 10, 30):
            mi = summary["settings"][setting][f"top{k}"]
            values = [run["settings"][setting]["top_k"][f"top{k}"] for run in block["per_split"]]
            assert mi["n"] == 3 and mi["mean"] == pytest.approx(np.mean(values))
            assert 0.0 <= mi["low"] <= mi["mean"] <= mi["high"] <= 1.0
    for mi in list(summary["softmax"].values()) + [summary["control_auroc"]]:
        assert mi["low"] <= mi["mean"] <= mi["high"]
    assert summary["settings"]["F/F"]["top1"]["mean"] > 0.9       # the oracle is far above chance ...
    counts = block["per_split"][0]["settings"]["F/F"]["counts"]["top1"]
    assert counts["successes"] / counts["n"] > 0.9 and counts["p_value"] < 1e-3   # ... and the test says so
    json.dumps(report, allow_nan=False)


def test_rare_conditions_keep_at_most_six_subjects_and_the_report_says_so(listed):
    report = crossval.cross_validate(listed, [LabelMethod()], splits=2, rare=["rare_x", "rare_y"])
    assert report["rare_cap"]["capped"] == {"rare_x": 9}
    assert "rare_x (9)" in report["rare_cap"]["note"]
    subject = {r.image_id: (r.subject, r.label) for r in read_dataset(listed).records}
    for split in report["split_images"]:
        used = {subject[i] for i in split["train"] + split["val"] + split["test"]}
        assert sum(lab == "rare_x" for _, lab in used) == 6
        assert sum(lab == "rare_y" for _, lab in used) == 4 and sum(lab == "freq_a" for _, lab in used) == 12


def test_subgroups_per_split_and_a_missing_column_is_reported(tmp_path, monkeypatch):
    def every_photo_usable(ds, **kwargs):
        return PreparedSet(np.zeros((len(ds), 4, 4, 3), np.uint8), np.ones(len(ds), bool), [""] * len(ds))

    monkeypatch.setattr(crossval, "prepare_dataset", every_photo_usable)
    data = write_listed_dataset(tmp_path / "data", columns=("sex", "age"))
    report = crossval.cross_validate(data, [LabelMethod(probabilities=False)], splits=2, rare=["rare_x", "rare_y"])
    block = report["methods"]["label oracle"]
    sub = block["summary"]["subgroups"]
    assert sub["skin tone"] == {"column": "skin_tone", "available": False,
                                "reason": "not available: the data set has no `skin_tone` column"}
    assert {r["group"] for r in sub["sex"]["groups"]} == {"F", "M"}
    n_test = sum(r["n_test_images"] for r in block["per_split"])
    assert sum(r["n_queries"] for r in sub["sex"]["groups"]) == n_test
    # without probabilities: no softmax figures, the control AUROC from the gallery's score
    assert block["per_split"][0]["softmax"] is None and block["summary"]["softmax"]["top1"] is None
    assert "nearest control" in block["summary"]["control_score"]
    assert block["summary"]["control_auroc"]["mean"] > 0.5
    from medface_phenotype.validation_doc import crossval_markdown

    doc = crossval_markdown(report)
    assert "Not available: the data set has no `skin_tone` column." in doc
    assert "## Hits against chance, per split" in doc and "rare_x (9)" in doc


def test_bad_requests_are_refused_clearly(listed):
    with pytest.raises(ParameterError, match="unknown method 'dlibb'"):
        crossval.cross_validate(listed, ["dlibb"], splits=2)
    with pytest.raises(ParameterError, match="splits"):
        crossval.cross_validate(listed, [LabelMethod()], splits=0)
    with pytest.raises(ParameterError, match="distinct names"):
        crossval.cross_validate(listed, [LabelMethod(), LabelMethod()], splits=2)
    with pytest.raises(ParameterError, match="unknown training setting"):
        crossval.cross_validate(listed, [LabelMethod()], splits=2, epoch=3)


@pytest.mark.slow
def test_gestaltnet_cross_validates_end_to_end_through_the_command(tmp_path):
    data = write_phantom_dataset(tmp_path / "data", subjects_per_condition={"hypertelorism": 5, "micrognathia": 5,
                                                                            "long_philtrum": 8},
                                 controls=5, severities=("severe",), photos_per_subject=1, seed=3, size=256)
    out = tmp_path / "out"
    result = medface.run("phenotype.crossval", data=data, out=out, splits=2, epochs=1, rare="long_philtrum",
                         device="cpu")
    report = json.loads((out / "crossval.json").read_text(encoding="utf-8"))
    block = report["methods"]["gestaltnet (from scratch)"]
    assert len(block["per_split"]) == 2 and report["rare_cap"]["capped"] == {"long_philtrum": 8}
    subject = {r.image_id: r.subject for r in read_dataset(data).records}
    for split in report["split_images"]:
        assert not {subject[i] for i in split["test"]} & {subject[i] for i in split["train"] + split["val"]}
    for setting in SETTINGS:
        mi = block["summary"]["settings"][setting]["top1"]
        assert mi["low"] <= mi["mean"] <= mi["high"]
    assert block["per_split"][0]["softmax"]["n_conditions"] == 2
    assert "mean [95 % CI]" in (out / "crossval.md").read_text(encoding="utf-8")
    assert result.summary["document"].endswith("crossval.md")
