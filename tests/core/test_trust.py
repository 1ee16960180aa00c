"""Plugins and models you can trust (issue 14): a plugin cannot end medface at import, an
impostor on MEDFACE_PLUGIN_PATH never replaces an installed plugin, a plugin's code is hashed,
and a shipped model package is authenticated by hashes pinned in its plugin's code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

import medface
from medface.errors import ModelError, PluginError
from medface.runtime import package as pkg_module
from medface.runtime import (SmallCNN, build_network, card_content_sha256, load_package, package_hashes, pin_package,
                             read_card, save_package, verify_package)

MANIFEST = """
name = "{name}"
title = "Trust test plugin"
version = "1.0.0"
category = "Testing"
contributors = ["medface tests"]
help = "A plugin written by tests/core/test_trust.py."

[[commands]]
id = "{command}"
help = "Return one."
python_name = "{package}.commands:run"
"""
CODE = "from medface.data import Result\n\ndef run():\n    return Result(command='x', summary={'value': 1})\n"


def _add(sandbox, package, name, command="hello", code=CODE):
    return sandbox.add(package, manifest=MANIFEST.format(name=name, package=package, command=command),
                       modules={"commands.py": code})


def _medface(*args, env=None, code=None):
    command = [sys.executable, "-c", code] if code else [sys.executable, "-m", "medface", *args]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=120)


# ----------------------------------------------------------------------------- exits at import


def test_sys_exit_at_import_makes_the_plugin_broken_not_medface(medface_plugins):
    _add(medface_plugins, "quitter_pkg", "quitter", code="import sys\nsys.exit(3)\n" + CODE)
    _add(medface_plugins, "fine_pkg", "fine")
    with pytest.raises(PluginError, match=r"plugin 'quitter' is broken: .*sys\.exit\(3\)"):
        medface.run("quitter.hello")
    assert not medface.plugins()["quitter"].ok
    assert medface.run("fine.hello").summary["value"] == 1  # the others keep working
    problems = medface_plugins.refresh().check_imports()  # in a child process
    assert "sys.exit(3)" in problems["quitter"] and problems["fine"] == ""


_RUN_EXITER = """
import medface
from medface.errors import PluginError
try:
    medface.run("exiter.hello")
except PluginError as exc:
    print("refused:", exc)
