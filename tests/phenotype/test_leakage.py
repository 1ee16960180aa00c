"""An evaluation never silently scores queries that are already in the gallery: the same
subject id, the same image file or the same image re-encoded (identical embedding)."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest

import medface
from medface.data.provenance import sha256_file
from medface.errors import InputError
from medface_phenotype.dataset import write_phantom_dataset
from medface_phenotype.gallery import load_gallery, save_gallery
from medface_phenotype.leakage import find_overlap, refuse_or_drop
from medface_phenotype.screening import DEMO_MODEL


def test_overlap_is_found_by_subject_by_hash_and_by_embedding():
    rng = np.random.default_rng(0)
    gallery = rng.normal(size=(5, 8))
    queries = np.stack([gallery[2] * 3.0, rng.normal(size=8), rng.normal(size=8), rng.normal(size=8)])
    found = find_overlap(["a", "b", "c", "d", "e"], ["x", "b", "y", "z"],
                         gallery_hashes=["h0", "h1", "", "h3", "h4"], query_hashes=["", "", "h3", ""],
                         gallery_emb=gallery, query_emb=queries)
    assert found.by_subject == [1]          # subject b is in the gallery
    assert found.by_hash == [2]             # the file of gallery row 3 under a new subject id
    assert found.by_embedding == [0]        # a scaled copy of gallery row 2: the same direction
    assert found.queries.tolist() == [0, 1, 2]
    with pytest.raises(InputError, match="3 of 4 queries are already in the gallery"):
        refuse_or_drop(found, drop=False)
    assert refuse_or_drop(found, drop=True).tolist() == [False, False, False, True]


def test_an_empty_hash_never_matches_and_distinct_queries_pass():
    found = find_overlap(["a"], ["b"], gallery_hashes=[""], query_hashes=[""], gallery_emb=np.eye(2)[:1],
                         query_emb=np.eye(2)[1:])
    assert not found and refuse_or_drop(found, drop=False).all()


def test_identical_embeddings_across_labels_point_at_the_model_or_mislabelled_duplicates():
    """A model that maps distinct faces to one point makes them look like the same image (seen
    training a first syndrome model): the message says so when the labels differ."""
    rng = np.random.default_rng(1)
    gallery = rng.normal(size=(4, 8))
    queries = np.stack([gallery[0] * 2.0, gallery[1] * 0.5])
    found = find_overlap(["a", "b", "c", "d"], ["x", "y"], gallery_emb=gallery, query_emb=queries,
                         gallery_labels=["S1", "S2", "S3", "S4"], query_labels=["S1", "S9"])
    assert found.by_embedding == [0, 1] and found.cross_label == 1
    with pytest.raises(InputError, match="1 of the identical-embedding matches carry another label"):
        refuse_or_drop(found, drop=False)
    same = find_overlap(["a"], ["x"], gallery_emb=gallery[:1], query_emb=gallery[:1], gallery_labels=["S1"],
                        query_labels=["S1"])
    assert same.cross_label == 0 and "another label" not in same.describe()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    """Subjects of the demo model's own data set, rendered again (seed 1, as in docs/phenotype.md)."""
    root = tmp_path_factory.mktemp("leak")
    return write_phantom_dataset(root / "s", subjects_per_condition={"hypertelorism": 2, "micrognathia": 2},
                                 controls=2, severities=("moderate", "severe"), photos_per_subject=1, seed=1,
                                 size=256)


def test_evaluate_refuses_queries_whose_subjects_trained_the_model(regenerated, tmp_path):
    gallery_subjects = set(load_gallery(DEMO_MODEL).subjects)
    with open(regenerated / "metadata.csv", encoding="utf-8") as fh:
        subjects = {row["subject"] for row in csv.DictReader(fh)}
    assert subjects & gallery_subjects, "the regenerated subjects must be training subjects of the demo model"
    with pytest.raises(InputError, match="already in the gallery.*by subject id"):
        medface.run("phenotype.evaluate", model=DEMO_MODEL, data=regenerated, out=tmp_path / "refused")
    assert not (tmp_path / "refused" / "evaluation.json").exists()


def test_evaluate_drops_and_counts_overlap_when_asked(tmp_path):
    """A data set mixing a gallery subject with new subjects: the overlapping queries are left out
    and counted, the others evaluated."""
    data = write_phantom_dataset(tmp_path / "mixed", subjects_per_condition={"hypertelorism": 2,
                                                                             "micrognathia": 2},
                                 controls=2, severities=("severe",), photos_per_subject=1, seed=77, size=256)
    rows = list(csv.DictReader(open(data / "metadata.csv", encoding="utf-8")))
    gallery = load_gallery(DEMO_MODEL)
    row = next(r for r in rows if r["label"] == "hypertelorism")
    row["subject"] = gallery.subjects[gallery.labels.index("hypertelorism")]  # this person is in the gallery
    with open(data / "metadata.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    result = medface.run("phenotype.evaluate", model=DEMO_MODEL, data=data, out=tmp_path / "out", drop_overlap=True)
    leak = result.metrics["leakage"]
    assert leak["dropped"] == leak["by_subject"] == 1
    assert result.metrics["n_test_images"] == len(rows) - 1
    assert any("left out" in w for w in result.warnings)


def test_evaluate_refuses_a_gallery_image_filed_under_a_new_subject(tmp_path):
    """The same file as a gallery image, under a subject id the gallery has never seen."""
    model = tmp_path / "model"
    shutil.copytree(DEMO_MODEL, model)
    data = write_phantom_dataset(tmp_path / "copy", subjects_per_condition={"hypertelorism": 2}, controls=1,
                                 severities=("severe",), photos_per_subject=1, seed=78, size=256)
    rows = list(csv.DictReader(open(data / "metadata.csv", encoding="utf-8")))
    gallery = load_gallery(model)
    gallery.hashes[0] = sha256_file(data / "images" / rows[0]["image_id"])  # the gallery holds this very file
    save_gallery(gallery, model)
    with pytest.raises(InputError, match="by image hash"):
        medface.run("phenotype.evaluate", model=model, data=data, out=tmp_path / "out")
