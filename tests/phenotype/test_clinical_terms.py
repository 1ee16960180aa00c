"""A clinician's terms beside a screening (medface_phenotype.clinical_terms; screen --hpo)."""

from __future__ import annotations

import hashlib

import pytest

from medface.data import Result
from medface.errors import ParameterError
from medface_phenotype import clinical_terms as CT
from medface_phenotype import hpo_annotations as HA


def test_terms_from_the_option_and_a_file_are_merged_and_bad_ones_refused_before_any_screening(tmp_path):
    listed = tmp_path / "terms.txt"
    listed.write_text("HP:0000347 Micrognathia\n# a comment\nHP:0000316\n", encoding="utf-8")
    assert CT.recorded_terms("HP:0000316", listed) == ["HP:0000316", "HP:0000347"]
    assert CT.recorded_terms("", None) == []
    with pytest.raises(ParameterError, match="not HPO term ids"):
        CT.recorded_terms("HP:316", None)
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n", encoding="utf-8")
    with pytest.raises(ParameterError, match="no HPO terms"):
        CT.recorded_terms("", empty)


def test_a_screening_gets_the_syndromes_and_genes_the_terms_suggest_with_the_release_in_provenance():
    diseases = HA.read_diseases()
    achondroplasia = diseases["OMIM:100800"]
    terms = sorted(t for t, f in achondroplasia.features.items() if f is not None and f >= 0.8)[:6]
    result = Result(command="phenotype.screen")
    CT.add_terms_ranking(result, terms, top=10)
    syndromes = result.tables["suggested syndromes (clinician's terms)"]
    assert "OMIM:100800" in [s["id"] for s in syndromes]
    assert "FGFR3" in [g["gene"] for g in result.tables["suggested genes (clinician's terms)"]]
    assert result.metrics["clinician_terms"]["fused"] is False
    assert CT.NOT_FUSED.format(why=CT.NO_SYNDROMES) in result.warnings
    record = result.provenance.models[-1]
    assert record.file == "phenotype.hpoa" and record.path is None
    assert record.sha256 == hashlib.sha256((HA.annotation_folder() / "phenotype.hpoa").read_bytes()).hexdigest()
    assert "2025-01-16" in record.name and "4.0.0" in record.name


def test_the_streaming_batch_stages_rank_the_terms_too():
    """A batch of `phenotype screen --hpo ...` goes through ScreenStages.finish, not screen():
    the terms must not be dropped there."""
    from medface_phenotype.screen_stages import _with_terms

    with_terms = _with_terms(Result(command="phenotype.screen"), {"hpo": "HP:0000316,HP:0000347", "top": 5})
    assert len(with_terms.tables["suggested syndromes (clinician's terms)"]) == 5
    without = _with_terms(Result(command="phenotype.screen"), {"top": 5})
    assert "suggested syndromes (clinician's terms)" not in without.tables
