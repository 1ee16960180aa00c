"""Structured fuzzing with Hypothesis: near-valid documents for the JSON / TOML readers.

Each example starts from a valid document (a Slicer markups file, a surgery plan, a model card,
a plugin manifest) and replaces one part by an arbitrary JSON value, so the readers' field
checks are exercised, not only their JSON parsers. Every outcome must be a result or a
MedfaceError. Derandomized (the same examples on every run) so CI is reproducible.
"""

from __future__ import annotations

import json
import tomllib

import pytest

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medface.errors import MedfaceError
from tests.fuzzing.mutators import json_nodes, replace_at
from tests.fuzzing.seeds import REPO, write_seeds

SETTINGS = settings(max_examples=150, derandomize=True, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20)


def _replaced(doc, path, value):
    return replace_at(json.loads(json.dumps(doc)), path, value)


def near_valid(document):
    paths = [path for path, _ in json_nodes(document)]
    return st.tuples(st.sampled_from(paths), json_values).map(lambda pv: _replaced(document, *pv))


def _outcome(call) -> None:
    try:
        call()
    except MedfaceError:
        pass


def _reader(name):
    from medface.io import read_landmarks, read_plan

    return {"points.mrk.json": read_landmarks, "plan.json": read_plan}[name]


@pytest.mark.parametrize("name", ["points.mrk.json", "plan.json"])
def test_json_documents(tmp_path_factory, name):
    """Slicer markups and surgery plans, one part replaced by any JSON value."""
    seed = write_seeds(tmp_path_factory.mktemp("structured"))[name]
    read = _reader(name)

    @SETTINGS
    @given(near_valid(json.loads(seed.read_text(encoding="utf-8"))))
    def check(doc):
        target = seed.with_name("fuzzed-" + name)
        target.write_text(json.dumps(doc), encoding="utf-8")
        _outcome(lambda: read(target))

    check()


def test_model_cards(tmp_path_factory):
    from medface.runtime.package import read_card

    seed = write_seeds(tmp_path_factory.mktemp("structured"))["card.json"]

    @SETTINGS
    @given(near_valid(json.loads(seed.read_text(encoding="utf-8"))))
    def check(doc):
        seed.write_text(json.dumps(doc), encoding="utf-8")
        _outcome(lambda: read_card(seed.parent))

    check()


def test_plugin_manifests():
    from medface.plugin.manifest import build_manifest

    manifest = REPO / "plugins" / "surgery" / "medface_surgery" / "medface-plugin.toml"
    document = tomllib.loads(manifest.read_text(encoding="utf-8"))

    @SETTINGS
    @given(near_valid(document))
    def check(doc):
        _outcome(lambda: build_manifest(doc))

    check()
