"""Simulated patients' recorded terms, and ranking syndromes by terms alone
(medface_phenotype.simulated_patients, hpo_similarity.SetSimilarity)."""

from __future__ import annotations

import numpy as np
import pytest

from medface_phenotype import hpo_annotations as HA
from medface_phenotype import hpo_similarity as HS
from medface_phenotype import simulated_patients as P

DISEASE = HA.Disease("OMIM:1", "Test", {"HP:0000001": 1.0, "HP:0000002": 0.0001, "HP:0000003": None})
POOL = (["HP:0000001", "HP:0000009"], np.array([0.5, 0.5]))


def test_terms_are_drawn_by_frequency_and_imprecise_ones_replaced_by_a_parent():
    rng = np.random.default_rng(1)
    parents = {"HP:0000001": ["HP:0000100"], "HP:0000003": ["HP:0000300"]}
    patients = [P.simulate_patient(DISEASE, rng, POOL, parents=lambda t: parents.get(t, []), imprecision=0.5,
                                   noise_mean=0.0) for _ in range(2000)]
    always = sum(("HP:0000001" in p.terms) or ("HP:0000100" in p.terms) for p in patients)
    assert always == len(patients)  # frequency 1: recorded every time, exact or as its parent
    as_parent = sum("HP:0000100" in p.terms for p in patients) / len(patients)
    assert abs(as_parent - 0.5) < 0.05
    unknown = sum(("HP:0000003" in p.terms) or ("HP:0000300" in p.terms) for p in patients) / len(patients)
    assert abs(unknown - HA.UNKNOWN_FREQUENCY) < 0.05  # no recorded frequency: the assumed one
    assert sum("HP:0000002" in p.terms for p in patients) < 5


def test_noise_terms_are_never_the_disease_own_and_the_term_count_is_capped():
    rng = np.random.default_rng(2)
    many = HA.Disease("OMIM:2", "Many", {f"HP:{i:07d}": 1.0 for i in range(100, 130)})
    for _ in range(200):
        p = P.simulate_patient(DISEASE, rng, POOL, parents=lambda t: [], noise_mean=3.0)
        assert "HP:0000009" in p.terms or p.noise == 0
        assert p.terms.count("HP:0000001") == 1
        q = P.simulate_patient(many, rng, POOL, parents=lambda t: [], noise_mean=0.0, max_terms=8)
        assert len(q.terms) == 8


def test_rates_carry_wilson_intervals():
    r = P.rate(7, 10)
    assert r["rate"] == 0.7 and r["low"] < 0.7 < r["high"] and r["n"] == 10
    assert P.rate(0, 0)["rate"] is None


@pytest.fixture(scope="module")
def release_catalogue():
    from medface_phenotype import syndromes as S

    diseases = HA.read_diseases()
    return [diseases[s.id] for s in S.catalogue().syndromes]


def test_the_vectorised_set_similarity_equals_pyhpo(release_catalogue):
    from pyhpo import HPOSet

    chosen = release_catalogue[::97]
    sets = HS.SetSimilarity(chosen)
    patient = ["HP:0000316", "HP:0000347", "HP:0001250", "HP:0000118", "HP:0011220"]
    ours = sets.scores(patient)
    reference = HPOSet.from_queries(patient)
    theirs = [reference.similarity(HPOSet.from_queries(HS.SetSimilarity._ids(d.features)), **HS.SIMILARITY)
              for d in sets.diseases]
    assert np.allclose(ours, theirs, atol=1e-9)


def test_terms_alone_find_most_simulated_patients_syndromes_among_the_first_ten(release_catalogue):
    rng = np.random.default_rng(0)
    pool = P.noise_pool(release_catalogue)
    chosen = rng.choice(len(release_catalogue), 40, replace=False)
    patients = [P.simulate_patient(release_catalogue[i], rng, pool) for i in chosen]
    result = P.evaluate_terms_only(patients, release_catalogue).to_dict()
    assert result["syndromes"] == len(release_catalogue) >= 150
    assert result["top10"]["rate"] >= 0.7, result  # 0.93 on 300 patients (docs/phenotype.md)
    assert result["top1"]["rate"] >= 0.4, result
    assert result["gene_top10"]["rate"] >= 0.6, result
