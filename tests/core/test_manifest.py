"""The manifest model: valid manifests parse and serialise back whole, invalid ones report every
problem with its key, and the JSON Schema and the docs are generated from the model."""

from __future__ import annotations

import copy
import json
import tomllib
from pathlib import Path

import pytest

from medface.errors import ManifestError
from medface.plugin.manifest import (SCHEMA_PATH, CommandSpec, Manifest, ParameterSpec, build_manifest,
                                     manifest_reference, manifest_schema_text, problems_in, read_manifest)

REPO = Path(__file__).resolve().parents[2]

VALID = """
name = "demo"
title = "Demo"
version = "1.2.0"
category = "Examples"
contributors = ["A. Author"]
help = "A demo plugin."

[[commands]]
id = "do-it"
help = "Does it."
python_name = "demo_pkg.mod:do_it"

[[commands.parameters]]
name = "advance"
type = "float"
default = 5.0
min = 0.0
max = 20.0
units = "mm"
help = "How far."

[[commands.parameters]]
name = "mode"
type = "enum"
choices = ["fast", "accurate"]
default = "fast"
help = "Which solver."
"""


def test_valid_manifest_parses_with_types_and_ranges():
    m = build_manifest(tomllib.loads(VALID))
    cmd = m.command("do-it")
    assert cmd.full_id == "demo.do-it"
    adv = cmd.parameter("advance")
    assert (adv.type, adv.minimum, adv.maximum, adv.units, adv.default, adv.required) == \
        ("float", 0.0, 20.0, "mm", 5.0, False)
    assert "range: 0 to 20" in adv.describe() and "units: mm" in adv.describe()
    assert m.command("do_it") is cmd  # underscores accepted for hyphens


def test_every_problem_is_reported_with_its_key(tmp_path):
    bad = VALID.replace('title = "Demo"\n', "").replace("default = 5.0", "default = 50.0")
    bad = bad.replace('type = "enum"\nchoices = ["fast", "accurate"]', 'type = "enum"')
    bad += '\n[[commands.parameters]]\nname = "Bad Name"\ntype = "tensor"\nhelp = "x"\n'
    path = tmp_path / "medface-plugin.toml"
    path.write_text(bad)
    with pytest.raises(ManifestError) as info:
        read_manifest(path)
    problems = info.value.problems
    text = str(info.value)
    assert str(path) in text
    assert any(p.startswith("(top level)") and "'title' is a required property" in p for p in problems)
    assert any(p.startswith("commands[0].parameters[0].default") and "above max 20" in p for p in problems)
    assert any(p.startswith("commands[0].parameters[1].choices") for p in problems)
    assert any(p.startswith("commands[0].parameters[2].name") for p in problems)
    assert any(p.startswith("commands[0].parameters[2].type") for p in problems)
    assert len(problems) >= 5


@pytest.mark.parametrize("name", ["context", "purpose", "consent", "audit_log"])
def test_a_parameter_cannot_take_a_run_option_name(name):
    """--purpose, --consent, --audit-log ... belong to every command (the runner's options)."""
    doc = tomllib.loads(VALID.replace('name = "advance"', f'name = "{name}"'))
    problems = problems_in(doc)
    assert any(p.startswith("commands[0].parameters[0].name") and "reserved" in p for p in problems), problems


def test_not_toml_is_a_manifest_error(tmp_path):
    path = tmp_path / "medface-plugin.toml"
    path.write_text("name = [unclosed\n")
    with pytest.raises(ManifestError, match="not valid TOML"):
        read_manifest(path)


@pytest.mark.parametrize("plugin", ["phenotype", "surgery", "forensic"])
def test_shipped_manifests_are_valid(plugin):
    m = read_manifest(REPO / "plugins" / plugin / f"medface_{plugin}")
    assert m.name == plugin and m.commands and m.selftest
    for cmd in m.commands:
        assert cmd.python_name.startswith(f"medface_{plugin}.")
        for p in cmd.parameters:
            assert p.help.strip()


FULL = VALID.replace('help = "How far."', 'help = "How far."\nlabel = "Advance"\nadvanced = true') + """
[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
required = false
help = "Where to write."
"""


def test_to_dict_round_trips_every_field():
    m = build_manifest(tomllib.loads(FULL))
    doc = m.to_dict()
    advance = doc["commands"][0]["parameters"][0]
    assert (advance["label"], advance["advanced"], advance["min"], advance["max"]) == ("Advance", True, 0.0, 20.0)
    again = build_manifest(doc)
    assert again == m and again.to_dict() == doc
    assert again.command("do-it").full_id == "demo.do-it"  # the commands know their plugin again
    fields = {"ParameterSpec": set(advance), "CommandSpec": set(doc["commands"][0]), "Manifest": set(doc)}
    for model in (ParameterSpec, CommandSpec, Manifest):
        assert fields[model.__name__] == {f.alias or n for n, f in model.model_fields.items()}


def test_duplicates_unknown_keys_and_bad_values_are_named():
    doc = tomllib.loads(FULL)
    doc["commands"].append(copy.deepcopy(doc["commands"][0]))
    doc["commands"][0]["parameters"][1] = {**doc["commands"][0]["parameters"][1], "name": "advance",
                                           "defualt": "fast"}
    doc["requirements"] = ["numpy>=>1"]
    problems = problems_in(doc)
    assert "commands[1].id: duplicate command id 'do-it'" in problems
    assert "commands[0].parameters[1].name: duplicate parameter name 'advance'" in problems
    assert "commands[0].parameters[1]: unknown key 'defualt' (did you mean 'default'?)" in problems
    assert any(p.startswith("requirements[0]: 'numpy>=>1' is not a valid requirement") for p in problems)
    assert not any(p.startswith("commands[1].parameters") for p in problems)  # the copy's names are its own


def test_committed_json_schema_is_the_generated_one_and_checks_manifests():
    from jsonschema import Draft202012Validator

    assert SCHEMA_PATH.read_text(encoding="utf-8") == manifest_schema_text(), \
        "regenerate it: medface plugins schema --out medface/plugin/manifest.schema.json"
    validator = Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))
    for path in sorted((REPO / "plugins").glob("*/*/medface-plugin.toml")):
        assert list(validator.iter_errors(tomllib.loads(path.read_text(encoding="utf-8")))) == [], path
    bad = tomllib.loads(VALID.replace('type = "float"', 'type = "tensor"'))
    assert [e.json_path for e in validator.iter_errors(bad)] == ["$.commands[0].parameters[0].type"]


def test_plugin_guide_holds_the_generated_key_reference():
    guide = (REPO / "docs" / "plugin-guide.md").read_text(encoding="utf-8")
    assert manifest_reference() in guide, "regenerate the block: medface plugins schema --markdown"
    for key in ("python_name", "channel", "advanced", "min", "selftest"):
        assert f"| `{key}` |" in manifest_reference()


def test_a_float_default_too_large_for_a_float_is_a_problem_not_a_crash():
    """Found by the fuzz harness: an integer default of 400 digits for a float parameter."""
    doc = tomllib.loads(VALID.replace("default = 5.0", "default = " + "9" * 400))
    problems = problems_in(doc)
    assert any(p.startswith("commands[0].parameters[0].default") and "too large" in p for p in problems), problems
