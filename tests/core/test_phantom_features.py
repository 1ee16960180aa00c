"""The facial-feature vocabulary: every HPO term moves its own measurement as documented."""

import numpy as np
import pytest

from medface.errors import ParameterError
from medface.phantom import features as FT
from medface.phantom import head as H
from medface.phantom import norms as N
from medface.phantom import shape as SH

STRENGTH = 3.0  # SD: a clear case, beyond every feature's 2 SD threshold


@pytest.fixture(scope="module")
def mean_heads():
    return {sex: H.make_head(H.mean_subject(sex)) for sex in ("F", "M")}


def test_the_vocabulary_covers_at_least_thirty_distinct_facial_hpo_terms():
    terms = FT.hpo_terms()
    assert len(terms) >= 30
    assert len(set(terms)) == len(terms)
    assert all(t.startswith("HP:") and len(t) == 10 for t in terms)


@pytest.mark.parametrize("feature", FT.FEATURES, ids=lambda f: f.id)
def test_a_feature_moves_its_measurement_beyond_threshold_in_its_direction(feature, mean_heads):
    sex = "F"
    base = FT.measure(mean_heads[sex].landmarks, feature.measure)
    head = H.make_head(H.mean_subject(sex, features={feature.id: STRENGTH}))
    moved = FT.measure(head.landmarks, feature.measure)
    _, sd = N.norm(feature.measure, sex)
    shift = feature.direction * (moved - base) / sd
    assert shift >= feature.threshold_sd, f"{feature.id}: {feature.measure} moved {shift:+.2f} SD"
    assert shift <= 2.5 * STRENGTH, f"{feature.id}: {feature.measure} moved {shift:+.2f} SD, far past the request"
    # and the suggested terms of objective dysmorphology name it
    assert feature.hpo in {t["hpo"] for t in N.suggested_terms(head.landmarks, sex)}


def test_the_mean_head_suggests_no_term(mean_heads):
    for sex, head in mean_heads.items():
        assert N.suggested_terms(head.landmarks, sex) == []


def test_a_seed_draws_the_same_original_measurements_whatever_the_extended_components():
    a = H.sample_subject(np.random.default_rng(5), sex="M")
    b = H.sample_subject(np.random.default_rng(5), sex="M", features={"telecanthus": 2.0})
    for name in H.ORIGINAL:
        assert a.targets[name] == b.targets[name]
    assert a.tissue_z == b.tissue_z
    assert b.targets["intercanthal_width"] == pytest.approx(a.targets["intercanthal_width"] + 2.0 * 2.5)


def test_extended_components_default_to_what_the_rest_of_the_head_implies():
    """Without deviations, the new components leave the head as the original ones make it."""
    subject = H.mean_subject("F")
    no_ext = {k: v for k, v in subject.targets.items() if k not in SH.EXTENDED}
    plain = H.make_head(H.Subject("F", 40.0, 24.0, no_ext, subject.tissue_z))
    full = H.make_head(subject)
    for key in ("en_l", "ex_l", "n_s", "prn", "ch_l", "tr", "ps_l"):
        assert np.linalg.norm(plain.landmarks[key] - full.landmarks[key]) < 0.05


def test_unknown_or_absurd_features_are_refused_with_the_known_ones_named():
    with pytest.raises(ParameterError, match="telecanthus"):
        H.mean_subject("F", features={"third_eye": 2.0})
    with pytest.raises(ParameterError, match="0-6 SD"):
        H.mean_subject("F", features={"telecanthus": 40.0})
    assert FT.feature("HP:0000506").id == "telecanthus"


def test_the_phantom_norms_file_matches_a_fresh_sample_of_the_phantom():
    """A stale norms file (the phantom changed, the table did not) fails here."""
    n = 30  # 60 measurements x 2 sexes are compared: bounds wide enough for that many, tight enough for a stale file
    for sex in ("F", "M"):
        fresh = N.sample_measurements(sex, n, seed=7)
        for mid, values in fresh.items():
            mean, sd = N.norm(mid, sex)
            centre, spread = N.robust_centre_spread(values)
            se = 1.25 * max(sd, 1e-6) / np.sqrt(n)  # the median's standard error
            assert abs(centre - mean) < 5.0 * se + 1e-3, f"{sex} {mid}: {centre:.2f} vs {mean:.2f}"
            if sd > 0.05:
                assert 0.35 < spread / sd < 2.5, f"{sex} {mid}: spread {spread:.2f} vs {sd:.2f}"


def test_terms_the_phantom_cannot_show_are_listed_with_a_reason_and_not_claimed():
    assert set(FT.NOT_EXPRESSED).isdisjoint(FT.hpo_terms())
    assert all(reason for _, reason in FT.NOT_EXPRESSED.values())


def test_the_phantom_docs_list_every_feature_and_every_term_not_expressed():
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "phantom.md").read_text(encoding="utf-8")
    assert FT.markdown_table() in text, "docs/phantom.md: paste features.markdown_table() (the table is stale)"
    for label, _ in FT.NOT_EXPRESSED.values():
        assert label.lower() in text.lower(), label


def test_a_strong_feature_on_a_small_subject_never_asks_for_a_negative_size():
    """Thin upper vermilion at 5 SD on a subject drawn thin already: a thin lip, not an error."""
    for seed in range(40):
        subject = H.sample_subject(np.random.default_rng(seed), sex="F",
                                   features={"thin_upper_lip_vermilion": 5.0, "narrow_mouth": 5.0})
        assert subject.targets["upper_vermilion_height"] >= 0.25 * H.norm_of("upper_vermilion_height", "F")[0]
