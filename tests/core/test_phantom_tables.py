"""Reference data of the phantom (medface.phantom.tables): ids, sources, helpers, presets, docs."""

from __future__ import annotations

import ast
import math
import re
from pathlib import Path

import pytest

from medface.anatomy import landmarks as lm
from medface.errors import ParameterError
from medface.phantom import tables as T

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "phantom-references.md"

# HPO ids and labels as checked against HPO-derived listings during the research (see docs).
CHECKED_HPO = {
    "HP:0000316": "Hypertelorism",
    "HP:0000601": "Hypotelorism",
    "HP:0000347": "Micrognathia",
    "HP:0000278": "Retrognathia",
    "HP:0011800": "Midface retrusion",
    "HP:0000303": "Mandibular prognathia",
    "HP:0000256": "Macrocephaly",
    "HP:0000343": "Long philtrum",
    "HP:0000219": "Thin upper lip vermilion",
    "HP:0012745": "Short palpebral fissure",
    "HP:0000324": "Facial asymmetry",
}

REQUIRED_TISSUE_KEYS = {
    "glabella", "nasion", "rhinion", "mid_philtrum", "upper_lip_margin", "lower_lip_margin",
    "chin_lip_fold", "mental_eminence", "beneath_chin", "supraorbital", "suborbital", "zygomatic_arch",
    "gonion", "inferior_malar", "lateral_orbit", "supra_m2", "sub_m2", "mid_ramus", "frontal_eminence",
    "supraglabella", "vertex",
}


def _all_sources():
    """(where, source string) for every source field in the module."""
    for t in T.TISSUE_DEPTHS:
        for name in ("source", "slope_source", "ref_source"):
            yield f"tissue {t.key}.{name}", getattr(t, name)
    for m in T.ANTHROPOMETRY:
        yield f"measure {m.id}.source", m.source
        yield f"measure {m.id}.sd_source", m.sd_source
    for c in T.CORRELATIONS:
        yield f"correlation {c.a}~{c.b}", c.source
    for p in T.CONDITIONS:
        for name in ("definition_source", "hpo_source", "severity_source"):
            yield f"condition {p.id}.{name}", getattr(p, name)


# ----------------------------------------------------------------------------- landmark ids

@pytest.mark.parametrize("entry", T.TISSUE_DEPTHS, ids=lambda t: t.key)
def test_tissue_landmarks_exist_with_right_kind_and_side(entry):
    if entry.bony_id is not None:
        assert lm.get(entry.bony_id).kind == "craniometric", entry.bony_id
    if entry.soft_id is not None:
        assert lm.get(entry.soft_id).kind == "soft_tissue", entry.soft_id
    for lid in (entry.bony_id, entry.soft_id):
        if lid is not None:
            side = lm.get(lid).side
            assert side == ("left" if entry.bilateral else "midline"), (entry.key, lid, side)


@pytest.mark.parametrize("entry", [t for t in T.TISSUE_DEPTHS if t.bony_id], ids=lambda t: t.key)
def test_soft_id_is_the_vocabulary_counterpart_where_one_exists(entry):
    twin = lm.counterpart(entry.bony_id)
    if twin is not None:
        assert entry.soft_id == twin, (entry.key, entry.soft_id, twin)


def test_required_tissue_sites_present_and_keys_unique():
    keys = [t.key for t in T.TISSUE_DEPTHS]
    assert len(keys) == len(set(keys))
    assert REQUIRED_TISSUE_KEYS <= set(keys), REQUIRED_TISSUE_KEYS - set(keys)
    assert T.tissue_entry("rhinion").soft_id is None  # bony-only depth


@pytest.mark.parametrize("m", T.ANTHROPOMETRY, ids=lambda m: m.id)
def test_measurement_landmarks_exist_with_right_kind(m):
    want = "craniometric" if m.kind == "bony" else "soft_tissue"
    assert m.kind in ("bony", "soft")
    assert m.units in ("mm", "deg")
    for lid in m.landmarks:
        assert lm.get(lid).kind == want, (m.id, lid)


