"""Purpose and consent recorded, a site policy that requires them, and the audit log (one atomic
JSON line per run, from which a result's chain of custody is reconstructed)."""

from __future__ import annotations

import json
import multiprocessing
import sys

import pytest

import medface
from medface import audit
from medface.cli import main
from medface.data.provenance import sha256_file
from medface.errors import OutputError, ParameterError

from .plugin_samples import GOOD_CODE, GOOD_MANIFEST

CUSTODY_MANIFEST = """
name = "custody"
title = "Custody chain"
version = "2.0.0"
category = "Testing"
contributors = ["medface tests"]
help = "Makes a mesh, then derives another one from it."

[[commands]]
id = "make"
help = "Make a tetrahedron."
python_name = "custody_pkg.commands:make"

[[commands.parameters]]
name = "size"
type = "float"
default = 10.0
help = "Edge length."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
help = "Result folder."

[[commands]]
id = "derive"
help = "Scale a mesh."
python_name = "custody_pkg.commands:derive"

[[commands.parameters]]
name = "mesh"
type = "mesh"
help = "A mesh."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
help = "Result folder."
"""

CUSTODY_CODE = """
import numpy as np
from medface.data import Result, SurfaceMesh


def make(size=10.0, context=None):
    mesh = SurfaceMesh(np.array([[0, 0, 0], [size, 0, 0], [0, size, 0], [0, 0, size]], float),
                       np.array([[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]]))
    return Result(command="custody.make").declare("mesh", "made.ply", mesh)


def derive(mesh, context=None):
    scaled = SurfaceMesh(mesh.vertices * 2.0, mesh.faces)
    return Result(command="custody.derive").declare("mesh", "derived.ply", scaled)
"""


@pytest.fixture
def toy(medface_plugins, tmp_path):
    medface_plugins.add("toy_pkg", manifest=GOOD_MANIFEST, modules={"commands.py": GOOD_CODE})
    return tmp_path / "marker.txt"


@pytest.fixture
def custody(medface_plugins):
    medface_plugins.add("custody_pkg", manifest=CUSTODY_MANIFEST, modules={"commands.py": CUSTODY_CODE})
    return medface_plugins


