"""Manifest schema: valid manifests parse, invalid ones report every problem with its key."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from medface.errors import ManifestError
from medface.plugin.manifest import build_manifest, read_manifest

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
