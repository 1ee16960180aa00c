"""A command that declines its input (``Result.refuse``): exit code 8 on the command line, the
outputs still written with the reason, in JSON too; and the device recorded is one that
computed, never ``"auto"``."""

from __future__ import annotations

import json
import sys

import pytest

import medface
from medface import audit
from medface.cli import main
from medface.data import Result
from medface.errors import InputError

GATE_MANIFEST = """
name = "gate"
title = "Refusal probe"
version = "1.0.0"
category = "Testing"
contributors = ["medface tests"]
help = "Checks a number; refuses negative ones."

[[commands]]
id = "check"
help = "Check a number."
python_name = "gate_pkg.commands:check"

[[commands.parameters]]
name = "value"
type = "float"
help = "The number to check."

[[commands.parameters]]
name = "device"
type = "string"
default = "auto"
help = "auto or cpu."

[[commands.parameters]]
name = "report_device"
type = "bool"
default = false
help = "Write the device parameter, as given, into the provenance."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
required = false
help = "Result folder."
"""

GATE_CODE = """
from medface.data import Result


def check(value, device="auto", report_device=False):
    result = Result(command="gate.check", summary={"value": value})
    if report_device:
        result.provenance.device = device
    if value < 0:
        result.refuse(f"{value:g} is negative: negative numbers cannot be checked")
    return result
"""


@pytest.fixture
def gate(medface_plugins, monkeypatch, tmp_path):
    monkeypatch.delenv("MEDFACE_CONFIG", raising=False)  # no site policy
    monkeypatch.chdir(tmp_path)
    medface_plugins.add("gate_pkg", manifest=GATE_MANIFEST, modules={"commands.py": GATE_CODE})
    return medface_plugins


def _saved(folder) -> dict:
    return json.loads((folder / "result.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- refused inputs

def test_a_refused_input_exits_8_and_still_writes_result_and_report(gate, tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["gate", "check", "--value", "-2", "--out", str(out)]) == 8
    captured = capsys.readouterr()
    assert "medface: input refused: -2 is negative" in captured.err
    assert "refused" in captured.out and "-2 is negative" in captured.out  # the summary still printed
    saved = _saved(out)
    assert saved["status"] == "refused" and saved["refusal"].startswith("-2 is negative")
    assert saved["summary"] == {"value": -2.0}
    assert "gate.check" in (out / "report.html").read_text(encoding="utf-8")
    assert main(["gate", "check", "--value", "3", "--out", str(tmp_path / "fine")]) == 0
    assert _saved(tmp_path / "fine")["status"] == "ok" and _saved(tmp_path / "fine")["refusal"] is None


def test_json_output_carries_the_status_and_the_exit_code(gate, capsys):
    assert main(["gate", "check", "--value", "-1", "--json"]) == 8
    refused = json.loads(capsys.readouterr().out)  # stdout holds the one JSON object
    assert (refused["status"], refused["exit_code"]) == ("refused", 8) and "negative" in refused["refusal"]
    assert main(["gate", "check", "--value", "1", "--json"]) == 0
    accepted = json.loads(capsys.readouterr().out)
    assert (accepted["status"], accepted["exit_code"], accepted["refusal"]) == ("ok", 0, None)


def test_python_callers_get_the_refused_result_not_an_exception(gate, tmp_path):
    result = medface.run("gate.check", value=-4.0, out=tmp_path / "o")
    assert result.refused and result.exit_code == 8 and "negative" in result.refusal
    again = Result.load(tmp_path / "o" / "result.json")
    assert again.refused and again.refusal == result.refusal
    assert not medface.run("gate.check", value=4.0).refused


def test_the_audit_log_records_a_refusal_with_its_exit_code(gate, tmp_path):
    log = tmp_path / "audit.jsonl"
    medface.run("gate.check", value=-1.0, audit_log=log)
    medface.run("gate.check", value=1.0, audit_log=log)
    refused, accepted = audit.read_log(log)
    assert (refused["status"], refused["exit_code"]) == ("refused", 8) and "negative" in refused["refusal"]
    assert (accepted["status"], accepted["exit_code"]) == ("ok", 0) and "refusal" not in accepted


def test_a_result_json_without_a_status_reads_as_ok_and_an_unknown_status_is_refused():
    doc = Result(command="x.y").to_dict()
    del doc["status"], doc["refusal"]  # written before results had a status
    assert Result.from_dict(doc).status == "ok"
    with pytest.raises(InputError, match="unknown result status 'maybe'"):
        Result.from_dict({**doc, "status": "maybe"})


# --------------------------------------------------------------------------- the device recorded

def _cuda_started() -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()


@pytest.mark.parametrize("report_device", [True, False], ids=["command reports auto", "command reports nothing"])
def test_a_cpu_run_records_cpu_never_auto(gate, tmp_path, report_device):
    if _cuda_started():
        pytest.skip("CUDA was started in this process: the run may have computed there")
    result = medface.run("gate.check", value=1.0, device="auto", report_device=report_device)
    assert result.provenance.device == "cpu"
    assert result.provenance.parameters["device"] == "auto"  # the request is recorded as given
    flag = "--report-device" if report_device else "--no-report-device"
    assert main(["gate", "check", "--value", "1", flag, "--out", str(tmp_path / "o")]) == 0
    assert _saved(tmp_path / "o")["provenance"]["device"] == "cpu"


def test_an_explicit_device_request_is_recorded_when_nothing_better_is_known(gate):
    result = medface.run("gate.check", value=1.0, device="CPU", report_device=False)
    assert result.provenance.device == "cpu"
