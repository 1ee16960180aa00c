"""A pytest fixture that gives a test its own plugin registry with temporary plugins.

Installed as a pytest plugin (entry point ``pytest11``), so any project that installs medface
can use it::

    def test_my_plugin(medface_plugins):
        medface_plugins.add("hello", manifest=MANIFEST, modules={"commands.py": CODE})
        result = medface.run("hello.greet", name="world")

The fixture points ``MEDFACE_PLUGIN_PATH`` at a temporary folder, ignores installed plugins
unless asked (``medface_plugins.include_installed()``), installs the registry as the process
registry for the test's duration and removes the temporary packages from ``sys.modules`` after.
"""

from __future__ import annotations

import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from .manifest_summary import MANIFEST_NAME
from .registry import Registry, set_registry


class PluginSandbox:
    def __init__(self, folder: Path, monkeypatch):
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._monkeypatch = monkeypatch
        self._installed = False
        self._packages: set[str] = set()
        monkeypatch.setenv("MEDFACE_PLUGIN_PATH", str(folder))
        monkeypatch.setenv("MEDFACE_NO_ENTRY_POINTS", "1")
        self._previous = set_registry(None)
        self.refresh()

    def include_installed(self) -> Registry:
        """Also list the plugins installed through entry points (phenotype, surgery, ...)."""
        self._installed = True
        self._monkeypatch.delenv("MEDFACE_NO_ENTRY_POINTS", raising=False)
        return self.refresh()

    def add(self, package: str, *, manifest: str, modules: dict[str, str] | None = None) -> Path:
        """Write a plugin package ``package`` with a manifest (TOML text) and modules (name -> code)."""
        pkg = self.folder / package
        pkg.mkdir(parents=True, exist_ok=True)
        (pkg / MANIFEST_NAME).write_text(textwrap.dedent(manifest), encoding="utf-8")
        modules = dict(modules or {})
        modules.setdefault("__init__.py", "")
        for name, code in modules.items():
            (pkg / name).parent.mkdir(parents=True, exist_ok=True)
            (pkg / name).write_text(textwrap.dedent(code), encoding="utf-8")
        self._packages.add(package)
        self.refresh()
        return pkg

    def add_folder(self, source: Path) -> Path:
        """Copy an existing plugin package folder (one holding a manifest) into the sandbox."""
        target = self.folder / Path(source).name
        shutil.copytree(source, target, dirs_exist_ok=True)
        self._packages.add(target.name)
        self.refresh()
        return target

    def refresh(self) -> Registry:
        self._forget_modules()
        self.registry = Registry(plugin_path=str(self.folder), entry_points=self._installed).scan()
        set_registry(self.registry)
        return self.registry

    def _forget_modules(self) -> None:
        for name in list(sys.modules):
            if name.split(".")[0] in self._packages:
                del sys.modules[name]

    def close(self) -> None:
        self._forget_modules()
        if str(self.folder) in sys.path:
            sys.path.remove(str(self.folder))
        set_registry(self._previous)


@pytest.fixture
def medface_plugins(tmp_path, monkeypatch):
    """An isolated plugin registry backed by a temporary folder (see module docs)."""
    sandbox = PluginSandbox(tmp_path / "medface-plugins", monkeypatch)
    try:
        yield sandbox
    finally:
        sandbox.close()
