"""The plugin registry: every discovered plugin with its manifest and status.

Scanning reads manifests and checks requirements and code statically; plugin code is imported
only when one of its commands first runs (or on ``check_imports``). One registry is cached per
process (:func:`get_registry`); tests get isolated ones from the ``medface_plugins`` fixture.
"""

from __future__ import annotations

import importlib
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from ..errors import ManifestError, MedfaceError, PluginError
from ..report import set_command_titles
from . import discovery
from .manifest_summary import ManifestSummary, summarise_manifest
from .static_check import check_callable

if TYPE_CHECKING:
    from .manifest import CommandSpec, Manifest

OK, BROKEN = "ok", "broken"


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
            candidates = discovery.from_plugin_path(self._plugin_path)
            if self._entry_points and os.environ.get("MEDFACE_NO_ENTRY_POINTS", "") in ("", "0"):
                candidates += discovery.from_entry_points()
            for cand in candidates:
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
        if info.name in self._plugins:
            first = self._plugins[info.name]
            info.mark_broken(f"another plugin named '{info.name}' ({first.source}, {first.location}) "
                             f"takes precedence")
            self._plugins[f"{info.name}@{info.location}"] = info
            return
        self._plugins[info.name] = info

    @staticmethod
    def _static_problem(info: PluginInfo) -> str:
        m = info.summary
        problems = [p for r in m.requirements if (p := _requirement_problem(r))]
        names = [c.python_name for c in m.commands] + ([m.selftest] if m.selftest else [])
        problems += [p for n in names if (p := check_callable(info.package, info.location, n))]
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
        plugin_name, sep, cmd_name = command_id.partition(".")
        if not sep or not cmd_name:
            raise PluginError(f"'{command_id}' is not a command id; use 'plugin.command', e.g. 'surgery.simulate'")
        info = self[plugin_name]
        manifest = info.manifest if info.ok else None
        if manifest is None:
            raise PluginError(f"plugin '{info.name}' is broken: {info.reason}")
        spec = manifest.command(cmd_name)
        if spec is None:
            known = ", ".join(c.id for c in manifest.commands)
            raise PluginError(f"plugin '{plugin_name}' has no command '{cmd_name}' (commands: {known})")
        return info, spec

    def commands(self) -> list[CommandSpec]:
        return [c for p in self.ok() if p.manifest is not None for c in p.manifest.commands]

    def load_callable(self, info: PluginInfo, python_name: str) -> Callable:
        """Import ``module:function`` from the plugin (first use); failures mark it broken."""
        if python_name in info._module_cache:
            return info._module_cache[python_name]
        module_name, _, attr = python_name.partition(":")
        if info.import_root is not None and str(info.import_root) not in sys.path:
            sys.path.insert(0, str(info.import_root))
        try:
            module = importlib.import_module(module_name)
            if info.location is not None and getattr(module, "__file__", None):
                root = Path(importlib.import_module(info.package).__file__).resolve().parent
                if root != Path(info.location).resolve():
                    raise ImportError(f"'{info.package}' imported from {root}, not from the plugin's "
                                      f"folder {info.location}; another package of that name shadows it")
            func = getattr(module, attr)
        except Exception as exc:  # any import-time failure makes the plugin broken, not medface
            reason = f"importing {python_name} failed: {type(exc).__name__}: {exc}"
            info.mark_broken(reason)
            raise PluginError(f"plugin '{info.name}' is broken: {reason}") from exc
        if not callable(func):
            info.mark_broken(f"{python_name} is not callable")
            raise PluginError(f"plugin '{info.name}' is broken: {python_name} is not callable")
        info._module_cache[python_name] = func
        return func

    def check_imports(self, name: str | None = None) -> dict[str, str]:
        """Import every command of every (or one) plugin; returns name -> problem ('' if fine)."""
        results = {}
        for pname in ([name] if name else list(self)):
            info = self[pname]
            if not info.ok:
                results[pname] = info.reason
                continue
            names = [c.python_name for c in info.summary.commands]
            if info.summary.selftest:
                names.append(info.summary.selftest)
            problem = ""
            for n in names:
                try:
                    self.load_callable(info, n)
                except PluginError:
                    problem = info.reason
                    break
            results[pname] = problem
        return results


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
