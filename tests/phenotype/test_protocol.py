"""The GMDB evaluation protocol: subject-disjoint split, nearest-per-condition ranking,
per-condition top-k, the four settings, control AUROC and the markdown report."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from medface.errors import InputError, ParameterError
from medface_phenotype.protocol import (
    MISSING_GROUP,
    FrequentRare,
    Ranking,
    age_band,
    binomial_against_chance,
    cap_subjects,
    chance_topk,
    cmc_curve,
    confusion_matrix,
    control_auroc,
    evaluate_settings,
    mean_interval,
    rank_by_gallery,
    skin_tone_group,
    split_frequent_rare,
    subgroup_report,
    subject_disjoint_split,
    topk_per_condition,
    topk_table,
)
from medface_phenotype.validation_doc import write_validation_markdown

# ---------------------------------------------------------------------------------------------
# synthetic cohorts
# ---------------------------------------------------------------------------------------------

def make_cohort(*, n_frequent=4, frequent_subjects=12, n_rare=5, rare_subjects=3, control_subjects=12,
                images_per_subject=2, dim=32, spread=0.02, signal=True, seed=0):
    """Embeddings, labels and subject ids of a phantom cohort.

    With ``signal`` every condition is a tight cluster around its own random direction (a perfect
    encoder); without it the embeddings are pure noise (an encoder that learned nothing).
    """
    rng = np.random.default_rng(seed)
    groups = ([(f"freq{i:02d}", frequent_subjects) for i in range(n_frequent)]
              + [(f"rare{i:02d}", rare_subjects) for i in range(n_rare)]
              + [("unaffected", control_subjects)])
    emb, labels, subjects = [], [], []
    for name, n_subj in groups:
        centre = rng.normal(size=dim)
        centre /= np.linalg.norm(centre)
        for s in range(n_subj):
            for _ in range(images_per_subject):
                emb.append(centre + spread * rng.normal(size=dim) if signal else rng.normal(size=dim))
                labels.append(name)
                subjects.append(f"{name}-s{s}")
    return np.asarray(emb), np.asarray(labels), np.asarray(subjects)


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


# ---------------------------------------------------------------------------------------------
# 1. subject-disjoint split
# ---------------------------------------------------------------------------------------------

def split_cohort():
    """Labels with 1, 2, 3, 8 and 12 subjects; subjects have 1 to 4 images each."""
    labels, subjects = [], []
    for name, n_subj in (("solo", 1), ("pair", 2), ("trio", 3), ("eight", 8), ("twelve", 12)):
        for s in range(n_subj):
            for _ in range(1 + s % 4):
                labels.append(name)
                subjects.append(f"{name}{s}")
    return np.asarray(labels), np.asarray(subjects)


def test_split_keeps_subjects_disjoint_and_stratifies_by_label():
    labels, subjects = split_cohort()
    train, test = subject_disjoint_split(subjects, labels, test_fraction=0.25, seed=3)

    assert np.intersect1d(train, test).size == 0
    assert np.array_equal(np.sort(np.concatenate([train, test])), np.arange(labels.size))
    assert not set(subjects[train]) & set(subjects[test]), "a subject is on both sides"
    for name in ("pair", "trio", "eight", "twelve"):
        assert name in set(labels[train]) and name in set(labels[test]), name
    assert "solo" not in set(labels[test]), "a single-subject label must stay in train"
    test_subjects = {lab: len(set(subjects[test][labels[test] == lab])) for lab in set(labels[test])}
    # round(0.25 * n) whole subjects, at least one and at most n - 1
    assert test_subjects == {"pair": 1, "trio": 1, "eight": 2, "twelve": 3}


def test_split_is_deterministic_for_a_seed_and_varies_with_it():
    labels, subjects = split_cohort()
    a = subject_disjoint_split(subjects, labels, seed=7)
    b = subject_disjoint_split(list(subjects), list(labels), seed=7)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    other_seeds = [subject_disjoint_split(subjects, labels, seed=s)[1] for s in range(8, 12)]
    assert any(not np.array_equal(a[1], t) for t in other_seeds)


def test_adding_a_condition_does_not_reshuffle_the_others():
    labels, subjects = split_cohort()
    _, test = subject_disjoint_split(subjects, labels, seed=1)
    more_labels = np.concatenate([labels, ["extra"] * 6])
    more_subjects = np.concatenate([subjects, [f"x{i}" for i in range(6)]])
    _, test2 = subject_disjoint_split(more_subjects, more_labels, seed=1)
    assert np.array_equal(test, test2[test2 < labels.size])


def test_split_rejects_a_subject_with_two_labels_and_bad_fractions():
    with pytest.raises(InputError, match="each subject must carry one label"):
        subject_disjoint_split(["s1", "s1", "s2"], ["A", "B", "A"])
    with pytest.raises(ParameterError, match="test_fraction"):
        subject_disjoint_split(["s1", "s2"], ["A", "A"], test_fraction=1.0)
    with pytest.raises(InputError, match="differ in length"):
        subject_disjoint_split(["s1", "s2"], ["A"])
    with pytest.raises(InputError, match="empty"):
        subject_disjoint_split([], [])


# ---------------------------------------------------------------------------------------------
# 2. frequent and rare
# ---------------------------------------------------------------------------------------------

def test_rare_is_decided_by_distinct_subjects_not_images_and_control_is_neither():
    # "many_images": 3 subjects with 10 images each (30 images) is still rare at min_subjects=5
    labels = ["many_images"] * 30 + ["many_subjects"] * 6 + ["unaffected"] * 2
    subjects = [f"a{i // 10}" for i in range(30)] + [f"b{i}" for i in range(6)] + ["c0", "c1"]
    fr = split_frequent_rare(labels, subjects, min_subjects=5)
    assert isinstance(fr, FrequentRare)
    assert fr.frequent == ("many_subjects",)
    assert fr.rare == ("many_images",)
    assert "unaffected" not in fr.frequent + fr.rare


def test_explicit_rare_list_is_validated():
    labels = ["A", "B", "C", "unaffected"]
    subjects = ["1", "2", "3", "4"]
    fr = split_frequent_rare(labels, subjects, rare=["B"])
    assert fr.frequent == ("A", "C") and fr.rare == ("B",)
    with pytest.raises(ParameterError, match="unknown rare condition.*'Z'"):
        split_frequent_rare(labels, subjects, rare=["B", "Z"])
    with pytest.raises(ParameterError, match="control"):
        split_frequent_rare(labels, subjects, rare=["unaffected"])


# ---------------------------------------------------------------------------------------------
# 3. ranking by nearest gallery image per condition
# ---------------------------------------------------------------------------------------------

def test_ranking_uses_the_nearest_image_of_each_condition_not_its_centroid():
    # A has images at 10 and 120 degrees (centroid at about 65), B one at 40, C at 90 and 180.
    gallery = np.array([unit(120), unit(90), unit(40), 7.0 * np.array(unit(10)), unit(180)])
    gallery_labels = ["A", "C", "B", "A", "C"]
    r = rank_by_gallery([unit(0), unit(180)], gallery, gallery_labels)

    assert isinstance(r, Ranking)
    assert r.labels(0) == ["A", "B", "C"]        # a centroid ranking would put B first
    cos = lambda d: math.cos(math.radians(d))
    np.testing.assert_allclose(r.distances[0], [1 - cos(10), 1 - cos(40), 1.0], atol=1e-12)
    assert r.labels(1) == ["C", "A", "B"]
    np.testing.assert_allclose(r.distances[1], [0.0, 1 - cos(60), 1 - cos(140)], atol=1e-12)
    assert r.top1() == ["A", "C"]


def test_ties_are_broken_by_condition_name():
    gallery = np.array([[0.0, 1.0], [0.0, -1.0], [1.0, 1.0]])
    r = rank_by_gallery([[1.0, 0.0]], gallery, ["zeta", "alpha", "mid"])
    assert r.labels(0) == ["mid", "alpha", "zeta"]
    assert r.distances[0, 1] == r.distances[0, 2] == 1.0


def test_chunked_ranking_equals_the_unchunked_one():
    rng = np.random.default_rng(5)
    q, g = rng.normal(size=(53, 16)), rng.normal(size=(80, 16))
    g_labels = [f"c{i % 9}" for i in range(80)]
    whole = rank_by_gallery(q, g, g_labels)
    chunked = rank_by_gallery(q, g, g_labels, chunk_size=7)
    assert np.array_equal(whole.order, chunked.order)
    np.testing.assert_allclose(whole.distances, chunked.distances, atol=1e-12)
    assert np.all(np.diff(whole.distances, axis=1) >= 0)


@pytest.mark.parametrize(
    ("query", "gallery", "labels", "message"),
    [
        ([[1.0, 0.0, 0.0]], [[1.0, 0.0]], ["A"], "dimensions"),
        ([[1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]], ["A"], "differ"),
        ([[0.0, 0.0]], [[1.0, 0.0]], ["A"], "all-zero"),
        (np.zeros((0, 2)), [[1.0, 0.0]], ["A"], "empty"),
        ([[np.nan, 1.0]], [[1.0, 0.0]], ["A"], "NaN"),
    ],
    ids=["dim-mismatch", "label-count", "zero-vector", "no-queries", "nan"],
)
def test_ranking_rejects_bad_input_with_a_clear_message(query, gallery, labels, message):
    with pytest.raises(InputError, match=message):
        rank_by_gallery(query, gallery, labels)


# ---------------------------------------------------------------------------------------------
# 4, 5, 7. top-k, chance, CMC
# ---------------------------------------------------------------------------------------------

def test_per_condition_mean_differs_from_per_image_mean_on_an_imbalanced_case():
    # A: 8 queries, all right at rank 1. B: 2 queries, one right at rank 1, one at rank 2.
    # C: 1 query, right only at rank 3.
    ranked = ([["A", "B", "C"]] * 8 + [["B", "A", "C"], ["A", "B", "C"]] + [["A", "B", "C"]])
    truth = ["A"] * 8 + ["B", "B"] + ["C"]
    top = topk_per_condition(ranked, truth, ks=(1, 2, 3))
    assert top[1] == pytest.approx((1.0 + 0.5 + 0.0) / 3)   # 0.5, per condition
    assert top[2] == pytest.approx((1.0 + 1.0 + 0.0) / 3)
    assert top[3] == pytest.approx(1.0)
    table = topk_table(ranked, truth, ks=(1, 2, 3))
    assert table.per_image[1] == pytest.approx(9 / 11)        # per image: frequent A dominates
    assert table.per_condition["B"] == {1: 0.5, 2: 1.0, 3: 1.0}
    assert table.conditions == ("A", "B", "C") and table.n_queries == (8, 2, 1)


def test_a_query_whose_condition_is_missing_from_the_gallery_is_a_miss():
    assert topk_per_condition([["A", "B"], ["A", "B"]], ["A", "Z"], ks=(1, 2)) == {1: 0.5, 2: 0.5}


def test_topk_reaches_one_at_k_equal_to_the_number_of_conditions():
    rng = np.random.default_rng(11)
    g_labels = [f"c{i % 12}" for i in range(60)]
    r = rank_by_gallery(rng.normal(size=(40, 8)), rng.normal(size=(60, 8)), g_labels)
    truth = [f"c{i % 12}" for i in range(40)]
    top = topk_per_condition(r, truth, ks=(1, 11, 12, 30))
    assert top[1] < 1.0 and top[11] < 1.0
    assert top[12] == 1.0 and top[30] == 1.0
    cmc = cmc_curve(r, truth, max_rank=15)
    assert cmc.shape == (15,)
    assert np.all(np.diff(cmc) >= 0)
    assert cmc[11] == 1.0 and cmc[0] == pytest.approx(top[1])


def test_cmc_curve_is_averaged_per_condition():
    # A: ranks 1 and 3; B: rank 2
    ranked = [["A", "B", "C"], ["B", "C", "A"], ["A", "B", "C"]]
    truth = ["A", "A", "B"]
    np.testing.assert_allclose(cmc_curve(ranked, truth, 4), [0.25, 0.75, 1.0, 1.0])


def test_chance_topk_is_k_over_n_capped_at_one():
    assert chance_topk(20, (1, 5, 10, 30)) == {1: 0.05, 5: 0.25, 10: 0.5, 30: 1.0}
    with pytest.raises(ParameterError, match="positive"):
        chance_topk(0)
    with pytest.raises(ParameterError, match="positive integers"):
        chance_topk(5, (0, 1))


# ---------------------------------------------------------------------------------------------
# 8, 9. confusion matrix and control AUROC
# ---------------------------------------------------------------------------------------------

def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion_matrix(["A", "A", "B", "C"], ["A", "B", "B", "A"], ["A", "B", "C"])
    assert cm.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]
    with pytest.raises(InputError, match="lacks"):
        confusion_matrix(["A", "D"], ["A", "A"], ["A", "B"])


def test_control_auroc():
    is_control = np.array([False, False, False, True, True])
    score = np.array([0.9, 0.8, 0.7, 0.2, 0.1])
    assert control_auroc(score, is_control) == 1.0
    assert control_auroc(-score, is_control) == 0.0
    assert control_auroc(np.ones(5), is_control) == 0.5
    with pytest.raises(InputError, match="both affected and control"):
        control_auroc([0.1, 0.2], [True, True])
    with pytest.raises(InputError, match="differ in length"):
        control_auroc([0.1, 0.2, 0.3], [True, False])


# ---------------------------------------------------------------------------------------------
# 6. the four settings
# ---------------------------------------------------------------------------------------------

def evaluate_cohort(**kwargs):
    emb, labels, subjects = make_cohort(**kwargs)
    fr = split_frequent_rare(labels, subjects, min_subjects=10)
    train, test = subject_disjoint_split(subjects, labels, seed=0)
    return evaluate_settings(emb, labels, subjects, train, test, fr.frequent, fr.rare), labels, test


def test_perfect_embeddings_score_one_in_every_setting_against_the_right_chance():
    report, labels, test = evaluate_cohort()
    expected_conditions = {"F/F": 4, "R/R": 5, "F/F+R": 9, "R/F+R": 9}
    for name, n_cond in expected_conditions.items():
        s = report["settings"][name]
        assert s["skipped"] is None, name
        assert s["n_conditions"] == n_cond, name
        assert s["top_k"]["top1"] == 1.0, name
        assert s["chance"]["top1"] == pytest.approx(1 / n_cond), name
        assert s["cmc"][0] == 1.0
    n_freq_test = sum(lab.startswith("freq") for lab in labels[test])
    assert report["settings"]["F/F"]["n_queries"] == report["settings"]["F/F+R"]["n_queries"] == n_freq_test
    # the control never enters the ranking, but separates perfectly from affected faces
    assert "unaffected" not in report["settings"]["F/F+R"]["confusion"]["labels"]
    assert report["control"]["auroc"] == 1.0
    json.dumps(report, allow_nan=False)          # can be saved as strict JSON


def test_random_embeddings_score_near_chance():
    report, _, _ = evaluate_cohort(n_frequent=10, frequent_subjects=12, n_rare=0, control_subjects=40, dim=64,
                                 signal=False, seed=2)
    s = report["settings"]["F/F"]
    assert s["chance"]["top1"] == pytest.approx(0.1)
    assert s["top_k"]["top1"] < 0.25                        # chance 0.10
    assert 0.3 < s["top_k"]["top5"] < 0.7                   # chance 0.50
    assert 0.3 < report["control"]["auroc"] < 0.7


def test_settings_without_rare_conditions_are_skipped_with_a_reason():
    report, _, _ = evaluate_cohort(n_rare=0)
    for name in ("R/R", "R/F+R"):
        s = report["settings"][name]
        assert s["skipped"] and "no" in s["skipped"]
        assert s["top_k"] is None and s["n_queries"] == 0
    assert report["settings"]["F/F"]["top_k"] == report["settings"]["F/F+R"]["top_k"]


def test_subject_leakage_inflates_accuracy_and_a_leaky_split_is_refused():
    # Embeddings identify the person but carry no condition signal: a split that lets a subject's
    # other photos into the gallery scores far above chance, the subject-disjoint one does not.
    rng = np.random.default_rng(4)
    labels = np.repeat([f"c{i}" for i in range(8)], 10 * 2)
    subjects = np.repeat([f"s{i}" for i in range(80)], 2)
    person = rng.normal(size=(80, 32))
    emb = person[np.arange(160) // 2] + 0.05 * rng.normal(size=(160, 32))

    leaky_test = np.arange(0, 160, 2)                    # one photo of every subject in each side
    leaky_train = np.arange(1, 160, 2)
    leaky = topk_per_condition(rank_by_gallery(emb[leaky_test], emb[leaky_train], labels[leaky_train]),
                               labels[leaky_test], ks=(1,))
    assert leaky[1] > 0.9

    train, test = subject_disjoint_split(subjects, labels, seed=0)
    honest = topk_per_condition(rank_by_gallery(emb[test], emb[train], labels[train]), labels[test], ks=(1,))
    assert honest[1] < 0.4                               # chance 0.125

    with pytest.raises(InputError, match="subject-disjoint"):
        evaluate_settings(emb, labels, subjects, leaky_train, leaky_test, [f"c{i}" for i in range(8)], [])


def test_evaluate_settings_rejects_inconsistent_input():
    emb, labels, subjects = make_cohort(n_rare=0)
    train, test = subject_disjoint_split(subjects, labels)
    with pytest.raises(InputError, match="must match"):
        evaluate_settings(emb[:-1], labels, subjects, train, test[:-1], ["freq00"], [])
    with pytest.raises(ParameterError, match="unknown rare"):
        evaluate_settings(emb, labels, subjects, train, test, ["freq00"], ["nonexistent"])
    with pytest.raises(ParameterError, match="control"):
        evaluate_settings(emb, labels, subjects, train, test, ["freq00", "unaffected"], [])


# ---------------------------------------------------------------------------------------------
# 10. the markdown report
# ---------------------------------------------------------------------------------------------

def test_markdown_report_has_tables_and_real_figures(tmp_path):
    from PIL import Image

    report, _, _ = evaluate_cohort()
    md_path = write_validation_markdown(report, tmp_path / "out" / "validation.md", tmp_path / "out" / "figures")
    text = md_path.read_text(encoding="utf-8")

    assert "synthetic (phantom)" in text
    for name in ("F/F", "R/R", "F/F+R", "R/F+R"):
        assert f"### {name}" in text
    assert "| | top-1 | top-5 | top-10 | top-30 |" in text
    assert "| model (mean over conditions) | 100.0% | 100.0% | 100.0% | 100.0% |" in text
    assert "| chance | 25.0% | 100.0% | 100.0% | 100.0% |" in text          # F/F: 4 conditions
    assert "AUROC 1.000" in text
    assert re.search(r"^\| rare03 \| \d+ \| 100\.0% \|", text, flags=re.MULTILINE), "per-condition row missing"

    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert len(links) == 2 and all(link.startswith("figures/") for link in links)
    for link in links:
        png = md_path.parent / link
        assert png.is_file(), link
        with Image.open(png) as img:
            assert img.format == "PNG"
            assert img.width >= 400 and img.height >= 300
            pixels = np.asarray(img.convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 20, f"{link} looks blank"


def test_markdown_states_the_data_source_when_given(tmp_path):
    report, _, _ = evaluate_cohort(n_rare=0)
    report["data"] = "GMDB v1.0.9, 9 test disorders, photographs under a data-use agreement."
    report["control"] = {"auroc": None, "reason": "no control photographs"}
    text = write_validation_markdown(report, tmp_path / "v.md", tmp_path / "fig").read_text(encoding="utf-8")
    assert "GMDB v1.0.9" in text and "synthetic" not in text
    assert "Skipped: no" in text
    assert "Control AUROC not computed: no control photographs" in text


# ---------------------------------------------------------------------------------------------
# 10. intervals over splits, tests against chance, subgroups
# ---------------------------------------------------------------------------------------------

def test_mean_interval_is_the_student_t_interval_and_needs_two_values():
    mi = mean_interval([0.5, 0.6, 0.7])
    # t(0.975, 2) = 4.303 from any t table; sd = 0.1
    assert mi["mean"] == pytest.approx(0.6)
    assert mi["high"] - mi["mean"] == pytest.approx(4.303 * 0.1 / math.sqrt(3), rel=1e-3)
    assert mi["low"] < mi["mean"] < mi["high"] and mi["n"] == 3
    wider = mean_interval([0.5, 0.6, 0.7], level=0.99)
    assert wider["high"] - wider["low"] > mi["high"] - mi["low"]
    more = mean_interval([0.5, 0.6, 0.7] * 4)              # same spread, more splits: narrower
    assert more["high"] - more["low"] < mi["high"] - mi["low"]
    one = mean_interval([0.8])
    assert one["mean"] == 0.8 and one["low"] is None and one["high"] is None and "no interval" in one["note"]


def test_mean_interval_clips_to_bounds_and_rejects_bad_input():
    mi = mean_interval([0.9, 1.0], bounds=(0.0, 1.0))
    assert mi["high"] == 1.0 and mi["clipped"] and mi["low"] >= 0.0
    assert not mean_interval([0.4, 0.5, 0.6], bounds=(0.0, 1.0))["clipped"]
    with pytest.raises(InputError, match="NaN"):
        mean_interval([0.5, float("nan")])
    with pytest.raises(InputError, match="empty"):
        mean_interval([])
    with pytest.raises(ParameterError, match="level"):
        mean_interval([0.5, 0.6], level=1.0)


def test_binomial_against_chance_is_the_exact_one_sided_tail():
    out = binomial_against_chance(7, 10, 0.3)
    tail = sum(math.comb(10, k) * 0.3 ** k * 0.7 ** (10 - k) for k in range(7, 11))
    assert out["p_value"] == pytest.approx(tail)
    assert (out["successes"], out["n"], out["rate"], out["chance"]) == (7, 10, 0.7, 0.3)
    # at chance level there is nothing to detect; below it p is large
    assert binomial_against_chance(3, 3, 1.0)["p_value"] == pytest.approx(1.0)
    assert binomial_against_chance(1, 10, 0.5)["p_value"] > 0.99
    for bad in ((11, 10, 0.5), (-1, 10, 0.5), (3, 0, 0.5), (3, 10, 1.5), (2.5, 10, 0.5)):
        with pytest.raises(InputError):
            binomial_against_chance(*bad)


def test_every_setting_reports_its_pooled_hit_counts_and_p_values():
    report, _, _ = evaluate_cohort()
    noise, _, _ = evaluate_cohort(signal=False, seed=3)
    for name in ("F/F", "R/R", "F/F+R", "R/F+R"):
        s, counts = report["settings"][name], report["settings"][name]["counts"]
        for k in (1, 5, 10, 30):
            c = counts[f"top{k}"]
            assert c["n"] == s["n_queries"]
            assert c["successes"] == round(s["top_k_per_image"][f"top{k}"] * s["n_queries"])
            assert c["chance"] == pytest.approx(s["chance"][f"top{k}"])
        assert counts["top1"]["p_value"] < 1e-3, name                    # perfect encoder: far above chance
    assert noise["settings"]["F/F+R"]["counts"]["top1"]["p_value"] > 0.01  # noise: no evidence
    skipped = evaluate_cohort(n_rare=0)[0]["settings"]["R/R"]
    assert skipped["skipped"] and skipped["counts"] is None


def test_age_bands_and_skin_tones_are_grouped_as_documented():
    assert [age_band(a) for a in (20, 39.9, "40", 59.5, 60, 75, 12, 2.5, 6, 17.9, 18)] == [
        "20-39", "20-39", "40-59", "40-59", "60+", "60+", "12-17", "<6", "6-11", "12-17", "18-19"]
    assert age_band("") == age_band(None) == MISSING_GROUP
    with pytest.raises(InputError, match="not a number"):
        age_band("forty")
    assert [skin_tone_group(v) for v in ("III", "iii", "3", " VI ", "", "olive")] == ["III", "III", "III", "VI",
                                                                                    MISSING_GROUP, "olive"]


def subgroup_case():
    """Group A: 10 affected queries, all ranked first, controls scored below them. Group B:
    10 affected queries, half of one condition missed; its controls score like its affected.
    Group C: 2 queries only. One query of unknown group."""
    groups, labels, ranks, score = [], [], [], []
    for i in range(10):
        groups.append("A"), labels.append("c1" if i < 5 else "c2"), ranks.append(1.0), score.append(0.9)
    for _ in range(4):
        groups.append("A"), labels.append("unaffected"), ranks.append(np.nan), score.append(0.1)
    for i in range(10):   # c1: 8 queries, 4 hits; c2: 2 queries, 2 hits -> per-condition mean 0.75
        groups.append("B"), labels.append("c1" if i < 8 else "c2")
        ranks.append(1.0 if i % 2 == 0 or i >= 8 else 3.0), score.append(0.5)
    for _ in range(4):
        groups.append("B"), labels.append("unaffected"), ranks.append(np.nan), score.append(0.5)
    groups += ["C", "C", MISSING_GROUP]
    labels += ["c1", "unaffected", "c2"]
    ranks += [9.0, np.nan, 1.0]
    score += [0.2, 0.8, 0.9]
    return groups, labels, ranks, score


def test_subgroup_report_gives_figures_counts_and_the_largest_gap_of_large_groups():
    rep = subgroup_report(*subgroup_case())
    rows = {r["group"]: r for r in rep["groups"]}
    assert [r["group"] for r in rep["groups"]] == ["A", "B", "C", MISSING_GROUP]
    a, b, c = rows["A"], rows["B"], rows["C"]
    assert (a["n_queries"], a["n_affected"], a["n_control"]) == (14, 10, 4)
    assert a["top1"] == 1.0 and a["control_auroc"] == 1.0
    assert b["top1"] == pytest.approx(0.75)               # per condition (0.5, 1.0), not per image (0.6)
    assert b["top5"] == 1.0 and b["control_auroc"] == pytest.approx(0.5)
    assert c["top1"] == 0.0 and c["n_queries"] == 2        # shown ...
    gap = rep["gaps"]["top1"]
    assert gap == {"gap": pytest.approx(0.25), "highest": "A", "lowest": "B", "groups_compared": 2}  # ... not in gap
    assert rep["gaps"]["control_auroc"]["gap"] == pytest.approx(0.5)
    assert rep["gaps"]["top5"]["gap"] == 0.0
    assert "fewer than 10" in rep["note"]
    json.dumps(rep, allow_nan=False)


def test_subgroup_report_without_scores_or_large_groups():
    groups, labels, ranks, _ = subgroup_case()
    rep = subgroup_report(groups, labels, ranks, None, min_group=50)
    assert all(r["control_auroc"] is None for r in rep["groups"])
    assert rep["gaps"] == {"top1": None, "top5": None, "control_auroc": None}
    with pytest.raises(InputError, match="one length"):
        subgroup_report(groups[:-1], labels, ranks)
    with pytest.raises(InputError, match="1-based"):
        subgroup_report(["A", "A"], ["c1", "c1"], [0.0, 1.0])


def test_rare_conditions_are_capped_at_six_whole_subjects():
    labels = ["rare"] * 18 + ["big"] * 20 + ["small"] * 4
    subjects = [f"r{i // 2}" for i in range(18)] + [f"b{i}" for i in range(20)] + [f"s{i}" for i in range(4)]
    keep = cap_subjects(subjects, labels, ["rare", "small"], seed=0)
    kept = {s for s, k, lab in zip(subjects, keep, labels) if k and lab == "rare"}
    assert len(kept) == 6
    assert all(k == (s in kept) for s, k, lab in zip(subjects, keep, labels) if lab == "rare")  # whole subjects
    assert all(k for k, lab in zip(keep, labels) if lab != "rare")
    assert np.array_equal(keep, cap_subjects(subjects, labels, ["rare"], seed=0))
    assert any(not np.array_equal(keep, cap_subjects(subjects, labels, ["rare"], seed=s)) for s in range(1, 5))