print("still alive")
"""


@pytest.mark.parametrize("killer, expected", [
    ("import os\nos._exit(3)\n", "os._exit(3)"),
    ("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n", "killed the process it ran in (SIGKILL)"),
])
def test_a_plugin_that_ends_its_process_at_import_is_listed_broken_by_name(tmp_path, killer, expected):
    folder = tmp_path / "plugins" / "exiter_pkg"
    folder.mkdir(parents=True)
    (folder / "__init__.py").write_text("", encoding="utf-8")
    (folder / "medface-plugin.toml").write_text(MANIFEST.format(name="exiter", package="exiter_pkg",
                                                                command="hello"), encoding="utf-8")
    (folder / "commands.py").write_text(killer + CODE, encoding="utf-8")
    env = {"MEDFACE_PLUGIN_PATH": str(tmp_path / "plugins"), "MEDFACE_NO_ENTRY_POINTS": "1"}
    listed = _medface("plugins", "list", "--imports", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "exiter" in listed.stdout and "broken" in listed.stdout and expected in listed.stdout, listed.stdout
    if "_exit" in killer:  # running a command imports in-process: os._exit there is caught too
        run = _medface(code=_RUN_EXITER, env=env)
        assert run.returncode == 0, run.stderr
        assert "refused: plugin 'exiter' is broken" in run.stdout and "os._exit(3)" in run.stdout
        assert "still alive" in run.stdout


def test_os_exit_works_again_after_a_guarded_import():
    code = "from medface.plugin.safe_import import exits_raise\nimport os\nwith exits_raise():\n    pass\nos._exit(7)\n"
    assert _medface(code=code).returncode == 7


# ----------------------------------------------------------------------------- impostors


def test_an_impostor_on_the_plugin_path_never_replaces_the_installed_plugin(medface_plugins):
    medface_plugins.include_installed()
    impostor = _add(medface_plugins, "impostor_pkg", "surgery", command="steal")
    registry = medface.plugins()
    real = registry["surgery"]
    assert real.ok and real.source == "entry point surgery" and real.location != impostor
    shadowing = [p for p in registry.values() if p.location == impostor]
    assert len(shadowing) == 1 and not shadowing[0].ok
    assert "shadows the installed plugin 'surgery'" in shadowing[0].reason
    assert str(real.location) in shadowing[0].reason
    with pytest.raises(PluginError, match="no command 'steal'"):  # the impostor's code never runs
        medface.run("surgery.steal")
    assert "impostor_pkg" not in sys.modules


def test_a_path_plugin_with_an_installed_plugins_package_is_not_loaded(medface_plugins):
    medface_plugins.include_installed()
    _add(medface_plugins, "medface_surgery", "sneaky")
    info = [p for p in medface.plugins().values() if p.name == "sneaky"][0]
    assert not info.ok and "package of the installed plugin 'surgery'" in info.reason
    assert medface.plugins()["surgery"].ok


def test_the_plugin_path_listing_an_installed_plugins_own_folder_lists_it_once(medface_plugins, repo_root):
    medface_plugins.include_installed()
    from medface.plugin.registry import Registry

    registry = Registry(plugin_path=str(repo_root / "plugins" / "surgery")).scan()
    surgery = [p for p in registry.values() if p.name == "surgery"]
    assert len(surgery) == 1 and surgery[0].ok and surgery[0].source == "entry point surgery"


# ----------------------------------------------------------------------------- code hash


def test_code_hash_changes_when_a_plugin_file_changes(medface_plugins):
    folder = _add(medface_plugins, "hashed_pkg", "hashed")
    first = medface_plugins.registry["hashed"].code_sha256
    assert len(first) == 64 and first == medface_plugins.refresh()["hashed"].code_sha256
    (folder / "__pycache__").mkdir()
    (folder / "__pycache__" / "commands.cpython-311.pyc").write_bytes(b"compiled")
    (folder / "notes.txt").write_text("not code", encoding="utf-8")
    assert medface_plugins.refresh()["hashed"].code_sha256 == first  # caches and data are not code
    (folder / "commands.py").write_text(CODE + "# edited\n", encoding="utf-8")
    edited = medface_plugins.refresh()["hashed"].code_sha256
    assert edited != first
    (folder / "sub").mkdir()
    (folder / "sub" / "extra.py").write_text("", encoding="utf-8")
    assert medface_plugins.refresh()["hashed"].code_sha256 not in (first, edited)
    manifest = folder / "medface-plugin.toml"
    (folder / "sub" / "extra.py").unlink()
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("Return one.", "Return 1."), encoding="utf-8")
    assert medface_plugins.refresh()["hashed"].code_sha256 not in (first, edited)


def test_installed_plugins_have_a_code_hash():
    for name in ("phenotype", "surgery", "forensic"):
        assert len(medface.plugins()[name].code_sha256) == 64


# ----------------------------------------------------------------------------- pinned models

CARD = {"name": "trust-test", "version": "1", "architecture": {"name": "medface.SmallCNN",
                                                                "args": {"width": 4, "depth": 1,
                                                                         "embedding_dim": 8}},
        "inputs": {"image": {"type": "image"}}, "outputs": {"logits": {"type": "logits"}}, "labels": ["a", "b"],
        "training_data": "synthetic: none (random weights)", "intended_use": "tests", "limitations": "none",
        "licence": "MIT"}


@pytest.fixture
def pins(monkeypatch):
    """Pins made by a test are forgotten after it (the shipped ones are made before)."""
    import medface_phenotype.model_hashes  # noqa: F401

    monkeypatch.setattr(pkg_module, "_PINS", dict(pkg_module._PINS))


@pytest.fixture
def pinned_package(tmp_path, pins):
    folder = save_package(SmallCNN(width=4, depth=1, embedding_dim=8), CARD, tmp_path / "shipped")
    pin_package(folder, **package_hashes(folder), owner="the test plugin")
    return folder


def _tamper_weights_and_rewrite_card(folder, card_changes=None):
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x55  # one weight changed
    weights.write_bytes(bytes(data))
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    import hashlib

    card["sha256"] = hashlib.sha256(bytes(data)).hexdigest()  # the card rewritten to match
    card.update(card_changes or {})
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")


def test_tampered_weights_with_a_rewritten_sha256_are_refused_when_pinned(pinned_package, tmp_path):
    assert load_package(pinned_package, device="cpu").authenticated
    unpinned = shutil.copytree(pinned_package, tmp_path / "copy")
    _tamper_weights_and_rewrite_card(pinned_package)
    _tamper_weights_and_rewrite_card(unpinned)
    with pytest.raises(ModelError, match="not authentic: its weights' sha256 in card.json is .* not the"):
        load_package(pinned_package, device="cpu")
    assert any("not authentic" in p for p in verify_package(pinned_package))
    # the same edit on a package no plugin pins loads: its sha256 proves integrity, not authenticity
    assert not load_package(unpinned, device="cpu").authenticated


def test_a_changed_architecture_arg_in_a_pinned_card_is_refused(pinned_package):
    card = json.loads((pinned_package / "card.json").read_text(encoding="utf-8"))
    card["architecture"]["args"]["embedding_dim"] = 9
    (pinned_package / "card.json").write_text(json.dumps(card, indent=4), encoding="utf-8")
    with pytest.raises(ModelError, match="architecture, its args, labels or settings were changed"):
        load_package(pinned_package, device="cpu")
    card["architecture"]["args"]["embedding_dim"] = 8  # back; re-indented only: still the shipped card
    (pinned_package / "card.json").write_text(json.dumps(card, indent=1), encoding="utf-8")
    assert load_package(pinned_package, device="cpu").authenticated


def test_the_bundled_demo_model_is_pinned_and_a_tampered_copy_is_refused(tmp_path, pins):
    from medface_phenotype import model as _registers_gestaltnet  # noqa: F401
    from medface_phenotype import model_hashes

    DEMO_MODEL = model_hashes.DEMO_MODEL_DIR  # the folder medface_phenotype.screening.DEMO_MODEL names
    assert pkg_module.package_pin(DEMO_MODEL) is not None
    assert package_hashes(DEMO_MODEL) == {"weights_sha256": model_hashes.DEMO_WEIGHTS_SHA256,
                                          "card_sha256": model_hashes.DEMO_CARD_SHA256}
    assert verify_package(DEMO_MODEL) == []
    copy = shutil.copytree(DEMO_MODEL, tmp_path / "phantom-demo")  # as if installed here and then edited
    pin_package(copy, weights_sha256=model_hashes.DEMO_WEIGHTS_SHA256, card_sha256=model_hashes.DEMO_CARD_SHA256,
                owner="medface-phenotype")
    _tamper_weights_and_rewrite_card(copy)
    problems = verify_package(copy)
    assert len(problems) == 1 and "not authentic" in problems[0] and "medface-phenotype" in problems[0]


def test_the_shipped_forensic_template_is_pinned(tmp_path, monkeypatch):
    from medface_forensic import template

    shipped = shutil.copytree(template.DATA_DIR, tmp_path / "data")
    npz, desc = template.data_paths(folder=shipped)
    with np.load(npz) as arrays:
        changed = {k: arrays[k].copy() for k in arrays.files}
    changed["skin_vertices"][0] += 5.0  # one skin vertex moved by 5 mm
    np.savez_compressed(npz, **changed)
    info = json.loads(desc.read_text(encoding="utf-8"))
    info["sha256"] = template.file_sha256(npz)  # the description rewritten to match
    desc.write_text(json.dumps(info), encoding="utf-8")
    assert template.load_template(folder=shipped).version == 1  # a folder of one's own: integrity only
    monkeypatch.setattr(template, "DATA_DIR", shipped)  # as if these were the installed files
    with pytest.raises(ModelError, match="not authentic: template-v1.npz is not the file shipped"):
        template.load_template(folder=shipped)


# ----------------------------------------------------------------------------- size budget and cards


def test_an_architecture_too_large_to_build_is_refused_before_allocating(tmp_path):
    started = time.perf_counter()
    with pytest.raises(ModelError, match=r"would need [\d,.]+ GB .* more than the budget"):
        build_network("medface.SmallCNN", {"width": 4096})  # about 6 GB of weights
    folder = save_package(SmallCNN(width=4, depth=1, embedding_dim=8), CARD, tmp_path / "big")
    card = json.loads((folder / "card.json").read_text(encoding="utf-8"))
    card["architecture"]["args"].update(width=4096, depth=3)  # a 6 GB network from a 1 kB edit
    (folder / "card.json").write_text(json.dumps(card), encoding="utf-8")
    with pytest.raises(ModelError, match="more than the budget"):
        load_package(folder, device="cpu")
    assert any("more than the budget" in p for p in verify_package(folder))
    assert time.perf_counter() - started < 10.0
    with pytest.raises(ModelError, match="rejected its args"):
        build_network("medface.SmallCNN", {"width": 10**30})


def test_the_network_size_is_checked_once_for_an_unpinned_package_and_not_for_a_pinned_one(pinned_package, tmp_path,
                                                                                            monkeypatch):
    """Building a network on the meta device costs about a second (it imports torch's compiler):
    worth it for a package nobody vouches for, not for the card its plugin ships."""
    from medface.runtime import networks

    checked = []
    original = networks.check_network_size
    monkeypatch.setattr(networks, "check_network_size", lambda *a: checked.append("network") or original(*a))
    monkeypatch.setattr(pkg_module, "check_network_size", lambda *a: checked.append("package") or original(*a))
    assert load_package(pinned_package, device="cpu").authenticated and checked == []
    unpinned = shutil.copytree(pinned_package, tmp_path / "unpinned")
    assert not load_package(unpinned, device="cpu").authenticated and checked == ["package"]


def test_the_model_budget_is_configurable(monkeypatch):
    monkeypatch.setenv("MEDFACE_MAX_MODEL_BYTES", "1000")
    with pytest.raises(ModelError, match="MEDFACE_MAX_MODEL_BYTES"):
        build_network("medface.SmallCNN", {"width": 4, "depth": 1})
    monkeypatch.setenv("MEDFACE_MAX_MODEL_BYTES", "lots")
    with pytest.raises(ModelError, match="not a number"):
        build_network("medface.SmallCNN", {"width": 4, "depth": 1})


@pytest.mark.parametrize("text, message", [
    (json.dumps({**CARD, "extra": {"deep": "X"}}).replace('"X"', "[" * 1000 + "]" * 1000), "nests"),
    (json.dumps({**CARD, "extra": {"deep": "X"}}).replace('"X"', "[" * 100000 + "]" * 100000), "nests"),
    (json.dumps({**CARD, "extra": {"n": 0}}).replace(": 0}", ": " + "9" * 5000 + "}"), "number"),
    (json.dumps({**CARD, "labels": "a, b"}), "is not of type 'array'"),
    (json.dumps({**CARD, "architecture": {"name": "medface.SmallCNN", "args": [4]}}), "is not of type 'object'"),
    (json.dumps([CARD]), "must be a JSON object"),
    (json.dumps({**CARD, "sha256": 12}), "is not of type 'string'"),
    (b"\xff\xfe{}", "not UTF-8"),
])
def test_hostile_cards_are_model_errors(tmp_path, text, message):
    (tmp_path / "card.json").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    with pytest.raises(ModelError, match=message):
        read_card(tmp_path)


def test_wrongly_typed_architecture_args_are_model_errors():
    for args in ({"width": "16"}, {"width": 2.5}, {"width": None}, {"depth": -1}, {"width": [1]}):
        with pytest.raises(ModelError, match="rejected its args"):
            build_network("medface.SmallCNN", args)


def test_card_content_hash_ignores_formatting_only():
    base = card_content_sha256(CARD)
    assert card_content_sha256(json.loads(json.dumps(CARD, indent=3))) == base
    assert card_content_sha256({**CARD, "labels": ["b", "a"]}) != base


def test_plugin_guide_documents_the_name_rule(repo_root):
    guide = (repo_root / "docs" / "plugin-guide.md").read_text(encoding="utf-8")
    assert "shadows the installed plugin" in guide
    runtime = (repo_root / "docs" / "runtime.md").read_text(encoding="utf-8")
    assert "What is authenticated" in runtime
