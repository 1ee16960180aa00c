"""The landmark vocabulary: ids, sides, mirrors, names, docs (medface.anatomy.landmarks)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from medface.anatomy import landmarks as lm
from medface.errors import InputError, ParameterError

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "landmarks.md"

ENTRIES = list(lm.VOCABULARY.values())
BILATERAL = [e for e in ENTRIES if e.side != "midline"]
MIDLINE = [e for e in ENTRIES if e.side == "midline"]

DESIGN_IDS = {
    "n": "craniometric", "g": "craniometric", "or_l": "craniometric", "po_r": "craniometric",
    "ans": "craniometric", "a": "craniometric", "pr": "craniometric", "id": "craniometric",
    "b": "craniometric", "pog": "craniometric", "gn": "craniometric", "me": "craniometric",
    "go_l": "craniometric", "zy_r": "craniometric",
    "n_s": "soft_tissue", "prn": "soft_tissue", "sn": "soft_tissue", "ls": "soft_tissue",
    "li": "soft_tissue", "pog_s": "soft_tissue",
}


# ----------------------------------------------------------------------------- ids and sides

def test_ids_are_lowercase_identifiers_and_keys_match():
    for key, e in lm.VOCABULARY.items():
        assert key == e.id
        assert re.fullmatch(r"[a-z][a-z0-9_]*", e.id), e.id
    assert len(set(lm.ids())) == len(lm.ids()) == len(lm.VOCABULARY)


def test_side_suffix_matches_side():
    for e in ENTRIES:
        if e.id.endswith("_l"):
            assert e.side == "left", e.id
        elif e.id.endswith("_r"):
            assert e.side == "right", e.id
        else:
            assert e.side == "midline", e.id


def test_every_bilateral_id_has_a_mirror_that_maps_back():
    for e in BILATERAL:
        m = lm.get(e.mirror)
        assert m.mirror == e.id
        assert {e.side, m.side} == {"left", "right"}
        assert e.id[:-2] == m.id[:-2]
        assert lm.mirror_id(lm.mirror_id(e.id)) == e.id
        # the two sides describe the same landmark
        assert (e.name, e.kind, e.region, e.definition, e.source, e.aliases) == \
            (m.name, m.kind, m.region, m.definition, m.source, m.aliases)


def test_midline_ids_mirror_to_themselves():
    for e in MIDLINE:
        assert e.mirror is None
        assert lm.mirror_id(e.id) == e.id


def test_bilateral_pairs_cover_every_bilateral_id_once():
    pairs = lm.bilateral_pairs()
    flat = [i for p in pairs for i in p]
    assert sorted(flat) == sorted(e.id for e in BILATERAL)
    for left, right in pairs:
        assert lm.get(left).side == "left" and lm.get(right).side == "right"
        assert lm.mirror_id(left) == right


def test_order_is_midline_then_pairs_within_each_kind():
    for kind in lm.KINDS:
        sides = [lm.get(i).side for i in lm.ids(kind=kind)]
        first_pair = sides.index("left")
        assert all(s == "midline" for s in sides[:first_pair])
        assert sides[first_pair:] == ["left", "right"] * ((len(sides) - first_pair) // 2)


def test_soft_tissue_suffix_rule():
    """`_s` (before the side) marks the soft-tissue analogue of a bony landmark of the same id."""
    for e in ENTRIES:
        if e.base.endswith("_s"):
            assert e.kind == "soft_tissue", e.id
            bony = e.base[:-2] + ("" if e.side == "midline" else e.id[-2:])
            assert lm.get(bony).kind == "craniometric", e.id
            assert lm.counterpart(e.id) == bony and lm.counterpart(bony) == e.id
        elif e.kind == "soft_tissue":
            assert lm.counterpart(e.id) is None
    assert lm.counterpart("zy_l") == "zy_s_l"
    assert lm.counterpart("go_s_r") == "go_r"
    assert lm.counterpart("n") == "n_s"
    assert lm.counterpart("ba") is None


# ----------------------------------------------------------------------------- content

def test_every_entry_has_definition_source_and_valid_fields():
    for e in ENTRIES:
        assert e.kind in lm.KINDS and e.side in lm.SIDES and e.region in lm.REGIONS
        assert e.name.strip(), e.id
        assert len(e.definition.strip()) > 25 and e.definition.rstrip().endswith("."), e.id
        assert e.source.strip(), e.id
        for ref in e.source.split("; "):
            assert ref in lm.REFERENCES, f"{e.id}: source {ref!r} has no full citation"


def test_every_reference_is_cited_and_complete():
    used = {ref for e in ENTRIES for ref in e.source.split("; ")}
    assert used == set(lm.REFERENCES)
    for key, citation in lm.REFERENCES.items():
        year = re.search(r"\d{4}", key).group()
        assert year in citation, key


def test_names_are_unique_per_side():
    seen = {(e.name.lower(), e.side) for e in ENTRIES}
    assert len(seen) == len(ENTRIES)


def test_counts():
    assert len(lm.craniometric_ids()) >= 30
    assert len(lm.soft_tissue_ids()) >= 20
    assert len(lm.craniometric_ids()) + len(lm.soft_tissue_ids()) == len(lm.VOCABULARY)


@pytest.mark.parametrize("landmark_id,kind", sorted(DESIGN_IDS.items()))
def test_design_ids_exist_with_right_kind(landmark_id, kind):
    assert lm.is_known(landmark_id)
    assert lm.get(landmark_id).kind == kind


def test_well_known_meanings():
    assert lm.get("b").name == "B point"          # not bregma
    assert lm.get("br").name == "bregma"
    assert lm.get("la").name == "lambda"
    assert lm.get("a").name == "A point"
    assert lm.get("s").name == "sella"
    assert lm.get("sl").kind == "soft_tissue"
    assert lm.get("al_l").kind == "soft_tissue" and lm.get("apl_l").kind == "craniometric"
    for pair in [("or_l", "or_r"), ("po_l", "po_r"), ("go_l", "go_r"), ("zy_l", "zy_r"), ("en_l", "en_r"),
                 ("ex_l", "ex_r"), ("ch_l", "ch_r"), ("al_l", "al_r"), ("t_l", "t_r")]:
        assert pair in lm.bilateral_pairs()


def test_ids_filters():
    assert lm.craniometric_ids() == lm.ids(kind="craniometric")
    assert lm.soft_tissue_ids() == lm.ids(kind="soft_tissue")
    lips = lm.ids(region="lips")
    assert {"ls", "li", "sto", "ch_l", "ch_r"} <= set(lips)
    assert all(lm.get(i).region == "lips" for i in lips)
    assert lm.ids(kind="craniometric", region="lips") == []
    assert set(lm.ids(kind="soft_tissue", region="chin")) >= {"pog_s", "me_s", "gn_s"}
    with pytest.raises(ParameterError, match="soft_tissue"):
        lm.ids(kind="soft")
    with pytest.raises(ParameterError, match="orbit"):
        lm.ids(region="orbits")


def test_definition_is_frozen_and_validated():
    e = lm.get("n")
    with pytest.raises(AttributeError):
        e.name = "x"
    with pytest.raises(ValueError):
        lm.LandmarkDef("Go_L", "gonion", "craniometric", "mandible", "left", "d.", "s")
    with pytest.raises(ValueError):
        lm.LandmarkDef("go_l", "gonion", "craniometric", "mandible", "right", "d.", "s", mirror="go_r")
    with pytest.raises(ValueError):
        lm.LandmarkDef("x", "x", "bony", "mandible", "midline", "d.", "s")
    assert lm.get("go_l").display_name == "gonion (left)"


# ----------------------------------------------------------------------------- lookups

def test_is_known_is_exact():
    assert lm.is_known("n") and lm.is_known("go_l")
    for not_an_id in ("N", "nasion", "Go_L", "go", " n", "", None, 3):
        assert not lm.is_known(not_an_id)


@pytest.mark.parametrize("text,expected", [
    ("Nasion", "n"), ("nasion", "n"), ("N", "n"), ("Na", "n"), ("Pogonion", "pog"), ("Pog", "pog"),
    ("Go L", "go_l"), ("go_l", "go_l"), ("GO_L", "go_l"), ("left gonion", "go_l"), ("Gonion (right)", "go_r"),
    ("gonion, R", "go_r"), ("Zygion right", "zy_r"), ("Orbitale-L", "or_l"),
    ("soft tissue pogonion", "pog_s"), ("Soft-tissue pogonion", "pog_s"), ("pogonion soft tissue", "pog_s"),
    ("Pog'", "pog_s"), ("Pog\u2019", "pog_s"), ("N'", "n_s"), ("soft tissue nasion", "n_s"),
    ("A'", "a_s"), ("soft tissue A point", "a_s"), ("B'", "sl"), ("soft tissue B point", "sl"), ("b_s", "sl"),
    ("subspinale", "a"), ("point A", "a"), ("supramentale", "b"), ("acanthion", "ans"), ("bregma", "br"),
    ("Lambda", "la"), ("pronasale", "prn"), ("Subnasale", "sn"), ("labrale superius", "ls"),
    ("Labrale Inferius", "li"), ("stomion", "sto"), ("sublabiale", "sl"), ("c'", "c"), ("columella", "c"),
    ("left endocanthion", "en_l"), ("Ex R", "ex_r"), ("cheilion left", "ch_l"), ("tragion (L)", "t_l"),
    ("soft tissue zygion right", "zy_s_r"), ("left soft-tissue gonion", "go_s_l"), ("zy' l", "zy_s_l"),
    ("soft tissue pronasale", "prn"), ("gnathion (Farkas)", "me_s"), ("gnathion (Martin)", "me"),
    ("bony alare left", "apl_l"), ("alare right", "al_r"), ("  SELLA  ", "s"),
])
def test_resolve(text, expected):
    assert lm.resolve(text) == expected


def test_resolve_every_id_name_and_alias():
    for e in ENTRIES:
        assert lm.resolve(e.id) == e.id
        forms = [e.name, *e.aliases]
        if e.side == "midline":
            for f in forms:
                assert lm.resolve(f) == e.id, f
                assert lm.resolve(f.upper()) == e.id, f
        else:
            for f in forms:
                assert lm.resolve(f"{f} {e.side}") == e.id, f
                assert lm.resolve(f"{e.side} {f}") == e.id, f
                assert lm.resolve(f"{f} ({e.side[0].upper()})") == e.id, f
                assert lm.resolve(e.display_name) == e.id


def test_resolve_bilateral_name_without_side_is_ambiguous():
    with pytest.raises(KeyError) as info:
        lm.resolve("gonion")
    assert "go_l" in str(info.value) and "go_r" in str(info.value)
    assert info.value.suggestions == ["go_l", "go_r"]


def test_resolve_midline_with_side_is_an_error():
    with pytest.raises(KeyError, match="midline"):
        lm.resolve("nasion left")


def test_resolve_soft_tissue_of_a_landmark_without_analogue():
    with pytest.raises(KeyError, match="no soft-tissue analogue of basion"):
        lm.resolve("soft tissue basion")


def test_resolve_unknown_suggests():
    with pytest.raises(KeyError) as info:
        lm.resolve("pogonoin")
    assert info.value.suggestions[0] == "pog"
    with pytest.raises(KeyError):
        lm.resolve("not a landmark at all")


def test_get_typo_suggests_nasion():
    with pytest.raises(KeyError) as info:
        lm.get("nasoin")
    err = info.value
    assert isinstance(err, lm.UnknownLandmarkError) and isinstance(err, InputError)
    assert err.suggestions[0] == "n"
    assert "'n'" in str(err) and "nasion" in str(err)


def test_get_with_a_name_points_to_the_id():
    with pytest.raises(KeyError) as info:
        lm.get("Nasion")
    assert info.value.suggestions == ["n"] and "resolve" in str(info.value)


def test_mirror_id_unknown_raises():
    with pytest.raises(KeyError):
        lm.mirror_id("go")


def test_module_imports_only_the_standard_library():
    code = ("import sys; import medface.anatomy.landmarks; "
            "bad = [m for m in ('numpy', 'scipy', 'torch', 'SimpleITK', 'vtk', 'trimesh') if m in sys.modules]; "
            "print(','.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == ""


# ----------------------------------------------------------------------------- docs

def test_docs_list_every_id():
    text = DOC.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `([a-z][a-z0-9_]*)` \|", text, flags=re.M))
    assert listed == set(lm.VOCABULARY)


def test_docs_generated_blocks_are_up_to_date():
    blocks = lm._generated_blocks(DOC.read_text(encoding="utf-8"))
    hint = "run: python -m medface.anatomy.landmarks --write docs/landmarks.md"
    assert blocks["tables"] == lm.markdown_tables(), hint
    assert blocks["references"] == lm.markdown_references(), hint


def test_docs_state_the_frame_and_side_convention():
    text = DOC.read_text(encoding="utf-8")
    assert "LPS" in text and "patient's left" in text
    assert "`_s`" in text
