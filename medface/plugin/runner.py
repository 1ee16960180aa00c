"""Running a command: look it up, bind parameters, import lazily, call, attach provenance."""

from __future__ import annotations

import inspect
import time
from pathlib import Path
from typing import Any

from ..data.provenance import Provenance
from ..data.result import Result
from ..errors import PluginError
from .context import RunContext
from .params import bind
from .registry import Registry, get_registry

RESULT_FILE = "result.json"
REPORT_FILE = "report.html"


def _output_dir(command, values: dict) -> Path | None:
    for spec in command.parameters:
        if spec.channel == "output" and spec.type == "directory" and values.get(spec.name) is not None:
            return Path(values[spec.name])
    return None


def _file_output_folder(command, values: dict) -> Path | None:
    """The folder of a command's output file (``--out plan.json``): where a command with no
    output folder has its declared outputs written (named as that file)."""
    for spec in command.parameters:
        if spec.channel == "output" and spec.type == "file" and values.get(spec.name) is not None:
            return Path(values[spec.name]).parent
    return None


def _prepare_outputs(command, values: dict) -> list[Path]:
    """Create the output folders; returns those that did not exist before (to remove again if
    the command fails before writing anything into them)."""
    created = []
    for spec in command.parameters:
        path = values.get(spec.name)
        if spec.channel != "output" or path is None:
            continue
        folder = Path(path) if spec.type == "directory" else Path(path).parent
        missing = [p for p in (folder, *folder.parents) if not p.exists()]
        folder.mkdir(parents=True, exist_ok=True)
        created += missing  # deepest first
    return created


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed run created and left empty (deepest first); keep anything
    with content."""
    for folder in folders:
        try:
            folder.rmdir()  # only succeeds on an empty folder
        except OSError:
            pass


def run_command(command_id: str, params: dict[str, Any], *, registry: Registry | None = None,
                quiet: bool = False) -> Result:
    """Run ``plugin.command`` with ``params``; see :func:`medface.run`."""
    from ..version import __version__

    registry = registry or get_registry()
    info, command = registry.command(command_id)
    bound = bind(command, params)  # conversions and range checks happen before any plugin import
    func = registry.load_callable(info, command.python_name)
    values = dict(bound.values)
    seed = values.get("seed") if isinstance(values.get("seed"), int) else None
    device = values.get("device") if isinstance(values.get("device"), str) else "cpu"
    out_dir = _output_dir(command, values)
    created = _prepare_outputs(command, values)
    context = RunContext(command=command.full_id, seed=seed, device=device, out_dir=out_dir, quiet=quiet)
    accepted = inspect.signature(func).parameters
    if "context" in accepted:
        values["context"] = context
    for spec in command.parameters:  # the output folder is the runner's business unless asked for
        if spec.channel == "output" and spec.type == "directory" and spec.name not in accepted:
            values.pop(spec.name, None)

    started_wall, started = time.perf_counter(), Provenance.now()
    try:
        result = func(**values)
    except BaseException:
        _remove_if_empty(created)  # a failed run leaves no empty output folders behind
        raise
    if isinstance(result, dict):
        result = Result(command=command.full_id, summary=result)
    if not isinstance(result, Result):
        raise PluginError(f"{command.python_name} returned {type(result).__name__}, not a medface Result")
    result.command = command.full_id
    p = result.provenance
    p.medface_version, p.plugin, p.plugin_version = __version__, info.name, info.version
    p.command, p.parameters, p.inputs = command.full_id, bound.recorded, bound.inputs + p.inputs
    p.device = context.device if p.device == "cpu" else p.device
    p.seed = seed if p.seed is None else p.seed
    p.started, p.finished = started, Provenance.now()
    p.duration_s = round(time.perf_counter() - started_wall, 4)
    p.host = Provenance.host_info()
    if out_dir is not None:
        from ..report import write_report
        from .writing import write_declared

        write_declared(result, out_dir)  # the command's declared outputs, through io and viz
        result.outputs.setdefault("result", str(out_dir / RESULT_FILE))
        result.outputs.setdefault("report", str(out_dir / REPORT_FILE))
        result.save(out_dir / RESULT_FILE)
        write_report(result, out_dir)  # report.html and its JSON twin report.json
    elif result.declared and _file_output_folder(command, values) is not None:
        from .writing import write_declared

        write_declared(result, _file_output_folder(command, values))  # e.g. surgery plan --out plan.json
    return result
