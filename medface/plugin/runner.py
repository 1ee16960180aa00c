"""Running a command: look it up, bind parameters, import lazily, call, attach provenance, write.

Run options (:class:`medface.policy.RunOptions`: purpose, consent, paths, face pictures, audit
log) apply to every command and are checked against the site policy before anything is read.
What is written is private by default (``docs/privacy.md``): result.json and the report name
inputs and outputs by file name, not by path, face pictures are linked rather than embedded
(or left out), and the audit log gets one line per run.
"""

from __future__ import annotations

import inspect
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..data.provenance import Provenance, sha256_file
from ..data.result import Result
from ..errors import InputWarning, PluginError
from ..policy import RUN_OPTIONS, RunOptions, apply_policy
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


def _file_outputs(command, values: dict) -> list[Path]:
    """The output files named by parameters (``--out plan.json``)."""
    return [Path(values[spec.name]) for spec in command.parameters
            if spec.channel == "output" and spec.type == "file" and values.get(spec.name) is not None]


def _file_output_folder(command, values: dict) -> Path | None:
    """The folder of a command's output file (``--out plan.json``): where a command with no
    output folder has its declared outputs written (named as that file)."""
    files = _file_outputs(command, values)
    return files[0].parent if files else None


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


def _check_reserved(command) -> None:
    clash = [p.name for p in command.parameters if p.name in RUN_OPTIONS]
    if clash:
        raise PluginError(f"{command.full_id} declares the parameter(s) {', '.join(clash)}, names that medface "
                          "keeps for run options (--purpose, --consent, ...)", hint="rename them in the manifest")


# --------------------------------------------------------------------------- privacy helpers

class Redactor:
    """Replaces the folders of a run's paths in text: a path by its file name, a folder above
    it by ``…``, the output folder by ``.``, the home folder by ``~`` (``docs/privacy.md``)."""

    def __init__(self, paths, out_dir: Path | None):
        pairs: dict[str, str] = {}
        for given in paths:
            given = Path(given)
            full = Path(os.path.abspath(given.expanduser()))
            for form in {str(given), str(full), str(full.resolve()) if full.exists() else str(full)}:
                if os.sep in form or "/" in form:
                    pairs.setdefault(form, given.name or form)
            for parent in (*full.parents, *(full.resolve().parents if full.exists() else ())):
                if len(parent.parts) > 2:
                    pairs.setdefault(str(parent), "…")
        for folder, name in ((out_dir, "."), (Path.cwd(), "."), (Path.home(), "~")):
            if folder is not None and len(Path(os.path.abspath(folder)).parts) > 1:  # never the root
                for form in {str(Path(os.path.abspath(folder))), str(Path(folder).resolve())}:
                    pairs[form + os.sep] = "" if name == "." else name + os.sep
                    pairs[form] = name
        self.pairs = sorted(pairs.items(), key=lambda kv: -len(kv[0]))

    def text(self, value: str) -> str:
        if "/" not in value and os.sep not in value:
            return value
        for needle, replacement in self.pairs:
            if needle in value:
                value = value.replace(needle, replacement)
        return value

    def clean(self, value):
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.clean(v) for v in value]
        return value


def _relative(path: str, out_dir: Path) -> str:
    """An output's path as written in result.json: relative to the output folder."""
    if "://" in str(path):
        return str(path)
    full = Path(os.path.abspath(path))
    try:
        rel = Path(os.path.relpath(full, os.path.abspath(out_dir)))
    except ValueError:  # another drive on Windows
        return full.name
    return full.name if rel.parts and rel.parts[0] == ".." else rel.as_posix()


def _plugin_location(info, record_paths: bool) -> str:
    """Where the plugin's code is: the path with ``record_paths``; else under ``~`` or the Python
    prefix when it lies there, otherwise only its package folder's name."""
    if info.location is None:
        return ""
    location = Path(info.location).resolve()
    if record_paths:
        return str(location)
    for root, shown in ((Path(sys.prefix).resolve(), "<python>"), (Path.home().resolve(), "~")):
        if location.is_relative_to(root):
            return f"{shown}/{location.relative_to(root).as_posix()}"
    return f"…/{location.name}"


def _device_used(requested: str | None, reported: str, context: RunContext) -> str:
    """The device a run computed on, never ``"auto"``: what the plugin reported (in the provenance
    or through ``context.record_device``), else the one asked for, else the CUDA device when CUDA
    was started in this process, else the CPU. An unresolved name (``"auto"``, ``""``) is no
    answer and is passed over."""
    for candidate in (reported, context.device_used, requested):
        name = _concrete_device(candidate)
        if name:
            return name
    return _cuda_in_use() or "cpu"


def _concrete_device(name) -> str:
    """``name`` as a device that computed (``"cpu"``, ``"cuda:0"``); "" for none or ``"auto"``."""
    text = str(name or "").strip().lower()
    if text in ("", "auto", "none"):
        return ""
    if text == "cuda":  # the current CUDA device, when CUDA ran here
        return _cuda_in_use() or text
    return text


