"""Discovery, laziness, broken plugins and the per-process cache."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import medface
from medface.errors import PluginError
from medface.plugin import discovery
from medface.plugin.registry import Registry

from .plugin_samples import (GOOD_CODE, GOOD_MANIFEST, IMPORT_FAILS, IMPORT_FAILS_CODE, INVALID_MANIFEST,
                             MISSING_REQUIREMENT)


def _medface(*args, env=None, cwd=None):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "medface", *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=300)  # the self-tests take ~20 s alone; a loaded 2-core CI box more


def test_installed_plugins_listed_ok_as_json():
    proc = _medface("plugins", "list", "--json", env={"MEDFACE_PLUGIN_PATH": ""})
    assert proc.returncode == 0, proc.stderr
    listed = {p["name"]: p for p in json.loads(proc.stdout)}
    for name in ("phenotype", "surgery", "forensic"):
        assert listed[name]["status"] == "ok", listed[name]
        assert listed[name]["source"] == f"entry point {name}"


def test_broken_plugin_on_path_is_listed_and_others_still_run(tmp_path):
    broken = tmp_path / "plugins" / "broken_pkg"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("")
    (broken / "medface-plugin.toml").write_text(INVALID_MANIFEST)
    env = {"MEDFACE_PLUGIN_PATH": str(tmp_path / "plugins")}
    proc = _medface("plugins", "list", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    listed = {p["name"]: p for p in json.loads(proc.stdout)}
    assert listed["broken_pkg"]["status"] == "broken"
    assert "contributors" in listed["broken_pkg"]["reason"] and "commands" in listed["broken_pkg"]["reason"]
    assert [listed[n]["status"] for n in ("phenotype", "surgery", "forensic")] == ["ok"] * 3
    # the three others still run their self-tests with the broken one present
    proc = _medface("plugins", "selftest", "--json", env=env)
    outcomes = {o["plugin"]: o for o in json.loads(proc.stdout)}
    assert all(outcomes[n]["passed"] for n in ("phenotype", "surgery", "forensic")), outcomes
    assert outcomes["broken_pkg"]["passed"] is False
    assert proc.returncode == 1  # one plugin failed


def test_listing_imports_no_plugin_code_and_no_torch():
    code = ("import sys, medface; reg = medface.plugins(); assert len(reg) >= 3; "
            "heavy = [m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'monai', 'SimpleITK', 'vtk', 'vtkmodules', 'pyvista', 'trimesh') or m.startswith('medface_')]; "
            "print(heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_code_imported_on_first_call_only(medface_plugins):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    assert "toy_pkg.commands" not in sys.modules
    assert medface.plugins()["toy"].ok
    assert "toy_pkg.commands" not in sys.modules
    assert medface.run("toy.add", a=2.0).summary["total"] == 3.0
    assert "toy_pkg.commands" in sys.modules


def test_scan_is_cached_per_process(medface_plugins, monkeypatch):
    calls = []
    original = discovery.from_plugin_path
    monkeypatch.setattr(discovery, "from_plugin_path", lambda *a, **k: calls.append(1) or original(*a, **k))
    from medface.plugin.registry import get_registry, set_registry

    set_registry(None)
    first = get_registry()
    assert get_registry() is first and medface.plugins() is first
    assert len(calls) == 1
    assert medface.plugins(refresh=True) is not first and len(calls) == 2


@pytest.mark.parametrize("package, manifest, code, reason_part", [
    ("needy_pkg", MISSING_REQUIREMENT, GOOD_CODE, "surely-not-installed-pkg"),
    ("broken_pkg", INVALID_MANIFEST, "", "invalid plugin manifest"),
])
def test_broken_plugin_reason_and_clear_error_on_run(medface_plugins, package, manifest, code, reason_part):
    medface_plugins.add(package, manifest=manifest, modules={"commands.py": code})
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    reg = medface.plugins()
    broken = [p for p in reg.values() if not p.ok]
    assert len(broken) == 1 and reason_part in broken[0].reason
    if broken[0].manifest is not None:
        with pytest.raises(PluginError, match=reason_part):
            medface.run(f"{broken[0].name}.add", a=1.0)
    assert medface.run("toy.add", a=1.0).summary["total"] == 2.0


def test_import_failure_marks_plugin_broken_and_keeps_others(medface_plugins):
    medface_plugins.add("fragile_pkg", manifest=IMPORT_FAILS, modules={"commands.py": IMPORT_FAILS_CODE})
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    reg = medface.plugins()
    assert reg["fragile"].ok  # nothing imported yet
    problems = reg.check_imports()
    assert "surely_not_installed_module" in problems["fragile"] and problems["toy"] == ""
    assert not reg["fragile"].ok
    with pytest.raises(PluginError, match="ModuleNotFoundError"):
        medface.run("fragile.add", a=1.0)
    assert medface.run("toy.add", a=1.0).summary["total"] == 2.0


def test_static_check_finds_missing_module_and_syntax_error(medface_plugins):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": "def add(:\n"})
    info = medface.plugins()["toy"]
    assert not info.ok and "syntax error" in info.reason and "commands.py" in info.reason
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST.replace("commands:add", "nowhere:add"),
                        modules={"commands.py": GOOD_CODE})
    info = medface.plugins()["toy"]
    assert not info.ok and "nowhere.py does not exist" in info.reason


def test_duplicate_plugin_name_is_reported(tmp_path):
    for folder in ("one", "two"):
        pkg = tmp_path / folder / "toy_pkg"
        pkg.mkdir(parents=True)
        (pkg / "medface-plugin.toml").write_text(GOOD_MANIFEST)
        (pkg / "commands.py").write_text(GOOD_CODE)
    reg = Registry(plugin_path=os.pathsep.join([str(tmp_path / "one"), str(tmp_path / "two")]),
                   entry_points=False).scan()
    assert reg["toy"].ok and str(tmp_path / "one") in str(reg["toy"].location)
    shadowed = [p for p in reg.values() if not p.ok]
    assert len(shadowed) == 1 and "takes precedence" in shadowed[0].reason


def test_missing_plugin_path_folder_is_reported(tmp_path):
    reg = Registry(plugin_path=str(tmp_path / "nope"), entry_points=False).scan()
    assert [p.reason for p in reg.values()] == [f"folder '{tmp_path / 'nope'}' listed in MEDFACE_PLUGIN_PATH "
                                                 f"does not exist"]


def test_unknown_plugin_and_command_errors(medface_plugins):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    with pytest.raises(PluginError, match="no plugin named 'nope'.*toy"):
        medface.run("nope.add")
    with pytest.raises(PluginError, match="no command 'sub'.*add, crash"):
        medface.run("toy.sub")
    with pytest.raises(PluginError, match="not a command id"):
        medface.run("toy")


# ------------------------------------------------------------------ manifests remembered between runs
_LIST_AND_REPORT = ("import sys, medface\n"
                    "from medface.cli import main\n"
                    "main(['plugins', 'list'])\n"
                    "print('pydantic loaded:', 'pydantic' in sys.modules)\n")


def test_listing_a_second_time_imports_no_pydantic(tmp_path):
    """The first scan validates each manifest (pydantic); later scans read the remembered
    summaries, which is what keeps `medface plugins list` fast."""
    env = {**os.environ, "MEDFACE_CACHE_DIR": str(tmp_path), "MEDFACE_PLUGIN_PATH": ""}
    runs = [subprocess.run([sys.executable, "-c", _LIST_AND_REPORT], capture_output=True, text=True, env=env,
                           timeout=120) for _ in range(2)]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert "surgery" in run.stdout and "ok" in run.stdout
    assert "pydantic loaded: True" in runs[0].stdout
    assert "pydantic loaded: False" in runs[1].stdout
    assert runs[0].stdout.splitlines()[:-1] == runs[1].stdout.splitlines()[:-1]


def test_a_remembered_summary_is_the_validated_manifests_summary(medface_plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFACE_CACHE_DIR", str(tmp_path / "cache"))
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    fresh = medface_plugins.registry["toy"]  # the scan that add() made
    assert fresh._manifest is not None  # validated by this scan
    remembered = medface_plugins.refresh()["toy"]
    assert remembered._manifest is None  # read from the cache: nothing validated yet
    assert remembered.summary == fresh.manifest.summary()
    assert remembered.manifest == fresh.manifest  # built on first use
    assert medface.run("toy.add", a=1, b=2).summary["total"] == 3


def test_an_edited_manifest_is_validated_again(medface_plugins, tmp_path, monkeypatch):
    monkeypatch.setenv("MEDFACE_CACHE_DIR", str(tmp_path / "cache"))
    pkg = medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    assert medface_plugins.refresh()["toy"].ok
    manifest = pkg / "medface-plugin.toml"
    manifest.write_text(manifest.read_text().replace('version = "', 'version = "not-'), encoding="utf-8")
    info = medface_plugins.refresh()["toy_pkg"]  # a broken manifest names no plugin: listed by package
    assert not info.ok and "version" in info.reason
    with pytest.raises(PluginError, match="version"):
        medface.run("toy_pkg.add", a=1, b=2)