@pytest.fixture
def no_site_policy(monkeypatch, tmp_path):
    """No medface.toml in the working folder and no MEDFACE_CONFIG."""
    monkeypatch.delenv("MEDFACE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)


# --------------------------------------------------------------------------- purpose and consent

def test_purpose_and_consent_reach_provenance_and_report(toy, tmp_path, no_site_policy):
    result = medface.run("toy.add", a=1.0, out=tmp_path / "api", purpose="research", consent="IRB-2024-017")
    assert (result.provenance.purpose, result.provenance.consent) == ("research", "IRB-2024-017")
    assert main(["toy", "add", "--a", "2", "--out", str(tmp_path / "cli"), "--purpose", "casework",
                 "--consent", "CASE 2025/17"]) == 0
    for folder, purpose, consent in (("api", "research", "IRB-2024-017"), ("cli", "casework", "CASE 2025/17")):
        saved = json.loads((tmp_path / folder / "result.json").read_text(encoding="utf-8"))["provenance"]
        assert (saved["purpose"], saved["consent"]) == (purpose, consent)
        page = (tmp_path / folder / "report.html").read_text(encoding="utf-8")
        assert f"Purpose of the run: {purpose}; consent reference: {consent}" in page
        twin = json.loads((tmp_path / folder / "report.json").read_text(encoding="utf-8"))
        assert twin["provenance"]["purpose"] == purpose


@pytest.mark.parametrize("options, parameter, text", [
    ({"purpose": "curiosity"}, "purpose", "clinical, research, casework, education"),
    ({"consent": "line one\nline two"}, "consent", "one line"),
    ({"consent": ""}, "consent", "one line"),
    ({"record_paths": "yes"}, "record_paths", "True or False"),
])
def test_bad_purpose_or_consent_is_a_parameter_error(toy, options, parameter, text, no_site_policy):
    with pytest.raises(ParameterError) as info:
        medface.run("toy.add", a=1.0, marker=toy, **options)
    assert info.value.parameter == parameter and text in str(info.value)
    assert not toy.exists()


# --------------------------------------------------------------------------- the site policy

def test_site_policy_refuses_a_run_without_purpose_or_consent(toy, tmp_path, monkeypatch, capsys, no_site_policy):
    config = tmp_path / "medface.toml"
    config.write_text("[policy]\nrequire_purpose = true\nrequire_consent = true\n", encoding="utf-8")
    with pytest.raises(ParameterError) as info:
        medface.run("toy.add", a=1.0, marker=toy)
    assert str(config) in str(info.value) and "requires a purpose" in str(info.value)
    assert "--purpose" in str(info.value) and info.value.parameter == "purpose"
    with pytest.raises(ParameterError, match="requires a consent reference"):
        medface.run("toy.add", a=1.0, marker=toy, purpose="clinical")
    assert not toy.exists() and "toy_pkg.commands" not in sys.modules  # refused before the plugin ran
    assert main(["toy", "add", "--a", "1"]) == 2
    assert str(config) in capsys.readouterr().err
    assert medface.run("toy.add", a=1.0, purpose="clinical", consent="C-1").summary["total"] == 2.0


def test_policy_from_medface_config_with_allowed_purposes_and_its_audit_log(toy, tmp_path, monkeypatch,
                                                                             no_site_policy):
    site = tmp_path / "site"
    site.mkdir()
    config = site / "casework.toml"
    config.write_text('[policy]\npurposes = ["casework"]\naudit_log = "logs/audit.jsonl"\n', encoding="utf-8")
    monkeypatch.setenv("MEDFACE_CONFIG", str(config))
    with pytest.raises(ParameterError, match="allows only the purposes casework"):
        medface.run("toy.add", a=1.0, purpose="research")
    own = tmp_path / "mine.jsonl"
    medface.run("toy.add", a=1.0, purpose="casework", audit_log=own)
    site_lines, own_lines = audit.read_log(site / "logs" / "audit.jsonl"), audit.read_log(own)
    assert len(site_lines) == len(own_lines) == 1 and site_lines[0]["purpose"] == "casework"


@pytest.mark.parametrize("text, problem", [
    ("[policy]\nrequire_purpse = true\n", "unknown [policy] keys: require_purpse"),
    ("[policy]\nrequire_purpose = 'yes'\n", "require_purpose must be a bool"),
    ("[policy\n", "cannot be read"),
    ('[policy]\npurposes = ["fun"]\n', "purposes must list"),
])
def test_a_broken_site_configuration_is_refused_with_its_name(toy, tmp_path, text, problem, no_site_policy):
    config = tmp_path / "medface.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ParameterError) as info:
        medface.run("toy.add", a=1.0)
    assert problem in str(info.value) and str(config) in str(info.value)


def test_medface_config_naming_no_file_is_refused(toy, tmp_path, monkeypatch, no_site_policy):
    monkeypatch.setenv("MEDFACE_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ParameterError, match="MEDFACE_CONFIG=.*absent.toml names no configuration file"):
        medface.run("toy.add", a=1.0)


# --------------------------------------------------------------------------- the audit log

def test_audit_log_lines_match_the_files_and_trace_the_chain_of_custody(custody, tmp_path, no_site_policy):
    log = tmp_path / "audit.jsonl"
    medface.run("custody.make", out=tmp_path / "one", audit_log=log, purpose="casework", consent="CASE-9")
    assert main(["custody", "derive", "--mesh", str(tmp_path / "one" / "made.ply"), "--out", str(tmp_path / "two"),
                 "--audit-log", str(log), "--purpose", "casework", "--consent", "CASE-9"]) == 0
    entries = audit.read_log(log)
    assert [e["command"] for e in entries] == ["custody.make", "custody.derive"]
    for entry, folder in zip(entries, ("one", "two")):
        assert entry["status"] == "ok" and entry["exit_code"] == 0 and entry["user"] == audit.current_user()
        assert (entry["purpose"], entry["consent"]) == ("casework", "CASE-9")
        assert entry["medface_version"] == medface.__version__ and entry["plugin"] == "custody 2.0.0"
        assert entry["time"].endswith("+00:00") and entry["output_folder"] == folder
        written = {p.name: sha256_file(p) for p in (tmp_path / folder).iterdir()}
        assert {o["file"]: o["sha256"] for o in entry["outputs"]} == written  # every file, with its hash
        assert "report.html" in written and "result.json" in written
    assert entries[1]["inputs"] == [{"name": "mesh", "file": "made.ply", "kind": "file",
                                     "sha256": sha256_file(tmp_path / "one" / "made.ply")}]
    assert str(tmp_path) not in log.read_text(encoding="utf-8")  # names, not paths
    chain = audit.trace(log, tmp_path / "two" / "derived.ply")
    assert [e["command"] for e in chain] == ["custody.derive", "custody.make"]
    assert audit.trace(log, "0" * 64) == []


def test_a_failed_run_is_logged_with_its_error(toy, tmp_path, no_site_policy):
    log = tmp_path / "audit.jsonl"
    with pytest.raises(ZeroDivisionError):
        medface.run("toy.crash", audit_log=log)
    with pytest.raises(ParameterError):
        medface.run("toy.add", a=99.0, audit_log=log)
    crash, refused = audit.read_log(log)
    assert crash["status"] == "error" and crash["exit_code"] == 70 and crash["error"]["type"] == "ZeroDivisionError"
    assert refused["exit_code"] == 2 and "above the maximum" in refused["error"]["message"]


def test_an_unwritable_audit_log_stops_the_run_before_it_starts(toy, tmp_path, no_site_policy):
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="audit log"):
        medface.run("toy.add", a=1.0, marker=toy, audit_log=tmp_path / "a_file" / "log.jsonl")
    assert not toy.exists()


def _append_many(args) -> None:
    path, worker = args
    for k in range(40):
        audit.append_entry(path, {"worker": worker, "k": k, "padding": "x" * 200_000})


def test_concurrent_appends_never_interleave(tmp_path):
    log = tmp_path / "audit.jsonl"
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(str(log), w) for w in range(4)])
    entries = audit.read_log(log)  # every line is whole JSON
    assert len(entries) == 160
    assert sorted((e["worker"], e["k"]) for e in entries) == [(w, k) for w in range(4) for k in range(40)]


def test_an_edited_log_is_refused_when_read(tmp_path):
    log = tmp_path / "audit.jsonl"
    audit.append_entry(log, {"command": "x"})
    with open(log, "a", encoding="utf-8") as fh:
        fh.write("not json\n")
    with pytest.raises(medface.InputError, match="line 2 of the audit log"):
        audit.read_log(log)