def _cuda_in_use() -> str:
    """``"cuda:N"`` when torch is loaded and CUDA was started in this process; "" otherwise."""
    torch = sys.modules.get("torch")
    try:
        if torch is not None and torch.cuda.is_initialized():
            return f"cuda:{torch.cuda.current_device()}"
    except Exception:  # noqa: BLE001 - a broken CUDA set-up: the work ran on the CPU
        pass
    return ""


def _snapshot(targets: list[Path]) -> dict[Path, tuple[int, int]]:
    """``file -> (size, mtime_ns)`` for the output files and every file under the output folders."""
    found = {}
    for target in targets:
        files = [p for p in target.rglob("*") if p.is_file()] if target.is_dir() else [target]
        for f in files:
            try:
                st = f.stat()
            except OSError:
                continue
            found[f] = (st.st_size, st.st_mtime_ns)
    return found


# --------------------------------------------------------------------------- one run

class _Run:
    """The state of one run, so that a failure can still be audited with what was known."""

    def __init__(self, command_id: str, registry: Registry, options: RunOptions, quiet: bool,
                 implementation=None):
        self.command_id, self.registry, self.options, self.quiet = command_id, registry, options, quiet
        self.implementation = implementation
        self.info = self.command = self.bound = self.context = None
        self.out_dir: Path | None = None
        self.watched: list[Path] = []
        self.before: dict[Path, tuple[int, int]] = {}
        self.started = Provenance.now()
        self.redactor = Redactor([], None)
        self.notes: list[str] = []  # InputWarnings of the readers, filled while the run goes on

    def execute(self, params: dict[str, Any]) -> Result:
        self.info, self.command = self.registry.command(self.command_id)
        _check_reserved(self.command)
        command = self.command
        self.bound = bind(command, params, record_paths=self.options.record_paths)  # before any plugin import
        func = self.implementation or self.registry.load_callable(self.info, command.python_name)
        values = dict(self.bound.values)
        seed = values.get("seed") if isinstance(values.get("seed"), int) else None
        device = values.get("device") if isinstance(values.get("device"), str) else None
        self.out_dir = _output_dir(command, values)
        self.redactor = Redactor(self.bound.paths, self.out_dir)
        created = _prepare_outputs(command, values)
        self.watched = [p for p in (self.out_dir, *_file_outputs(command, values)) if p is not None]
        if self.options.audit_logs:
            self.before = _snapshot(self.watched)
        self.context = RunContext(command=command.full_id, seed=seed, device=device or "cpu", out_dir=self.out_dir,
                                  quiet=self.quiet, options=self.options)
        accepted = inspect.signature(func).parameters
        if "context" in accepted:
            values["context"] = self.context
        for spec in command.parameters:  # the output folder is the runner's business unless asked for
            if spec.channel == "output" and spec.type == "directory" and spec.name not in accepted:
                values.pop(spec.name, None)
        started_wall = time.perf_counter()
        try:
            result = func(**values)
        except BaseException:
            _remove_if_empty(created)  # a failed run leaves no empty output folders behind
            raise
        result = self._checked(result)
        result.warnings.extend(note for note in self.notes if note not in result.warnings)
        self._provenance(result, seed, device, time.perf_counter() - started_wall)
        self._write(result, values)
        return result

    def _checked(self, result) -> Result:
        if isinstance(result, dict):
            result = Result(command=self.command.full_id, summary=result)
        if not isinstance(result, Result):
            raise PluginError(f"{self.command.python_name} returned {type(result).__name__}, not a medface Result")
        result.command = self.command.full_id
        return result

    def _provenance(self, result: Result, seed: int | None, device: str | None, seconds: float) -> None:
        from ..version import __version__

        p, info, options = result.provenance, self.info, self.options
        p.medface_version, p.plugin, p.plugin_version = __version__, info.name, info.version
        p.plugin_source, p.plugin_location = info.source, _plugin_location(info, options.record_paths)
        p.plugin_code_sha256 = str(getattr(info, "code_sha256", "") or "")
        p.command, p.parameters, p.inputs = self.command.full_id, self.bound.recorded, self.bound.inputs + p.inputs
        p.models = p.models + [m for m in self.context.models if m not in p.models]
        if not options.record_paths:
            for record in p.inputs + p.models:
                record.file = record.file or (Path(record.path).name if record.path else "")
                record.path = None
        p.device = _device_used(device, p.device, self.context)
        p.seed = seed if p.seed is None else p.seed
        p.purpose, p.consent = options.purpose, options.consent
        p.privacy = {"paths": "recorded" if options.record_paths else "file names only",
                     "face_images": options.face_policy, "left_out": []}
        p.started, p.finished = self.started, Provenance.now()
        p.duration_s = round(seconds, 4)
        p.host = Provenance.host_info()

    def _write(self, result: Result, values: dict) -> None:
        from .writing import write_declared

        faces = [o for o in result.declared if getattr(o, "face", False)]
        if not self.options.face_images and faces:
            result.declared = [o for o in result.declared if not getattr(o, "face", False)]
            result.provenance.privacy["left_out"] = [o.name for o in faces]
        linked = set() if self.options.embed_images else {o.name if o.kind == "figure" else o.figure for o in faces}
        out_dir = self.out_dir
        if out_dir is not None:
            from ..report import write_report

            write_declared(result, out_dir)  # the command's declared outputs, through io and viz
            result.outputs.setdefault("result", str(out_dir / RESULT_FILE))
            result.outputs.setdefault("report", str(out_dir / REPORT_FILE))
            shared = self._shareable(result, out_dir)
            shared.save(out_dir / RESULT_FILE)
            scrub = None if self.options.record_paths else self.redactor.text
            write_report(shared, out_dir, link_figures=linked - {""}, scrub=scrub)  # report.html and report.json
        elif result.declared and _file_output_folder(self.command, values) is not None:
            write_declared(result, _file_output_folder(self.command, values))  # e.g. surgery plan --out plan.json

    def _shareable(self, result: Result, out_dir: Path) -> Result:
        """The result as written into the output folder: outputs named relative to it, and (unless
        paths are recorded) no folder of an input or output in any text."""
        if self.options.record_paths:
            return result
        doc = result.to_dict()
        doc["outputs"] = {k: _relative(v, out_dir) for k, v in doc["outputs"].items()}
        doc["figures"] = {k: _relative(v, out_dir) for k, v in doc["figures"].items()}
        shared = Result.from_dict(self.redactor.clean(doc))
        shared.data = result.data
        return shared

    # ------------------------------------------------------------------ the audit log
    def _outputs_written(self) -> list[dict]:
        after = _snapshot(self.watched)
        rows = []
        for f, stamp in sorted(after.items()):
            if self.before.get(f) == stamp:
                continue  # there before and not rewritten by this run
            base = self.out_dir if self.out_dir is not None and f.is_relative_to(self.out_dir) else f.parent
            row = {"file": f.relative_to(base).as_posix(), "sha256": sha256_file(f), "bytes": stamp[0]}
            if self.options.record_paths:
                row["path"] = str(f.resolve())
            rows.append(row)
        return rows

    def audit(self, result: Result | None, error: BaseException | None) -> None:
        from .. import audit
        from ..version import __version__

        if not self.options.audit_logs:
            return
        records = self.bound.inputs if self.bound is not None else []
        models = result.provenance.models if result is not None else (self.context.models if self.context else [])
        keys = ("name", "file", "sha256", "kind") + (("path",) if self.options.record_paths else ())
        entry = {"time": Provenance.now(), "started": self.started, "command": self.command_id,
                 "status": result.status if result is not None else "error",
                 "exit_code": result.exit_code if result is not None else 0, "user": audit.current_user(),
                 "host": platform.node(), "purpose": self.options.purpose, "consent": self.options.consent,
                 "medface_version": __version__,
                 "plugin": f"{self.info.name} {self.info.version}" if self.info is not None else "",
                 "plugin_code_sha256": str(getattr(self.info, "code_sha256", "") or ""),
                 "output_folder": (str(self.out_dir.resolve()) if self.options.record_paths else self.out_dir.name)
                 if self.out_dir is not None else None,
                 "inputs": [{k: getattr(r, k) for k in keys} for r in records],
                 "models": [{k: getattr(r, k) for k in keys} for r in models],
                 "outputs": self._outputs_written() if self.watched else []}
        if result is not None and result.refused:
            entry["refusal"] = result.refusal if self.options.record_paths else self.redactor.text(result.refusal)
        if error is not None:
            code = getattr(error, "exit_code", 130 if isinstance(error, KeyboardInterrupt) else 70)
            message = str(error) if self.options.record_paths else self.redactor.text(str(error))
            entry.update(exit_code=code, error={"type": type(error).__name__, "message": message})
        for log in self.options.audit_logs:
            audit.append_entry(log, entry)