def test_enough_measurements_with_unique_ids():
    ids = [m.id for m in T.ANTHROPOMETRY]
    assert len(ids) == len(set(ids)) and len(ids) >= 15
    for needed in ("cranial_length", "cranial_breadth", "auricular_height", "bizygomatic_breadth",
                   "bigonial_breadth", "total_anterior_face_height", "upper_facial_height", "nasal_height",
                   "nasal_width", "nasal_aperture_width", "nasal_protrusion", "interorbital_breadth",
                   "intercanthal_width", "biocular_width", "orbit_height", "orbit_breadth", "ramus_height",
                   "mandibular_body_length", "mandibular_plane_angle", "sna", "snb", "anb",
                   "upper_lip_height", "mouth_width", "philtrum_length"):
        assert needed in ids, needed


# ----------------------------------------------------------------------------- sources

@pytest.mark.parametrize("where,source", list(_all_sources()), ids=lambda x: str(x)[:60])
def test_every_source_is_a_reference_key_or_an_explained_assumption(where, source):
    assert source.strip(), where
    if T.is_assumption(source):
        reason = source.strip()[len(T.ASSUMPTION_PREFIX):].strip()
        assert len(reason) > 20, f"{where}: an assumption must say why"
    else:
        keys = T.source_keys(source)
        assert keys, where
        for k in keys:
            assert k in T.REFERENCES, f"{where}: {k!r} is not in REFERENCES"


def test_check_against_keys_exist():
    for entry in list(T.TISSUE_DEPTHS) + list(T.ANTHROPOMETRY):
        for k in entry.check_against:
            assert k in T.REFERENCES, (entry, k)


def test_verified_entries_have_sourced_means():
    for entry in list(T.TISSUE_DEPTHS) + list(T.ANTHROPOMETRY):
        if entry.verified:
            assert not T.is_assumption(entry.source), entry
    assert any(t.verified for t in T.TISSUE_DEPTHS)
    assert sum(m.verified for m in T.ANTHROPOMETRY) >= 10


def test_references_are_full_citations():
    for key, citation in T.REFERENCES.items():
        assert key and len(citation) > 40, key
        assert not T.is_assumption(key)


def test_assumptions_list_every_assumed_value():
    listed = {(table, item) for table, item, _ in T.assumptions()}
    for t in T.TISSUE_DEPTHS:
        if not t.verified:
            assert ("tissue depth", t.key) in listed
    for m in T.ANTHROPOMETRY:
        if T.is_assumption(m.source) or T.is_assumption(m.sd_source):
            assert ("anthropometry", m.id) in listed


def test_module_imports_only_the_standard_library():
    tree = ast.parse(Path(T.__file__).read_text(encoding="utf-8"))
    mods = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: only medface's error classes (standard library only themselves)
                assert (node.level, node.module) == (2, "errors"), "the data module imports only medface.errors"
                continue
            mods.add(node.module.split(".")[0])
    assert mods <= {"__future__", "math", "sys", "dataclasses"}, mods


# ----------------------------------------------------------------------------- values

def test_sds_positive_and_means_plausible():
    for t in T.TISSUE_DEPTHS:
        assert t.sd_male > 0 and t.sd_female > 0, t.key
        assert 1.0 < t.mean_male < 40 and 1.0 < t.mean_female < 40, t.key
        assert 18 <= t.ref_age <= 100 and 10 <= t.ref_bmi <= 60, t.key
        assert t.bmi_slope >= 0, t.key  # no site thins with BMI
    for m in T.ANTHROPOMETRY:
        assert m.sd_male > 0 and m.sd_female > 0, m.id
        assert m.mean_male > 0 and m.mean_female > 0, m.id
        assert m.sd_male < m.mean_male or m.units == "deg", m.id


def test_male_not_smaller_than_female_for_verified_cephalometric_lengths():
    for m in T.ANTHROPOMETRY:
        if m.verified and m.units == "mm":
            assert m.mean_male >= m.mean_female, m.id


def test_correlations_valid():
    tissue = {t.key for t in T.TISSUE_DEPTHS}
    measures = {m.id for m in T.ANTHROPOMETRY}
    seen = set()
    for c in T.CORRELATIONS:
        pool = tissue if c.table == "tissue" else measures
        assert c.table in ("tissue", "anthropometry")
        assert c.a in pool and c.b in pool and c.a != c.b, c
        assert -1 < c.r < 1, c
        pair = frozenset((c.table, c.a, c.b))
        assert pair not in seen, c
        seen.add(pair)
    published = {(c.a, c.b): c.r for c in T.CORRELATIONS if not T.is_assumption(c.source)}
    assert published[("upper_lip_margin", "lower_lip_margin")] == pytest.approx(0.763)


