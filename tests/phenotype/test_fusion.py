"""The PEDIA-style fusion of the face and the clinician's terms: features, fitting, evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from medface.errors import InputError
from medface_phenotype import fusion as FU

DISEASES = [f"OMIM:{100000 + k}" for k in range(40)]


def _cases(n_per, face_signal, terms_signal, seed=0, gallery=DISEASES):
    """Cases whose true syndrome stands out of the noise by ``*_signal`` SD in each score."""
    rng = np.random.default_rng(seed)
    out = []
    for d in DISEASES:
        for _ in range(n_per):
            face = {c: float(rng.normal() + (face_signal if c == d else 0.0)) for c in gallery}
            terms = {c: float(rng.normal() + (terms_signal if c == d else 0.0)) for c in DISEASES}
            out.append(FU.FusionCase(d, face, terms))
    return out


def test_features_are_z_scores_within_the_patient_and_mark_candidates_without_a_gallery_entry():
    case = FU.FusionCase("A", {"A": 0.9, "B": 0.5}, {"A": 0.2, "B": 0.2, "C": 0.8})
    x = FU.candidate_features(case, ["A", "B", "C"])
    assert np.allclose(x.mean(axis=0)[:2], 0.0) and np.allclose(x[:, 2], [0, 0, 1])
    assert x[0, 0] > x[1, 0] == pytest.approx(x[2, 0])  # C has no gallery entry: the patient's lowest
    assert x[2, 1] > x[0, 1] == pytest.approx(x[1, 1])


def test_two_independent_scores_fused_beat_either_alone():
    cases = _cases(6, face_signal=1.8, terms_signal=1.8)
    report = FU.repeated_evaluation(cases, DISEASES, {}, repeats=3, seed=1)["rankings"]
    fused, face, terms = (report[k]["top1"]["rate"] for k in ("fused", "gestalt", "terms"))
    assert fused > max(face, terms) + 0.1, (fused, face, terms)
    model = FU.fit(cases, DISEASES)
    assert model.coef[0] > 0 and model.coef[1] > 0


def test_a_face_that_carries_no_information_gets_little_weight():
    cases = _cases(6, face_signal=0.0, terms_signal=2.0, seed=2)
    model = FU.fit(cases, DISEASES)
    assert abs(model.coef[0]) < 0.25 * model.coef[1]
    report = FU.repeated_evaluation(cases, DISEASES, {}, repeats=3, seed=3)["rankings"]
    assert report["fused"]["top1"]["rate"] >= report["terms"]["top1"]["rate"] - 0.05


def test_syndromes_outside_the_gallery_fall_back_on_the_terms():
    half = DISEASES[:20]
    cases = _cases(6, face_signal=2.0, terms_signal=1.5, seed=4, gallery=half)
    model = FU.fit(cases, DISEASES)
    outside = [c for c in cases if c.disease_id not in half]
    hits = [FU.rank_of([d for d, _ in model.rank(c, DISEASES)], c.disease_id) == 1 for c in outside]
    face_hits = [FU.rank_of(FU.gestalt_order(c, DISEASES), c.disease_id) == 1 for c in outside]
    assert sum(hits) > sum(face_hits) == 0  # the face alone can never name them
    inside = [c for c in cases if c.disease_id in half]
    first = [FU.terms_in_gallery_order(c, DISEASES)[0] for c in inside]
    assert all(d in half for d in first)  # the baseline puts the gallery's syndromes first


def test_the_model_round_trips_and_a_foreign_file_is_refused():
    model = FU.fit(_cases(3, 1.0, 1.0), DISEASES)
    again = FU.FusionModel.from_dict(model.to_dict())
    case = _cases(1, 1.0, 1.0, seed=9)[0]
    assert np.allclose(again.scores(case, DISEASES), model.scores(case, DISEASES), atol=1e-5)
    with pytest.raises(InputError, match="not a fusion model"):
        FU.FusionModel.from_dict({"format": "something else"})


def test_gene_ranks_follow_the_first_appearance_of_genes_down_the_syndrome_ranking():
    genes = {"A": ("G1", "G2"), "B": ("G2", "G3"), "C": ("G4",)}
    assert FU.gene_rank(["A", "B", "C"], genes, "C") == 4
    assert FU.gene_rank(["B", "A", "C"], genes, "A") == 1  # G2 comes first and is A's
    assert FU.gene_rank(["A", "B"], genes, "D") is None


def test_halvings_keep_each_syndrome_on_both_sides():
    cases = _cases(4, 1.0, 1.0)
    train, test = FU.split_by_syndrome(cases, np.random.default_rng(0))
    assert {c.disease_id for c in train} == {c.disease_id for c in test} == set(DISEASES)
    assert len(train) + len(test) == len(cases)


def test_the_face_is_fused_only_with_a_syndrome_gallery_and_a_fusion_model_and_batches_fuse_too(tmp_path):
    from medface.data import Result
    from medface_phenotype import clinical_terms as CT
    from medface_phenotype.screen_stages import _with_terms
    from medface_phenotype.train_fusion import save_fusion

    hits = [{"label": "OMIM:100800", "distance": 0.2}, {"label": "hypertelorism", "distance": 0.1},
            {"label": "OMIM:101600", "distance": 0.6}]
    assert CT.fusion_face(tmp_path, ["hypertelorism"], hits).why_not == CT.NO_SYNDROMES
    assert CT.fusion_face(tmp_path, [h["label"] for h in hits], hits).why_not == CT.NO_FUSION
    save_fusion(FU.FusionModel((1.0, 4.0, -1.0), 0.0), tmp_path)
    assert CT.fusion_face(tmp_path, [h["label"] for h in hits], None).why_not == CT.NOT_RANKED
    face = CT.fusion_face(tmp_path, [h["label"] for h in hits], hits)
    assert face.gestalt == pytest.approx({"OMIM:100800": 0.8, "OMIM:101600": 0.4})
    # a batch photo's result (the streaming stages' path) gets the fused ranking too
    fused = _with_terms(Result(command="phenotype.screen"), {"hpo": "HP:0000316,HP:0000347", "top": 5}, lambda: face)
    rows = fused.tables["suggested syndromes (face and terms)"]
    assert len(rows) == 5 and fused.metrics["clinician_terms"]["fused"] is True
    unfused = _with_terms(Result(command="phenotype.screen"), {"hpo": "HP:0000316", "top": 5})
    assert "suggested syndromes (face and terms)" not in unfused.tables
