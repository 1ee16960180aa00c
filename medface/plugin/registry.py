"""The plugin registry: every discovered plugin with its manifest and status.

Scanning reads manifests and checks requirements and code statically (commands, panels and the
self-test); plugin code is imported only when one of its commands first runs or one of its
panels opens (or on ``check_imports``). One registry is cached per
process (:func:`get_registry`); tests get isolated ones from the ``medface_plugins`` fixture.

Names: an installed plugin (entry point) always wins. A plugin on ``MEDFACE_PLUGIN_PATH`` that
takes the name, or the package, of an installed one is listed broken ("shadows the installed
plugin ...") and never imported; of two path plugins with one name, the first on the path wins.
Importing plugin code can make that plugin broken but never ends medface (:mod:`.safe_import`).
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import InputError, ManifestError, MedfaceError, PluginError
from ..report import set_command_titles
from . import discovery
from .manifest_summary import MANIFEST_NAME, ManifestSummary, summarise_manifest
from .safe_import import ImportProblem, import_plugin_module
from .static_check import check_callable, code_sha256

if TYPE_CHECKING:
    from .manifest import CommandSpec, Manifest, PanelSpec

OK, BROKEN = "ok", "broken"
#: how long ``check_imports`` lets one plugin's import run in its child process
IMPORT_CHECK_TIMEOUT_S = 300.0


@dataclass
class PluginInfo:
    """One plugin: where it came from, its manifest, and whether it can run.

    ``summary`` (what listing needs) is known after a scan; the full validated ``manifest`` is
    built on first use, so listing plugins imports no pydantic (:mod:`.manifest_summary`)."""

    name: str
    source: str
    location: Path | None
    summary: ManifestSummary | None = None
    manifest_path: Path | None = None
    status: str = OK
    reason: str = ""
    package: str = ""
    import_root: Path | None = None
    _manifest: "Manifest | None" = field(default=None, repr=False)
    _module_cache: dict = field(default_factory=dict, repr=False)
    _code_sha256: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def manifest(self) -> "Manifest | None":
        """The validated manifest (read on first use); None when the plugin has none that validates."""
        if self._manifest is None and self.summary is not None and self.manifest_path is not None:
            from .manifest import read_manifest

            try:
                self._manifest = read_manifest(self.manifest_path)
            except ManifestError as exc:  # edited since the scan
                self.summary = None
                self.mark_broken(str(exc))
        return self._manifest

    @property
    def title(self) -> str:
        return self.summary.title if self.summary else ""

    @property
    def code_sha256(self) -> str:
        """sha256 of the plugin's code: its package's ``.py`` files and manifest, by sorted
        relative name and content (:func:`.static_check.code_sha256`); computed on first use and
        kept for this scan. ``""`` for a plugin whose folder is unknown."""
        if self._code_sha256 is None:
            self._code_sha256 = code_sha256(Path(self.location)) if self.location is not None else ""
        return self._code_sha256

    @property
    def version(self) -> str:
        return self.summary.version if self.summary else ""

    def mark_broken(self, reason: str) -> None:
        self.status, self.reason = BROKEN, reason

    def to_dict(self) -> dict:
        m = self.summary
        return {
            "name": self.name, "status": self.status, "reason": self.reason, "source": self.source,
            "location": str(self.location) if self.location else None,
            "version": m.version if m else None, "title": m.title if m else None,
            "category": m.category if m else None,
            "commands": [c.id for c in m.commands] if m else [],
            "panels": [p.id for p in m.panels] if m else [],
        }


def _requirement_problem(requirement: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.requirements import Requirement

    req = Requirement(requirement)
    if req.marker is not None and not req.marker.evaluate():
        return ""
    try:
        have = version(req.name)
    except PackageNotFoundError:
        return f"requires '{requirement}', which is not installed (pip install '{requirement}')"
    if req.specifier and not req.specifier.contains(have, prereleases=True):
        return f"requires '{requirement}' but {req.name} {have} is installed"
    return ""


class Registry(Mapping):
    """Plugins by name. Iterating gives names; values are :class:`PluginInfo`."""

    def __init__(self, *, plugin_path: str | None = None, entry_points: bool = True):
        self._plugin_path = plugin_path
        self._entry_points = entry_points
        self._plugins: dict[str, PluginInfo] = {}
        self._scanned = False
        self._lock = threading.Lock()

    # scanning ---------------------------------------------------------------------------
    def scan(self) -> "Registry":
        with self._lock:
            self._plugins = {}
            candidates = []  # installed plugins first: they win over MEDFACE_PLUGIN_PATH
            if self._entry_points and os.environ.get("MEDFACE_NO_ENTRY_POINTS", "") in ("", "0"):
                candidates += discovery.from_entry_points()
            installed = len(candidates)
            candidates += discovery.from_plugin_path(self._plugin_path)
            for cand in candidates[:installed]:
                self._add(cand)
            for cand in candidates[installed:]:
                if not self._same_as_installed(cand):
                    self._add(cand)
            self._scanned = True
        return self

    def _add(self, cand: discovery.Candidate) -> None:
        info = PluginInfo(name=cand.package, source=cand.source, location=cand.package_dir, package=cand.package,
                          import_root=cand.import_root)
        if cand.error:
            info.mark_broken(cand.error)
        else:
            try:
                info.summary, info._manifest = summarise_manifest(cand.manifest_path)
                info.manifest_path = cand.manifest_path
                info.name = info.summary.name
            except ManifestError as exc:
                info.mark_broken(str(exc))
            else:
                problem = self._static_problem(info)
                if problem:
                    info.mark_broken(problem)
        clash = self._clash(info)
        if clash:
            info.mark_broken(clash)
            self._plugins[f"{info.name}@{info.location}"] = info
            return
        self._plugins[info.name] = info

    def _installed(self) -> list[PluginInfo]:
        return [p for p in self._plugins.values() if p.source.startswith("entry point")]

    def _same_as_installed(self, cand: discovery.Candidate) -> bool:
        """A path entry that is an installed plugin's own folder (an editable install listed
        again) is the same code: listed once, as installed."""
        if cand.package_dir is None:
            return False
        here = Path(cand.package_dir).resolve()
        return any(p.location is not None and Path(p.location).resolve() == here for p in self._installed())

    def _clash(self, info: PluginInfo) -> str:
        """Why ``info`` may not take its name (empty when it may); see the module docstring."""
        if info.name not in self._plugins and not info.source.startswith("entry point"):
            same_package = [p for p in self._installed() if p.package == info.package and p.location]
            if same_package:
                first = same_package[0]
                return (f"its package '{info.package}' is the package of the installed plugin '{first.name}' "
                        f"({first.source}, at {first.location}); importing it would run one in place of the "
                        f"other, so it is not loaded: rename its package folder")
        if info.name not in self._plugins:
            return ""
        first = self._plugins[info.name]
        if first.source.startswith("entry point") and not info.source.startswith("entry point"):
            return (f"shadows the installed plugin '{info.name}' ({first.source}, at {first.location}): an "
                    f"installed plugin always wins over {discovery.PATH_VARIABLE}, so this one is not loaded; "
                    f"rename it (the name in its {MANIFEST_NAME}) or uninstall the installed one")
        return f"another plugin named '{info.name}' ({first.source}, {first.location}) takes precedence"

    @staticmethod
    def _static_problem(info: PluginInfo) -> str:
        m = info.summary
        problems = [p for r in m.requirements if (p := _requirement_problem(r))]
        problems += [p for n in _code_names(m) if (p := check_callable(info.package, info.location, n))]
        return "; ".join(problems)

    def _ensure(self) -> None:
        if not self._scanned:
            self.scan()

    # mapping interface ------------------------------------------------------------------
    def __getitem__(self, name: str) -> PluginInfo:
        self._ensure()
        try:
            return self._plugins[name]
        except KeyError:
            known = ", ".join(sorted(self._plugins)) or "none"
            raise PluginError(f"no plugin named '{name}' (installed: {known})",
                              hint="see `medface plugins list`") from None

    def __iter__(self) -> Iterator[str]:
        self._ensure()
        return iter(sorted(self._plugins))

    def __len__(self) -> int:
        self._ensure()
        return len(self._plugins)

    def ok(self) -> list[PluginInfo]:
        return [self[n] for n in self if self[n].ok]

    def broken(self) -> list[PluginInfo]:
        return [self[n] for n in self if not self[n].ok]

    # commands ---------------------------------------------------------------------------
    def command(self, command_id: str) -> tuple[PluginInfo, CommandSpec]:
        """Look up ``"plugin.command"``; a broken plugin's command raises its reason."""
        return self._contribution(command_id, "command", "surgery.simulate")

    def commands(self) -> list[CommandSpec]:
        return [c for p in self.ok() if p.manifest is not None for c in p.manifest.commands]

    # panels -----------------------------------------------------------------------------
    def panel(self, panel_id: str) -> tuple[PluginInfo, PanelSpec]:
        """Look up ``"plugin.panel"``; a broken plugin's panel raises its reason."""
        return self._contribution(panel_id, "panel", "surgery.move-segment")

    def _contribution(self, full_id: str, kind: str, example: str):
        """A command or panel of a plugin by ``"plugin.id"``, with errors that name what exists."""
        plugin_name, sep, name = full_id.partition(".")
        if not sep or not name:
            raise PluginError(f"'{full_id}' is not a {kind} id; use 'plugin.{kind}', e.g. '{example}'")
        info = self[plugin_name]
        manifest = info.manifest if info.ok else None
        if manifest is None:
            raise PluginError(f"plugin '{info.name}' is broken: {info.reason}")
        spec = manifest.command(name) if kind == "command" else manifest.panel(name)
        if spec is None:
            listed = manifest.commands if kind == "command" else manifest.panels
            known = ", ".join(c.id for c in listed) or "none"
            raise PluginError(f"plugin '{plugin_name}' has no {kind} '{name}' ({kind}s: {known})")
        return info, spec

    def panels(self) -> list[PanelSpec]:
        """The panels of every plugin that works, for the workstation's panel list."""
        return [p for info in self.ok() if info.manifest is not None for p in info.manifest.panels]

    def load_callable(self, info: PluginInfo, python_name: str) -> Callable:
        """Import ``module:function`` from the plugin (first use); failures mark it broken."""
        if python_name in info._module_cache:
            return info._module_cache[python_name]
        module_name, _, attr = python_name.partition(":")
        if info.import_root is not None and str(info.import_root) not in sys.path:
            sys.path.append(str(info.import_root))  # last: a path plugin never shadows an installed package
        try:
            module = import_plugin_module(module_name)
            if info.location is not None and getattr(module, "__file__", None):
                root = Path(importlib.import_module(info.package).__file__).resolve().parent
                if root != Path(info.location).resolve():
                    raise ImportProblem(f"ImportError: '{info.package}' imported from {root}, not from the "
                                        f"plugin's folder {info.location}; another package of that name shadows it")
            func = getattr(module, attr)
        except Exception as exc:  # any import-time failure makes the plugin broken, not medface
            detail = str(exc) if isinstance(exc, ImportProblem) else f"{type(exc).__name__}: {exc}"
            reason = f"importing {python_name} failed: {detail}"
            info.mark_broken(reason)
            raise PluginError(f"plugin '{info.name}' is broken: {reason}") from exc
        if not callable(func):
            info.mark_broken(f"{python_name} is not callable")
            raise PluginError(f"plugin '{info.name}' is broken: {python_name} is not callable")
        info._module_cache[python_name] = func
        return func

    def _import_problem(self, info: PluginInfo) -> str:
        """Import every command and panel (and the self-test) of ``info``; '' or the broken reason."""
        for n in _code_names(info.summary):
            try:
                self.load_callable(info, n)
            except PluginError:
                return info.reason
        return ""

    def check_imports(self, name: str | None = None) -> dict[str, str]:
        """Import every command and panel of every (or one) plugin; returns name -> problem ('' if fine).

        Each plugin is imported in a forked child process (:func:`medface.io.isolated.run_isolated`),
        so that a plugin that kills the process it is imported in, or hangs, is reported broken
        by name instead of ending the check; nothing is imported into this process. Where
        processes cannot be forked the imports run here, guarded (:mod:`.safe_import`)."""
        from ..io.isolated import isolation_enabled, run_isolated

        results = {}
        for pname in ([name] if name else list(self)):
            info = self[pname]
            if not info.ok:
                results[pname] = info.reason
                continue
            if not isolation_enabled():
                results[pname] = self._import_problem(info)
                continue
            try:
                problem = run_isolated(self._import_problem, info, path=info.location, what=f"plugin '{pname}'",
                                       timeout_s=IMPORT_CHECK_TIMEOUT_S)
            except InputError as exc:  # the child died, or ran past the time limit
                problem = f"importing its code {_child_failure(exc)}"
            if problem:
                info.mark_broken(problem)
            results[pname] = problem
        return results