# ----------------------------------------------------------------------------- tissue_depth

def test_tissue_depth_at_reference_point_is_the_table_mean():
    for t in T.TISSUE_DEPTHS:
        mean, sd = T.tissue_depth(t.key, "M")
        assert (mean, sd) == pytest.approx((t.mean_male, t.sd_male))
        mean, sd = T.tissue_depth(t.key, "F", age=t.ref_age, bmi=t.ref_bmi)
        assert (mean, sd) == pytest.approx((t.mean_female, t.sd_female))


@pytest.mark.parametrize("site", ["inferior_malar", "supra_m2", "sub_m2", "go_l", "pog", "me", "zy_r"])
def test_higher_bmi_gives_thicker_cheek_jaw_and_chin(site):
    lean, _ = T.tissue_depth(site, "F", age=40, bmi=19)
    obese, _ = T.tissue_depth(site, "F", age=40, bmi=35)
    assert obese > lean + 1.0, (site, lean, obese)


def test_bmi_matters_more_over_the_cheek_than_over_the_nasal_bones():
    def gain(site):
        return T.tissue_depth(site, bmi=35)[0] - T.tissue_depth(site, bmi=20)[0]
    assert gain("supra_m2") > 3 * gain("rhi")
    assert gain("inferior_malar") > gain("g")


def test_upper_lip_thins_with_age():
    young, _ = T.tissue_depth("pr", "M", age=20, bmi=24)
    old, _ = T.tissue_depth("pr", "M", age=80, bmi=24)
    assert old < young


def test_lookup_by_bony_soft_mirror_and_key():
    assert T.tissue_entry("zy_r") is T.tissue_entry("zy_l") is T.tissue_entry("zygomatic_arch")
    assert T.tissue_entry("pog_s") is T.tissue_entry("pog")
    assert T.tissue_depth("go_r", "M", 50, 30) == T.tissue_depth("go_l", "M", 50, 30)
    assert T.tissue_depth("supraorbital")[0] > 0


def test_unknown_sex_is_the_mixture():
    t = T.tissue_entry("mental_eminence")
    mean, sd = T.tissue_depth("pog", "unknown")
    assert mean == pytest.approx((t.mean_male + t.mean_female) / 2)
    assert sd >= min(t.sd_male, t.sd_female)
    assert T.tissue_depth("pog", "female") == T.tissue_depth("pog", "F")
    with pytest.raises(ParameterError, match="sex"):
        T.tissue_depth("pog", "X")


def test_depth_never_below_floor():
    mean, _ = T.tissue_depth("rhi", "F", age=100, bmi=10)
    assert mean >= T.MIN_TISSUE_DEPTH_MM


@pytest.mark.parametrize("bmi", [0, -3, 9.9, 60.5, 120, float("nan"), "25", True])
def test_bad_bmi_raises_a_parameter_error_naming_it(bmi):
    with pytest.raises(ParameterError) as err:
        T.tissue_depth("pog", "M", age=40, bmi=bmi)
    assert "BMI" in str(err.value) and repr(bmi) in str(err.value) and err.value.parameter == "bmi"


@pytest.mark.parametrize("age", [17, 17.9, 100.5, 0, -1, float("inf")])
def test_bad_age_raises_a_parameter_error_naming_it(age):
    with pytest.raises(ParameterError) as err:
        T.tissue_depth("pog", "M", age=age, bmi=24)
    assert "age" in str(err.value) and repr(age) in str(err.value) and err.value.parameter == "age"


def test_range_edges_accepted():
    T.tissue_depth("pog", "M", age=18, bmi=10)
    T.tissue_depth("pog", "M", age=100, bmi=60)


def test_unknown_site_raises_a_parameter_error_listing_known():
    with pytest.raises(ParameterError) as err:
        T.tissue_depth("nosuchpoint")
    assert "glabella" in str(err.value) and "pog" in str(err.value)
    with pytest.raises(ParameterError):
        T.tissue_depth("ba")  # a vocabulary id without a depth entry


# ----------------------------------------------------------------------------- norm

