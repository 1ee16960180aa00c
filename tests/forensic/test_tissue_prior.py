"""The literature tissue-thickness prior: site values, dense fields, residual sampler, training."""

from __future__ import annotations

import numpy as np
import pytest
from medface_forensic import tissue_prior as tp
from medface_forensic.baseline import pegs, template_sites
from medface_forensic.template import template_head

from medface.data.mesh import vertex_normals
from medface.errors import ParameterError
from medface.phantom.tables import tissue_entry


def _anchor(label: str) -> tp.Anchor:
    return next(a for a in tp.anchors() if a.label == label)


# ---------------------------------------------------------------------------- site values
@pytest.mark.parametrize("key, diff", [("mid_philtrum", 2.0), ("pr", 1.5), ("pog", 1.0), ("n", 0.7),
                                       ("inferior_malar", -1.0), ("or_l", 0.0)])
def test_men_and_women_differ_by_the_tables_amount(key, diff):
    assert tp.site_prior(key).sex_difference == diff
    m, f = tp.site_thickness(key, "M", 40, 24), tp.site_thickness(key, "F", 40, 24)
    assert m - f == pytest.approx(diff, abs=1e-9)
    # sex unknown: the phantom table's pooled mean (halfway)
    assert tp.site_thickness(key, None, 40, 24) == pytest.approx(0.5 * (m + f))


def test_age_and_bmi_slopes_change_site_and_field_by_the_documented_amounts():
    entry = tissue_entry("gonion")
    assert tp.site_thickness("go_l", "F", 40, 30) - tp.site_thickness("go_l", "F", 40, 25) == \
        pytest.approx(5 * entry.bmi_slope)
    lip = tissue_entry("upper_lip_margin")
    assert lip.age_slope < 0  # the lips thin with age
    assert tp.site_thickness("pr", "M", 70, 25) - tp.site_thickness("pr", "M", 40, 25) == \
        pytest.approx(30 * lip.age_slope)
    # the dense field at the cheek anchor (the phantom applies no BMI slope there) moves by it too
    v = _anchor("supra_m2_l").skin_vertex
    slope = tissue_entry("supra_m2").bmi_slope
    delta = tp.thickness_change("F", 40, 32)[v] - tp.thickness_change("F", 40, 22)[v]
    assert delta == pytest.approx(10 * slope, abs=0.02)
    # where the phantom already follows the table's slope, the change relative to it does not grow
    g = _anchor("glabella").skin_vertex
    assert tp.thickness_change("F", 40, 32)[g] == pytest.approx(tp.thickness_change("F", 40, 22)[g], abs=0.02)


@pytest.mark.parametrize("kw", [{"age": 17}, {"age": 101}, {"bmi": 9.5}, {"bmi": 61}, {"age": float("nan")},
                                {"sex": "X"}])
def test_bad_covariates_raise_parameter_errors(kw):
    args = {"sex": "F", "age": 40, "bmi": 24, **kw}
    with pytest.raises(ParameterError):
        tp.site_thickness("pog", **args)
    with pytest.raises(ParameterError):
        tp.thickness_change(**args)


def test_unknown_site_is_refused():
    with pytest.raises(ParameterError, match="no tissue-thickness site"):
        tp.site_prior("nowhere")


def test_every_sex_difference_has_sources_and_marks_its_size_as_assumed():
    for s in tp.SITE_PRIORS:
        tissue_entry(s.key)  # a key of the phantom's table
        for ref in s.sex_source.split("; "):
            assert ref in tp.REFERENCES
        assert s.size_source.startswith(tp.ASSUMPTION)
    assert {s.key for s in tp.SITE_PRIORS} >= {tissue_entry(s.table_id).key for s in template_sites()}


