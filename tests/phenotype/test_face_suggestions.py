"""Syndromes and genes from the face's ranking, and gallery entries by patient."""

from __future__ import annotations

import numpy as np
import pytest

from medface.errors import InputError
from medface_phenotype.dataset import Record
from medface_phenotype.face_suggestions import NOT_IN_RELEASE, face_suggestions
from medface_phenotype.gallery_add import PATIENT_PREFIX, patient_entries
from medface_phenotype.screening import RankedCondition


def _ranked(labels):
    return [RankedCondition(k, lab, round(0.9 - 0.1 * k, 4), None, False, f"s{k}", nearest_gallery_image=f"img{k}")
            for k, lab in enumerate(labels, start=1)]


def test_disease_labels_become_named_syndromes_with_genes_and_presets_give_none():
    found = face_suggestions(_ranked(["OMIM:100800", "hypertelorism", "OMIM:999999999"]))
    rows = found["suggested_syndromes"]
    assert [r["id"] for r in rows] == ["OMIM:100800", "OMIM:999999999"]  # presets are not syndromes
    assert rows[0]["name"] == "Achondroplasia" and rows[0]["genes"] == ["FGFR3"]
    assert rows[0]["gallery_image"] == "img1" and rows[0]["distance"] == pytest.approx(1 - rows[0]["similarity"])
    assert rows[1]["name"] == NOT_IN_RELEASE and rows[1]["genes"] == []
    assert found["suggested_genes"][0] == {"rank": 1, "gene": "FGFR3", "similarity": 0.8, "disease": "OMIM:100800"}
    assert face_suggestions(_ranked(["hypertelorism", "unaffected"])) is None


def _record(subject, label, k):
    return Record(f"{subject}_{k}.png", subject, label, None, {})


def test_a_patients_photos_become_one_entry_and_two_labels_are_refused():
    rng = np.random.default_rng(0)
    records = [_record("a", "OMIM:100800", 0), _record("b", "OMIM:101600", 0), _record("a", "OMIM:100800", 1)]
    emb = rng.normal(size=(3, 8))
    out, ids, subjects, labels, hashes = patient_entries(emb, records, ["h1", "h2", "h3"])
    assert ids == [PATIENT_PREFIX + "a", PATIENT_PREFIX + "b"] and labels == ["OMIM:100800", "OMIM:101600"]
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    mean = unit[[0, 2]].mean(axis=0)
    assert np.allclose(out[0], mean / np.linalg.norm(mean))
    assert len(set(hashes)) == 2 and subjects == ["a", "b"]
    with pytest.raises(InputError, match="labels"):
        patient_entries(emb, records[:2] + [_record("a", "OMIM:101600", 1)], ["h1", "h2", "h3"])
