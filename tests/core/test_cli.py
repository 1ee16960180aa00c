"""The command line: help from manifests, exit codes, no tracebacks for user mistakes."""

from __future__ import annotations

import json

import pytest

from medface.cli import main

from .plugin_samples import GOOD_CODE, GOOD_MANIFEST


@pytest.fixture
def toy(medface_plugins):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    return medface_plugins


def test_command_help_shows_types_defaults_ranges_units(toy, capsys):
    with pytest.raises(SystemExit) as info:
        main(["toy", "add", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "--a FLOAT" in out and "units: mm" in out and "range: -10 to 10" in out and "required" in out
    assert "--b INT" in out and "range: 0 to 5" in out and "default: 1" in out
    assert "{plain,double}" in out and "choices: plain, double" in out
    assert "--verbose, --no-verbose" in out


@pytest.mark.parametrize("plugin, command, expected", [
    ("surgery", "inspect-ct", ["--ct VOLUME", "--bone-threshold FLOAT", "units: HU", "range: -200 to 3000",
                               "default: 300"]),
    ("forensic", "inspect-skull", ["--skull MESH", "--scale FLOAT", "default: 1"]),
    ("phenotype", "inspect", ["--image IMAGE", "--min-size INT", "units: px", "range: 16 to 4096"]),
])
def test_shipped_command_help(medface_plugins, capsys, plugin, command, expected):
    medface_plugins.include_installed()
    with pytest.raises(SystemExit):
        main([plugin, command, "--help"])
    out = capsys.readouterr().out
    for part in expected:
        assert part in out, part


def test_out_of_range_value_exit_2_names_parameter_without_traceback(toy, capsys, tmp_path):
    marker = tmp_path / "m.txt"
    code = main(["toy", "add", "--a", "12", "--marker", str(marker)])
    err = capsys.readouterr().err
    assert code == 2
    assert "parameter 'a'" in err and "above the maximum 10 mm" in err
    assert "Traceback" not in err
    assert not marker.exists()


def test_wrong_type_exit_2(toy, capsys):
    assert main(["toy", "add", "--a", "1", "--b", "two"]) == 2
    assert "parameter 'b': expected an integer, got 'two'" in capsys.readouterr().err


def test_success_prints_summary_and_json(toy, capsys, tmp_path):
    assert main(["toy", "add", "--a", "1.5", "--b", "2", "--mode", "double", "--out", str(tmp_path / "o")]) == 0
    out = capsys.readouterr().out
    assert "total: 7" in out and str(tmp_path / "o" / "result.json") in out
    report = (tmp_path / "o" / "report.html").read_text(encoding="utf-8")  # every run with --out gets a report
    assert "toy.add" in report and "Provenance" in report and (tmp_path / "o" / "report.json").is_file()
    assert main(["toy", "add", "--a", "1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["summary"]["total"] == 2.0 and doc["provenance"]["plugin"] == "toy"


def test_plugin_bug_exit_70_with_traceback(toy, capsys):
    assert main(["toy", "crash"]) == 70
    err = capsys.readouterr().err
    assert "ZeroDivisionError: boom" in err and "Traceback" in err and "please report" in err


def test_broken_plugin_command_exit_4(medface_plugins, capsys):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST.replace('version = "0.3.0"', 'version = "x"'),
                        modules={"commands.py": GOOD_CODE})
    assert main(["toy_pkg", "add", "--a", "1"]) == 4
    assert "broken" in capsys.readouterr().err


def test_plugins_list_info_validate(toy, capsys):
    assert main(["plugins", "list"]) == 0
    assert "toy" in capsys.readouterr().out
    assert main(["plugins", "info", "toy"]) == 0
    out = capsys.readouterr().out
    assert "Toy plugin" in out and "--a" in out and "units: mm" in out
    assert main(["plugins", "validate", "--imports"]) == 0
    assert "ok      toy" in capsys.readouterr().out
    assert main(["plugins", "info", "nope"]) == 4


def test_validate_manifest_file_reports_problems(tmp_path, capsys):
    path = tmp_path / "medface-plugin.toml"
    path.write_text(GOOD_MANIFEST.replace("max = 5\n", "max = 5\nmaximum = 3\n"))
    assert main(["plugins", "validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert str(path) in out and "commands[0].parameters[1]" in out and "maximum" in out


def test_selftest_of_sandbox_plugin(toy, capsys):
    assert main(["plugins", "selftest", "toy"]) == 0
    assert "PASS  toy" in capsys.readouterr().out


def test_doctor_reports_versions_and_plugins(toy, capsys):
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["torch"]["available"] and report["packages"]["SimpleITK"]
    assert [p["name"] for p in report["plugins"]] == ["toy"]
    assert report["render_window"]["available"]


def _json_error(capsys) -> dict:
    captured = capsys.readouterr()
    assert "medface: error:" in captured.err or "internal error" in captured.err
    doc = json.loads(captured.out)  # stdout is the JSON object and nothing else
    assert set(doc) >= {"error", "message", "hint", "exit_code"}
    return doc


def test_json_errors_are_one_object_on_stdout_with_the_documented_exit_code(toy, capsys, tmp_path):
    assert main(["toy", "add", "--a", "12", "--json"]) == 2
    doc = _json_error(capsys)
    assert (doc["error"], doc["exit_code"], doc["parameter"]) == ("ParameterError", 2, "a")
    assert "above the maximum 10 mm" in doc["message"]
    toy.include_installed()
    missing = tmp_path / "missing.nii.gz"
    assert main(["surgery", "inspect-ct", "--ct", str(missing), "--json"]) == 3
    doc = _json_error(capsys)
    assert (doc["error"], doc["exit_code"], doc["hint"]) == ("InputError", 3, "check the path")
    assert str(missing) in doc["message"] and "does not exist" in doc["message"]
    with pytest.raises(SystemExit) as info:  # usage errors stay argparse's: exit 2, text on stderr
        main(["toy", "nope", "--json"])
    assert info.value.code == 2


def test_json_error_of_a_broken_plugin_and_of_a_bug(medface_plugins, capsys):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST.replace('version = "0.3.0"', 'version = "x"'),
                        modules={"commands.py": GOOD_CODE})
    assert main(["toy_pkg", "add", "--a", "1", "--json"]) == 4
    doc = _json_error(capsys)
    assert doc["error"] == "PluginError" and "broken" in doc["message"] and "version" in doc["message"]
    medface_plugins.add("toy_pkg2", manifest=GOOD_MANIFEST.replace('name = "toy"', 'name = "toy2"')
                        .replace("toy_pkg", "toy_pkg2"), modules={"commands.py": GOOD_CODE})
    assert main(["toy2", "crash", "--json"]) == 70
    doc = _json_error(capsys)
    assert (doc["error"], doc["exit_code"]) == ("ZeroDivisionError", 70) and "report" in doc["hint"]


def test_plugins_schema_prints_the_committed_schema_and_the_reference(capsys):
    from medface.plugin.manifest import SCHEMA_PATH, manifest_reference

    assert main(["plugins", "schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_PATH.read_text(encoding="utf-8")
    assert main(["plugins", "schema", "--markdown"]) == 0
    assert capsys.readouterr().out == manifest_reference()