def test_norm_by_sex_and_mixture():
    m = T.measurement("ramus_height")
    assert T.norm("ramus_height", "M") == (m.mean_male, m.sd_male)
    assert T.norm("ramus_height", "F") == (m.mean_female, m.sd_female)
    mean, sd = T.norm("ramus_height")
    assert mean == pytest.approx((m.mean_male + m.mean_female) / 2)
    assert sd > max(m.sd_male, m.sd_female)  # the sex difference widens the mixture
    assert T.norm("sna", "M") == (82.0, T.measurement("sna").sd_male)
    with pytest.raises(ParameterError) as err:
        T.norm("nope")
    assert "ramus_height" in str(err.value)


def test_riolo_values_as_read():
    # Riolo et al. 1974, age 16 (values read from the digitised table)
    assert T.norm("ramus_height", "M") == (66.1, 4.1)
    assert T.norm("mandibular_body_length", "F") == (81.5, 3.8)
    assert T.norm("anterior_cranial_base", "M") == (83.3, 3.8)


# ----------------------------------------------------------------------------- conditions

def test_enough_conditions_with_unique_ids():
    ids = [c.id for c in T.CONDITIONS]
    assert len(ids) == len(set(ids)) and len(ids) >= 8


@pytest.mark.parametrize("preset", T.CONDITIONS, ids=lambda c: c.id)
def test_condition_preset_is_well_formed(preset):
    assert preset.hpo
    for hpo_id, label in preset.hpo:
        assert re.fullmatch(r"HP:\d{7}", hpo_id), hpo_id
        assert CHECKED_HPO.get(hpo_id) == label, (hpo_id, label)
    assert preset.definition.strip()
    assert preset.direction in (-1, 1)
    assert tuple(preset.severity_sd) == T.SEVERITIES
    mild, moderate, severe = (preset.severity_sd[s] for s in T.SEVERITIES)
    assert 0 < mild < moderate < severe
    assert mild < 2.0 and mild < preset.threshold_sd < moderate
    assert preset.measure in {m.id for m in T.ANTHROPOMETRY}
    for mid, weight in preset.also_shifts:
        assert mid in {m.id for m in T.ANTHROPOMETRY} and mid != preset.measure
        assert weight != 0
    assert preset.side in ("both", "unilateral")
    for sev in T.SEVERITIES:
        assert math.copysign(1, preset.shift_sd(sev)) == preset.direction


def test_condition_lookup_and_targets():
    p = T.condition("micrognathia")
    assert p.hpo[0][0] == "HP:0000347"
    mean, sd = T.norm("mandibular_body_length", "F")
    targets = T.condition_targets("micrognathia", "severe", "F")
    assert targets["mandibular_body_length"] == pytest.approx(mean - 3.5 * sd)
    assert targets["mandibular_length"] < T.norm("mandibular_length", "F")[0]
    wide = T.condition_targets("hypertelorism", "moderate", "M")
    assert wide["interorbital_breadth"] > T.norm("interorbital_breadth", "M")[0]
    assert wide["intercanthal_width"] > T.norm("intercanthal_width", "M")[0]
    retro = T.condition_targets("retrognathia", "mild")
    assert retro["snb"] < 80.0 and retro["anb"] > 2.0
    with pytest.raises(ParameterError) as err:
        T.condition("cyclopia")
    assert "hypertelorism" in str(err.value)
    with pytest.raises(ParameterError):
        p.shift_sd("extreme")


def test_mild_overlaps_normal_range_moderate_does_not():
    for p in T.CONDITIONS:
        assert abs(p.shift_sd("mild")) < p.threshold_sd < abs(p.shift_sd("moderate"))


# ----------------------------------------------------------------------------- docs

def test_docs_are_generated_and_up_to_date():
    assert DOC.is_file(), "run python -m medface.phantom.tables --write docs/phantom-references.md"
    assert DOC.read_text(encoding="utf-8") == T.markdown_document(), (
        "docs/phantom-references.md is stale: run python -m medface.phantom.tables --write "
        "docs/phantom-references.md")


def test_docs_list_every_reference_and_have_assumptions_section():
    text = T.markdown_document()
    assert "## Assumptions" in text and "## References" in text
    for key in T.REFERENCES:
        assert f"**{key}**" in text
    for p in T.CONDITIONS:
        for hpo_id, _ in p.hpo:
            assert hpo_id in text