# ---------------------------------------------------------------------------- dense field
def test_dense_field_equals_the_site_values_at_the_anchors_and_is_smooth():
    for sex in ("F", "M"):
        values = tp.site_changes(sex, 55, 29)
        field = tp.thickness_change(sex, 55, 29)
        at = np.array([a.skin_vertex for a in tp.anchors()])
        np.testing.assert_allclose(field[at], values, atol=0.02)
        # no overshoot beyond the anchors' range
        assert field.max() <= values.max() + 0.15 and field.min() >= values.min() - 0.15
    # smooth: along every edge of the skin the change is below 0.1 mm per mm
    skin = template_head().skin
    e = np.concatenate([skin.faces[:, [0, 1]], skin.faces[:, [1, 2]]])
    length = np.linalg.norm(skin.vertices[e[:, 0]] - skin.vertices[e[:, 1]], axis=1)
    field = tp.thickness_change("M", 40, 24)
    grad = np.abs(field[e[:, 0]] - field[e[:, 1]]) / np.maximum(length, 1e-6)
    assert np.percentile(grad, 99.9) < 0.1
    # far from every site (the back of the head) nothing changes
    back = skin.vertices[:, 1] > 60
    assert np.abs(field[back]).max() < 0.05


def test_absolute_field_carries_the_sexual_dimorphism_at_the_sites():
    diff = tp.thickness("M", 40, 24) - tp.thickness("F", 40, 24)
    assert diff[_anchor("mid_philtrum").skin_vertex] == pytest.approx(2.0, abs=0.02)
    assert diff[_anchor("inferior_malar_l").skin_vertex] == pytest.approx(-1.0, abs=0.02)


# ------------------------------------------------------------------------- residual field
def test_residual_sd_is_larger_over_nose_lips_and_cheeks_than_over_the_forehead():
    sd = tp.residual_sd()
    forehead = sd[_anchor("glabella").skin_vertex]
    for label in ("prn", "upper_lip_margin", "inferior_malar_l", "supra_m2_r"):
        assert sd[_anchor(label).skin_vertex] > 1.5 * forehead
    assert sd.min() >= 0.5 * tp.BACKGROUND_SD_MM


def test_residual_samples_have_the_documented_sd_and_are_spatially_correlated():
    rng = np.random.default_rng(3)
    samples = tp.sample_residual(rng, k=600).astype(np.float64)  # (600, n_skin)
    sd = tp.residual_sd()
    idx = np.random.default_rng(0).choice(len(sd), 400, replace=False)
    ratio = samples[:, idx].std(0) / sd[idx]
    assert np.median(ratio) == pytest.approx(1.0, abs=0.04)
    assert np.mean(np.abs(ratio - 1) < 0.12) > 0.95  # 600 samples: SE of an SD about 3 %
    # correlation: high 5 mm apart, near zero 60 mm apart
    unit = samples / sd[None]
    verts = template_head().skin.vertices
    tip = _anchor("prn").skin_vertex
    d = np.linalg.norm(verts - verts[tip], axis=1)
    near = int(np.flatnonzero((d > 4) & (d < 6))[0])
    far = int(np.flatnonzero((d > 60) & (d < 70))[0])
    corr = np.corrcoef(unit[:, [tip, near, far]].T)
    assert corr[0, 1] > 0.8 and corr[0, 1] == pytest.approx(np.exp(-25 / (2 * tp.CORRELATION_LENGTH_MM ** 2)),
                                                            abs=0.1)
    assert abs(corr[0, 2]) < 0.15


def test_apply_tissue_prior_moves_along_the_normals_reproducibly():
    skin = template_head().skin
    a = tp.apply_tissue_prior(skin.vertices, skin.faces, "M", 40, 24, 5)
    b = tp.apply_tissue_prior(skin.vertices, skin.faces, "M", 40, 24, 5)
    c = tp.apply_tissue_prior(skin.vertices, skin.faces, "M", 40, 24, 6)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1.0
    n = vertex_normals(skin.vertices, skin.faces)
    move = a - skin.vertices
    along = np.einsum("ij,ij->i", move, n)
    np.testing.assert_allclose(move, along[:, None] * n, atol=1e-9)
    # averaged over subjects, the move is the thickness change
    mean = np.mean([np.einsum("ij,ij->i", tp.apply_tissue_prior(skin.vertices, skin.faces, "F", 30, 35, s)
                              - skin.vertices, n) for s in range(60)], axis=0)
    v = _anchor("supra_m2_l").skin_vertex
    assert mean[v] == pytest.approx(tp.thickness_change("F", 30, 35)[v], abs=3 * tp.residual_sd()[v] / np.sqrt(60))
    with pytest.raises(ParameterError):
        tp.apply_tissue_prior(skin.vertices[:10], skin.faces, "F", 40, 24, 0)