@contextmanager
def _input_warnings(notes: list[str]) -> Iterator[None]:
    """Collect into ``notes`` the InputWarnings readers issue during a run (each once); other
    warnings go on to wherever they went before."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, InputWarning):
            if str(message) not in notes:
                notes.append(str(message))
        else:
            previous(message, category, filename, lineno, file, line)

    with warnings.catch_warnings():
        warnings.simplefilter("always", InputWarning)
        warnings.showwarning = show
        yield


def run_command(command_id: str, params: dict[str, Any], *, registry: Registry | None = None,
                quiet: bool = False, options: RunOptions | None = None, implementation=None) -> Result:
    """Run ``plugin.command`` with ``params`` and the run ``options``; see :func:`medface.run`.
    ``implementation`` replaces the command's function (same parameters, same Result): a batch's
    streaming stages finish an item through it, so its outputs, provenance and report are the
    command's own."""
    from ..audit import check_writable

    options = apply_policy(options if options is not None else RunOptions())  # a refusal reads nothing
    for log in options.audit_logs:
        check_writable(log)
    run = _Run(command_id, registry or get_registry(), options, quiet, implementation)
    try:
        with _input_warnings(run.notes):
            result = run.execute(params)
    except BaseException as exc:
        try:
            run.audit(None, exc)
        except Exception:  # noqa: BLE001 - the run's own error is the one to report
            pass
        raise
    run.audit(result, None)
    return result
