"""Parameters are converted and range-checked before any plugin code runs."""

from __future__ import annotations

import sys

import pytest

import medface
from medface.errors import InputError, ParameterError

from .plugin_samples import GOOD_CODE, GOOD_MANIFEST


@pytest.fixture
def toy(medface_plugins, tmp_path):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    return tmp_path / "marker.txt"


def test_strings_are_converted(toy):
    r = medface.run("toy.add", a="2.5", b="3", mode="DOUBLE", verbose="yes", marker=toy)
    assert r.summary["total"] == 11.0
    assert toy.read_text(encoding="utf-8") == "ran"


@pytest.mark.parametrize("params, parameter, text", [
    ({"a": 11.0}, "a", "11 mm is above the maximum 10 mm"),
    ({"a": -10.5}, "a", "below the minimum -10 mm"),
    ({"a": "abc"}, "a", "expected a number"),
    ({"a": float("nan")}, "a", "finite"),
    ({"a": 1.0, "b": 2.5}, "b", "expected an integer"),
    ({"a": 1.0, "b": True}, "b", "expected an integer"),
    ({"a": 1.0, "b": 6}, "b", "above the maximum 5"),
    ({"a": 1.0, "mode": "triple"}, "mode", "not one of: plain, double"),
    ({"a": 1.0, "verbose": "perhaps"}, "verbose", "true or false"),
    ({}, "a", "is required"),
    ({"a": 1.0, "bee": 2}, "bee", "has no parameter 'bee'"),
])
def test_bad_values_are_refused_before_the_plugin_runs(toy, params, parameter, text):
    with pytest.raises(ParameterError) as info:
        medface.run("toy.add", marker=toy, **params)
    assert info.value.parameter == parameter
    assert text in str(info.value) and f"'{parameter}'" in str(info.value)
    assert not toy.exists(), "the plugin ran although a parameter was bad"
    assert "toy_pkg.commands" not in sys.modules, "plugin code was imported although a parameter was bad"


def test_missing_input_file_names_parameter_and_path(medface_plugins, tmp_path):
    medface_plugins.add("hello_pkg", manifest="""
        name = "hello"
        title = "Hello"
        version = "1.0"
        category = "Testing"
        contributors = ["t"]
        help = "x"
        [[commands]]
        id = "size"
        help = "x"
        python_name = "hello_pkg.cmd:size"
        [[commands.parameters]]
        name = "mesh"
        type = "mesh"
        help = "a mesh"
        """, modules={"cmd.py": "def size(mesh):\n    return {'n': mesh.n_vertices}\n"})
    missing = tmp_path / "nothing.stl"
    with pytest.raises(InputError) as info:
        medface.run("hello.size", mesh=missing)
    assert "mesh" in str(info.value) and str(missing) in str(info.value) and "does not exist" in str(info.value)
    with pytest.raises(ParameterError, match="expected a path or a SurfaceMesh"):
        medface.run("hello.size", mesh=42)


def test_provenance_records_parameters_seed_and_versions(toy, tmp_path):
    r = medface.run("toy.add", a=1.0, seed=7, out=tmp_path / "out")
    p = r.provenance
    assert p.plugin == "toy" and p.plugin_version == "0.3.0" and p.medface_version == medface.__version__
    assert p.parameters["a"] == 1.0 and p.parameters["b"] == 1 and p.parameters["mode"] == "plain"
    assert p.seed == 7 and r.summary["seed_seen"] == 7
    assert p.started and p.finished and p.started <= p.finished  # ISO times: the run ends after it starts
    saved = (tmp_path / "out" / "result.json").read_text(encoding="utf-8")
    assert '"seed": 7' in saved and '"plugin": "toy"' in saved


@pytest.mark.parametrize("factory, kwargs, parameter", [
    ("Predictor", {"batch_size": 0}, "batch_size"),
    ("Predictor", {"num_workers": -1}, "num_workers"),
    ("Predictor", {"precision": "fp7"}, "precision"),
    ("TrainConfig", {"batch_size": 0}, "batch_size"),
])
def test_a_bad_parameter_value_is_a_parameter_error_in_the_python_api_too(factory, kwargs, parameter):
    from medface.runtime.predictor import Predictor
    from medface.runtime.training import TrainConfig

    make = {"Predictor": lambda **kw: Predictor(None, **kw), "TrainConfig": TrainConfig}[factory]
    with pytest.raises(ParameterError) as info:
        make(**kwargs)
    assert info.value.parameter == parameter and info.value.exit_code == 2
    assert f"parameter '{parameter}'" in str(info.value)