# ------------------------------------------------------------------------------ baseline
def test_baseline_pegs_follow_the_sex_specific_means():
    head = template_head()
    sites_f, f = pegs(head.cranium.vertices, head.mandible.vertices, sex="F", age=40, bmi=24)
    _, m = pegs(head.cranium.vertices, head.mandible.vertices, sex="M", age=40, bmi=24)
    for site, pf, pm in zip(sites_f, f, m):
        expected = tp.site_prior(site.table_id).sex_difference
        assert np.linalg.norm(pm - pf) == pytest.approx(abs(expected), abs=1e-6)


# ------------------------------------------------------------------------------ training
@pytest.fixture(scope="module")
def prior_model():
    from medface_forensic.train import phantom_training_set, train_phantom_model

    model = train_phantom_model(40, seed=11, sizes={"cranium": 1500, "mandible": 400, "face": 3000},
                                n_calibration=0)
    return model, phantom_training_set(2, 4242)


def test_training_faces_follow_the_prior_and_user_pairs_do_not():
    from medface_forensic.train import phantom_training_set

    plain = phantom_training_set(2, 77, tissue_prior=False)
    prior = phantom_training_set(2, 77)
    again = phantom_training_set(2, 77)
    np.testing.assert_array_equal(plain[0], prior[0])  # the skulls are the phantom's
    np.testing.assert_array_equal(prior[2], again[2])  # reproducible per subject
    skin = template_head().skin
    for i, s in enumerate(prior[4]):
        n = vertex_normals(plain[2][i], skin.faces)
        along = np.einsum("ij,ij->i", prior[2][i] - plain[2][i], n)
        assert 0.5 < np.std(along) < 5.0  # a residual of millimetres, not tenths


@pytest.mark.slow
def test_model_variants_differ_by_millimetres_over_nose_lips_and_cheeks(prior_model):
    from scipy.spatial import cKDTree

    model, (cr, md, _, _, subj) = prior_model
    s = subj[0]
    post = model.condition(cr[0], md[0], sex=s["sex"], age=s["age"], bmi=s["bmi"])
    n = vertex_normals(post.mean, model.skin_faces)
    spread = np.einsum("kij,ij->ki", post.sample(16, 0) - post.mean, n).std(0)
    head = template_head()
    tree = cKDTree(head.skin.vertices)
    for lid in ("prn", "al_l", "ls", "li", "zy_s_l"):
        assert spread[tree.query(head.landmarks[lid])[1]] > 1.0, lid


@pytest.mark.slow
def test_model_conditioned_on_sex_reproduces_the_tables_difference(prior_model):
    model, (cr, md, _, _, subj) = prior_model
    got, expected = [], []
    for i, s in enumerate(subj):
        pf = model.condition(cr[i], md[i], sex="F", age=s["age"], bmi=s["bmi"])
        pm = model.condition(cr[i], md[i], sex="M", age=s["age"], bmi=s["bmi"])
        d = np.einsum("ij,ij->i", pm.mean - pf.mean, vertex_normals(pf.mean, model.skin_faces))
        for site in template_sites():
            got.append(d[site.skin_vertex])
            expected.append(tp.site_prior(site.table_id).sex_difference)
    got, expected = np.array(got), np.array(expected)
    # sign where the table's difference is clear, size within 0.75 mm on average
    clear = np.abs(expected) >= 0.5
    assert np.all(np.sign(got[clear]) == np.sign(expected[clear]))
    assert np.mean(np.abs(got - expected)) < 0.75


@pytest.mark.slow
def test_model_conditioned_on_age_reproduces_the_tables_slopes(prior_model):
    from medface.phantom.tables import tissue_entry

    model, (cr, md, _, _, subj) = prior_model
    s = subj[0]
    young = model.condition(cr[0], md[0], sex=s["sex"], age=25.0, bmi=s["bmi"])
    old = model.condition(cr[0], md[0], sex=s["sex"], age=70.0, bmi=s["bmi"])
    d = np.einsum("ij,ij->i", old.mean - young.mean, vertex_normals(young.mean, model.skin_faces))
    got = np.array([d[site.skin_vertex] for site in template_sites()])
    expected = np.array([45.0 * tissue_entry(site.table_id).age_slope for site in template_sites()])
    clear = np.abs(expected) >= 0.5
    assert clear.sum() >= 3
    assert np.all(np.sign(got[clear]) == np.sign(expected[clear]))
    assert np.mean(np.abs(got - expected)) < 0.5
