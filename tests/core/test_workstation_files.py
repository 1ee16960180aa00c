"""The workstation's data folder, forms and workers: what the page relies on, without a browser."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from medface.errors import InputError, ParameterError
from medface.plugin.registry import get_registry
from medface.workstation import forms
from medface.workstation.cli import check_host
from medface.workstation.files import DataFolder, safe_name
from medface.workstation.jobs import CANCELLED, DONE, FAILED, start_job

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture()
def data(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "scans").mkdir()
    (root / "scans" / "skin.ply").write_bytes((REPO / "sample_data" / "skin.ply").read_bytes())
    (root / "notes.txt").write_text("not data")
    (tmp_path / "secret.ply").write_bytes(b"outside")
    return DataFolder(root, upload_limit_mb=1)


@pytest.mark.parametrize("escape", ["../secret.ply", "/etc/passwd", "scans/../../secret.ply", "..", "a\0b", "",
                                    "..\\secret.ply"])
def test_paths_that_leave_the_data_folder_are_refused(data, escape):
    with pytest.raises(InputError):
        data.existing(escape)


def test_a_symbolic_link_out_of_the_folder_is_refused_and_not_listed(data, tmp_path):
    os.symlink(tmp_path / "secret.ply", data.root / "scans" / "link.ply")
    with pytest.raises(InputError, match="outside"):
        data.resolve("scans/link.ply")
    assert all("link" not in e.path for e in data.listing())


def test_the_listing_shows_readable_data_only_with_its_kind(data):
    entries = {e.path: e.category for e in data.listing()}
    assert entries == {"scans/skin.ply": "mesh"}


def test_uploads_are_size_limited_and_cannot_name_a_path(data):
    saved = data.save_upload("../../evil name.ply", b"x" * 100)
    assert saved.parent == data.root / "uploads" and saved.name == "evil_name.ply"
    again = data.save_upload("evil name.ply", b"y")
    assert again != saved and again.read_bytes() == b"y" and saved.read_bytes() == b"x" * 100
    with pytest.raises(InputError, match="limit"):
        data.save_upload("big.nii", b"0" * (2 * 1024 * 1024))
    assert not list((data.root / "uploads").glob("big*")) and not list((data.root / "uploads").glob(".upload-*"))
    assert safe_name(".hidden") == "hidden"


def test_run_folders_are_new_each_time(data):
    a, b = data.run_folder("surgery.segment"), data.run_folder("surgery.segment")
    assert a != b and a.is_dir() and b.is_dir() and a.parent == data.root / "runs"


def test_the_app_listens_on_this_computer_unless_told_otherwise():
    assert check_host("127.0.0.1", False) and check_host("localhost", False) and check_host("::1", False)
    with pytest.raises(ParameterError, match="allow-remote"):
        check_host("0.0.0.0", False)
    assert check_host("0.0.0.0", True) is False


def test_every_command_of_every_plugin_gets_a_form_from_its_manifest():
    registry = get_registry()
    commands = registry.commands()
    assert len(commands) >= 10
    for command in commands:
        fields = forms.form_for(command)
        inputs = [p for p in command.parameters if p.channel == "input"]
        assert [f.name for f in fields] == [p.name for p in inputs]
        for field, spec in zip(fields, inputs):
            if spec.choices:
                assert field.widget == "select" and field.choices == spec.choices
            if spec.type in ("int", "float"):
                assert (field.minimum, field.maximum, field.units) == (spec.minimum, spec.maximum, spec.units)
            if spec.type == "mesh":
                assert field.widget == "file" and field.accepts == ("mesh",)
            if spec.type == "directory":  # e.g. expression grade's photo session: picked from the folder list
                assert field.widget == "folder"
    ids = {c.full_id for c in commands}
    assert {"expression.grade", "expression.evaluate", "surgery.guides", "surgery.fibula"} <= ids


def test_form_values_become_run_arguments_inside_the_data_folder(data):
    _, command = get_registry().command("surgery.segment")
    values = forms.values_for_run(command, {"ct": "scans/skin.ply"}, data)
    assert Path(values["ct"]) == data.root / "scans" / "skin.ply"
    with pytest.raises(InputError):
        forms.values_for_run(command, {"ct": "../secret.ply"}, data)
    with pytest.raises(ParameterError, match="required"):
        forms.values_for_run(command, {"ct": ""}, data)
    assert forms.output_target(command, data.root / "runs" / "x") == ("out", data.root / "runs" / "x")


def test_a_worker_runs_a_command_reports_stages_and_a_bad_file_as_a_one_line_error(tmp_path):
    ok = start_job("surgery.segment", {"ct": str(REPO / "sample_data" / "head_ct.nii.gz")}, tmp_path / "ok")
    bad = start_job("surgery.segment", {"ct": str(REPO / "README.md")}, tmp_path / "bad")
    ok.wait(timeout=240)
    bad.wait(timeout=240)
    assert ok.state == DONE and ok.stages and (tmp_path / "ok" / "skin.ply").is_file()
    assert "skin" in ok.summary["meshes"]
    assert bad.state == FAILED and bad.exit_code == 3 and "README.md" in bad.error and "\n" not in bad.error


def test_a_cancelled_worker_stops_and_a_dead_one_is_reported(tmp_path):
    job = start_job("surgery.segment", {"ct": str(REPO / "sample_data" / "head_ct.nii.gz")}, tmp_path / "c")
    time.sleep(0.5)
    job.cancel()
    assert job.state == CANCELLED and job.done
    victim = start_job("surgery.segment", {"ct": str(REPO / "sample_data" / "head_ct.nii.gz")}, tmp_path / "k")
    time.sleep(0.5)
    victim._process.kill()  # the out-of-memory killer, as far as the app can tell
    victim.wait(timeout=30)
    assert victim.state == FAILED and "SIGKILL" in victim.error
