"""A toy plugin whose command does what its input file says: succeed, fail, refuse, crash, wait."""

from __future__ import annotations

import pytest

MANIFEST = """
name = "batchtoy"
title = "Batch toy"
version = "0.1.0"
category = "Testing"
contributors = ["medface tests"]
help = "Reads a text file and does what it says."

[[commands]]
id = "work"
help = "Do what the file says: 'ok N', 'bad', 'refuse', 'crash', 'sleep S', 'threads'."
python_name = "batchtoy_pkg.commands:work"
streaming = "batchtoy_pkg.commands:WorkStages"

[[commands.parameters]]
name = "text"
type = "file"
help = "The instruction file."

[[commands.parameters]]
name = "factor"
type = "float"
default = 1.0
help = "Multiplies the value."

[[commands.parameters]]
name = "out"
type = "directory"
channel = "output"
required = false
help = "Output folder."
"""

CODE = '''
import os, signal, time
import numpy as np
from pathlib import Path
from medface.data import Result
from medface.errors import InputError

def work(text, factor=1.0, out=None):
    words = Path(text).read_text().split()
    log = os.environ.get("BATCHTOY_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(Path(text).stem + "\\n")
    if words[0] == "ok":
        return Result(command="batchtoy.work", summary={"value": float(words[1]) * factor})
    if words[0] == "bad":
        raise InputError("the instruction file says bad", hint="write ok N instead")
    if words[0] == "refuse":
        result = Result(command="batchtoy.work", summary={})
        result.refuse("told to refuse")
        return result
    if words[0] == "crash":
        os.kill(os.getpid(), signal.SIGKILL)
    if words[0] == "threads":
        import torch
        return Result(command="batchtoy.work", summary={"value": float(torch.get_num_threads())})
    if words[0] == "sleep":
        time.sleep(float(words[1]))
        return Result(command="batchtoy.work", summary={"value": 0.0})
    raise ValueError("unknown instruction " + words[0])


class WorkStages:
    """The same command as stages: the file read on CPU, the multiplication as the model."""

    def prepare(self, values):
        words = Path(values["text"]).read_text().split()
        if words[0] != "ok":
            raise InputError("the instruction file says " + words[0], hint="write ok N instead")
        return {"number": np.array([float(words[1])])}

    def placeholder(self):
        return {"number": np.zeros(1)}

    def model(self, values, device):
        log = os.environ.get("BATCHTOY_MODEL_LOG")
        if log:
            with open(log, "a") as fh:
                fh.write("loaded\\n")
        factor = values["factor"]
        return lambda batch: {"value": batch["number"][:, 0] * factor, "batch_size": np.full(len(batch["number"]), len(batch["number"]))}

    def finish(self, values, payload, output):
        return Result(command="batchtoy.work", summary={"value": float(output["value"]),
                                                        "batch_size": int(output["batch_size"])})
'''


@pytest.fixture
def toy(medface_plugins):
    medface_plugins.add("batchtoy_pkg", manifest=MANIFEST, modules={"commands.py": CODE})
    return medface_plugins


def write_inputs(folder, instructions: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in instructions.items():
        (folder / f"{name}.txt").write_text(text, encoding="utf-8")
