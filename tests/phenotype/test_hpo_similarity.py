"""Ranking syndromes by a patient's HPO terms and genes by those syndromes
(medface_phenotype.hpo_similarity) on the pinned HPO release."""

from __future__ import annotations

import json

import pytest

from medface.errors import InputError, ParameterError
from medface_phenotype.hpo_similarity import (parse_terms, rank_by_terms, read_terms_file, suggested_genes)

WILLIAMS = "OMIM:194050"


def test_terms_are_read_from_a_list_a_text_file_and_a_phenopacket(tmp_path):
    assert parse_terms("HP:0000316, HP:0000343\nHP:0000316") == ["HP:0000316", "HP:0000343"]
    with pytest.raises(ParameterError, match="hypertelorism is not HPO term ids"):
        parse_terms("hypertelorism")
    (tmp_path / "terms.txt").write_text("# recorded at the visit\nHP:0000316 Hypertelorism\n\nHP:0000343\n")
    assert read_terms_file(tmp_path / "terms.txt") == ["HP:0000316", "HP:0000343"]
    packet = {"id": "p1", "phenotypicFeatures": [{"type": {"id": "HP:0000316", "label": "Hypertelorism"}},
                                                  {"type": {"id": "HP:0000347"}, "excluded": True}]}
    (tmp_path / "p1.json").write_text(json.dumps(packet))
    assert read_terms_file(tmp_path / "p1.json") == ["HP:0000316"]  # an excluded feature is not observed
    (tmp_path / "bad.json").write_text('{"phenotypicFeatures": [{"kind": 1}]}')
    with pytest.raises(InputError, match="not a phenopacket"):
        read_terms_file(tmp_path / "bad.json")
    (tmp_path / "bad.txt").write_text("long philtrum\n")
    with pytest.raises(InputError, match="does not start with an HPO term id"):
        read_terms_file(tmp_path / "bad.txt")


@pytest.fixture(scope="module")
def catalogue():
    from medface_phenotype.hpo_annotations import face_terms, facial_catalogue, read_diseases

    return facial_catalogue(read_diseases(), face_terms(), minimum_terms=10)


def test_a_patient_with_a_syndromes_facial_terms_ranks_it_near_the_top_and_its_gene_with_it(catalogue):
    williams = next(d for d in catalogue.diseases if d.id == WILLIAMS)
    frequent = sorted(williams.features, key=lambda t: -williams.features[t])[:6]
    ranked = rank_by_terms(frequent, catalogue.diseases, top=None)
    ids = [r.id for r in ranked]
    assert len(ranked) == len(catalogue.diseases) and WILLIAMS in ids[:10], ids.index(WILLIAMS)
    assert [r.similarity for r in ranked] == sorted((r.similarity for r in ranked), reverse=True)
    genes = suggested_genes(ranked[:10], top=None)
    assert "ELN" in [g["gene"] for g in genes]
    eln = next(g for g in genes if g["gene"] == "ELN")
    assert eln["disease"] == WILLIAMS or eln["similarity"] >= ranked[ids.index(WILLIAMS)].similarity
    # an unrelated patient (features of the limbs only) ranks it lower
    unrelated = rank_by_terms(["HP:0001156", "HP:0001770"], catalogue.diseases, top=None)  # brachydactyly, toe syndactyly
    assert [r.id for r in unrelated].index(WILLIAMS) > ids.index(WILLIAMS)


def test_an_unknown_or_missing_term_is_refused(catalogue):
    with pytest.raises(ParameterError, match="HP:9999999: not in the HPO release"):
        rank_by_terms(["HP:0000316", "HP:9999999"], catalogue.diseases)
    with pytest.raises(ParameterError, match="no HPO terms"):
        rank_by_terms([], catalogue.diseases)