def _code_names(summary: ManifestSummary) -> list[str]:
    """Every ``module:name`` a manifest points to: its commands, its panels and its self-test."""
    names = [c.python_name for c in summary.commands] + [p.python_name for p in summary.panels]
    return names + ([summary.selftest] if summary.selftest else [])


def _child_failure(exc: InputError) -> str:
    """How the import's child process ended, from :func:`run_isolated`'s error."""
    text = exc.message
    if (m := re.search(r"\((SIG\w+)\)", text)) is not None:
        return f"killed the process it ran in ({m.group(1)})"
    if (m := re.search(r"exit status (-?\d+)", text)) is not None:
        return f"ended the process it ran in (exit status {m.group(1)}) without raising an exception"
    if (m := re.search(r"longer than (\S+) s", text)) is not None:
        return f"did not finish within {m.group(1)} s (it hangs at import)"
    return f"failed in a child process: {text}"


_REGISTRY: Registry | None = None
_REGISTRY_LOCK = threading.Lock()


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry, scanned on first use and cached."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        if _REGISTRY is None or refresh:
            _REGISTRY = Registry().scan()
        return _REGISTRY


def set_registry(registry: Registry | None) -> Registry | None:
    """Replace the process-wide registry (used by the test fixture); returns the previous one."""
    global _REGISTRY
    with _REGISTRY_LOCK:
        previous, _REGISTRY = _REGISTRY, registry
        return previous


def command_title(command_id: str) -> str:
    """A command's heading from its manifest (``"Inspect a CT volume"``), or ``""`` when unknown."""
    try:
        return get_registry().command(command_id)[1].heading
    except (MedfaceError, LookupError, ValueError):
        return ""


set_command_titles(command_title)  # reports name the command's title without importing plugins
